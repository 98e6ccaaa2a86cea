//! A last wall behind the wasm sandbox: once privileges are dropped, the
//! host process — every thread — can no longer make the system calls a
//! sandbox escape would reach for (debugging other processes, loading
//! kernel code or BPF, namespaces — by `unshare`, `setns` or `clone`'s
//! flags — and mounts, keyrings, userfaultfd, io_uring). None of them is
//! ever needed by the host; each fails with `EPERM`. (`clone3` fails with
//! `ENOSYS`, so that glibc uses `clone`, whose flags the filter can read.)
//! A deny list rather than an allow list: the host's own needs (tokio,
//! wasmtime, the resolver) change with their versions, the dangerous calls
//! do not.

#![allow(unsafe_code)]

use std::io;

use libc::sock_filter;

/// The system calls refused.
const DENIED: &[libc::c_long] = &[
    libc::SYS_ptrace,
    libc::SYS_process_vm_readv,
    libc::SYS_process_vm_writev,
    libc::SYS_bpf,
    libc::SYS_perf_event_open,
    libc::SYS_kexec_load,
    libc::SYS_kexec_file_load,
    libc::SYS_init_module,
    libc::SYS_finit_module,
    libc::SYS_delete_module,
    libc::SYS_mount,
    libc::SYS_umount2,
    libc::SYS_pivot_root,
    libc::SYS_chroot,
    libc::SYS_unshare,
    libc::SYS_setns,
    libc::SYS_keyctl,
    libc::SYS_add_key,
    libc::SYS_request_key,
    libc::SYS_userfaultfd,
    libc::SYS_acct,
    libc::SYS_swapon,
    libc::SYS_swapoff,
    libc::SYS_reboot,
    libc::SYS_sethostname,
    libc::SYS_setdomainname,
    libc::SYS_open_by_handle_at,
    libc::SYS_name_to_handle_at,
    libc::SYS_quotactl,
    libc::SYS_fanotify_init,
    libc::SYS_fsopen,
    libc::SYS_fsmount,
    libc::SYS_fsconfig,
    libc::SYS_move_mount,
    libc::SYS_open_tree,
    libc::SYS_io_uring_setup,
    libc::SYS_io_uring_enter,
    libc::SYS_io_uring_register,
];

/// `AUDIT_ARCH_*` of this target (linux/audit.h: the ELF machine, 64-bit,
/// little-endian): system calls made through another architecture's entry
/// (i386's `int 0x80` on x86-64) have other numbers, so the filter kills
/// the process instead of looking them up.
const AUDIT_ARCH: Option<u32> = {
    const LE64: u32 = 0x8000_0000 | 0x4000_0000;
    if cfg!(target_arch = "x86_64") {
        Some(62 | LE64)
    } else if cfg!(target_arch = "aarch64") {
        Some(183 | LE64)
    } else if cfg!(target_arch = "riscv64") {
        Some(243 | LE64)
    } else {
        None
    }
};

/// Numbers at and above which x86-64 takes a call as x32's: a table of its
/// own, with `ptrace` and the rest at other numbers. All of them are
/// refused (nothing here is built for x32).
const X32_SYSCALL_BIT: u32 = 0x4000_0000;

/// Offsets in `struct seccomp_data`.
const NR: u32 = 0;
const ARCH: u32 = 4;

/// `A = seccomp_data[offset]` (a 32-bit word).
const fn load(offset: u32) -> sock_filter {
    stmt(libc::BPF_LD | libc::BPF_W | libc::BPF_ABS, offset)
}

const fn stmt(code: u32, k: u32) -> sock_filter {
    sock_filter {
        code: code as u16,
        jt: 0,
        jf: 0,
        k,
    }
}

/// `if A op k` (`op`: `BPF_JEQ` ==, `BPF_JGE` >=, `BPF_JSET` &) jump `jt`
/// instructions ahead, else go on.
const fn jump(op: u32, k: u32, jt: u8) -> sock_filter {
    sock_filter {
        code: (libc::BPF_JMP | op | libc::BPF_K) as u16,
        jt,
        jf: 0,
        k,
    }
}

