/*!
`/metrics`: the service itself, in the Prometheus text format
(prometheus-client). Per tenant: runs by outcome, runs going, runs refused,
CPU seconds, requests sent, replies received, policy denials, queue drops,
quota refusals,
uploads; for the host: the kernel's drops; for each schedule's module and
target, smokeping_prober's shape — requests, replies, and an RTT histogram
with its buckets.
*/

use std::sync::atomic::AtomicU64;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{
    DescriptorEncoder, EncodeLabelSet, EncodeMetric, prometheus_text,
};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::{ConstCounter, Counter};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::{ConstGauge, Gauge};
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use super::runner::Traffic;
use crate::icmp::{Engine, Family as IpFamily};

/// Labels of per-tenant series.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TenantLabel {
    /// The tenant.
    pub tenant: String,
}

/// Labels of runs by outcome.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OutcomeLabels {
    /// The tenant.
    pub tenant: String,
    /// `reached`, `not-reached`, `partial`, `text`, `error`.
    pub outcome: String,
}

/// Labels of refusals and upload results.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReasonLabels {
    /// The tenant.
    pub tenant: String,
    /// What happened.
    pub reason: String,
}

/// Labels of schedule series.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ProbeLabels {
    /// The module.
    pub module: String,
    /// The target as configured.
    pub target: String,
}

/// smokeping_prober's default buckets: 50 µs doubling to 26.2 s.
pub fn rtt_buckets() -> impl Iterator<Item = f64> {
    exponential_buckets(0.000_05, 2.0, 20)
}

fn rtt_histogram() -> Histogram {
    Histogram::new(rtt_buckets())
}

type FloatCounter = Counter<f64, AtomicU64>;

/// Every series of the service.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    /// Runs finished, by tenant and outcome.
    pub runs: Family<OutcomeLabels, Counter>,
    /// Runs going.
    pub active: Family<TenantLabel, Gauge>,
    /// Runs refused (`concurrency`: 429).
    pub refused: Family<ReasonLabels, Counter>,
    /// CPU seconds used by plugins and by compiling uploads.
    pub cpu: Family<TenantLabel, FloatCounter>,
    /// Operations refused by the tenant's policy.
    pub denials: Family<TenantLabel, Counter>,
    /// Uploads by result (`stored`, `known`, `invalid`, `quota`, `too-large`).
    pub uploads: Family<ReasonLabels, Counter>,
    /// Schedule requests sent.
    pub schedule_requests: Family<ProbeLabels, Counter>,
    /// Schedule replies received.
    pub schedule_replies: Family<ProbeLabels, Counter>,
    /// Schedule runs that failed (exit 2) or were skipped (tenant busy).
    pub schedule_errors: Family<ProbeLabels, Counter>,
    /// Schedule RTTs.
    pub schedule_rtt: Family<ProbeLabels, Histogram, fn() -> Histogram>,
    /// Whether the last configuration reload succeeded.
    pub reload_ok: Gauge,
    /// When the configuration was last loaded successfully.
    pub reload_time: Gauge<f64, AtomicU64>,
}

impl Metrics {
    /// The series, registered; `engine` and `live` are read at each scrape.
    pub fn new(engine: Engine, live: Box<dyn Fn() -> Snapshot + Send + Sync>) -> Metrics {
        let mut registry = Registry::with_prefix("icmp_host");
        let m = Metrics {
            runs: Family::default(),
            active: Family::default(),
            refused: Family::default(),
            cpu: Family::default(),
            denials: Family::default(),
            uploads: Family::default(),
            schedule_requests: Family::default(),
            schedule_replies: Family::default(),
            schedule_errors: Family::default(),
            schedule_rtt: Family::new_with_constructor(rtt_histogram),
            reload_ok: Gauge::default(),
            reload_time: Gauge::default(),
            registry: Registry::default(),
        };
        let r = &mut registry;
        r.register(
            "runs",
            "Runs finished, by tenant and outcome",
            m.runs.clone(),
        );
        r.register("runs_active", "Runs going now", m.active.clone());
        r.register(
            "runs_refused",
            "Runs refused (429: the tenant's max_concurrent)",
            m.refused.clone(),
        );
        r.register(
            "cpu_seconds",
            "CPU seconds used by the tenant's plugins and upload compiles",
            m.cpu.clone(),
        );
        r.register(
            "policy_denials",
            "Requests, opens, broadcast grants and lookups the tenant's policy refused",
            m.denials.clone(),
        );
        r.register("uploads", "Plugin uploads, by result", m.uploads.clone());
        r.register(
            "schedule_requests",
            "Requests sent by schedules",
            m.schedule_requests.clone(),
        );
        r.register(
            "schedule_replies",
            "Replies received by schedules",
            m.schedule_replies.clone(),
        );
        r.register(
            "schedule_errors",
            "Schedule runs that failed or could not start",
            m.schedule_errors.clone(),
        );
        r.register(
            "schedule_rtt_seconds",
            "Round-trip times of schedule replies",
            m.schedule_rtt.clone(),
        );
        r.register(
            "config_last_reload_successful",
            "Whether the last configuration reload succeeded",
            m.reload_ok.clone(),
        );
        r.register(
            "config_last_reload_success_timestamp_seconds",
            "When the configuration was last loaded",
            m.reload_time.clone(),
        );
        r.register(
            "build",
            "The icmp-host version serving",
            prometheus_client::metrics::info::Info::new(vec![(
                "version",
                env!("CARGO_PKG_VERSION"),
            )]),
        );
        r.register_collector(Box::new(Live { engine, live }));
        Metrics { registry, ..m }
    }

