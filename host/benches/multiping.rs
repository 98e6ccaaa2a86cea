//! multiping over N loopback addresses (127.1.0.0/16; loopback answers every
//! 127/8 address), timed next to `fping -c1 -i0 -r0` in the same run.
//! `ICMP_HOST_BENCH_TARGETS` sets N (default 10,000).

#[path = "common.rs"]
mod common;

use std::process::Command;

fn main() {
    if !common::root_or_skip("multiping") {
        return;
    }
    let n: u32 = std::env::var("ICMP_HOST_BENCH_TARGETS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000)
        .clamp(1, 65_536);
    let list: String = (0..n)
        .map(|i| format!("127.1.{}.{}\n", i >> 8, i & 0xff))
        .collect();

    // Compile once so the cache is warm, as a user's second run would be.
    let _ = common::timed(
        common::icmp_host().args(["run", "-q", "multiping", "127.0.0.1", "-c", "1"]),
        "",
    );

    println!("multiping, {n} loopback targets, 1 request each, no rate limit");
    println!(
        "{:<34} {:>8} {:>10} {:>12}",
        "tool", "alive", "wall (s)", "hosts/s"
    );
    let mut ours = common::icmp_host();
    ours.args([
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
    let (t, out) = common::timed(&mut ours, &list);
    let hosts: Vec<serde_json::Value> = serde_json::from_str(out.stdout.trim()).unwrap_or_default();
    let alive = hosts.iter().filter(|h| h["is_alive"] == true).count();
    row("icmp-host multiping", alive, t);

    if common::have("fping") {
        let mut fping = Command::new("fping");
        fping.args(["-c1", "-i0", "-r0", "-q"]);
        let (t, out) = common::timed(&mut fping, &list);
        let alive = out
            .stderr
            .lines()
            .filter(|l| l.contains("xmt/rcv/%loss = 1/1/"))
            .count();
        row("fping -c1 -i0 -r0", alive, t);
    } else {
        println!(
            "{:<34} (not installed: apt-get install fping)",
            "fping -c1 -i0 -r0"
        );
    }
}

fn row(tool: &str, alive: usize, t: std::time::Duration) {
    let secs = t.as_secs_f64();
    println!(
        "{tool:<34} {alive:>8} {secs:>10.3} {:>12.0}",
        alive as f64 / secs
    );
}
