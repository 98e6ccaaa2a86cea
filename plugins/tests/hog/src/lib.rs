//! Allocates a mebibyte at a time, forever: the memory limit must stop it.

use icmp_host_sdk::{Output, Probe, RunError};

struct Hog;

impl Probe for Hog {
    fn run(_args: Vec<String>) -> Result<Output, RunError> {
        let mut hoard: Vec<Vec<u8>> = Vec::new();
        loop {
            hoard.push(std::hint::black_box(vec![1u8; 1 << 20]));
        }
    }
}

icmp_host_sdk::export_probe!(Hog);
