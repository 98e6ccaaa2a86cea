//! `icmp-host batch` with N tenants, each pinging 127.0.0.1 once: CPU time
//! per tenant (the whole process's user + system time over N), peak RSS,
//! wall time and how many reached their target. No peer tool runs tenants;
//! the goals are printed beside the figures. `ICMP_HOST_BENCH_TENANTS`
//! picks the sizes (comma-separated; default 100,1000).

#[path = "common.rs"]
mod common;

use std::time::Duration;

use common::{median, ms};

const ROUNDS: usize = 7;
const LIMIT: Duration = Duration::from_secs(60);

fn main() {
    if !common::root_or_skip("batch") {
        return;
    }
    let sizes = common::sizes("ICMP_HOST_BENCH_TENANTS", "100,1000", 10_000);
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"));
    println!("batch: N tenants, each `ping 127.0.0.1 -c 1 -W 1` (median of {ROUNDS})");
    println!(
        "{:>7} {:>9} {:>13} {:>9} {:>9}",
        "tenants", "alive", "cpu/tenant ms", "RSS MiB", "wall ms"
    );
    for n in sizes.into_iter().map(|n| n as usize) {
        let runs: Vec<serde_json::Value> = (0..n)
            .map(|i| {
                serde_json::json!({
                    "name": format!("t{i}"),
                    "plugin": "ping",
                    "args": ["127.0.0.1", "-c", "1", "-W", "1"],
                })
            })
            .collect();
        let manifest = dir.join(format!("bench-batch-{n}.json"));
        std::fs::write(&manifest, serde_json::json!({ "runs": runs }).to_string())
            .expect("writing the manifest");
        let mut rounds = Vec::new();
        for _ in 0..ROUNDS {
            let batch = || {
                let mut c = common::icmp_host();
                c.arg("batch").arg(&manifest);
                c
            };
            let m = common::measure_with_rss(batch, "", LIMIT);
            let report: Vec<serde_json::Value> =
                serde_json::from_str(m.stdout.trim()).unwrap_or_default();
            let alive = report.iter().filter(|r| r["outcome"] == "reached").count();
            rounds.push((m, alive));
        }
        let cpu = median(rounds.iter().map(|(m, _)| ms(m.cpu()) / n as f64).collect());
        let rss = median(rounds.iter().map(|(m, _)| common::rss_mib(m)).collect());
        let wall = median(rounds.iter().map(|(m, _)| ms(m.wall)).collect());
        let worst = rounds.iter().map(|(_, a)| *a).min().unwrap_or(0);
        println!(
            "{n:>7} {:>9} {cpu:>13.3} {rss:>9.1} {wall:>9.1}",
            format!("{worst}/{n}")
        );
        if let Some((m, _)) = rounds.iter().find(|(m, _)| m.code.is_none()) {
            println!(
                "  !! killed at {LIMIT:?}; stderr: {}",
                m.stderr.lines().last().unwrap_or("")
            );
        }
    }
    println!("  goals at 1,000 tenants: <= 0.3 ms CPU per tenant, <= 100 MB RSS, 1000/1000 alive");
}
