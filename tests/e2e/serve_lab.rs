//! `icmp-host serve` in the lab, scraped by a real Prometheus (Debian's
//! `prometheus`): both run in the lab's client namespace and listen on its
//! loopback; Prometheus scrapes `/probe` with a blackbox_exporter-style
//! configuration (plus the bearer token), `/metrics`, and `/probe` again
//! through `/v1/targets` service discovery. The test reads the answers from
//! Prometheus's HTTP API: `probe_success` 1 for the live target, 0 for the
//! blackholed one.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use super::http_client::{connect, read_response};
use super::lab::{BLACKHOLE4, Lab, TARGET4};
use super::netns::{Netns, PREFIX};
use super::serve_util::{Server, have, temp_path, token_hash};
use super::util::require_root;

const TOKEN: &str = "lab-team-token";
const OTHER: &str = "restricted-team-token";
const SERVICE: &str = "127.0.0.1:9730";
const PROMETHEUS: &str = "127.0.0.1:9090";

/// Whether `program` is installed; without it the test is skipped loudly,
/// or fails under `CI=true` (`.ci/run` installs it).
fn require_program(test: &str, program: &str, package: &str) -> bool {
    if have(program) {
        return true;
    }
    if std::env::var("CI").as_deref() == Ok("true") {
        panic!(
            "{test} needs {program} (apt-get install {package}), and CI=true forbids skipping it"
        );
    }
    eprintln!("SKIPPED {test}: needs {program} (apt-get install {package})");
    false
}

/// A Prometheus in a lab namespace, killed (by PID) and its data removed on drop.
struct Prometheus {
    child: Child,
    dir: std::path::PathBuf,
    ns: String,
}

