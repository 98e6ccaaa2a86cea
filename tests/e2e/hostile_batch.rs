//! The harness of the hostile catalogue ([`super::hostile`]): one `batch`
//! with a hostile tenant next to a well-behaved one, the host's peak RSS
//! (`VmHWM`) and open descriptors sampled from `/proc` while it runs, and
//! the checks every hostile test makes.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::netns::Netns;
use super::util::{finish, icmp_host, plugin, u};

/// A hostile tenant's component: a crate under `plugins/tests/<name>/`
/// (built by `host/build.rs`), or `plugins/tests/<name>.wat`, assembled
/// here.
pub fn component(name: &str) -> PathBuf {
    let wat = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../plugins/tests")
        .join(format!("{name}.wat"));
    if !wat.exists() {
        return plugin(&name.replace('-', "_"));
    }
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("hostile");
    std::fs::create_dir_all(&dir).unwrap();
    let out = dir.join(format!("{name}.wasm"));
    let bytes = wat::parse_file(&wat).unwrap_or_else(|e| panic!("{}: {e}", wat.display()));
    // Written once per test process under a unique name, then renamed:
    // tests running at once never see half a file.
    let tmp = dir.join(format!("{name}.{}.tmp", std::process::id()));
    std::fs::write(&tmp, bytes).unwrap();
    std::fs::rename(&tmp, &out).unwrap();
    out
}

/// Replies the neighbour waits for in most tests.
pub const NEIGHBOUR_COUNT: u64 = 20;

/// How much worse than alone the neighbour's slowest loopback RTT may be
/// next to a hostile tenant. Loopback answers in tens of microseconds and
/// the kernel stamps replies; the failures this guards against were
/// 200–500 ms.
pub const RTT_SLACK_MS: f64 = 25.0;

/// The well-behaved tenant: `count` pings of the loopback, 50 ms apart,
/// under a policy allowing only the loopback.
pub fn neighbour(count: u64) -> Value {
    json!({
        "name": "neighbour",
        "plugin": "ping",
        "args": ["127.0.0.1", "-c", count.to_string(), "-i", "0.05", "--id", "7"],
        "policy": {"allow": ["127.0.0.0/8"]},
    })
}

/// A finished batch.
#[derive(Debug)]
pub struct Batch {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
    /// The report: stdout parsed as one JSON document (checked by [`batch`]).
    pub report: Vec<Value>,
    /// Peak resident memory of the host, MiB (`VmHWM`).
    pub peak_rss_mib: u64,
    /// Most descriptors the host held open at once.
    pub peak_fds: usize,
    pub elapsed: Duration,
}

impl Batch {
    /// The entry of the run named `name`.
    pub fn entry(&self, name: &str) -> &Value {
        self.report
            .iter()
            .find(|e| e["name"] == name)
            .unwrap_or_else(|| panic!("no run {name:?} in the report:\n{}", self.stdout))
    }

    /// Peak RSS under `mib`.
    pub fn assert_peak_rss_below(&self, mib: u64) -> &Batch {
        assert!(
            self.peak_rss_mib < mib,
            "the host's peak RSS was {} MiB, the bound is {mib} MiB\nstderr:\n{}",
            self.peak_rss_mib,
            tail(&self.stderr)
        );
        self
    }

    /// The run `name` ended with exit 2 and an error containing one of
    /// `words` (the limit it hit).
    pub fn assert_stopped(&self, name: &str, words: &[&str]) -> &Batch {
        let e = self.entry(name);
        assert_eq!(e["exit"], 2, "{name}: {e}");
        assert_eq!(e["outcome"], "error", "{name}: {e}");
        let error = e["error"].as_str().unwrap_or_default();
        assert!(
            words.iter().any(|w| error.contains(w)),
            "{name}: the error should name the limit ({words:?}): {error}"
        );
        self
    }

    /// The neighbour got every reply, once, about as fast as alone.
    pub fn assert_neighbour_exact(&self, count: u64) -> &Batch {
        let e = self.entry("neighbour");
        let r = &e["result"];
        assert_eq!(e["outcome"], "reached", "neighbour: {e}");
        assert_eq!(u(r, "packets_sent"), count, "neighbour: {e}");
        assert_eq!(u(r, "packets_received"), count, "neighbour: {e}");
        assert_eq!(u(r, "duplicates"), 0, "neighbour: {e}");
        let p99 = p99_ms(r);
        let base = baseline_p99_ms();
        assert!(
            p99 <= base + RTT_SLACK_MS,
            "neighbour's RTT p99 {p99:.3} ms vs {base:.3} ms alone (slack {RTT_SLACK_MS} ms)"
        );
        self
    }
}

fn tail(s: &str) -> &str {
    let cut = s.len().saturating_sub(4000);
    let cut = (cut..s.len())
        .find(|&i| s.is_char_boundary(i))
        .unwrap_or(s.len());
    &s[cut..]
}

