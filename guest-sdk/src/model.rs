//! Result records with icmplib's field names and rounding: [`Host`] (and,
//! for traceroute, `Hop`). Extra fields are additive: `target`, `error`,
//! `duplicates` and per-probe `probes` records.

use crate::Address;
use crate::codes;
use crate::icmp::{Reply, TimestampSource};
use crate::json::{Decimal, Object, Plain, ToJson, key};

/// Rounds like Python's `round(x, digits)` (`digits` ≤ 6): the exact binary
/// value of `x` times 10^digits, rounded half to even, as the nearest
/// double. Integer arithmetic, so no float formatting or parsing.
pub fn round(x: f64, digits: u32) -> f64 {
    if !x.is_finite() || x == 0.0 || digits > 6 {
        return x;
    }
    let bits = x.abs().to_bits();
    let exp = ((bits >> 52) & 0x7ff) as i32;
    let frac = bits & ((1 << 52) - 1);
    // x = mantissa × 2^power exactly.
    let (mantissa, power) = match exp {
        0 => (frac, -1074),
        _ => (frac | (1 << 52), exp - 1075),
    };
    if power >= 0 {
        return x; // already an integer, far beyond any rounding digit
    }
    let shift = (-power) as u32;
    let quotient = if digits <= 3 {
        // < 2^53 × 10^3 < 2^63: 64-bit arithmetic will do (wasm has no
        // 128-bit instructions, only slow helpers).
        let scaled = mantissa * 10u64.pow(digits);
        match shift {
            64.. => 0.0,
            _ => half_even(
                scaled >> shift,
                scaled & ((1 << shift) - 1),
                1 << (shift - 1),
            ) as f64,
        }
    } else {
        let scaled = u128::from(mantissa) * 10u128.pow(digits); // < 2^53 × 10^6 < 2^73
        match shift {
            127.. => 0.0,
            _ => half_even(
                scaled >> shift,
                scaled & ((1 << shift) - 1),
                1 << (shift - 1),
            ) as f64,
        }
    };
    (quotient / 10u32.pow(digits) as f64).copysign(x)
}

/// Rounds quotient `q` by its remainder: half to even.
fn half_even<T>(q: T, rem: T, half: T) -> T
where
    T: Copy + PartialOrd + std::ops::Add<Output = T> + std::ops::Rem<Output = T> + From<u8>,
{
    if rem > half || (rem == half && q % T::from(2) == T::from(1)) {
        q + T::from(1)
    } else {
        q
    }
}

/// Mean absolute difference of consecutive RTTs (icmplib's `jitter`);
/// 0 with fewer than two.
pub fn jitter(rtts: &[f64]) -> f64 {
    if rtts.len() < 2 {
        return 0.0;
    }
    let sum: f64 = rtts.windows(2).map(|w| (w[0] - w[1]).abs()).sum();
    sum / (rtts.len() - 1) as f64
}

/// Population standard deviation (iputils' `mdev`); 0 when empty.
pub fn mdev(rtts: &[f64]) -> f64 {
    if rtts.is_empty() {
        return 0.0;
    }
    let n = rtts.len() as f64;
    let mean = rtts.iter().sum::<f64>() / n;
    (rtts.iter().map(|r| (r - mean).powi(2)).sum::<f64>() / n).sqrt()
}

/// What became of one request.
#[derive(Debug, Clone, PartialEq)]
pub struct Probe {
    /// The request's sequence number.
    pub sequence: u16,
    /// `reply`, `error` (an ICMP error came back) or `timeout`, or
    /// `failed` (the request could not be sent).
    pub status: ProbeStatus,
    /// Who answered.
    pub source: Option<Address>,
    /// Round-trip time in ms.
    pub rtt: Option<f64>,
    /// TTL / hop limit of the answer.
    pub ttl: Option<u8>,
    /// ICMP type of the answer.
    pub icmp_type: Option<u8>,
    /// ICMP code of the answer.
    pub code: Option<u8>,
    /// Next-hop MTU of a Packet Too Big / Fragmentation Needed.
    pub mtu: Option<u32>,
    /// Which clock stamped the answer.
    pub timestamp_source: Option<TimestampSource>,
    /// Words for an error or a failure.
    pub message: Option<String>,
}

/// Outcome of one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProbeStatus {
    /// An Echo Reply came back.
    Reply,
    /// An ICMP error came back.
    Error,
    /// Nothing came back in time.
    Timeout,
    /// The request could not be sent.
    Failed,
}

