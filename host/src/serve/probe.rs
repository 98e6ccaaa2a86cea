/*!
`/probe`: one run of a module's plugin against a target, answered in the
Prometheus text format with blackbox_exporter's ICMP names where they fit
(`probe_success`, `probe_duration_seconds`, `probe_icmp_duration_seconds`
by phase, `probe_icmp_reply_hop_limit`, `probe_ip_protocol`, …), plus what
blackbox lacks: packets, loss, min/avg/max RTT and jitter, and for a
traceroute one series per hop.

The numbers come from the plugin's JSON result (result schema v1: a
`Host`, a list of `Host`s, or a list of `Hop`s) and from the times at which
the run's progress events arrived. Anything else a custom plugin returns
still yields the common series.
*/

use std::net::IpAddr;
use std::sync::atomic::AtomicU64;
use std::time::Duration;

use prometheus_client::encoding::prometheus_text;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use serde_json::Value;

/// When things happened during a run, read from its progress events.
#[derive(Debug, Clone, Copy, Default)]
pub struct Timings {
    /// From the run's start to the plugin's `start` event, which it emits
    /// once the target is resolved.
    pub resolved: Option<Duration>,
    /// The address the target resolved to.
    pub address: Option<IpAddr>,
    /// From the run's start to the first request that was answered being
    /// sent (its reply's arrival minus its RTT).
    pub first_send: Option<Duration>,
    /// RTT of the first answer.
    pub first_rtt: Option<Duration>,
    /// Hop limit (TTL) of the first echo reply.
    pub reply_hop_limit: Option<u8>,
}

/// A finished probe, ready to render.
#[derive(Debug)]
pub struct ProbeResult<'a> {
    /// The target as requested.
    pub target: &'a str,
    /// Whether the plugin reached the target.
    pub success: bool,
    /// Wall time of the whole probe.
    pub duration: Duration,
    /// The plugin's JSON result (`Null` when it failed).
    pub result: &'a Value,
    /// Event times.
    pub timings: Timings,
}

type Labels = Vec<(&'static str, String)>;
type FloatGauge = Gauge<f64, AtomicU64>;

fn gauge(registry: &mut Registry, name: &str, help: &str, value: f64) {
    let g = FloatGauge::default();
    g.set(value);
    registry.register(name, help, g);
}

fn family(registry: &mut Registry, name: &str, help: &str) -> Family<Labels, FloatGauge> {
    let f = Family::<Labels, FloatGauge>::default();
    registry.register(name, help, f.clone());
    f
}

fn set(f: &Family<Labels, FloatGauge>, labels: Labels, value: f64) {
    f.get_or_create(&labels).set(value);
}

/// Seconds from a result's milliseconds (to the nanosecond, so that
/// 0.042 ms reads 0.000042, not 0.000042000000000000007).
fn ms(v: &Value, key: &str) -> Option<f64> {
    v.get(key)?.as_f64().map(seconds_of_ms)
}

/// Milliseconds as seconds, rounded to the nanosecond.
pub fn seconds_of_ms(ms: f64) -> f64 {
    (ms * 1e6).round() / 1e9
}

fn num(v: &Value, key: &str) -> Option<f64> {
    v.get(key)?.as_f64()
}

/// The result's `Host` for `target`: the result itself, or the entry of a
/// list (multiping) whose target or address is `target`, else the first.
pub fn host_of<'v>(result: &'v Value, target: &str) -> Option<&'v Value> {
    let is_host = |v: &Value| v.get("rtts").is_some() && v.get("distance").is_none();
    match result {
        Value::Object(_) if is_host(result) => Some(result),
        Value::Array(list) if list.iter().all(is_host) => list
            .iter()
            .find(|h| h["target"] == target || h["address"] == target)
            .or_else(|| list.first()),
        _ => None,
    }
}

/// The result's hops, when it is a traceroute.
fn hops_of(result: &Value) -> Option<&Vec<Value>> {
    let list = result.as_array()?;
    (!list.is_empty() && list.iter().all(|h| h.get("distance").is_some())).then_some(list)
}

/// FNV-1a of the address's text, as blackbox's `probe_ip_addr_hash`.
fn fnv32a(text: &str) -> u32 {
    text.bytes().fold(0x811c_9dc5, |h, b| {
        (h ^ u32::from(b)).wrapping_mul(0x0100_0193)
    })
}

