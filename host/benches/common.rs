//! Shared by the benches: run a command (bounded in time), measure its wall
//! time, CPU time and peak RSS, and print rows next to a peer's.
//!
//! `ICMP_HOST_BENCH_BIN` runs another `icmp-host` binary (e.g. an older
//! build) instead of this build's, to compare both in one sitting.
// Each bench includes this file and uses part of it.
#![allow(dead_code)]
// `wait4`: the child's own CPU time and peak RSS (std reaps without them).
#![allow(unsafe_code)]

use std::io::{Read, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Whether we may open raw sockets (benches skip loudly otherwise).
pub fn root_or_skip(bench: &str) -> bool {
    if nix::unistd::geteuid().is_root() {
        return true;
    }
    eprintln!("SKIPPED {bench}: needs root (raw ICMP sockets)");
    false
}

/// Whether `program` is on PATH.
pub fn have(program: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {program}")])
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// What a measured command did.
#[derive(Debug)]
pub struct Measured {
    /// Spawn to exit.
    pub wall: Duration,
    /// User CPU time of the child.
    pub user: Duration,
    /// System CPU time of the child.
    pub sys: Duration,
    /// Peak resident set (the child's VmHWM), bytes.
    pub max_rss: u64,
    /// Exit status (`None`: killed, e.g. at the time limit).
    pub code: Option<i32>,
    /// Everything written to stdout.
    pub stdout: String,
    /// Everything written to stderr.
    pub stderr: String,
}

impl Measured {
    /// User plus system CPU time.
    pub fn cpu(&self) -> Duration {
        self.user + self.sys
    }
}

fn timeval(t: libc::timeval) -> Duration {
    Duration::from_secs(t.tv_sec as u64) + Duration::from_micros(t.tv_usec as u64)
}

/// Runs `cmd` with `input` on stdin; kills it (by its PID) after `limit`.
pub fn measure(cmd: &mut Command, input: &str, limit: Duration) -> Measured {
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let start = Instant::now();
    let mut child = cmd.spawn().expect("spawning the benchmarked command");
    let pid = child.id() as libc::pid_t;
    let mut stdin = child.stdin.take().unwrap();
    let input = input.to_owned();
    let writer = std::thread::spawn(move || {
        let _ = stdin.write_all(input.as_bytes());
    });
    let reader = |mut r: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut s = Vec::new();
            let _ = r.read_to_end(&mut s);
            String::from_utf8_lossy(&s).into_owned()
        })
    };
    let out = reader(Box::new(child.stdout.take().unwrap()));
    let err = reader(Box::new(child.stderr.take().unwrap()));
    let (done_tx, done_rx) = std::sync::mpsc::channel::<()>();
    let watchdog = std::thread::spawn(move || {
        if done_rx.recv_timeout(limit).is_err() {
            // Still running (not yet reaped, so the PID is still ours).
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
    });
    let mut status = 0;
    // SAFETY: zeroed `rusage` is a valid value of a plain C struct.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: `pid` is our unreaped child; both pointers are valid for the
    // call. `child` is not waited on afterwards.
    let reaped = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    let wall = start.elapsed();
    assert_eq!(reaped, pid, "wait4 failed");
    drop(done_tx);
    let _ = watchdog.join();
    let _ = writer.join();
    drop(child);
    Measured {
        wall,
        user: timeval(usage.ru_utime),
        sys: timeval(usage.ru_stime),
        max_rss: usage.ru_maxrss as u64 * 1024,
        code: libc::WIFEXITED(status).then(|| libc::WEXITSTATUS(status)),
        stdout: out.join().unwrap_or_default(),
        stderr: err.join().unwrap_or_default(),
    }
}

/// The benches' compiled-plugin cache.
pub fn cache_dir() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("bench-cache")
}

/// The `icmp-host` binary under test (`ICMP_HOST_BENCH_BIN` names another
/// build to compare), with a cache dir of its own.
pub fn icmp_host() -> Command {
    let bin = std::env::var_os("ICMP_HOST_BENCH_BIN")
        .unwrap_or_else(|| env!("CARGO_BIN_EXE_icmp-host").into());
    let mut c = Command::new(bin);
    c.env("ICMP_HOST_CACHE_DIR", cache_dir());
    c
}

/// Sizes from the comma-separated `var` (else `default`), each clamped to
/// `1..=max`: benches stay bounded whatever the environment says.
pub fn sizes(var: &str, default: &str, max: u32) -> Vec<u32> {
    std::env::var(var)
        .unwrap_or_else(|_| default.into())
        .split(',')
        .filter_map(|v| v.trim().parse().ok())
        .map(|n: u32| n.clamp(1, max))
        .collect()
}

/// Median of some values.
pub fn median<T: Copy + PartialOrd>(mut v: Vec<T>) -> T {
    v.sort_by(|a, b| a.partial_cmp(b).expect("comparable"));
    v[v.len() / 2]
}

/// Milliseconds, for tables.
pub fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// Mebibytes, for tables.
pub fn mib(bytes: u64) -> f64 {
    bytes as f64 / f64::from(1 << 20)
}

/// The line under a table: how we compare with the peer, and the goal.
pub fn verdict(what: &str, ratio: f64, goal: &str) {
    println!("  => {what}: {ratio:.2}x  (goal: {goal})");
}
