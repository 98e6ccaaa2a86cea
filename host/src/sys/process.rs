//! What std's runtime does before `main`, for a binary that starts without
//! it (`#![no_main]`, see `main.rs`): `SIGPIPE` ignored, so that writing to
//! a closed pipe is an `EPIPE` error rather than death; and standard
//! descriptors that were closed at exec reopened on `/dev/null`, so that
//! no socket or file opened later takes number 1 and receives the report.
#![allow(unsafe_code)]

use std::io;

/// Ignores `SIGPIPE` and reopens closed standard descriptors. Call it
/// first, before anything opens a descriptor.
pub fn prepare() -> io::Result<()> {
    // SAFETY: `SIG_IGN` is a valid disposition for `SIGPIPE`, and nothing
    // else is changing signal dispositions (one thread runs).
    if unsafe { libc::signal(libc::SIGPIPE, libc::SIG_IGN) } == libc::SIG_ERR {
        return Err(io::Error::last_os_error());
    }
    for fd in 0..=2 {
        // SAFETY: `F_GETFD` only reads the descriptor's flags.
        if unsafe { libc::fcntl(fd, libc::F_GETFD) } != -1
            || io::Error::last_os_error().raw_os_error() != Some(libc::EBADF)
        {
            continue;
        }
        // The lowest free number is `fd`: those below are open, or were
        // reopened by the turns before. Not close-on-exec, as std's.
        // SAFETY: a valid C string and flags; the descriptor is left open
        // for the life of the process, as standard descriptors are.
        let opened = unsafe { libc::open(c"/dev/null".as_ptr(), libc::O_RDWR) };
        if opened != fd {
            let why = match opened {
                -1 => io::Error::last_os_error().to_string(),
                other => format!("it opened as {other}"),
            };
            return Err(io::Error::other(format!(
                "standard descriptor {fd} is closed, and reopening it on /dev/null failed: {why}"
            )));
        }
    }
    Ok(())
}