    /// Everything, as Prometheus text.
    pub fn render(&self) -> String {
        let mut out = String::new();
        // Writing to a String cannot fail.
        let _ = prometheus_text::encode(&mut out, &self.registry);
        out
    }

    /// Forgets the series of schedule probes in `old` but not in `new`.
    pub fn forget_schedules(&self, old: &[ProbeLabels], new: &[ProbeLabels]) {
        for labels in old.iter().filter(|l| !new.contains(l)) {
            self.schedule_requests.remove(labels);
            self.schedule_replies.remove(labels);
            self.schedule_errors.remove(labels);
            self.schedule_rtt.remove(labels);
        }
    }
}

/// One of [`Traffic`]'s counts.
type TrafficField = fn(&Traffic) -> u64;

/// What the service reads out of its parts at each scrape.
#[derive(Debug, Default)]
pub struct Snapshot {
    /// Per tenant: uploads kept, and their bytes.
    pub uploads: Vec<(String, usize, usize)>,
    /// Per tenant: its traffic through the engine.
    pub traffic: Vec<(String, Traffic)>,
}

/// Values read at scrape time.
struct Live {
    engine: Engine,
    live: Box<dyn Fn() -> Snapshot + Send + Sync>,
}

impl std::fmt::Debug for Live {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Live")
    }
}

impl Collector for Live {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let mut drops = encoder.encode_descriptor(
            "kernel_drops",
            "Replies the kernel dropped because a raw socket's buffer was full (SO_RXQ_OVFL).",
            None,
            MetricType::Counter,
        )?;
        for (family, name) in [(IpFamily::V4, "ipv4"), (IpFamily::V6, "ipv6")] {
            if let Some(stats) = self.engine.raw_stats(family) {
                let value = stats
                    .kernel_drops
                    .load(std::sync::atomic::Ordering::Relaxed);
                ConstCounter::new(value).encode(drops.encode_family(&[("family", name)])?)?;
            }
        }
        let now = (self.live)();
        let traffic: [(&str, &str, TrafficField); 4] = [
            (
                "packets_sent",
                "ICMP requests the tenant's runs handed to the kernel.",
                |t| t.sent,
            ),
            (
                "replies_received",
                "Replies delivered to the tenant's sockets.",
                |t| t.received,
            ),
            (
                "queue_drops",
                "Replies dropped because the tenant's queues were full.",
                |t| t.queue_drops,
            ),
            (
                "quota_refusals",
                "Requests refused because one of the tenant's engine quotas was reached.",
                |t| t.quota_refusals,
            ),
        ];
        for (name, help, value) in traffic {
            per_tenant(
                &mut encoder,
                name,
                help,
                MetricType::Counter,
                now.traffic.iter().map(|(n, t)| (n, value(t))),
            )?;
        }
        per_tenant(
            &mut encoder,
            "plugins_uploaded",
            "Uploads kept, per tenant.",
            MetricType::Gauge,
            now.uploads.iter().map(|(t, n, _)| (t, *n as u64)),
        )?;
        per_tenant(
            &mut encoder,
            "plugins_uploaded_bytes",
            "Bytes of uploads kept, per tenant.",
            MetricType::Gauge,
            now.uploads.iter().map(|(t, _, b)| (t, *b as u64)),
        )?;
        Ok(())
    }
}

/// A counter or gauge with one series per tenant.
fn per_tenant<'a>(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    kind: MetricType,
    values: impl Iterator<Item = (&'a String, u64)>,
) -> Result<(), std::fmt::Error> {
    let mut metric = encoder.encode_descriptor(name, help, None, kind)?;
    for (tenant, value) in values {
        let labels = [("tenant", tenant.as_str())];
        match kind {
            MetricType::Counter => {
                ConstCounter::new(value).encode(metric.encode_family(&labels)?)?
            }
            _ => ConstGauge::new(i64::try_from(value).unwrap_or(i64::MAX))
                .encode(metric.encode_family(&labels)?)?,
        }
    }
    Ok(())
}
