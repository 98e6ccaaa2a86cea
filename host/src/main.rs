//! The `icmp-host` command.
fn main() {}
