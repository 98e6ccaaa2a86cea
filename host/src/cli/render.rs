//! Progress rendering: plugin events as ping/traceroute lines, as NDJSON,
//! or not at all, handed to the [`Writer`] (a thread of its own: a host
//! call never waits for a terminal). Result lines go to stdout in `run`;
//! in `batch` they are kept for the run's entry of the one JSON report.
//! Writes never fail the run (a closed stderr is ignored).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use icmp_host::report::{address, event_json};
use icmp_host::runtime::{ProgressSink, progress, types};
use icmp_host_vocab::{Family, codes};
use serde_json::{Value, json};

use super::args::ProgressFormat;
use super::writer::Writer;

/// Where a run's result lines go.
enum ResultLines {
    /// Straight to stdout, one per line (`run`).
    Stdout,
    /// Kept for the run's entry of the report (`batch`).
    Keep(Mutex<Vec<Value>>),
}

/// Renders one run's events.
pub struct Renderer {
    format: ProgressFormat,
    /// The run's name, when several run at once.
    run: Option<String>,
    writer: Arc<Writer>,
    results: ResultLines,
    /// Events dropped by the output caps or the writer.
    dropped: AtomicU64,
}

impl Renderer {
    /// The renderer of `run`'s only plugin.
    pub fn new(format: ProgressFormat, writer: Arc<Writer>) -> Renderer {
        Renderer {
            format,
            run: None,
            writer,
            results: ResultLines::Stdout,
            dropped: AtomicU64::new(0),
        }
    }

    /// A renderer for one of several runs: its progress lines carry its
    /// name, its result lines are kept for its entry.
    pub fn named(format: ProgressFormat, run: &str, writer: Arc<Writer>) -> Renderer {
        Renderer {
            format,
            run: Some(run.to_owned()),
            writer,
            results: ResultLines::Keep(Mutex::new(Vec::new())),
            dropped: AtomicU64::new(0),
        }
    }

    /// The result lines kept so far (`batch`).
    pub fn take_result_lines(&self) -> Vec<Value> {
        match &self.results {
            ResultLines::Stdout => Vec::new(),
            ResultLines::Keep(lines) => {
                std::mem::take(&mut *lines.lock().unwrap_or_else(|e| e.into_inner()))
            }
        }
    }

    /// Events dropped: by the run's output caps, or because the output
    /// could not keep up.
    pub fn events_dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    fn line(&self, text: &str) {
        for line in text.lines() {
            let written = match &self.run {
                Some(run) => self.writer.stderr(&format!("[{run}] {line}")),
                None => self.writer.stderr(line),
            };
            if !written {
                self.dropped.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}

impl ProgressSink for Renderer {
    fn dropped(&self) {
        self.dropped.fetch_add(1, Ordering::Relaxed);
    }

    fn watched(&self) -> bool {
        !matches!(self.format, ProgressFormat::None)
    }

    fn emit(&self, event: progress::Event) {
        if let progress::Event::ResultLine(json) = &event {
            // The runtime passes on exactly one JSON value, compact.
            match &self.results {
                ResultLines::Stdout => {
                    if !self.writer.stdout(json) {
                        self.dropped.fetch_add(1, Ordering::Relaxed);
                    }
                }
                ResultLines::Keep(lines) => {
                    let value = serde_json::from_str(json).unwrap_or(Value::Null);
                    lines.lock().unwrap_or_else(|e| e.into_inner()).push(value);
                }
            }
            return;
        }
        match self.format {
            ProgressFormat::None => {}
            ProgressFormat::Ndjson => {
                let mut value = event_json(&event);
                if let (Some(run), Some(object)) = (&self.run, value.as_object_mut()) {
                    object.insert("run".into(), json!(run));
                }
                if !self.writer.stderr(&value.to_string()) {
                    self.dropped.fetch_add(1, Ordering::Relaxed);
                }
            }
            ProgressFormat::Text => {
                if let Some(text) = text(&event) {
                    self.line(&text);
                }
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
                    u64::from(s.payload_size) + 28
                ),
                ProbeKind::Traceroute => format!(
                    "traceroute to {} ({addr}), {} hops max, {} byte packets",
                    s.target,
                    s.max_hops,
                    u64::from(s.payload_size) + if v6 { 48 } else { 28 }
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

    fn start(kind: progress::ProbeKind, payload_size: u32) -> progress::Event {
        progress::Event::Start(progress::Start {
            kind,
            target: "t".into(),
            address: Some(types::IpAddress::Ipv4((192, 0, 2, 1))),
            payload_size,
            max_hops: 30,
        })
    }

    fn reply(type_: u8, code: u8) -> types::Reply {
        types::Reply {
            source: types::IpAddress::Ipv4((198, 18, 0, 1)),
            family: types::Family::Ipv4,
            id: 1,
            sequence: 3,
            type_,
            code,
            bytes_received: 64,
            received_at: 0,
            timestamp_source: types::TimestampSource::Kernel,
            rtt: 41_000,
            ttl: Some(64),
            original_destination: None,
            mtu: None,
            duplicate: false,
        }
    }

    #[test]
    fn the_largest_payload_size_does_not_overflow() {
        let ping = text(&start(progress::ProbeKind::Ping, u32::MAX)).unwrap();
        assert_eq!(
            ping,
            "PING t (192.0.2.1) 4294967295(4294967323) bytes of data."
        );
        let trace = text(&start(progress::ProbeKind::Traceroute, u32::MAX)).unwrap();
        assert!(
            trace.ends_with("30 hops max, 4294967323 byte packets"),
            "{trace}"
        );
    }

    #[test]
    fn redirect_and_source_quench_render_as_iputils_notes() {
        let line = text(&progress::Event::Reply(reply(5, 1))).unwrap();
        assert_eq!(line, "From 198.18.0.1 icmp_seq=3 Redirect Host");
        let line = text(&progress::Event::Reply(reply(4, 0))).unwrap();
        assert_eq!(line, "From 198.18.0.1 icmp_seq=3 Source Quench");
    }

    #[test]
    fn only_a_renderer_that_shows_nothing_is_unwatched() {
        let watched = |format| Renderer::new(format, Writer::start()).watched();
        assert!(!watched(ProgressFormat::None));
        assert!(watched(ProgressFormat::Text));
        assert!(watched(ProgressFormat::Ndjson));
    }

    #[test]
    fn percent_like_printf_g() {
        assert_eq!(round_percent(0.0), "0");
        assert_eq!(round_percent(25.0), "25");
        assert_eq!(round_percent(100.0 / 3.0), "33.3333");
    }
}
