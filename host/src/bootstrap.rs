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
    /// Threads already run: capabilities are per thread, so dropping them
    /// now would leave the others privileged.
    #[error("privileges must be dropped before any thread starts ({0} threads run)")]
    ThreadsStarted(usize),
    /// Dropping capabilities failed.
    #[error("dropping capabilities: {0}")]
    Privileges(#[source] io::Error),
    /// The system-call filter could not be installed.
    #[error("{0}")]
    Seccomp(#[source] io::Error),
}

/// Opens raw sockets when `raw_allowed` (and the process may), then drops
/// every privilege and installs the system-call filter. Call it first,
/// while the process has one thread.
pub fn start(raw_allowed: bool) -> Result<RawSockets, BootstrapError> {
    let threads = thread_count();
    if threads > 1 {
        return Err(BootstrapError::ThreadsStarted(threads));
    }
    raise_open_files_limit();
    let raw = if raw_allowed {
        RawSockets::open(EngineConfig::default().receive_buffer)
    } else {
        RawSockets::none("raw sockets are disabled by policy")
    };
    if sys::privilege::effective().unwrap_or(0) != 0 {
        sys::privilege::drop_all().map_err(BootstrapError::Privileges)?;
    }
    // Whatever the privileges were: nothing later may gain any (and the
    // filter below needs it).
    nix::sys::prctl::set_no_new_privs().map_err(|e| BootstrapError::Privileges(e.into()))?;
    sys::seccomp::deny_escapes().map_err(BootstrapError::Seccomp)?;
    Ok(raw)
}

/// Threads of this process, from `/proc/self/task` (1 when unreadable:
/// the caller's own check then passes, as it did before it could look).
fn thread_count() -> usize {
    std::fs::read_dir("/proc/self/task").map_or(1, |d| d.count())
}

/// Lets the process open as many descriptors as its hard limit allows:
/// datagram sockets are descriptors, one per unprivileged virtual socket.
fn raise_open_files_limit() {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    if let Ok((_, hard)) = getrlimit(Resource::RLIMIT_NOFILE) {
        let _ = setrlimit(Resource::RLIMIT_NOFILE, hard, hard);
    }
}