/// `clone` flags that make new namespaces (`unshare`'s, refused above).
/// `CLONE_NEWTIME` (0x80) is not among them: `clone` takes it as the exit
/// signal's bits; only `clone3` and `unshare` make time namespaces.
const CLONE_NEW: u32 = (libc::CLONE_NEWNS
    | libc::CLONE_NEWCGROUP
    | libc::CLONE_NEWUTS
    | libc::CLONE_NEWIPC
    | libc::CLONE_NEWUSER
    | libc::CLONE_NEWPID
    | libc::CLONE_NEWNET) as u32;

/// Offset of the low half of the first argument (little-endian): `clone`'s
/// flags.
const ARG0: u32 = 16;

/// Where a check of the number jumps.
#[derive(Clone, Copy)]
enum Verdict {
    /// `EPERM`.
    Deny,
    /// `ENOSYS`: `clone3`, whose flags sit in memory the filter cannot
    /// read. glibc then creates threads (and processes) with `clone`.
    Unsupported,
    /// `clone`: allowed unless its flags make a namespace.
    CloneFlags,
}

/// The filter, for a machine of `arch`: check the architecture, refuse
/// x32 calls (x86-64), then compare the number with each of [`DENIED`]
/// and refuse it with `EPERM` on a match; `clone3` gets `ENOSYS`, `clone`
/// is checked for namespace flags; anything else is allowed. A comparison
/// per call it names and nothing more: it runs on every system call of
/// the process, and the kernel compiles it once per process.
fn program(arch: u32) -> Vec<sock_filter> {
    let ret = |k| stmt(libc::BPF_RET | libc::BPF_K, k);
    let errno = |e: i32| ret(libc::SECCOMP_RET_ERRNO | (e as u32 & libc::SECCOMP_RET_DATA));
    let mut checks = Vec::with_capacity(DENIED.len() + 3);
    if cfg!(target_arch = "x86_64") {
        checks.push((libc::BPF_JGE, X32_SYSCALL_BIT, Verdict::Deny));
    }
    checks.extend(
        DENIED
            .iter()
            .map(|&nr| (libc::BPF_JEQ, nr as u32, Verdict::Deny)),
    );
    checks.push((libc::BPF_JEQ, libc::SYS_clone3 as u32, Verdict::Unsupported));
    checks.push((libc::BPF_JEQ, libc::SYS_clone as u32, Verdict::CloneFlags));
    let mut p = vec![
        load(ARCH),
        jump(libc::BPF_JEQ, arch, 1),
        ret(libc::SECCOMP_RET_KILL_PROCESS),
        load(NR),
    ];
    // After the checks: allow; clone's flags (load, test, allow); then
    // the two refusals.
    let first = p.len();
    let allow = first + checks.len();
    let clone_flags = allow + 1;
    let unsupported = clone_flags + 3;
    let deny = unsupported + 1;
    for (i, &(op, k, verdict)) in checks.iter().enumerate() {
        let target = match verdict {
            Verdict::Deny => deny,
            Verdict::Unsupported => unsupported,
            Verdict::CloneFlags => clone_flags,
        };
        let ahead = u8::try_from(target - (first + i) - 1).expect("a short filter");
        p.push(jump(op, k, ahead));
    }
    p.push(ret(libc::SECCOMP_RET_ALLOW));
    p.push(load(ARG0));
    p.push(jump(libc::BPF_JSET, CLONE_NEW, 2)); // past allow and ENOSYS
    p.push(ret(libc::SECCOMP_RET_ALLOW));
    p.push(errno(libc::ENOSYS));
    p.push(errno(libc::EPERM));
    debug_assert_eq!(p.len(), deny + 1);
    p
}

/// Installs `program` for the calling thread, or for every thread of the
/// process when `all_threads`.
fn install(program: &[sock_filter], all_threads: bool) -> io::Result<()> {
    let prog = libc::sock_fprog {
        len: u16::try_from(program.len()).map_err(io::Error::other)?,
        filter: program.as_ptr().cast_mut(),
    };
    let flags = match all_threads {
        true => libc::SECCOMP_FILTER_FLAG_TSYNC,
        false => 0,
    };
    // SAFETY: `prog` points at `program`, alive for the call, whose length
    // it states; the kernel copies the filter and keeps no pointer to it.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_seccomp,
            libc::SECCOMP_SET_MODE_FILTER,
            flags,
            &raw const prog,
        )
    };
    match rc {
        0 => Ok(()),
        // With TSYNC, a positive result names a thread that could not
        // take the filter.
        r if r > 0 => Err(io::Error::other(format!(
            "thread {r} could not take the filter"
        ))),
        _ => Err(io::Error::last_os_error()),
    }
}

