/*!
Capabilities: raising `CAP_NET_RAW` when the binary holds it only as
permitted (`setcap cap_net_raw+p`), and dropping every capability once the
privileged sockets are open.

The contract ([`drop_all`]): after it returns `Ok`, the calling thread's
effective, permitted, inheritable and ambient sets are empty and
`PR_SET_NO_NEW_PRIVS` is set, whatever the process started with (root,
`+ep`, `+p`, nothing). When that cannot be established — `capget` fails, a
set is still non-empty afterwards, or other threads already exist and would
keep their own sets — it fails, and the host must not run any plugin.
*/
#![allow(unsafe_code)]

use std::io;

/// `_LINUX_CAPABILITY_VERSION_3` (linux/capability.h): 64-bit sets in two words.
const CAPABILITY_VERSION_3: u32 = 0x2008_0522;

/// `CAP_NET_RAW` (linux/capability.h): raw sockets.
pub const CAP_NET_RAW: u32 = 13;

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

/// The capability sets of the calling thread, as bit masks.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Capabilities {
    /// What the thread may use now.
    pub effective: u64,
    /// What it may make effective.
    pub permitted: u64,
    /// What it passes across `execve`.
    pub inheritable: u64,
}

impl Capabilities {
    /// No capability in any set.
    pub fn is_empty(&self) -> bool {
        self.effective == 0 && self.permitted == 0 && self.inheritable == 0
    }

    /// Whether `cap` is in the permitted set.
    pub fn permits(&self, cap: u32) -> bool {
        self.permitted & (1 << cap) != 0
    }

    fn to_data(self) -> [CapData; 2] {
        let word = |set: u64, hi: bool| if hi { (set >> 32) as u32 } else { set as u32 };
        [false, true].map(|hi| CapData {
            effective: word(self.effective, hi),
            permitted: word(self.permitted, hi),
            inheritable: word(self.inheritable, hi),
        })
    }
}

fn header() -> CapHeader {
    CapHeader {
        version: CAPABILITY_VERSION_3,
        pid: 0,
    }
}

/// The calling thread's capability sets (`capget`).
pub fn current() -> io::Result<Capabilities> {
    let header = header();
    let mut data = [CapData::default(); 2];
    // SAFETY: capget(2) reads one header and writes two data structs
    // (version 3) through these pointers; both are valid for the call.
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
    let join = |f: fn(&CapData) -> u32| u64::from(f(&data[0])) | (u64::from(f(&data[1])) << 32);
    Ok(Capabilities {
        effective: join(|d| d.effective),
        permitted: join(|d| d.permitted),
        inheritable: join(|d| d.inheritable),
    })
}

fn set(caps: Capabilities) -> io::Result<()> {
    let header = header();
    let data = caps.to_data();
    // SAFETY: capset(2) reads one header and two data structs (version 3)
    // through these pointers; both are valid, initialised and live for the call.
    let rc = unsafe { libc::syscall(libc::SYS_capset, &header as *const CapHeader, data.as_ptr()) };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Makes `CAP_NET_RAW` effective when it is permitted but not effective
/// (a binary given `setcap cap_net_raw+p`), so the raw sockets can be
/// opened. Returns whether it is effective now.
pub fn raise_net_raw() -> io::Result<bool> {
    let caps = current()?;
    if !caps.permits(CAP_NET_RAW) {
        return Ok(false);
    }
    set(Capabilities {
        effective: caps.effective | (1 << CAP_NET_RAW),
        ..caps
    })?;
    Ok(true)
}

/// Threads of this process (`/proc/self/task`).
fn threads() -> io::Result<usize> {
    Ok(std::fs::read_dir("/proc/self/task")?.count())
}

/// Drops every capability (effective, permitted, inheritable and ambient)
/// and sets `PR_SET_NO_NEW_PRIVS`, so nothing later — no compiled plugin,
/// no `execve` — can regain privileges. Fails closed: see the module docs.
///
/// Capabilities are per thread: call this before any other thread exists
/// (it refuses otherwise).
pub fn drop_all() -> io::Result<()> {
    let threads = threads()?;
    if threads != 1 {
        return Err(io::Error::other(format!(
            "{threads} threads are running; capabilities must be dropped before any other \
             thread starts (each thread keeps its own)"
        )));
    }
    // Whatever capget says — or when it fails — the sets are cleared.
    let before = current();
    if before.as_ref().map_or(true, |c| !c.is_empty()) {
        set(Capabilities::default())?;
    }
    clear_ambient()?;
    nix::sys::prctl::set_no_new_privs().map_err(io::Error::from)?;
    let after = current()?;
    if !after.is_empty() {
        return Err(io::Error::other(format!(
            "capabilities remain after dropping them: {after:?}"
        )));
    }
    if !nix::sys::prctl::get_no_new_privs().map_err(io::Error::from)? {
        return Err(io::Error::other("PR_SET_NO_NEW_PRIVS did not take"));
    }
    Ok(())
}

/// Empties the ambient set (also implied by an empty permitted set; said
/// explicitly so no kernel subtlety is relied on).
fn clear_ambient() -> io::Result<()> {
    // SAFETY: prctl(2) with PR_CAP_AMBIENT / PR_CAP_AMBIENT_CLEAR_ALL takes
    // integer arguments only and touches no memory of ours.
    let rc = unsafe {
        libc::prctl(
            libc::PR_CAP_AMBIENT,
            libc::PR_CAP_AMBIENT_CLEAR_ALL,
            0 as libc::c_ulong,
            0 as libc::c_ulong,
            0 as libc::c_ulong,
        )
    };
    match rc {
        0 => Ok(()),
        // Kernels before 4.3 have no ambient set: nothing to clear.
        _ if io::Error::last_os_error().raw_os_error() == Some(libc::EINVAL) => Ok(()),
        _ => Err(io::Error::last_os_error()),
    }
}

/// Whether the kernel started this process in secure-execution mode
/// (`AT_SECURE`): it gained privileges when it was executed — file
/// capabilities (`setcap`) or set-user-ID — beyond those of the user who
/// ran it.
pub fn gained_privileges_at_exec() -> bool {
    // SAFETY: getauxval reads the process's auxiliary vector; it has no
    // preconditions and returns 0 for an absent entry.
    unsafe { libc::getauxval(libc::AT_SECURE) != 0 }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sets_split_into_the_two_kernel_words() {
        let caps = Capabilities {
            effective: 1 << CAP_NET_RAW,
            permitted: (1 << CAP_NET_RAW) | (1 << 40),
            inheritable: 0,
        };
        let data = caps.to_data();
        assert_eq!(data[0].effective, 1 << 13);
        assert_eq!(data[0].permitted, 1 << 13);
        assert_eq!(data[1].permitted, 1 << 8);
        assert_eq!(data[1].effective, 0);
        assert!(caps.permits(CAP_NET_RAW));
        assert!(!caps.is_empty());
        assert!(Capabilities::default().is_empty());
    }

    #[test]
    fn current_reads_this_thread() {
        // Whoever runs the tests, capget works and agrees with /proc.
        let caps = current().unwrap();
        let status = std::fs::read_to_string("/proc/thread-self/status").unwrap();
        let field = |name: &str| {
            let line = status.lines().find(|l| l.starts_with(name)).unwrap();
            u64::from_str_radix(line.split_whitespace().nth(1).unwrap(), 16).unwrap()
        };
        assert_eq!(caps.effective, field("CapEff:"));
        assert_eq!(caps.permitted, field("CapPrm:"));
        assert_eq!(caps.inheritable, field("CapInh:"));
    }
}
