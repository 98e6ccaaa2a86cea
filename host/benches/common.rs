//! Shared by the benches: run a command (bounded in time), measure its wall
//! time, CPU time and peak RSS, and print rows next to a peer's.
//!
//! Peak RSS comes from a second run under GNU time (Debian package `time`):
//! `wait4`'s `ru_maxrss` for a child of the bench counts the bench's own
//! memory (Linux charges the image an exec replaces to the new program),
//! which once reported 333 MiB for a 90 MiB multiping and 368 MiB for
//! fping's 34 MB.
//!
//! `ICMP_HOST_BENCH_BIN` runs another `icmp-host` binary (e.g. an older
//! build) instead of this build's, to compare both in one sitting; start-up
//! figures are taken from copies in a known page-cache state
//! ([`PageCache`]).
// Each bench includes this file and uses part of it.
#![allow(dead_code)]
// `wait4`: the child's own CPU time (std reaps without it); `posix_fadvise`.
#![allow(unsafe_code)]

use std::io::{Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::process::CommandExt;
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
    /// Peak resident set, bytes, when measured ([`measure_with_rss`]).
    pub max_rss: Option<u64>,
    /// User CPU time of the child.
    pub user: Duration,
    /// System CPU time of the child.
    pub sys: Duration,
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

/// GNU time: it starts the command from its own small process, so the
/// peak RSS it reports is the command's. (`wait4`'s `ru_maxrss` of a
/// child spawned from the bench counts the bench's own RSS: the memory
/// image replaced at exec is charged to the child.)
const GNU_TIME: &str = "/usr/bin/time";

/// Marks GNU time's report on stderr.
const RSS_TAG: &str = "icmp-host-bench-max-rss-kib=";

/// `cmd` run by GNU time, which prints the peak RSS.
fn under_gnu_time(cmd: &Command) -> Command {
    assert!(
        std::path::Path::new(GNU_TIME).exists(),
        "the benches measure peak RSS with GNU time: install Debian package `time`"
    );
    let mut wrapped = Command::new(GNU_TIME);
    wrapped
        .arg("-f")
        .arg(format!("{RSS_TAG}%M"))
        .arg(cmd.get_program())
        .args(cmd.get_args());
    for (key, value) in cmd.get_envs() {
        match value {
            Some(v) => wrapped.env(key, v),
            None => wrapped.env_remove(key),
        };
    }
    if let Some(dir) = cmd.get_current_dir() {
        wrapped.current_dir(dir);
    }
    wrapped
}

/// The peak RSS in bytes that GNU time wrote on stderr.
fn reported_rss(stderr: &str) -> Option<u64> {
    let kib = stderr.lines().rev().find_map(|l| l.strip_prefix(RSS_TAG))?;
    kib.trim().parse::<u64>().ok().map(|kib| kib * 1024)
}

/// [`measure`], then the peak RSS of a second run, under GNU time (its
/// start-up would count in the first run's times). The RSS is never below
/// GNU time's own image, about 2 MiB.
pub fn measure_with_rss(make: impl Fn() -> Command, input: &str, limit: Duration) -> Measured {
    let mut m = measure(&mut make(), input, limit);
    let rss_run = measure(&mut under_gnu_time(&make()), input, limit);
    m.max_rss = reported_rss(&rss_run.stderr);
    m
}

/// Runs `cmd` with `input` on stdin; kills it (its process group) after
/// `limit`. Wall and CPU time are the command's own (no wrapper to start).
pub fn measure(cmd: &mut Command, input: &str, limit: Duration) -> Measured {
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0);
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
            // Still running (not yet reaped, so the group is still ours):
            // GNU time and the command it started.
            let _ = nix::sys::signal::killpg(
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
        max_rss: None,
        user: timeval(usage.ru_utime),
        sys: timeval(usage.ru_stime),
        code: libc::WIFEXITED(status).then(|| libc::WEXITSTATUS(status)),
        stdout: out.join().unwrap_or_default(),
        stderr: err.join().unwrap_or_default(),
    }
}

/// The benches' compiled-plugin cache.
pub fn cache_dir() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("bench-cache")
}

/// The `icmp-host` binary under test: this build's, or the one
/// `ICMP_HOST_BENCH_BIN` names (e.g. an older build, to compare both in
/// one sitting).
pub fn binary() -> std::path::PathBuf {
    std::env::var_os("ICMP_HOST_BENCH_BIN")
        .unwrap_or_else(|| env!("CARGO_BIN_EXE_icmp-host").into())
        .into()
}

/// The binary under test, with a cache dir of its own.
pub fn icmp_host() -> Command {
    icmp_host_at(&binary())
}

/// The `icmp-host` binary at `path`, with the benches' cache dir.
pub fn icmp_host_at(path: &std::path::Path) -> Command {
    let mut c = Command::new(path);
    c.env("ICMP_HOST_CACHE_DIR", cache_dir());
    c
}

/// How an executable's pages came into the page cache. Start-up depends
/// on it: faulting in code and tearing its mappings down cost less when
/// the cache holds the file in large folios, as written by a copy, than
/// in the single pages that faults read back. The same bytes started
/// 14-25% apart in CPU time (Linux 6.18, ext4), more than most changes
/// being measured; a bench that compares builds gives each the same state.
#[derive(Debug, Clone, Copy)]
pub enum PageCache {
    /// As an install leaves it: the file just written by a copy.
    Installed,
    /// As after a reboot or eviction: written, dropped from the cache,
    /// then read back by the faults of one run.
    ReadBack,
}

/// A fresh copy of the binary `bytes`, in `CARGO_TARGET_TMPDIR`, in
/// page-cache state `state` (for [`PageCache::ReadBack`], once the caller
/// has run it once).
pub fn copy_in(bytes: &[u8], state: PageCache) -> std::path::PathBuf {
    use std::os::fd::AsRawFd;
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("bench-bin");
    std::fs::create_dir_all(&dir).expect("creating the benches' binary directory");
    let copy = dir.join(format!("icmp-host-{state:?}").to_lowercase());
    // Removed first: a new file, not pages of an old one rewritten.
    // Written, not `fs::copy`: on XFS or btrfs that shares the blocks,
    // and nothing of the copy would be in the cache.
    let _ = std::fs::remove_file(&copy);
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o755)
        .open(&copy)
        .expect("creating the copy");
    file.write_all(bytes).expect("writing the copy");
    if let PageCache::ReadBack = state {
        // Written back first: dirty pages are not dropped.
        file.sync_all().expect("writing the copy back");
        // SAFETY: an advice on a descriptor we own; it changes no memory.
        let err = unsafe { libc::posix_fadvise(file.as_raw_fd(), 0, 0, libc::POSIX_FADV_DONTNEED) };
        assert_eq!(err, 0, "posix_fadvise(DONTNEED): error {err}");
    }
    copy
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

/// A measurement's peak RSS in MiB (NaN when not measured).
pub fn rss_mib(m: &Measured) -> f64 {
    m.max_rss.map_or(f64::NAN, mib)
}

/// The line under a table: how we compare with the peer, and the goal.
pub fn verdict(what: &str, ratio: f64, goal: &str) {
    println!("  => {what}: {ratio:.2}x  (goal: {goal})");
}