/// The 99th percentile (nearest rank) of a ping result's `rtts`, ms.
fn p99_ms(result: &Value) -> f64 {
    let mut rtts: Vec<f64> = result["rtts"]
        .as_array()
        .unwrap_or_else(|| panic!("no rtts in {result}"))
        .iter()
        .map(|v| v.as_f64().unwrap())
        .collect();
    assert!(!rtts.is_empty(), "{result}");
    rtts.sort_by(f64::total_cmp);
    let rank = (rtts.len() * 99).div_ceil(100);
    rtts[rank - 1]
}

/// The neighbour's RTT p99 when it runs alone (once per test process).
fn baseline_p99_ms() -> f64 {
    static BASE: OnceLock<f64> = OnceLock::new();
    *BASE.get_or_init(|| {
        let b = batch(&[neighbour(NEIGHBOUR_COUNT)], None, &[]);
        assert_eq!(b.code, 0, "the neighbour alone: {}", b.stderr);
        p99_ms(&b.entry("neighbour")["result"])
    })
}

/// Runs `runs` in one `icmp-host batch` (inside `ns` when given), with
/// extra host options `host_args`, sampling the host from `/proc` until it
/// exits. Stdout must be one JSON document.
pub fn batch(runs: &[Value], ns: Option<&Netns>, host_args: &[&str]) -> Batch {
    static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let manifest = std::env::temp_dir().join(format!(
        "icmp-host-hostile-{}-{}.json",
        std::process::id(),
        N.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    ));
    std::fs::File::create(&manifest)
        .and_then(|mut f| f.write_all(json!({ "runs": runs }).to_string().as_bytes()))
        .unwrap();
    let mut cmd = match ns {
        Some(ns) => ns.icmp_host(),
        None => icmp_host(),
    };
    cmd.arg("batch").args(host_args).arg(&manifest);
    let mut b = run_sampled(cmd, Duration::from_secs(120));
    let _ = std::fs::remove_file(&manifest);
    let report: Value = serde_json::from_str(&b.stdout).unwrap_or_else(|e| {
        panic!(
            "stdout is not one JSON document ({e}):\n{}\nstderr:\n{}",
            tail(&b.stdout),
            tail(&b.stderr)
        )
    });
    b.report = report
        .as_array()
        .unwrap_or_else(|| panic!("the report is not an array: {report}"))
        .clone();
    b
}

/// Writes `runs` as a manifest and runs `icmp-host batch` on it, without
/// expecting a report (a manifest the host refuses as a whole).
pub fn batch_refused(runs: &[Value]) -> Batch {
    let manifest =
        std::env::temp_dir().join(format!("icmp-host-refused-{}.json", std::process::id()));
    std::fs::write(&manifest, json!({ "runs": runs }).to_string()).unwrap();
    let mut cmd = icmp_host();
    cmd.arg("batch").arg(&manifest);
    let b = run_sampled(cmd, Duration::from_secs(120));
    let _ = std::fs::remove_file(&manifest);
    b
}

/// Runs a command to its end, sampling its `VmHWM` and descriptors.
pub fn run_sampled(mut cmd: Command, limit: Duration) -> Batch {
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let start = Instant::now();
    let child = cmd.spawn().expect("spawning icmp-host");
    let pid = child.id();
    let (done_tx, done_rx) = std::sync::mpsc::channel::<()>();
    let sampler = std::thread::spawn(move || {
        let (mut rss_kib, mut fds) = (0, 0);
        loop {
            // `ip netns exec` execs in place: the pid is the host's.
            if let Ok(status) = std::fs::read_to_string(format!("/proc/{pid}/status")) {
                let hwm = status
                    .lines()
                    .find_map(|l| l.strip_prefix("VmHWM:"))
                    .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok());
                rss_kib = rss_kib.max(hwm.unwrap_or(0));
            }
            if let Ok(dir) = std::fs::read_dir(format!("/proc/{pid}/fd")) {
                fds = fds.max(dir.count());
            }
            if done_rx.recv_timeout(Duration::from_millis(5)).is_ok() {
                return (rss_kib, fds);
            }
        }
    });
    let run = finish(child, limit);
    let elapsed = start.elapsed();
    let _ = done_tx.send(());
    let (rss_kib, peak_fds) = sampler.join().unwrap();
    // The measurements, for whoever reads the test log.
    eprintln!(
        "batch: exit {}, {elapsed:.1?}, peak RSS {} MiB, peak {peak_fds} descriptors",
        run.code,
        rss_kib / 1024
    );
    run.assert_no_panic();
    Batch {
        code: run.code,
        stdout: run.stdout,
        stderr: run.stderr,
        report: Vec::new(),
        peak_rss_mib: rss_kib / 1024,
        peak_fds,
        elapsed,
    }
}
