//! multiping over N loopback addresses (127.1.0.0/16; loopback answers every
//! 127/8 address), next to `fping -q -c1 -i0 -r0` in the same run: wall
//! time, hosts per second, alive count and peak RSS (median of a few
//! alternating rounds). `ICMP_HOST_BENCH_TARGETS` picks the sizes
//! (comma-separated; default 1000,10000,65536), `ICMP_HOST_BENCH_ROUNDS`
//! the rounds (default 3).
//!
//! fping 5 cannot take 65,536 targets at once ("not enough sequence
//! numbers available": it holds one sequence number per request for
//! 10 s); it gets the first 65,535, and speeds compare hosts per second.

#[path = "common.rs"]
mod common;

use std::process::Command;
use std::time::Duration;

use common::{Measured, median};

/// A run that takes longer is killed (and reported as such).
const LIMIT: Duration = Duration::from_secs(60);

/// The most targets fping 5 accepts in one run.
const FPING_MAX: u32 = 65_535;

fn main() {
    if !common::root_or_skip("multiping") {
        return;
    }
    let sizes = common::sizes("ICMP_HOST_BENCH_TARGETS", "1000,10000,65536", 65_536);
    let rounds: usize = std::env::var("ICMP_HOST_BENCH_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3)
        .max(1);
    let fping = common::have("fping");
    if !fping {
        println!("fping not installed (apt-get install fping): ours only");
    }

    // Compile once so the cache is warm, as a user's second run would be.
    let _ = common::measure(
        common::icmp_host().args(["run", "-q", "multiping", "127.0.0.1", "-c", "1"]),
        "",
        LIMIT,
    );

    for n in sizes {
        let targets = |count: u32| -> String {
            (0..count)
                .map(|i| format!("127.1.{}.{}\n", i >> 8, i & 0xff))
                .collect()
        };
        let n_fping = n.min(FPING_MAX);
        let (list, fping_list) = (targets(n), targets(n_fping));
        let mut ours = Vec::new();
        let mut theirs = Vec::new();
        for _ in 0..rounds {
            ours.push(run_ours(&list));
            if fping {
                theirs.push(run_fping(&fping_list));
            }
        }
        println!(
            "\nmultiping, {n} loopback targets, 1 request each, no rate limit (median of {rounds})"
        );
        println!(
            "{:<30} {:>7} {:>9} {:>11} {:>9} {:>9}",
            "tool", "alive", "wall ms", "hosts/s", "cpu ms", "RSS MiB"
        );
        let ours = row("icmp-host multiping -r 0", n, &ours);
        if fping {
            let theirs = row("fping -q -c1 -i0 -r0", n_fping, &theirs);
            common::verdict("speed vs fping (hosts/s)", ours.rate / theirs.rate, ">= 2x");
            common::verdict("RSS vs fping", ours.rss / theirs.rss, "<= 2x");
        }
    }
}

fn run_ours(list: &str) -> (Measured, usize) {
    let ours = || {
        let mut c = common::icmp_host();
        c.args([
            "run",
            "-q",
            "--stdin",
            "multiping",
            "--file",
            "-",
            "-c",
            "1",
            "--rate",
            "0",
        ]);
        c
    };
    let m = common::measure_with_rss(ours, list, LIMIT);
    let hosts: Vec<serde_json::Value> = serde_json::from_str(m.stdout.trim()).unwrap_or_default();
    let alive = hosts.iter().filter(|h| h["is_alive"] == true).count();
    (m, alive)
}

fn run_fping(list: &str) -> (Measured, usize) {
    let fping = || {
        let mut c = Command::new("fping");
        c.args(["-q", "-c1", "-i0", "-r0"]);
        c
    };
    let m = common::measure_with_rss(fping, list, LIMIT);
    let alive = m
        .stderr
        .lines()
        .filter(|l| l.contains("xmt/rcv/%loss = 1/1/"))
        .count();
    (m, alive)
}

/// Medians of one tool's rounds.
struct Summary {
    /// Hosts per second.
    rate: f64,
    /// Peak RSS, MiB.
    rss: f64,
}

fn row(tool: &str, n: u32, runs: &[(Measured, usize)]) -> Summary {
    let wall = median(runs.iter().map(|(m, _)| common::ms(m.wall)).collect());
    let cpu = median(runs.iter().map(|(m, _)| common::ms(m.cpu())).collect());
    let rss = median(runs.iter().map(|(m, _)| common::rss_mib(m)).collect());
    let alive = median(runs.iter().map(|(_, a)| *a).collect());
    let killed = runs.iter().filter(|(m, _)| m.code.is_none()).count();
    let rate = f64::from(n) / (wall / 1e3);
    let note = if killed > 0 {
        format!("  ({killed} killed at {LIMIT:?})")
    } else {
        String::new()
    };
    println!("{tool:<30} {alive:>7} {wall:>9.1} {rate:>11.0} {cpu:>9.1} {rss:>9.1}{note}");
    if alive < n as usize {
        println!("  !! {tool}: {} of {n} hosts not alive", n as usize - alive);
    }
    Summary { rate, rss }
}
