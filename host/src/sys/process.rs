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
    reopen_closed_standard_descriptors()
}

fn reopen_closed_standard_descriptors() -> io::Result<()> {
    let mut fds = [0, 1, 2].map(|fd| libc::pollfd {
        fd,
        events: 0,
        revents: 0,
    });
    // SAFETY: `fds` is three valid `pollfd`s; a zero timeout never blocks.
    while unsafe { libc::poll(fds.as_mut_ptr(), 3, 0) } == -1 {
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
    for pfd in fds.iter().filter(|p| p.revents & libc::POLLNVAL != 0) {
        // The lowest free number is the closed one (the lower ones are
        // open, or were reopened by the previous turn).
        let opened = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open("/dev/null")
            .map_err(|e| io::Error::new(e.kind(), format!("opening /dev/null: {e}")))?;
        let fd = std::os::fd::IntoRawFd::into_raw_fd(opened);
        if fd != pfd.fd {
            return Err(io::Error::other(format!(
                "standard descriptor {} is closed, and /dev/null opened as {fd}",
                pfd.fd
            )));
        }
    }
    Ok(())
}
