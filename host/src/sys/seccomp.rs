//! A last wall behind the wasm sandbox: once privileges are dropped, the
//! host process — every thread — can no longer make the system calls a
//! sandbox escape would reach for (debugging other processes, loading
//! kernel code or BPF, namespaces and mounts, keyrings, userfaultfd,
//! io_uring). None of them is ever needed by the host; each fails with
//! `EPERM`. A deny list rather than an allow list: the host's own needs
//! (tokio, wasmtime, the resolver) change with their versions, the
//! dangerous calls do not.

use std::collections::BTreeMap;
use std::io;

use seccompiler::{BpfProgram, SeccompAction, SeccompFilter, TargetArch};

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

fn other(e: impl std::fmt::Display) -> io::Error {
    io::Error::other(format!("installing the seccomp filter: {e}"))
}

/// Refuses the calls of `DENIED` in every thread of the process, for
/// good. Needs `no_new_privs` (set when privileges are dropped).
pub fn deny_escapes() -> io::Result<()> {
    let arch = TargetArch::try_from(std::env::consts::ARCH).map_err(other)?;
    let rules = DENIED
        .iter()
        .map(|&nr| (nr, Vec::new()))
        .collect::<BTreeMap<_, _>>();
    let filter = SeccompFilter::new(
        rules,
        SeccompAction::Allow,
        SeccompAction::Errno(libc::EPERM as u32),
        arch,
    )
    .map_err(other)?;
    let program: BpfProgram = filter.try_into().map_err(other)?;
    seccompiler::apply_filter_all_threads(&program).map_err(other)
}