fn other(e: impl std::fmt::Display) -> io::Error {
    io::Error::other(format!("installing the seccomp filter: {e}"))
}

/// Refuses the calls of `DENIED`, every x32 call and `clone` with a
/// namespace flag (`EPERM`), and `clone3` (`ENOSYS`), in every thread of
/// the process, for good, and kills the process on a call made through
/// another architecture's entry. Needs `no_new_privs` (set when
/// privileges are dropped).
pub fn deny_escapes() -> io::Result<()> {
    let arch = AUDIT_ARCH.ok_or_else(|| other("no filter for this architecture"))?;
    install(&program(arch), true).map_err(other)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// In a child process (the filter cannot be taken back): the denied
    /// calls fail with `EPERM`, x32 calls too, others work. Returns the
    /// child's exit status: 0 when all held.
    fn filtered_child() -> i32 {
        let program = program(AUDIT_ARCH.unwrap());
        // SAFETY: the child makes system calls only (no allocation, no
        // lock another thread may hold) and leaves with `_exit`.
        let pid = unsafe { libc::fork() };
        assert!(pid >= 0, "fork: {}", io::Error::last_os_error());
        if pid == 0 {
            let errno = || io::Error::last_os_error().raw_os_error().unwrap_or(0);
            // SAFETY: plain system calls with integer arguments.
            let code = unsafe {
                if libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 {
                    10
                } else if install(&program, false).is_err() {
                    11
                } else if libc::syscall(libc::SYS_unshare, 0) != -1 || errno() != libc::EPERM {
                    12
                } else if libc::syscall(libc::SYS_ptrace, libc::PTRACE_TRACEME, 0, 0, 0) != -1
                    || errno() != libc::EPERM
                {
                    13
                } else if libc::syscall(libc::SYS_io_uring_setup, 1, 0) != -1
                    || errno() != libc::EPERM
                {
                    14
                } else if cfg!(target_arch = "x86_64")
                    && (libc::syscall(X32_SYSCALL_BIT as libc::c_long | libc::SYS_getpid) != -1
                        || errno() != libc::EPERM)
                {
                    15
                } else if libc::syscall(libc::SYS_getpid) <= 0 {
                    16
                } else if libc::syscall(libc::SYS_clone3, std::ptr::null::<u8>(), 0) != -1
                    || errno() != libc::ENOSYS
                {
                    17
                } else {
                    let flags = libc::CLONE_NEWUSER | libc::SIGCHLD;
                    match libc::syscall(libc::SYS_clone, flags, 0, 0, 0, 0) {
                        // Made (the filter failed): the new process leaves.
                        0 => libc::_exit(0),
                        -1 if errno() == libc::EPERM => 0,
                        _ => 18,
                    }
                }
            };
            // SAFETY: ends the child without running the parent's exit code.
            unsafe { libc::_exit(code) }
        }
        let mut status = 0;
        // SAFETY: waits for the child just forked, writing into a local.
        let waited = unsafe { libc::waitpid(pid, &raw mut status, 0) };
        assert_eq!(waited, pid);
        assert!(libc::WIFEXITED(status), "the child died: {status:#x}");
        libc::WEXITSTATUS(status)
    }

    #[test]
    fn denied_calls_fail_with_eperm_and_others_work() {
        // The status names the first check that failed: 10 no_new_privs,
        // 11 the filter, 12 unshare, 13 ptrace, 14 io_uring_setup, 15 an
        // x32 call, 16 getpid, 17 clone3, 18 clone of a user namespace.
        assert_eq!(filtered_child(), 0);
    }

    /// What `program` answers for call `nr` made through `arch` with
    /// `flags` as its first argument: a classic BPF machine for the
    /// instructions [`program`] uses.
    fn verdict(program: &[sock_filter], arch: u32, nr: u32, flags: u32) -> u32 {
        let (mut pc, mut a) = (0usize, 0u32);
        loop {
            let i = program[pc];
            let taken = |yes: bool| 1 + usize::from(if yes { i.jt } else { i.jf });
            match u32::from(i.code) {
                c if c == libc::BPF_LD | libc::BPF_W | libc::BPF_ABS => {
                    a = match i.k {
                        NR => nr,
                        ARCH => arch,
                        ARG0 => flags,
                        k => panic!("reads seccomp_data at {k}"),
                    };
                    pc += 1;
                }
                c if c == libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K => pc += taken(a == i.k),
                c if c == libc::BPF_JMP | libc::BPF_JGE | libc::BPF_K => pc += taken(a >= i.k),
                c if c == libc::BPF_JMP | libc::BPF_JSET | libc::BPF_K => pc += taken(a & i.k != 0),
                c if c == libc::BPF_RET | libc::BPF_K => return i.k,
                c => panic!("unexpected instruction {c:#x}"),
            }
        }
    }

    #[test]
    fn the_filter_denies_each_listed_call_and_x32_and_kills_other_architectures() {
        let arch = AUDIT_ARCH.unwrap();
        let p = program(arch);
        let eperm = libc::SECCOMP_RET_ERRNO | libc::EPERM as u32;
        for &nr in DENIED {
            assert_eq!(verdict(&p, arch, nr as u32, 0), eperm, "call {nr}");
        }
        for nr in [
            libc::SYS_read,
            libc::SYS_getpid,
            libc::SYS_sendmsg,
            libc::SYS_recvmmsg,
            libc::SYS_mprotect,
        ] {
            assert_eq!(
                verdict(&p, arch, nr as u32, 0),
                libc::SECCOMP_RET_ALLOW,
                "call {nr}"
            );
        }
        if cfg!(target_arch = "x86_64") {
            // x32's getpid, its ptrace (521), and the top of the range.
            for nr in [X32_SYSCALL_BIT | 39, X32_SYSCALL_BIT | 521, u32::MAX] {
                assert_eq!(verdict(&p, arch, nr, 0), eperm, "call {nr:#x}");
            }
        }
        // AUDIT_ARCH_I386: `int 0x80` on x86-64.
        let i386 = 3 | 0x4000_0000;
        assert_eq!(
            verdict(&p, i386, libc::SYS_getpid as u32, 0),
            libc::SECCOMP_RET_KILL_PROCESS
        );
        // clone3: ENOSYS; clone: allowed for threads, refused for any
        // namespace.
        let enosys = libc::SECCOMP_RET_ERRNO | libc::ENOSYS as u32;
        assert_eq!(verdict(&p, arch, libc::SYS_clone3 as u32, 0), enosys);
        let thread = (libc::CLONE_VM
            | libc::CLONE_FS
            | libc::CLONE_FILES
            | libc::CLONE_SIGHAND
            | libc::CLONE_THREAD
            | libc::CLONE_SYSVSEM
            | libc::CLONE_SETTLS
            | libc::CLONE_PARENT_SETTID
            | libc::CLONE_CHILD_CLEARTID) as u32;
        let clone = libc::SYS_clone as u32;
        assert_eq!(verdict(&p, arch, clone, thread), libc::SECCOMP_RET_ALLOW);
        let fork = libc::SIGCHLD as u32;
        assert_eq!(verdict(&p, arch, clone, fork), libc::SECCOMP_RET_ALLOW);
        for flag in [
            libc::CLONE_NEWNS,
            libc::CLONE_NEWCGROUP,
            libc::CLONE_NEWUTS,
            libc::CLONE_NEWIPC,
            libc::CLONE_NEWUSER,
            libc::CLONE_NEWPID,
            libc::CLONE_NEWNET,
        ] {
            let flags = fork | flag as u32;
            assert_eq!(verdict(&p, arch, clone, flags), eperm, "{flag:#x}");
        }
        // One comparison per call named, and no more.
        let x32 = usize::from(cfg!(target_arch = "x86_64"));
        assert_eq!(p.len(), 4 + x32 + DENIED.len() + 2 + 6);
    }
}
