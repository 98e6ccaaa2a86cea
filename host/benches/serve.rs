//! `icmp-host serve` against the CLI, the same pings in the same run: one
//! echo request to 127.0.0.1 per run (`ping 127.0.0.1 -c 1`), as
//! `POST /v1/runs` with `wait` to a running service, and as a whole
//! `icmp-host run` process per run (warm compiled-plugin cache); one at a
//! time and eight at a time. Prints runs per second, latency percentiles
//! and the service's memory (RSS).

#[path = "common.rs"]
mod common;
// Shared with the end-to-end tests; the bench uses part of it.
#[allow(dead_code)]
#[path = "../../tests/e2e/http_client.rs"]
mod http_client;

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use http_client::Request;

/// Runs per measurement, and the clients of the concurrent ones.
const RUNS: usize = 400;
const CLI_RUNS: usize = 100;
const CLIENTS: usize = 8;

/// Latencies of a batch of runs, and how long the batch took.
struct Measured {
    latencies: Vec<Duration>,
    wall: Duration,
    failures: usize,
}

impl Measured {
    fn row(&self, what: &str) {
        let mut l = self.latencies.clone();
        l.sort();
        let p = |q: f64| l[((l.len() - 1) as f64 * q).round() as usize].as_secs_f64() * 1e3;
        println!(
            "{what:<44} {:>8.0} {:>8.2} {:>8.2} {:>8.2} {:>6}",
            l.len() as f64 / self.wall.as_secs_f64(),
            p(0.5),
            p(0.9),
            p(0.99),
            self.failures
        );
    }
}

/// `runs` runs split over `clients` threads, each timed by `one`
/// (`true` when the run reached 127.0.0.1).
fn measure(runs: usize, clients: usize, one: impl Fn() -> bool + Sync) -> Measured {
    let start = Instant::now();
    let results: Vec<(Duration, bool)> = std::thread::scope(|s| {
        let threads: Vec<_> = (0..clients)
            .map(|_| {
                s.spawn(|| {
                    (0..runs / clients)
                        .map(|_| {
                            let t = Instant::now();
                            let ok = one();
                            (t.elapsed(), ok)
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        threads
            .into_iter()
            .flat_map(|t| t.join().unwrap())
            .collect()
    });
    Measured {
        wall: start.elapsed(),
        failures: results.iter().filter(|(_, ok)| !ok).count(),
        latencies: results.into_iter().map(|(d, _)| d).collect(),
    }
}

/// A service on a free loopback port; its address.
fn start_service() -> (Child, SocketAddr) {
    let mut child = common::icmp_host()
        .args(["serve", "--listen", "127.0.0.1:0"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("starting icmp-host serve");
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let addr = lines
        .by_ref()
        .map_while(Result::ok)
        .find_map(|l| {
            l.strip_prefix("icmp-host serve: listening on http://")?
                .parse()
                .ok()
        })
        .expect("icmp-host serve did not start");
    std::thread::spawn(move || lines.for_each(drop));
    (child, addr)
}

/// VmRSS and VmHWM of `pid`, MiB.
fn rss(pid: u32) -> (f64, f64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let kib = |key: &str| {
        status
            .lines()
            .find_map(|l| {
                l.strip_prefix(key)?
                    .trim()
                    .strip_suffix("kB")?
                    .trim()
                    .parse::<f64>()
                    .ok()
            })
            .unwrap_or(0.0)
    };
    (kib("VmRSS:") / 1024.0, kib("VmHWM:") / 1024.0)
}

fn main() {
    if !common::root_or_skip("serve") {
        return;
    }
    let (mut service, addr) = start_service();
    let body =
        serde_json::json!({"plugin": "ping", "args": ["127.0.0.1", "-c", "1"], "wait": true});
    let over_http = || {
        let r = Request::new(addr, None, "POST", "/v1/runs")
            .json(&body)
            .send();
        r.status == 200 && r.json()["exit"] == 0
    };
    let by_process = || {
        let out = common::measure(
            common::icmp_host().args(["run", "-q", "ping", "127.0.0.1", "-c", "1"]),
            "",
            std::time::Duration::from_secs(10),
        );
        serde_json::from_str::<serde_json::Value>(&out.stdout).is_ok_and(|v| v["is_alive"] == true)
    };
    // Warm up both: compiled-plugin cache, connections, allocator.
    for _ in 0..20 {
        over_http();
    }
    by_process();
    let (idle, _) = rss(service.id());

    println!("one echo request to 127.0.0.1 per run (ping -c 1), same run, same machine");
    println!(
        "{:<44} {:>8} {:>8} {:>8} {:>8} {:>6}",
        "", "runs/s", "p50 ms", "p90 ms", "p99 ms", "failed"
    );
    measure(RUNS, 1, over_http).row("icmp-host serve, POST /v1/runs, 1 client");
    measure(RUNS, CLIENTS, over_http).row(&format!(
        "icmp-host serve, POST /v1/runs, {CLIENTS} clients"
    ));
    measure(CLI_RUNS, 1, by_process).row("icmp-host run (a process per run), 1 at a time");
    measure(CLI_RUNS, CLIENTS, by_process).row(&format!(
        "icmp-host run (a process per run), {CLIENTS} at a time"
    ));
    let (after, peak) = rss(service.id());
    println!(
        "icmp-host serve RSS: {idle:.1} MiB idle after warm-up, {after:.1} MiB after {} runs, peak {peak:.1} MiB",
        2 * RUNS + 20
    );
    let _ = nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(service.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    );
    let _ = service.wait();
}
