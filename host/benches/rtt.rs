//! RTT floor: the median of 300 loopback echoes sent 2 ms apart,
//! `icmp-host run ping 127.0.0.1 -c 300 -i 0.002` next to iputils
//! `ping -c 300 -i 0.002 127.0.0.1` in the same run (rounds alternate;
//! the median over all replies of each tool).

#[path = "common.rs"]
mod common;

use std::process::Command;
use std::time::Duration;

use common::median;

const COUNT: &str = "300";
const INTERVAL: &str = "0.002";
const ROUNDS: usize = 3;
const LIMIT: Duration = Duration::from_secs(30);

fn main() {
    if !common::root_or_skip("rtt") {
        return;
    }
    let mut ours: Vec<f64> = Vec::new();
    let mut theirs: Vec<f64> = Vec::new();
    let mut sources = std::collections::BTreeMap::<String, usize>::new();
    let iputils = common::have("ping");
    for _ in 0..ROUNDS {
        let m = common::measure(
            common::icmp_host().args([
                "run",
                "-q",
                "ping",
                "127.0.0.1",
                "-c",
                COUNT,
                "-i",
                INTERVAL,
            ]),
            "",
            LIMIT,
        );
        let host: serde_json::Value = serde_json::from_str(m.stdout.trim()).unwrap_or_default();
        ours.extend(
            host["rtts"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|v| v.as_f64()),
        );
        for probe in host["probes"].as_array().into_iter().flatten() {
            if let Some(source) = probe["timestamp_source"].as_str() {
                *sources.entry(source.to_owned()).or_default() += 1;
            }
        }
        if iputils {
            let m = common::measure(
                Command::new("ping").args(["-c", COUNT, "-i", INTERVAL, "127.0.0.1"]),
                "",
                LIMIT,
            );
            theirs.extend(m.stdout.lines().filter_map(|l| {
                let t = l.split("time=").nth(1)?;
                t.split_whitespace().next()?.parse::<f64>().ok()
            }));
        }
    }
    let expected = ROUNDS * COUNT.parse::<usize>().unwrap();
    println!("RTT floor: {ROUNDS} x {COUNT} echoes to 127.0.0.1, {INTERVAL} s apart");
    println!(
        "{:<34} {:>8} {:>10} {:>10}",
        "tool", "replies", "median us", "p10 us"
    );
    let show = |tool: &str, rtts: &[f64]| -> Option<f64> {
        if rtts.is_empty() {
            println!("{tool:<34} {:>8}", 0);
            return None;
        }
        let mut sorted = rtts.to_vec();
        sorted.sort_by(f64::total_cmp);
        let med = median(rtts.to_vec()) * 1e3;
        let p10 = sorted[sorted.len() / 10] * 1e3;
        println!("{tool:<34} {:>8} {med:>10.1} {p10:>10.1}", rtts.len());
        Some(med)
    };
    let our = show("icmp-host ping", &ours);
    if !sources.is_empty() {
        println!("  icmp-host timestamp sources: {sources:?}");
    }
    if ours.len() < expected {
        println!(
            "  !! icmp-host: {} of {expected} replies missing",
            expected - ours.len()
        );
    }
    if iputils {
        let their = show("iputils ping", &theirs);
        if let (Some(a), Some(b)) = (our, their) {
            println!(
                "  => RTT floor vs iputils: {:+.1} us  (goal: <= +2 us)",
                a - b
            );
        }
    } else {
        println!("iputils ping not installed");
    }
}
