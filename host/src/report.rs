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
/// The result is a [`Value`] for a reader that looks inside it (the
/// service's metrics), or a [`RawResult`] for one that only writes it out.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Entry<R = Value> {
    /// 0 reached, 1 not reached (or partial), 2 error.
    pub exit: u8,
    /// `reached`, `not-reached`, `partial`, `text` or `error`.
    pub outcome: &'static str,
    /// CPU time the plugin used, when it ran.
    pub cpu_ms: Option<f64>,
    /// The plugin's JSON result (text output as a string), else `null`.
    pub result: R,
    /// Why the run failed, in one line.
    pub error: Option<String>,
}

/// A run's result as the plugin gave it, not built into a tree: JSON,
/// text (output that is not JSON), or none. Written out, the JSON is read
/// again token by token into the writer, which so indents it like the
/// rest of its document, as it would a [`Value`] of it.
#[derive(Debug, Clone, Default, PartialEq)]
pub enum RawResult {
    /// No result (`null`).
    #[default]
    None,
    /// JSON that parses as a [`Value`] would, no object repeating a key.
    Json(String),
    /// Output that is not JSON (a string).
    Text(String),
}

impl RawResult {
    /// The plugin's report `json`: JSON if it parses as JSON, else text.
    /// JSON whose objects repeat a key is written as its `Value` would be
    /// (the last value, where the key first was).
    fn of_report(json: &str) -> RawResult {
        use serde::de::DeserializeSeed as _;
        let mut repeats = false;
        let mut tokens = serde_json::Deserializer::from_str(json);
        let checked = Walk(&mut repeats)
            .deserialize(&mut tokens)
            .and_then(|()| tokens.end());
        match (checked, repeats) {
            (Ok(()), false) => RawResult::Json(json.to_owned()),
            (Ok(()), true) => match serde_json::from_str::<Value>(json) {
                Ok(tree) => RawResult::Json(tree.to_string()),
                Err(_) => RawResult::Text(json.to_owned()),
            },
            (Err(_), _) => RawResult::Text(json.to_owned()),
        }
    }
}

impl Serialize for RawResult {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            RawResult::None => serializer.serialize_unit(),
            // Parsed the same way when made: it parses again.
            RawResult::Json(j) => {
                let mut tokens = serde_json::Deserializer::from_str(j);
                serde_transcode::transcode(&mut tokens, serializer)
            }
            RawResult::Text(t) => serializer.serialize_str(t),
        }
    }
}

/// Parses a JSON value as parsing it into a [`Value`] does (the same depth
/// limit, numbers and escapes), building nothing; notes whether an object
/// repeats a key.
struct Walk<'a>(&'a mut bool);

impl<'de> serde::de::DeserializeSeed<'de> for Walk<'_> {
    type Value = ();

    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> serde::de::Visitor<'de> for Walk<'_> {
    type Value = ();

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E>(self, _: bool) -> Result<(), E> {
        Ok(())
    }
    fn visit_i64<E>(self, _: i64) -> Result<(), E> {
        Ok(())
    }
    fn visit_u64<E>(self, _: u64) -> Result<(), E> {
        Ok(())
    }
    fn visit_f64<E>(self, _: f64) -> Result<(), E> {
        Ok(())
    }
    fn visit_str<E>(self, _: &str) -> Result<(), E> {
        Ok(())
    }
    fn visit_unit<E>(self) -> Result<(), E> {
        Ok(())
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while seq.next_element_seed(Walk(&mut *self.0))?.is_some() {}
        Ok(())
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        // Borrowed from the text unless escaped; sorted once at the end.
        let mut keys: Vec<Cow<'de, str>> = Vec::new();
        while let Some(key) = map.next_key_seed(Key)? {
            keys.push(key);
            map.next_value_seed(Walk(&mut *self.0))?;
        }
        keys.sort_unstable();
        if keys.windows(2).any(|w| w[0] == w[1]) {
            *self.0 = true;
        }
        Ok(())
    }
}

/// An object's key, borrowed from the text unless it has escapes.
struct Key;

impl<'de> serde::de::DeserializeSeed<'de> for Key {
    type Value = Cow<'de, str>;

    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<Cow<'de, str>, D::Error> {
        d.deserialize_str(self)
    }
}

impl<'de> serde::de::Visitor<'de> for Key {
    type Value = Cow<'de, str>;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a key")
    }

    fn visit_borrowed_str<E>(self, key: &'de str) -> Result<Cow<'de, str>, E> {
        Ok(Cow::Borrowed(key))
    }

    fn visit_str<E>(self, key: &str) -> Result<Cow<'de, str>, E> {
        Ok(Cow::Owned(key.to_owned()))
    }
}