impl ProbeStatus {
    /// The name in results: `reply`, `error`, `timeout`, `failed`.
    pub fn name(self) -> &'static str {
        match self {
            ProbeStatus::Reply => "reply",
            ProbeStatus::Error => "error",
            ProbeStatus::Timeout => "timeout",
            ProbeStatus::Failed => "failed",
        }
    }
}

/// RTTs in ms, to the nanosecond.
pub(crate) struct RttList<'a>(pub &'a [f64]);

impl ToJson for RttList<'_> {
    fn write_json(&self, out: &mut String) {
        out.push('[');
        for (i, &ms) in self.0.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            Decimal::new(ms, 6).write_json(out);
        }
        out.push(']');
    }
}

/// Schema v1 probe record: `sequence`, `status`, then what is known.
impl ToJson for Probe {
    fn write_json(&self, out: &mut String) {
        let mut o = Object::begin(out);
        o.known(key!("sequence"), &self.sequence)
            .known(key!("status"), &Plain(self.status.name()))
            .known_optional(key!("source"), &self.source)
            .known_optional(key!("rtt"), &self.rtt.map(|ms| Decimal::new(ms, 6)))
            .known_optional(key!("ttl"), &self.ttl)
            .known_optional(key!("type"), &self.icmp_type)
            .known_optional(key!("code"), &self.code)
            .known_optional(key!("mtu"), &self.mtu)
            .known_optional(key!("timestamp_source"), &self.timestamp_source)
            .known_optional(key!("message"), &self.message);
        o.end();
    }
}

/// Adds `probe` to `probes`, kept in sequence order (after probes of the
/// same sequence already there).
pub(crate) fn insert_in_order(probes: &mut Vec<Probe>, probe: Probe) {
    let at = probes.partition_point(|p| p.sequence <= probe.sequence);
    probes.insert(at, probe);
}

impl Probe {
    /// A probe answered by `reply` (an echo reply or an ICMP error).
    pub fn answered(reply: &Reply) -> Probe {
        let message = codes::describe(reply.family, reply.icmp_type, reply.code);
        Probe {
            sequence: reply.sequence,
            status: if message.is_none() {
                ProbeStatus::Reply
            } else {
                ProbeStatus::Error
            },
            source: Some(reply.source),
            rtt: Some(reply.rtt_ms()),
            ttl: reply.ttl,
            icmp_type: Some(reply.icmp_type),
            code: Some(reply.code),
            mtu: reply.mtu,
            timestamp_source: Some(reply.timestamp_source),
            message,
        }
    }

    /// A probe that got no answer in time.
    pub fn timed_out(sequence: u16) -> Probe {
        Probe::unanswered(sequence, ProbeStatus::Timeout, None)
    }

    /// A probe that could not be sent.
    pub fn failed(sequence: u16, message: String) -> Probe {
        Probe::unanswered(sequence, ProbeStatus::Failed, Some(message))
    }

    fn unanswered(sequence: u16, status: ProbeStatus, message: Option<String>) -> Probe {
        Probe {
            sequence,
            status,
            source: None,
            rtt: None,
            ttl: None,
            icmp_type: None,
            code: None,
            mtu: None,
            timestamp_source: None,
            message,
        }
    }
}

/// A pinged host (icmplib's `Host`), written as JSON with icmplib's field
/// names and rounding ([`ToJson`]).
///
/// ```
/// use icmp_host_sdk::Host;
/// use icmp_host_sdk::json::ToJson;
/// let mut h = Host::new("box", "192.0.2.1");
/// h.packets_sent = 2;
/// h.rtts = vec![0.0414, 0.0502];
/// assert_eq!((h.avg_rtt(), h.packet_loss(), h.is_alive()), (0.046, 0.0, true));
/// assert!(h.to_json().contains(r#""rtts":[0.0414,0.0502]"#));
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct Host {
    /// The target as the user wrote it.
    pub target: String,
    /// The address pinged; the target itself when it did not resolve.
    pub address: String,
    /// Requests sent.
    pub packets_sent: u32,
    /// RTTs of the echo replies, in ms, in arrival order.
    pub rtts: Vec<f64>,
    /// Duplicate replies seen (not in `rtts`).
    pub duplicates: u32,
    /// Every request's fate, in send order.
    pub probes: Vec<Probe>,
    /// Why the host could not be pinged at all (e.g. the name did not resolve).
    pub error: Option<String>,
}

impl Host {
    /// A host with nothing sent yet.
    pub fn new(target: impl Into<String>, address: impl Into<String>) -> Host {
        Host {
            target: target.into(),
            address: address.into(),
            packets_sent: 0,
            rtts: Vec::new(),
            duplicates: 0,
            probes: Vec::new(),
            error: None,
        }
    }

