//! The `icmp-host` command: see `icmp-host --help`.
//!
//! The process starts here, not through std's runtime start-up. That
//! start-up reads `/proc/self/maps` to find the main thread's stack and
//! maps a signal stack for every thread, so that a stack overflow is
//! reported by name: about 3% of the CPU of `run ping -c 1` (paired runs).
//! An overflow still ends the process at the guard page, with `SIGSEGV`
//! instead of the message; and a panic on the main thread names it
//! `<unnamed>`, not `main`. The rest of std's start-up is
//! [`icmp_host::sys::process::prepare`]; `process::exit` flushes stdout as
//! std's return from `main` would. (Unit tests keep libtest's `main`.)
#![cfg_attr(not(test), no_main)]

mod cli;

/// The C `main` that glibc's start-up calls.
#[allow(unsafe_code)] // For `no_mangle` alone: nothing unsafe runs here.
#[cfg_attr(not(test), unsafe(no_mangle))]
extern "C" fn main() -> std::ffi::c_int {
    if let Err(e) = icmp_host::sys::process::prepare() {
        eprintln!("icmp-host: preparing the process: {e}");
        return 2;
    }
    // A panic is reported by the panic hook; the exit code is std's, 101.
    let code = std::panic::catch_unwind(cli::main).unwrap_or(101);
    std::process::exit(code)
}