impl<R: Default> Entry<R> {
    /// The entry of a run that finished, or that failed to start or was
    /// stopped by a limit (`Err` with the reason); its result made by
    /// `report` from the JSON the plugin reported, or by `text` from the
    /// text it returned.
    fn with_result(
        finished: Result<&Finished, String>,
        report: impl FnOnce(&str) -> R,
        text: impl FnOnce(&str) -> R,
    ) -> Entry<R> {
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
                result: text(t),
                error: None,
            },
            Ok(types::RunOutput::Report(r)) => {
                let (exit, outcome) = match r.outcome {
                    types::Outcome::Reached => (0, "reached"),
                    types::Outcome::NotReached => (1, "not-reached"),
                    types::Outcome::Partial => (1, "partial"),
                };
                Entry {
                    exit,
                    outcome,
                    cpu_ms,
                    result: r.json.as_deref().map_or_else(R::default, report),
                    error: None,
                }
            }
            Err(types::RunError::Usage(m) | types::RunError::Failed(m)) => {
                Entry::error(shorten(m).into_owned(), cpu_ms)
            }
        }
    }

    /// A failed run.
    pub fn error(message: String, cpu_ms: Option<f64>) -> Entry<R> {
        Entry {
            exit: 2,
            outcome: "error",
            cpu_ms,
            result: R::default(),
            error: Some(message),
        }
    }
}

impl Entry {
    /// The entry of a run that finished, or that failed to start or was
    /// stopped by a limit (`Err` with the reason).
    pub fn of(finished: Result<&Finished, String>) -> Entry {
        Entry::with_result(
            finished,
            |j| serde_json::from_str(j).unwrap_or_else(|_| Value::String(j.to_owned())),
            |t| Value::String(t.to_owned()),
        )
    }
}

impl Entry<RawResult> {
    /// [`Entry::of`], with the result kept as the plugin gave it.
    pub fn raw(finished: Result<&Finished, String>) -> Entry<RawResult> {
        Entry::with_result(finished, RawResult::of_report, |t| {
            RawResult::Text(t.to_owned())
        })
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

    /// What the report said of a result when it was built into a tree.
    fn as_tree(json: &str) -> Value {
        serde_json::from_str(json).unwrap_or_else(|_| Value::String(json.to_owned()))
    }

    /// A result written in a document, indented.
    fn written<T: Serialize>(result: &T) -> String {
        serde_json::to_string_pretty(&[json!({ "x": 1 }), json!(null)])
            .unwrap()
            .replace("null", &serde_json::to_string_pretty(&[result]).unwrap())
    }

    #[test]
    fn a_raw_result_is_written_as_its_tree_would_be() {
        let deep_enough = format!("{}{}", "[".repeat(120), "]".repeat(120));
        let too_deep = format!("{}{}", "[".repeat(200), "]".repeat(200));
        let results = [
            r#"{"address":"127.0.0.1","rtts":[0.025248,1e-7,18446744073709551615,-3]}"#,
            r#"{"s":"a\"b\u00e9\ud83d\ude00","e":[],"o":{},"n":null,"t":true}"#,
            // A key twice: the last value, where the key first was.
            r#"{"a":1,"b":2,"a":{"c":3,"c":4}}"#,
            r#"{"a":1,"\u0061":2}"#,
            &deep_enough,
            // Not JSON as a tree parses it: each kept as a string.
            "pong",
            r#"{"a":1} and more"#,
            "",
            "[1e400]",
            r#""\udc00""#,
            &too_deep,
        ];
        for json in results {
            let raw = RawResult::of_report(json);
            let tree = as_tree(json);
            assert_eq!(
                matches!(raw, RawResult::Json(_)),
                !tree.is_string(),
                "{json:.40}: {raw:?}"
            );
            assert_eq!(written(&raw), written(&tree), "{json:.40}");
            assert_eq!(serde_json::to_string(&raw).unwrap(), tree.to_string());
        }
        assert_eq!(serde_json::to_string(&RawResult::None).unwrap(), "null");
    }

    #[test]
    fn a_failed_plugins_words_are_shortened_in_its_entry() {
        let e: Entry = Entry::error(shorten(&"x".repeat(10_000)).into_owned(), None);
        assert_eq!(e.exit, 2);
        assert!(e.error.unwrap().ends_with("more bytes)"));
    }
}
