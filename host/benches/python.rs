//! A one-ping Python probe next to the Rust ping plugin, in the same run:
//! `icmp-host run python-ping.wasm 127.0.0.1 -c 1` against `icmp-host run
//! ping 127.0.0.1 -c 1`, whole process start to exit with a warm cache
//! (median of 21), plus the one-time compile into the cache, `--help`
//! (start-up without the network), component sizes and peak RSS (wait4).
//!
//! The Python plugin is built like the tests build it (`python3 -m
//! icmp_host build`, componentize-py); without it the bench says so.

#[path = "common.rs"]
mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

const RUNS: usize = 21;

/// `target/python-plugins/python-ping.wasm`, built when missing or stale.
fn python_ping() -> Result<PathBuf, String> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let out = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .unwrap()
        .join("python-plugins/python-ping.wasm");
    let o = Command::new("python3")
        .env("PYTHONPATH", root.join("guest-sdk-python"))
        .args(["-m", "icmp_host", "build", "-q", "--if-changed", "-o"])
        .arg(&out)
        .arg(root.join("plugins/examples/python-ping"))
        .output()
        .map_err(|e| format!("python3: {e}"))?;
    if !o.status.success() {
        return Err(String::from_utf8_lossy(&o.stderr).trim().to_owned());
    }
    Ok(out)
}

/// Median wall time of `RUNS` runs of `args`.
fn median(args: &[&str]) -> Duration {
    common::median(
        (0..RUNS)
            .map(|_| {
                let out = run(args);
                assert!(
                    out.stdout.contains("\"is_alive\":true") || args.contains(&"--help"),
                    "{args:?}: {}",
                    out.stderr
                );
                out.wall
            })
            .collect(),
    )
}

/// One run of `icmp-host args`, bounded in time.
fn run(args: &[&str]) -> common::Measured {
    common::measure(common::icmp_host().args(args), "", Duration::from_secs(120))
}

fn row(what: &str, t: Duration) {
    println!("{what:<52} {:>9.2} ms", t.as_secs_f64() * 1e3);
}

fn main() {
    if !common::root_or_skip("python") {
        return;
    }
    let wasm = match python_ping() {
        Ok(p) => p,
        Err(why) => {
            eprintln!("SKIPPED python: cannot build python-ping.wasm: {why}");
            return;
        }
    };
    let py = wasm.to_str().unwrap();
    let python = ["run", "-q", py, "127.0.0.1", "-c", "1"];
    let rust = ["run", "-q", "ping", "127.0.0.1", "-c", "1"];

    // The first run compiles the component into the (bench's own) cache.
    let _ = std::fs::remove_dir_all(common::cache_dir());
    let cold_py = run(&python).wall;
    let cold_rust = run(&rust).wall;

    let size = |p: &Path| std::fs::metadata(p).map(|m| m.len()).unwrap_or(0) as f64 / 1024.0;
    println!("one ping to 127.0.0.1, whole process, start to exit, warm cache: median of {RUNS}");
    row(
        "icmp-host run python-ping.wasm 127.0.0.1 -c 1",
        median(&python),
    );
    row("icmp-host run ping 127.0.0.1 -c 1 (Rust)", median(&rust));
    row(
        "icmp-host run python-ping.wasm --help",
        median(&["run", py, "--help"]),
    );
    row(
        "icmp-host run ping --help (Rust)",
        median(&["run", "ping", "--help"]),
    );
    println!("first run, compiling into the cache");
    row("python-ping.wasm", cold_py);
    row("ping (Rust, built in: compiled once per binary)", cold_rust);
    println!("sizes");
    println!("{:<52} {:>9.0} KiB", "python-ping.wasm", size(&wasm));
    let shipped = icmp_host::builtin::find("ping").map_or(0, |b| b.wasm.len());
    println!(
        "{:<52} {:>9.0} KiB",
        "ping.wasm (Rust, as built in)",
        shipped as f64 / 1024.0
    );
    for (what, args) in [("python-ping.wasm", &python), ("ping (Rust)", &rust)] {
        let m = common::measure_with_rss(
            || {
                let mut c = common::icmp_host();
                c.args(args.as_slice());
                c
            },
            "",
            Duration::from_secs(120),
        );
        let mib = common::rss_mib(&m);
        println!("{:<52} {mib:>9.1} MiB", format!("peak RSS, {what}"));
    }
}
