//! Progress rendering: plugin events as ping/traceroute lines, as NDJSON,
//! or not at all. Writes never fail the run (a closed stderr is ignored).

use std::io::Write;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use icmp_host::runtime::{ProgressSink, progress, types};
use icmp_host_vocab::{Family, codes};
use serde_json::json;

use super::args::ProgressFormat;

/// Renders events to stderr; result lines go to stdout.
pub struct Renderer {
    format: ProgressFormat,
    /// The run's name, when several run at once.
    run: Option<String>,
}

impl Renderer {
    pub fn new(format: ProgressFormat) -> Renderer {
        Renderer { format, run: None }
    }

    /// A renderer for one of several runs: its lines carry its name.
    pub fn named(format: ProgressFormat, run: &str) -> Renderer {
        Renderer {
            format,
            run: Some(run.to_owned()),
        }
    }

    fn line(&self, text: &str) {
        let mut err = std::io::stderr().lock();
        for line in text.lines() {
            let _ = match &self.run {
                Some(run) => writeln!(err, "[{run}] {line}"),
                None => writeln!(err, "{line}"),
            };
        }
    }
}

impl ProgressSink for Renderer {
    fn emit(&self, event: progress::Event) {
        if let progress::Event::ResultLine(json) = &event {
            let mut out = std::io::stdout().lock();
            let _ = writeln!(out, "{json}").and_then(|()| out.flush());
            return;
        }
        match self.format {
            ProgressFormat::None => {}
            ProgressFormat::Ndjson => {
                let mut value = ndjson(&event);
                if let (Some(run), Some(object)) = (&self.run, value.as_object_mut()) {
                    object.insert("run".into(), json!(run));
                }
                let mut err = std::io::stderr().lock();
                let _ = writeln!(err, "{value}");
            }
            ProgressFormat::Text => {
                if let Some(text) = text(&event) {
                    self.line(&text);
                }
            }
        }
    }
}

/// An address as people write it.
pub fn address(a: &types::IpAddress) -> String {
    match a {
        types::IpAddress::Ipv4((a, b, c, d)) => Ipv4Addr::new(*a, *b, *c, *d).to_string(),
        types::IpAddress::Ipv6(v6) => {
            let (a, b, c, d, e, f, g, h) = v6.segments;
            let ip = IpAddr::V6(Ipv6Addr::new(a, b, c, d, e, f, g, h));
            match v6.scope_id {
                0 => ip.to_string(),
                s => format!("{ip}%{s}"),
            }
        }
    }
}

fn family(f: types::Family) -> Family {
    match f {
        types::Family::Ipv4 => Family::V4,
        types::Family::Ipv6 => Family::V6,
    }
}

/// Milliseconds the way iputils prints them: more decimals for small times.
pub fn millis(ns: u64) -> String {
    let us = ns as f64 / 1e3;
    let ms = us / 1e3;
    if us >= 99_950.0 {
        format!("{ms:.0}")
    } else if us >= 9_995.0 {
        format!("{ms:.1}")
    } else if us >= 1_000.0 {
        format!("{ms:.2}")
    } else {
        format!("{ms:.3}")
    }
}

/// One event as text, or `None` for events without a line.
fn text(event: &progress::Event) -> Option<String> {
    use progress::{Event, ProbeKind};
    Some(match event {
        Event::Start(s) => {
            let addr = s.address.as_ref().map_or_else(|| s.target.clone(), address);
            let v6 = matches!(s.address, Some(types::IpAddress::Ipv6(_)));
            match s.kind {
                ProbeKind::Ping if v6 => {
                    format!("PING {} ({addr}) {} data bytes", s.target, s.payload_size)
                }
                ProbeKind::Ping => format!(
                    "PING {} ({addr}) {}({}) bytes of data.",
                    s.target,
                    s.payload_size,
                    s.payload_size + 28
                ),
                ProbeKind::Traceroute => format!(
                    "traceroute to {} ({addr}), {} hops max, {} byte packets",
                    s.target,
                    s.max_hops,
                    s.payload_size + if v6 { 48 } else { 28 }
                ),
                ProbeKind::Other => return None,
            }
        }
        Event::Reply(r) => reply_line(r),
        Event::Timeout(t) => format!("no answer yet for icmp_seq={}", t.sequence),
        Event::Hop(h) => hop_line(h),
        Event::Summary(s) => summary(s),
        Event::Note(n) => n.clone(),
        Event::ResultLine(_) => return None,
    })
}

fn reply_line(r: &types::Reply) -> String {
    let from = address(&r.source);
    let dup = if r.duplicate { " (DUP!)" } else { "" };
    match codes::describe(family(r.family), r.type_, r.code) {
        None => {
            let ttl = r.ttl.map_or(String::new(), |t| format!(" ttl={t}"));
            format!(
                "{} bytes from {from}: icmp_seq={}{ttl} time={} ms{dup}",
                r.bytes_received,
                r.sequence,
                millis(r.rtt)
            )
        }
        Some(message) => {
            let mtu = r.mtu.map_or(String::new(), |m| format!(" (mtu = {m})"));
            format!("From {from} icmp_seq={} {message}{mtu}{dup}", r.sequence)
        }
    }
}

