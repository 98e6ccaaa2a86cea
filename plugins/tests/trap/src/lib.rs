//! Traps: the host must report the trap and exit 2, not crash.

use icmp_host_sdk::{Output, Probe, RunError};

struct Trap;

impl Probe for Trap {
    fn run(_args: Vec<String>) -> Result<Output, RunError> {
        core::arch::wasm32::unreachable()
    }
}

icmp_host_sdk::export_probe!(Trap);
