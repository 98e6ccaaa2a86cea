//! Starting a host process safely, in the one order that is safe: open the
//! raw ICMP sockets while privileged, drop every privilege (fail closed),
//! install the system-call filter — and only then start threads, compile
//! or run anything. `run`, `batch` and `serve` all start here.

use std::io;

use crate::icmp::{EngineConfig, RawSockets};
use crate::sys;

/// Why the process could not be made safe to run plugins in.
#[derive(Debug, thiserror::Error)]
pub enum BootstrapError {
    /// Dropping capabilities failed (or threads already ran: capabilities
    /// are per thread).
    #[error("dropping capabilities: {0}")]
    Privileges(#[source] io::Error),
    /// The system-call filter could not be installed.
    #[error("{0}")]
    Seccomp(#[source] io::Error),
}

/// Opens raw sockets when `raw_allowed` (and the process may), then drops
/// every privilege and installs the system-call filter. Call it first,
/// while the process has one thread; it refuses otherwise.
pub fn start(raw_allowed: bool) -> Result<RawSockets, BootstrapError> {
    raise_open_files_limit();
    let raw = if raw_allowed {
        // A binary given `cap_net_raw+p` holds it as permitted only.
        let _ = sys::privilege::raise_net_raw();
        RawSockets::open(EngineConfig::default().receive_buffer)
    } else {
        RawSockets::none("raw sockets are disabled by policy")
    };
    // Always, and fail closed: every set emptied and no_new_privs set (the
    // filter below needs it), both checked afterwards.
    sys::privilege::drop_all().map_err(BootstrapError::Privileges)?;
    sys::seccomp::deny_escapes().map_err(BootstrapError::Seccomp)?;
    Ok(raw)
}

/// Lets the process open as many descriptors as its hard limit allows:
/// datagram sockets are descriptors, one per unprivileged virtual socket.
fn raise_open_files_limit() {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    if let Ok((_, hard)) = getrlimit(Resource::RLIMIT_NOFILE) {
        let _ = setrlimit(Resource::RLIMIT_NOFILE, hard, hard);
    }
}
