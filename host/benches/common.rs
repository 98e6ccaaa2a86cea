//! Shared by the benches: run a command, time it, print a table row.
// Each bench includes this file and uses part of it.
#![allow(dead_code)]

use std::io::Write;
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

/// What a timed command printed.
pub struct Printed {
    /// Everything written to stdout.
    pub stdout: String,
    /// Everything written to stderr.
    pub stderr: String,
}

/// Runs `cmd` with `input` on stdin; returns wall time and output.
pub fn timed(cmd: &mut Command, input: &str) -> (Duration, Printed) {
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let start = Instant::now();
    let mut child = cmd.spawn().expect("spawning the benchmarked command");
    let mut stdin = child.stdin.take().unwrap();
    let input = input.to_owned();
    let writer = std::thread::spawn(move || {
        let _ = stdin.write_all(input.as_bytes());
    });
    let out = child
        .wait_with_output()
        .expect("waiting for the benchmarked command");
    let elapsed = start.elapsed();
    let _ = writer.join();
    let printed = Printed {
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    };
    (elapsed, printed)
}

/// The benches' compiled-plugin cache.
pub fn cache_dir() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("bench-cache")
}

/// The `icmp-host` binary of this build, with a cache dir of its own.
pub fn icmp_host() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_icmp-host"));
    c.env("ICMP_HOST_CACHE_DIR", cache_dir());
    c
}

/// Median of some durations.
pub fn median(mut d: Vec<Duration>) -> Duration {
    d.sort();
    d[d.len() / 2]
}
