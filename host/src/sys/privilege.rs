//! Capabilities: whether this process may open raw sockets, and dropping
//! every capability once the privileged sockets are open.
#![allow(unsafe_code)]

use std::io;

/// `_LINUX_CAPABILITY_VERSION_3` (linux/capability.h): 64-bit sets in two words.
const CAPABILITY_VERSION_3: u32 = 0x2008_0522;

/// `struct __user_cap_header_struct`.
#[repr(C)]
struct CapHeader {
    version: u32,
    pid: i32,
}

/// `struct __user_cap_data_struct`.
#[repr(C)]
#[derive(Default, Clone, Copy)]
struct CapData {
    effective: u32,
    permitted: u32,
    inheritable: u32,
}

/// Drops every capability (effective, permitted, inheritable; ambient goes
/// with permitted) and sets `PR_SET_NO_NEW_PRIVS`, so nothing later — no
/// compiled plugin, no exec — can regain privileges.
///
/// Capabilities are per thread: call this before any other thread exists.
pub fn drop_all() -> io::Result<()> {
    let header = CapHeader {
        version: CAPABILITY_VERSION_3,
        pid: 0,
    };
    let data = [CapData::default(); 2];
    // SAFETY: capset(2) reads one header and two data structs (version 3)
    // through these pointers; both are valid, initialised and live for the call.
    let rc = unsafe { libc::syscall(libc::SYS_capset, &header as *const CapHeader, data.as_ptr()) };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    nix::sys::prctl::set_no_new_privs().map_err(io::Error::from)
}

/// The effective capability set of this thread, as a bit mask.
pub fn effective() -> io::Result<u64> {
    let header = CapHeader {
        version: CAPABILITY_VERSION_3,
        pid: 0,
    };
    let mut data = [CapData::default(); 2];
    // SAFETY: capget(2) writes two data structs (version 3) through the
    // pointer; the array is valid and writable for the call.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_capget,
            &header as *const CapHeader,
            data.as_mut_ptr(),
        )
    };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(u64::from(data[0].effective) | (u64::from(data[1].effective) << 32))
}
