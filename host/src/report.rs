/*!
How runs are reported, the same way wherever they ran: a finished run as
an entry (`exit`, `outcome`, `cpu_ms`, `result`, `error` — what `batch`
prints per run and the service returns per run), and progress events as
JSON objects (the NDJSON of `--progress ndjson` and of the service's event
streams). A plugin's words (its error messages) are repeated at most
[`MAX_MESSAGE_BYTES`] long.
*/

use std::borrow::Cow;
use std::net::IpAddr;

use icmp_host_vocab::{Family, codes};
use serde::Serialize;
use serde_json::{Value, json};

use crate::icmp;
use crate::runtime::{Finished, progress, types};

/// How a run ended: the fields a `batch` entry and a service envelope share.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Entry {
    /// 0 reached, 1 not reached (or partial), 2 error.
    pub exit: u8,
    /// `reached`, `not-reached`, `partial`, `text` or `error`.
    pub outcome: &'static str,
    /// CPU time the plugin used, when it ran.
    pub cpu_ms: Option<f64>,
    /// The plugin's JSON result (text output as a string), else `null`.
    pub result: Value,
    /// Why the run failed, in one line.
    pub error: Option<String>,
}

impl Entry {
    /// The entry of a run that finished, or that failed to start or was
    /// stopped by a limit (`Err` with the reason).
    pub fn of(finished: Result<&Finished, String>) -> Entry {
        let finished = match finished {
            Ok(f) => f,
            Err(e) => return Entry::error(e, None),
        };
        let cpu_ms = Some(finished.cpu.as_secs_f64() * 1e3);
        match &finished.output {
            Ok(types::RunOutput::Text(t)) => Entry {
                exit: 0,
                outcome: "text",
                cpu_ms,
                result: Value::String(t.clone()),
                error: None,
            },
            Ok(types::RunOutput::Report(r)) => {
                let result = r.json.as_deref().map_or(Value::Null, |j| {
                    serde_json::from_str(j).unwrap_or_else(|_| Value::String(j.to_owned()))
                });
                let (exit, outcome) = match r.outcome {
                    types::Outcome::Reached => (0, "reached"),
                    types::Outcome::NotReached => (1, "not-reached"),
                    types::Outcome::Partial => (1, "partial"),
                };
                Entry {
                    exit,
                    outcome,
                    cpu_ms,
                    result,
                    error: None,
                }
            }
            Err(types::RunError::Usage(m) | types::RunError::Failed(m)) => {
                Entry::error(shorten(m).into_owned(), cpu_ms)
            }
        }
    }

    /// A failed run.
    pub fn error(message: String, cpu_ms: Option<f64>) -> Entry {
        Entry {
            exit: 2,
            outcome: "error",
            cpu_ms,
            result: Value::Null,
            error: Some(message),
        }
    }
}

/// Longest plugin message (an error's words) the host repeats, bytes.
pub const MAX_MESSAGE_BYTES: usize = 4096;

/// A plugin's message cut to [`MAX_MESSAGE_BYTES`], saying how much was cut.
pub fn shorten(message: &str) -> Cow<'_, str> {
    if message.len() <= MAX_MESSAGE_BYTES {
        return Cow::Borrowed(message);
    }
    let mut end = MAX_MESSAGE_BYTES;
    while !message.is_char_boundary(end) {
        end -= 1;
    }
    Cow::Owned(format!(
        "{}… ({} more bytes)",
        &message[..end],
        message.len() - end
    ))
}

/// A WIT address as an [`IpAddr`] (the scope id dropped).
pub fn ip(a: &types::IpAddress) -> IpAddr {
    icmp::Address::from(*a).ip
}

/// An address as people write it (`fe80::1%2` when scoped).
pub fn address(a: &types::IpAddress) -> String {
    let scoped = icmp::Address::from(*a);
    match scoped.scope_id {
        0 => scoped.ip.to_string(),
        s => format!("{}%{s}", scoped.ip),
    }
}

fn family(f: types::Family) -> Family {
    match f {
        types::Family::Ipv4 => Family::V4,
        types::Family::Ipv6 => Family::V6,
    }
}

/// One progress event as a JSON object with an `event` key; a result line
/// becomes `{"event": "result", "value": …}`.
pub fn event_json(event: &progress::Event) -> Value {
    use progress::Event;
    match event {
        Event::Start(s) => json!({
            "event": "start",
            "kind": match s.kind {
                progress::ProbeKind::Ping => "ping",
                progress::ProbeKind::Traceroute => "traceroute",
                progress::ProbeKind::Other => "other",
            },
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
            // Redirect, Source Quench: information, not the probe's answer.
            "note": codes::is_note(family(r.family), r.type_),
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
        Event::ResultLine(j) => json!({
            "event": "result",
            "value": serde_json::from_str::<Value>(j).unwrap_or(Value::Null),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn start(kind: progress::ProbeKind) -> progress::Event {
        progress::Event::Start(progress::Start {
            kind,
            target: "t".into(),
            address: Some(types::IpAddress::Ipv4((192, 0, 2, 1))),
            payload_size: 56,
            max_hops: 30,
        })
    }

    fn reply(type_: u8, code: u8) -> progress::Event {
        progress::Event::Reply(types::Reply {
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
        })
    }

    #[test]
    fn events_name_their_kind_in_words() {
        for (kind, word) in [
            (progress::ProbeKind::Ping, "ping"),
            (progress::ProbeKind::Traceroute, "traceroute"),
            (progress::ProbeKind::Other, "other"),
        ] {
            assert_eq!(event_json(&start(kind))["kind"], word);
        }
        assert_eq!(
            event_json(&start(progress::ProbeKind::Ping))["address"],
            "192.0.2.1"
        );
    }

    #[test]
    fn redirects_are_notes_and_replies_carry_their_rtt() {
        let v = event_json(&reply(5, 1));
        assert_eq!(v["note"], true);
        assert_eq!(v["message"], "Redirect Host");
        let v = event_json(&reply(0, 0));
        assert_eq!(v["note"], false);
        assert_eq!(v["rtt_ms"], 0.041);
        assert_eq!(v["source"], "198.18.0.1");
        let line = event_json(&progress::Event::ResultLine("{\"a\":1}".into()));
        assert_eq!(line, json!({"event": "result", "value": {"a": 1}}));
    }

    #[test]
    fn long_messages_are_shortened_on_a_character_boundary() {
        assert_eq!(shorten("short"), "short");
        let long = "é".repeat(MAX_MESSAGE_BYTES);
        let cut = shorten(&long);
        assert!(cut.len() < MAX_MESSAGE_BYTES + 32, "{}", cut.len());
        assert!(
            cut.ends_with(&format!("({} more bytes)", MAX_MESSAGE_BYTES)),
            "{cut}"
        );
    }

    #[test]
    fn a_failed_plugins_words_are_shortened_in_its_entry() {
        let e = Entry::error(shorten(&"x".repeat(10_000)).into_owned(), None);
        assert_eq!(e.exit, 2);
        assert!(e.error.unwrap().ends_with("more bytes)"));
    }
}
