//! Spins forever without calling the host: the CPU budget must stop it,
//! and a wall-clock limit must end it even though it ignores interrupts.

use icmp_host_sdk::{Output, Probe, RunError};

struct Spin;

impl Probe for Spin {
    fn run(_args: Vec<String>) -> Result<Output, RunError> {
        let mut x: u64 = 0;
        loop {
            x = std::hint::black_box(x.wrapping_mul(6364136223846793005).wrapping_add(1));
        }
    }
}

icmp_host_sdk::export_probe!(Spin);
