//! Reads a file: the component imports the WASI filesystem, which the host
//! serves with no directory at all, so the read finds nothing.

use icmp_host_sdk::{Output, Probe, RunError};

struct Forbidden;

impl Probe for Forbidden {
    fn run(_args: Vec<String>) -> Result<Output, RunError> {
        let text =
            std::fs::read_to_string("/etc/passwd").map_err(|e| RunError::Failed(e.to_string()))?;
        Ok(Output::Text(text))
    }
}

icmp_host_sdk::export_probe!(Forbidden);