    /// Echo replies received (`len(rtts)`).
    pub fn packets_received(&self) -> u32 {
        self.rtts.len() as u32
    }

    /// icmplib's statistics of this host.
    pub fn stats(&self) -> Stats {
        Stats::of(&self.rtts, self.packets_sent)
    }

    /// Smallest RTT in ms, rounded to 3 places; 0 without replies.
    pub fn min_rtt(&self) -> f64 {
        self.stats().min_rtt
    }

    /// Mean RTT in ms, rounded to 3 places; 0 without replies.
    pub fn avg_rtt(&self) -> f64 {
        self.stats().avg_rtt
    }

    /// Largest RTT in ms, rounded to 3 places; 0 without replies.
    pub fn max_rtt(&self) -> f64 {
        self.stats().max_rtt
    }

    /// Fraction of requests unanswered, rounded to 2 places; 1.0 when
    /// nothing was sent.
    pub fn packet_loss(&self) -> f64 {
        self.stats().packet_loss
    }

    /// icmplib's jitter in ms, rounded to 3 places.
    pub fn jitter(&self) -> f64 {
        self.stats().jitter
    }

    /// Whether any echo reply came back.
    pub fn is_alive(&self) -> bool {
        !self.rtts.is_empty()
    }
}

/// icmplib's statistics of a list of RTTs (ms) out of `sent` requests.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Stats {
    /// Smallest RTT, rounded to 3 places; 0 without replies.
    pub min_rtt: f64,
    /// Mean RTT, rounded to 3 places; 0 without replies.
    pub avg_rtt: f64,
    /// Largest RTT, rounded to 3 places; 0 without replies.
    pub max_rtt: f64,
    /// Replies.
    pub packets_received: u32,
    /// Fraction unanswered, rounded to 2 places; 1.0 when nothing was sent.
    pub packet_loss: f64,
    /// icmplib's jitter, rounded to 3 places.
    pub jitter: f64,
}

impl Stats {
    /// Computes the statistics.
    pub fn of(rtts: &[f64], sent: u32) -> Stats {
        let received = rtts.len() as u32;
        Stats {
            min_rtt: round(rtts.iter().copied().reduce(f64::min).unwrap_or(0.0), 3),
            avg_rtt: if rtts.is_empty() {
                0.0
            } else {
                round(rtts.iter().sum::<f64>() / rtts.len() as f64, 3)
            },
            max_rtt: round(rtts.iter().copied().reduce(f64::max).unwrap_or(0.0), 3),
            packets_received: received,
            packet_loss: if sent == 0 {
                1.0
            } else {
                round(1.0 - f64::from(received.min(sent)) / f64::from(sent), 2)
            },
            jitter: round(jitter(rtts), 3),
        }
    }

    /// Writes icmplib's fields, in icmplib's order, around `rtts`.
    pub(crate) fn write_fields(
        &self,
        o: &mut Object<'_>,
        address: Option<&str>,
        rtts: &[f64],
        sent: u32,
    ) {
        o.known(key!("address"), &address)
            .known(key!("min_rtt"), &Decimal::new(self.min_rtt, 3))
            .known(key!("avg_rtt"), &Decimal::new(self.avg_rtt, 3))
            .known(key!("max_rtt"), &Decimal::new(self.max_rtt, 3))
            .known(key!("rtts"), &RttList(rtts))
            .known(key!("packets_sent"), &sent)
            .known(key!("packets_received"), &self.packets_received)
            .known(key!("packet_loss"), &Decimal::new(self.packet_loss, 2))
            .known(key!("jitter"), &Decimal::new(self.jitter, 3))
            .known(key!("is_alive"), &(self.packets_received > 0));
    }
}