/// The probe as Prometheus text (format 0.0.4).
pub fn render(p: &ProbeResult<'_>) -> String {
    let mut r = Registry::default();
    let t = &p.timings;
    gauge(
        &mut r,
        "probe_success",
        "Displays whether or not the probe was a success",
        f64::from(u8::from(p.success)),
    );
    gauge(
        &mut r,
        "probe_duration_seconds",
        "Returns how long the probe took to complete in seconds",
        p.duration.as_secs_f64(),
    );
    let resolve = t.resolved.unwrap_or_default();
    gauge(
        &mut r,
        "probe_dns_lookup_time_seconds",
        "Returns the time taken for probe dns lookup in seconds",
        resolve.as_secs_f64(),
    );
    let phases = family(
        &mut r,
        "probe_icmp_duration_seconds",
        "Duration of icmp request by phase",
    );
    let setup = match (t.resolved, t.first_send) {
        (Some(resolved), Some(sent)) => sent.saturating_sub(resolved),
        _ => Duration::ZERO,
    };
    let host = host_of(p.result, p.target);
    // blackbox sends one request; with several, the mean RTT is the phase.
    let rtt = host
        .filter(|h| h["packets_received"].as_u64().unwrap_or(0) > 0)
        .and_then(|h| ms(h, "avg_rtt"))
        .or_else(|| t.first_rtt.map(|d| d.as_secs_f64()))
        .unwrap_or(0.0);
    set(
        &phases,
        vec![("phase", "resolve".into())],
        resolve.as_secs_f64(),
    );
    set(
        &phases,
        vec![("phase", "setup".into())],
        setup.as_secs_f64(),
    );
    set(&phases, vec![("phase", "rtt".into())], rtt);
    if let Some(hop_limit) = t.reply_hop_limit {
        gauge(
            &mut r,
            "probe_icmp_reply_hop_limit",
            "Replied packet hop limit (TTL for ipv4)",
            f64::from(hop_limit),
        );
    }
    let protocol = match t.address {
        Some(IpAddr::V4(_)) => 4.0,
        Some(IpAddr::V6(_)) => 6.0,
        None => 0.0,
    };
    gauge(
        &mut r,
        "probe_ip_protocol",
        "Specifies whether probe ip protocol is IP4 or IP6",
        protocol,
    );
    if let Some(address) = t.address {
        gauge(
            &mut r,
            "probe_ip_addr_hash",
            "Specifies the hash of IP address. It's useful to detect if the IP address changes",
            f64::from(fnv32a(&address.to_string())),
        );
    }
    if let Some(h) = host {
        host_series(&mut r, h);
    }
    if let Some(hops) = hops_of(p.result) {
        hop_series(&mut r, hops);
    }
    let mut out = String::new();
    // Writing to a String cannot fail.
    let _ = prometheus_text::encode(&mut out, &r);
    out
}

/// What blackbox lacks, from a `Host`.
fn host_series(r: &mut Registry, h: &Value) {
    let series: [(&str, &str, Option<f64>); 7] = [
        (
            "probe_icmp_packets_sent",
            "Echo requests sent",
            num(h, "packets_sent"),
        ),
        (
            "probe_icmp_packets_received",
            "Echo replies received",
            num(h, "packets_received"),
        ),
        (
            "probe_icmp_packet_loss_ratio",
            "Fraction of requests without a reply",
            num(h, "packet_loss"),
        ),
        (
            "probe_icmp_min_rtt_seconds",
            "Smallest round-trip time",
            ms(h, "min_rtt"),
        ),
        (
            "probe_icmp_avg_rtt_seconds",
            "Mean round-trip time",
            ms(h, "avg_rtt"),
        ),
        (
            "probe_icmp_max_rtt_seconds",
            "Largest round-trip time",
            ms(h, "max_rtt"),
        ),
        (
            "probe_icmp_jitter_seconds",
            "Mean difference between consecutive round-trip times",
            ms(h, "jitter"),
        ),
    ];
    for (name, help, value) in series {
        if let Some(v) = value {
            gauge(r, name, help, v);
        }
    }
}

