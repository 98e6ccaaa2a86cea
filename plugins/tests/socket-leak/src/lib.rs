//! Opens sockets and closes them without ever dropping the handles
//! (`--count`, datagram sockets with `--unprivileged`): the host must
//! neither leak a kernel socket per handle nor let the tenant past its
//! socket limit.

include!("../../hostile_prelude.rs");

struct SocketLeak;

impl Guest for SocketLeak {
    fn run(args: Vec<String>) -> Result<RunOutput, RunError> {
        let count: usize = arg(&args, "--count")
            .and_then(|v| v.parse().ok())
            .unwrap_or(2000);
        let mode = match args.iter().any(|a| a == "--unprivileged") {
            true => Mode::Unprivileged,
            false => Mode::Auto,
        };
        let mut kept = Vec::new();
        for i in 0..count {
            match open(Family::Ipv4, mode) {
                Ok(s) => {
                    s.close();
                    kept.push(s);
                }
                Err(e) => return failed(format!("open #{i} refused: {e:?}")),
            }
        }
        failed(format!("opened and closed {count} sockets, none refused"))
    }
}

export!(SocketLeak);