fn hop_line(h: &progress::Hop) -> String {
    let mut line = format!("{:2} ", h.distance);
    let mut last: Option<String> = None;
    for p in &h.probes {
        match (&p.responder, p.rtt) {
            (Some(who), Some(rtt)) => {
                let who = address(who);
                if last.as_ref() != Some(&who) {
                    line.push_str(&format!(" {who}"));
                    last = Some(who);
                }
                line.push_str(&format!("  {} ms", millis(rtt)));
                let fam = if matches!(p.responder, Some(types::IpAddress::Ipv6(_))) {
                    Family::V6
                } else {
                    Family::V4
                };
                if let Some(mark) = codes::traceroute_mark(fam, p.type_, p.code) {
                    line.push_str(&format!(" {mark}"));
                }
            }
            _ => line.push_str(" *"),
        }
    }
    line
}

fn summary(s: &progress::Summary) -> String {
    let loss = if s.packets_sent == 0 {
        0.0
    } else {
        f64::from(s.packets_sent - s.packets_received.min(s.packets_sent)) * 100.0
            / f64::from(s.packets_sent)
    };
    let mut extra = String::new();
    if s.duplicates > 0 {
        extra.push_str(&format!("+{} duplicates, ", s.duplicates));
    }
    if s.errors > 0 {
        extra.push_str(&format!("+{} errors, ", s.errors));
    }
    let mut out = format!(
        "\n--- {} ping statistics ---\n{} packets transmitted, {} received, {extra}{}% packet loss, time {}ms",
        s.target,
        s.packets_sent,
        s.packets_received,
        round_percent(loss),
        s.elapsed / 1_000_000
    );
    if s.packets_received > 0 {
        let ms = |ns: u64| format!("{:.3}", ns as f64 / 1e6);
        out.push_str(&format!(
            "\nrtt min/avg/max/mdev = {}/{}/{}/{} ms",
            ms(s.min_rtt),
            ms(s.avg_rtt),
            ms(s.max_rtt),
            ms(s.mdev)
        ));
    }
    out
}

/// `%g`-like: 0, 25, 33.3333.
fn round_percent(p: f64) -> String {
    if p.fract() == 0.0 {
        format!("{p:.0}")
    } else {
        let s = format!("{p:.4}");
        s.trim_end_matches('0').to_owned()
    }
}

fn ndjson(event: &progress::Event) -> serde_json::Value {
    use progress::Event;
    match event {
        Event::Start(s) => json!({
            "event": "start",
            "kind": format!("{:?}", s.kind).to_lowercase(),
            "target": s.target,
            "address": s.address.as_ref().map(address),
            "payload_size": s.payload_size,
            "max_hops": s.max_hops,
        }),
        Event::Reply(r) => json!({
            "event": "reply",
            "source": address(&r.source),
            "id": r.id,
            "sequence": r.sequence,
            "type": r.type_,
            "code": r.code,
            "message": codes::describe(family(r.family), r.type_, r.code),
            "bytes": r.bytes_received,
            "rtt_ms": r.rtt as f64 / 1e6,
            "ttl": r.ttl,
            "mtu": r.mtu,
            "duplicate": r.duplicate,
            "timestamp_source": match r.timestamp_source {
                types::TimestampSource::Kernel => "kernel",
                types::TimestampSource::HostMonotonic => "host-monotonic",
                types::TimestampSource::KernelBoth => "kernel-both",
            },
        }),
        Event::Timeout(t) => json!({
            "event": "timeout",
            "destination": address(&t.destination),
            "id": t.id,
            "sequence": t.sequence,
        }),
        Event::Hop(h) => json!({
            "event": "hop",
            "distance": h.distance,
            "probes": h.probes.iter().map(|p| json!({
                "responder": p.responder.as_ref().map(address),
                "rtt_ms": p.rtt.map(|r| r as f64 / 1e6),
                "type": p.type_,
                "code": p.code,
            })).collect::<Vec<_>>(),
        }),
        Event::Summary(s) => json!({
            "event": "summary",
            "target": s.target,
            "packets_sent": s.packets_sent,
            "packets_received": s.packets_received,
            "duplicates": s.duplicates,
            "errors": s.errors,
            "min_rtt_ms": s.min_rtt as f64 / 1e6,
            "avg_rtt_ms": s.avg_rtt as f64 / 1e6,
            "max_rtt_ms": s.max_rtt as f64 / 1e6,
            "mdev_ms": s.mdev as f64 / 1e6,
            "elapsed_ms": s.elapsed as f64 / 1e6,
        }),
        Event::Note(n) => json!({"event": "note", "text": n}),
        Event::ResultLine(_) => json!(null),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn millis_like_iputils() {
        assert_eq!(millis(41_000), "0.041");
        assert_eq!(millis(1_234_000), "1.23");
        assert_eq!(millis(12_345_000), "12.3");
        assert_eq!(millis(123_456_000), "123");
    }

    #[test]
    fn percent_like_printf_g() {
        assert_eq!(round_percent(0.0), "0");
        assert_eq!(round_percent(25.0), "25");
        assert_eq!(round_percent(100.0 / 3.0), "33.3333");
    }
}