/// One series per hop of a traceroute.
fn hop_series(r: &mut Registry, hops: &[Value]) {
    gauge(
        r,
        "probe_traceroute_hops",
        "Hops in the trace, silent ones included",
        hops.len() as f64,
    );
    let rtt = family(
        r,
        "probe_traceroute_hop_rtt_seconds",
        "Mean round-trip time to the hop's responder",
    );
    let loss = family(
        r,
        "probe_traceroute_hop_loss_ratio",
        "Fraction of the hop's probes without an answer",
    );
    for hop in hops {
        let labels = vec![
            ("distance", hop["distance"].to_string()),
            ("address", hop["address"].as_str().unwrap_or("").to_owned()),
        ];
        if hop["packets_received"].as_u64().unwrap_or(0) > 0
            && let Some(v) = ms(hop, "avg_rtt")
        {
            set(&rtt, labels.clone(), v);
        }
        if let Some(v) = num(hop, "packet_loss") {
            set(&loss, labels, v);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn line<'a>(text: &'a str, prefix: &str) -> &'a str {
        text.lines()
            .find(|l| l.starts_with(prefix))
            .unwrap_or_else(|| panic!("no {prefix} in\n{text}"))
    }

    #[test]
    fn a_ping_in_blackbox_names_and_more() {
        let result = json!({"address": "198.18.4.2", "min_rtt": 0.1, "avg_rtt": 0.2,
            "max_rtt": 0.3, "rtts": [0.1, 0.2, 0.3], "packets_sent": 4,
            "packets_received": 3, "packet_loss": 0.25, "jitter": 0.1, "is_alive": true});
        let text = render(&ProbeResult {
            target: "198.18.4.2",
            success: true,
            duration: Duration::from_millis(612),
            result: &result,
            timings: Timings {
                resolved: Some(Duration::from_micros(40)),
                address: Some("198.18.4.2".parse().unwrap()),
                first_send: Some(Duration::from_micros(140)),
                first_rtt: Some(Duration::from_micros(100)),
                reply_hop_limit: Some(61),
            },
        });
        assert_eq!(line(&text, "probe_success "), "probe_success 1.0");
        assert_eq!(
            line(&text, "probe_duration_seconds "),
            "probe_duration_seconds 0.612"
        );
        assert_eq!(line(&text, "probe_ip_protocol "), "probe_ip_protocol 4.0");
        assert_eq!(
            line(&text, "probe_icmp_reply_hop_limit "),
            "probe_icmp_reply_hop_limit 61.0"
        );
        assert_eq!(
            line(&text, "probe_icmp_duration_seconds{phase=\"rtt\"}"),
            "probe_icmp_duration_seconds{phase=\"rtt\"} 0.0002"
        );
        assert_eq!(
            line(&text, "probe_icmp_duration_seconds{phase=\"setup\"}"),
            "probe_icmp_duration_seconds{phase=\"setup\"} 0.0001"
        );
        assert_eq!(
            line(&text, "probe_icmp_packets_sent "),
            "probe_icmp_packets_sent 4.0"
        );
        assert_eq!(
            line(&text, "probe_icmp_packet_loss_ratio "),
            "probe_icmp_packet_loss_ratio 0.25"
        );
        assert_eq!(
            line(&text, "probe_icmp_max_rtt_seconds "),
            "probe_icmp_max_rtt_seconds 0.0003"
        );
        assert!(text.contains("# TYPE probe_success gauge"), "{text}");
    }

    #[test]
    fn a_failed_run_is_probe_success_0_with_zero_phases() {
        let text = render(&ProbeResult {
            target: "198.18.5.3",
            success: false,
            duration: Duration::from_secs(2),
            result: &Value::Null,
            timings: Timings::default(),
        });
        assert_eq!(line(&text, "probe_success "), "probe_success 0.0");
        assert_eq!(
            line(&text, "probe_icmp_duration_seconds{phase=\"rtt\"}"),
            "probe_icmp_duration_seconds{phase=\"rtt\"} 0.0"
        );
        assert!(!text.contains("probe_icmp_packets_sent"));
    }

    #[test]
    fn a_traceroute_has_one_series_per_hop() {
        let result = json!([
            {"distance": 1, "address": "198.18.1.1", "avg_rtt": 0.05, "packets_received": 2, "packet_loss": 0.0},
            {"distance": 2, "address": null, "avg_rtt": 0.0, "packets_received": 0, "packet_loss": 1.0},
            {"distance": 3, "address": "198.18.4.2", "avg_rtt": 0.2, "packets_received": 1, "packet_loss": 0.5},
        ]);
        let text = render(&ProbeResult {
            target: "198.18.4.2",
            success: true,
            duration: Duration::from_secs(1),
            result: &result,
            timings: Timings::default(),
        });
        assert_eq!(
            line(&text, "probe_traceroute_hops "),
            "probe_traceroute_hops 3.0"
        );
        assert!(
            text.contains(
                "probe_traceroute_hop_rtt_seconds{distance=\"1\",address=\"198.18.1.1\"} 0.00005"
            ),
            "{text}"
        );
        assert!(
            text.contains("probe_traceroute_hop_loss_ratio{distance=\"2\",address=\"\"} 1.0"),
            "{text}"
        );
        assert!(!text.contains("hop_rtt_seconds{distance=\"2\""), "{text}");
    }

    #[test]
    fn multiping_picks_the_requested_target() {
        let result = json!([
            {"target": "a", "address": "127.0.0.1", "rtts": [], "packets_sent": 1, "packets_received": 0},
            {"target": "b", "address": "127.0.0.2", "rtts": [1.0], "packets_sent": 1, "packets_received": 1},
        ]);
        assert_eq!(host_of(&result, "b").unwrap()["address"], "127.0.0.2");
        assert_eq!(host_of(&result, "127.0.0.1").unwrap()["target"], "a");
    }
}
