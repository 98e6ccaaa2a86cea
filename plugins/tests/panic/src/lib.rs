//! Panics after writing some output: the host must show what it wrote and
//! the panic's message and location (the SDK's panic hook), then exit 2.

use icmp_host_sdk::{Output, Probe, RunError};

struct Panic;

impl Probe for Panic {
    fn run(args: Vec<String>) -> Result<Output, RunError> {
        println!("partial result before the panic");
        panic!("boom: {} arguments", args.len())
    }
}

icmp_host_sdk::export_probe!(Panic);
