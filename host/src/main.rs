//! The `icmp-host` command: see `icmp-host --help`.

mod cli;

fn main() -> std::process::ExitCode {
    cli::main()
}