impl Prometheus {
    fn start(ns: &Netns, config: &str) -> Prometheus {
        assert!(ns.name.starts_with(PREFIX));
        let dir = temp_path("prometheus");
        std::fs::create_dir_all(dir.join("data")).unwrap();
        std::fs::write(dir.join("prometheus.yml"), config).unwrap();
        std::fs::write(dir.join("token"), TOKEN).unwrap();
        let child = Command::new("ip")
            .args(["netns", "exec", &ns.name, "prometheus"])
            .arg(format!(
                "--config.file={}",
                dir.join("prometheus.yml").display()
            ))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.join("data").display()
            ))
            .arg(format!("--web.listen-address={PROMETHEUS}"))
            .arg("--log.level=warn")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("starting prometheus");
        Prometheus {
            child,
            dir,
            ns: ns.name.clone(),
        }
    }

    /// An instant query through the HTTP API: the result vector.
    fn query(&self, promql: &str) -> Vec<Value> {
        let Ok(mut stream) = connect(PROMETHEUS.parse().unwrap(), Some(&self.ns)) else {
            return Vec::new(); // not listening yet
        };
        let path = format!("/api/v1/query?query={}", percent_encode(promql));
        let request =
            format!("GET {path} HTTP/1.1\r\nHost: {PROMETHEUS}\r\nConnection: close\r\n\r\n");
        if std::io::Write::write_all(&mut stream, request.as_bytes()).is_err() {
            return Vec::new();
        }
        let r = read_response(stream);
        if r.status != 200 {
            return Vec::new();
        }
        r.json()["data"]["result"]
            .as_array()
            .cloned()
            .unwrap_or_default()
    }

    /// Waits until `promql` has a series for each of `instances` (label
    /// `instance`); their values.
    fn values_by_instance(&self, promql: &str, instances: &[&str]) -> Vec<f64> {
        let start = Instant::now();
        loop {
            let result = self.query(promql);
            let values: Vec<Option<f64>> = instances
                .iter()
                .map(|i| {
                    result
                        .iter()
                        .find(|s| s["metric"]["instance"] == *i)
                        .and_then(|s| s["value"][1].as_str()?.parse().ok())
                })
                .collect();
            if values.iter().all(Option::is_some) {
                return values.into_iter().flatten().collect();
            }
            assert!(
                start.elapsed() < Duration::from_secs(90),
                "Prometheus has no {promql} for {instances:?}: {result:?}"
            );
            std::thread::sleep(Duration::from_millis(500));
        }
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn percent_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn service_config() -> String {
    format!(
        r#"listen = "{SERVICE}"

[[tenant]]
name = "lab"
token_sha256 = "{}"
plugins = ["ping", "traceroute"]
max_concurrent = 8
[tenant.policy]
allow = ["198.18.0.0/15"]

[[tenant]]
name = "restricted"
token_sha256 = "{}"
plugins = ["ping"]
[tenant.policy]
allow = ["198.18.1.0/24"]

[[module]]
name = "icmp"
tenant = "lab"
plugin = "ping"
args = ["-c", "2", "-i", "0.1", "-W", "0.5"]

[[module]]
name = "trace"
tenant = "lab"
plugin = "traceroute"
args = ["-q", "1", "-m", "6", "-w", "0.5"]

[[module]]
name = "icmp-restricted"
tenant = "restricted"
plugin = "ping"
args = ["-c", "1", "-W", "0.5"]

[[schedule]]
module = "icmp"
targets = ["{TARGET4}", "{BLACKHOLE4}"]
every = "1s"
"#,
        token_hash(TOKEN),
        token_hash(OTHER)
    )
}

fn prometheus_config(token_file: &str) -> String {
    format!(
        r#"global:
  scrape_interval: 2s
  scrape_timeout: 2s
scrape_configs:
  # blackbox_exporter's README, with the exporter's address changed and a token.
  - job_name: blackbox
    metrics_path: /probe
    params:
      module: [icmp]
    authorization:
      credentials_file: {token_file}
    static_configs:
      - targets: ["{TARGET4}", "{BLACKHOLE4}"]
    relabel_configs:
      - source_labels: [__address__]
        target_label: __param_target
      - source_labels: [__param_target]
        target_label: instance
      - target_label: __address__
        replacement: {SERVICE}
  - job_name: icmp-host
    static_configs:
      - targets: ["{SERVICE}"]
  # The agent's schedules, discovered over HTTP SD and probed through it.
  - job_name: discovered
    metrics_path: /probe
    authorization:
      credentials_file: {token_file}
    http_sd_configs:
      - url: http://{SERVICE}/v1/targets
        refresh_interval: 5s
        # Prometheus 2.42 sends SD credentials without a scheme unless told.
        authorization:
          type: Bearer
          credentials_file: {token_file}
    relabel_configs:
      - source_labels: [__address__]
        target_label: __param_target
      - source_labels: [__param_target]
        target_label: instance
      - source_labels: [__meta_icmp_host_agent]
        target_label: __address__
"#
    )
}

#[test]
fn serve_is_scraped_by_a_real_prometheus_in_the_lab() {
    let test = "serve_is_scraped_by_a_real_prometheus_in_the_lab";
    if !require_root(test) || !require_program(test, "prometheus", "prometheus") {
        return;
    }
    let lab = Lab::new();
    let mut server = Server::start_in(Some(&lab.client.name), &service_config());

    // Before Prometheus: the tenants' policies over plain HTTP in the lab.
    let probe = |module: &str, target: &str, token: &str| {
        let path = format!("/probe?module={module}&target={target}");
        server.get(&path, Some(token)).expect(200).text()
    };
    let success = |text: &str| {
        text.lines()
            .find(|l| l.starts_with("probe_success "))
            .unwrap()
            .to_owned()
    };
    assert_eq!(success(&probe("icmp", TARGET4, TOKEN)), "probe_success 1.0");
    assert_eq!(
        success(&probe("icmp", BLACKHOLE4, TOKEN)),
        "probe_success 0.0"
    );
    // The restricted tenant may not reach the target network: refused, 0.
    let refused = probe("icmp-restricted", TARGET4, OTHER);
    assert_eq!(success(&refused), "probe_success 0.0");
    assert!(!refused.contains("probe_icmp_packets_sent 1"), "{refused}");
    // A traceroute module: one series per hop, the target last.
    let trace = probe("trace", TARGET4, TOKEN);
    assert_eq!(success(&trace), "probe_success 1.0");
    for (distance, address) in [
        (1, "198.18.1.1"),
        (2, "198.18.2.2"),
        (3, "198.18.3.2"),
        (4, TARGET4),
    ] {
        let series = format!(
            "probe_traceroute_hop_rtt_seconds{{distance=\"{distance}\",address=\"{address}\"}}"
        );
        assert!(trace.contains(&series), "{series} not in\n{trace}");
    }
    // The SD document points back at this agent.
    let sd = server.get("/v1/targets", Some(TOKEN)).expect(200).json();
    assert_eq!(sd[0]["targets"], serde_json::json!([TARGET4, BLACKHOLE4]));
    assert_eq!(sd[0]["labels"]["__meta_icmp_host_agent"], SERVICE);
    assert_eq!(
        server.get("/v1/targets", Some(OTHER)).expect(200).json(),
        serde_json::json!([])
    );

    let token_file = temp_path("token");
    std::fs::write(&token_file, TOKEN).unwrap();
    let prometheus = Prometheus::start(
        &lab.client,
        &prometheus_config(&token_file.display().to_string()),
    );
    let instances = [TARGET4, BLACKHOLE4];
    let blackbox = prometheus.values_by_instance("probe_success{job=\"blackbox\"}", &instances);
    assert_eq!(blackbox, [1.0, 0.0], "probe_success by Prometheus");
    let discovered = prometheus.values_by_instance("probe_success{job=\"discovered\"}", &instances);
    assert_eq!(discovered, [1.0, 0.0], "probe_success through HTTP SD");
    let up = prometheus.values_by_instance("up{job=\"icmp-host\"}", &[SERVICE]);
    assert_eq!(up, [1.0]);
    // The schedules, smokeping_prober's way: replies from the live target only.
    let replies = |target: &str| {
        let q = format!("icmp_host_schedule_replies_total{{module=\"icmp\",target=\"{target}\"}}");
        prometheus.values_by_instance(&q, &[SERVICE])[0]
    };
    assert!(replies(TARGET4) >= 2.0);
    assert_eq!(replies(BLACKHOLE4), 0.0);
    let rtt =
        "histogram_quantile(0.5, icmp_host_schedule_rtt_seconds_bucket{target=\"198.18.4.2\"})";
    let median = prometheus.values_by_instance(rtt, &[SERVICE])[0];
    assert!(median > 0.0 && median < 0.1, "median RTT {median}");
    let runs = prometheus.values_by_instance(
        "icmp_host_runs_total{tenant=\"lab\",outcome=\"reached\"}",
        &[SERVICE],
    );
    assert!(runs[0] >= 2.0);

    drop(prometheus);
    let _ = std::fs::remove_file(&token_file);
    server.signal(nix::sys::signal::Signal::SIGTERM);
    assert_eq!(
        server.wait(Duration::from_secs(10)).0,
        0,
        "{}",
        server.log()
    );
}