/// JSON with icmplib's field names, then the additions (schema v1).
impl ToJson for Host {
    fn write_json(&self, out: &mut String) {
        let mut o = Object::begin(out);
        Stats::of(&self.rtts, self.packets_sent).write_fields(
            &mut o,
            Some(&self.address),
            &self.rtts,
            self.packets_sent,
        );
        o.known(key!("target"), &self.target)
            .known(key!("duplicates"), &self.duplicates)
            .known(key!("probes"), &self.probes)
            .known_optional(key!("error"), &self.error);
        o.end();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rounds_like_python() {
        // Python: round(0.125, 2) == 0.12, round(0.375, 2) == 0.38,
        // round(2.675, 2) == 2.67 (binary just below), round(1.0005, 3) == 1.0
        assert_eq!(round(0.125, 2), 0.12);
        assert_eq!(round(0.375, 2), 0.38);
        assert_eq!(round(2.675, 2), 2.67);
        assert_eq!(round(1.0005, 3), 1.0);
        assert_eq!(round(0.0415, 3), 0.042); // 0.04150000000000000244 in binary
        assert_eq!(round(1.0 - 2.0 / 3.0, 2), 0.33);
        assert_eq!(round(-0.125, 2), -0.12);
        assert_eq!(round(123456.78949, 3), 123456.789);
        assert_eq!(round(5e-324, 3), 0.0);
        assert_eq!(round(2.5, 0), 2.0);
        assert_eq!(round(3.5, 0), 4.0);
    }

    #[test]
    fn short_and_long_roundings_agree() {
        // Up to 3 digits rounds in 64 bits: the same as in 128.
        fn wide(x: f64, digits: u32) -> f64 {
            let bits = x.to_bits();
            let (exp, frac) = (((bits >> 52) & 0x7ff) as i32, bits & ((1 << 52) - 1));
            let (mantissa, power) = (frac | (1 << 52), exp - 1075);
            let scaled = u128::from(mantissa) * 10u128.pow(digits);
            let shift = (-power) as u32;
            let (q, rem, half) = (
                scaled >> shift,
                scaled & ((1 << shift) - 1),
                1 << (shift - 1),
            );
            let q = if rem > half || (rem == half && q % 2 == 1) {
                q + 1
            } else {
                q
            };
            q as f64 / 10f64.powi(digits as i32)
        }
        for i in 1..20_000u32 {
            let x = f64::from(i) * 0.000_123_456_7 + 1e-9 * f64::from(i % 7);
            for digits in [2, 3] {
                assert_eq!(round(x, digits), wide(x, digits), "{x} to {digits}");
            }
            assert_eq!(round(x / 1024.0, 3), wide(x / 1024.0, 3), "{x}/1024");
        }
        assert_eq!(round(1e-300, 3), 0.0);
        assert_eq!(round(0.0005, 3), 0.001); // 0.000500000000000000010408...
        assert_eq!(round(0.0025, 3), 0.003); // 0.002500000000000000052...
        assert_eq!(round(0.125, 2), 0.12);
    }

    #[test]
    fn jitter_is_mean_absolute_consecutive_difference() {
        assert_eq!(jitter(&[]), 0.0);
        assert_eq!(jitter(&[5.0]), 0.0);
        // |1-3| + |3-2| + |2-6| = 7, over 3 pairs
        assert!((jitter(&[1.0, 3.0, 2.0, 6.0]) - 7.0 / 3.0).abs() < 1e-12);
        let mut h = Host::new("x", "192.0.2.1");
        h.packets_sent = 5;
        h.rtts = vec![1.0, 3.0, 2.0, 6.0];
        assert_eq!(h.jitter(), 2.333);
    }

    #[test]
    fn host_statistics_match_icmplib() {
        let mut h = Host::new("example", "192.0.2.1");
        h.packets_sent = 3;
        h.rtts = vec![0.0414, 0.0502, 0.0301];
        assert_eq!(h.min_rtt(), 0.03);
        assert_eq!(h.max_rtt(), 0.05);
        assert_eq!(h.avg_rtt(), 0.041);
        assert_eq!(h.packet_loss(), 0.0);
        assert!(h.is_alive());
        h.packets_sent = 4;
        assert_eq!(h.packet_loss(), 0.25);

        let dead = Host::new("x", "192.0.2.9");
        assert_eq!(dead.packet_loss(), 1.0);
        assert_eq!(dead.min_rtt(), 0.0);
        assert_eq!(dead.avg_rtt(), 0.0);
        assert!(!dead.is_alive());
    }

    #[test]
    fn mdev_is_population_standard_deviation() {
        assert_eq!(mdev(&[]), 0.0);
        assert!((mdev(&[1.0, 3.0]) - 1.0).abs() < 1e-12);
    }

    #[test]
    fn json_has_icmplib_fields() {
        let mut h = Host::new("localhost", "127.0.0.1");
        h.packets_sent = 2;
        h.rtts = vec![0.5];
        let text = h.to_json();
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert!(
            text.starts_with(r#"{"address":"127.0.0.1","min_rtt":0.5,"#),
            "{text}"
        );
        for key in [
            "address",
            "min_rtt",
            "avg_rtt",
            "max_rtt",
            "rtts",
            "packets_sent",
            "packets_received",
            "packet_loss",
            "jitter",
            "is_alive",
        ] {
            assert!(v.get(key).is_some(), "missing {key}");
        }
        assert_eq!(v["packet_loss"], 0.5);
        assert_eq!(v["is_alive"], true);
        assert!(v.get("error").is_none());
    }
}
