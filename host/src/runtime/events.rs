//! What one run may emit through `progress.emit`: each event at most
//! [`MAX_EVENT_BYTES`], all of them together at most the run's output
//! limit, and every `result-line` exactly one JSON value, passed on compact
//! (one line, whatever whitespace the plugin wrote). Anything else is
//! dropped and counted; the count is part of the run's report.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use super::progress::Event;

/// Largest single event, bytes (as `event_size` counts them).
pub const MAX_EVENT_BYTES: usize = 64 << 10;

/// The output budget of one run, shared by its store and the runtime.
#[derive(Debug)]
pub struct OutputGate {
    left: AtomicUsize,
    dropped: AtomicU64,
}

impl OutputGate {
    /// A gate letting `budget` bytes of events through.
    pub fn new(budget: usize) -> OutputGate {
        OutputGate {
            left: AtomicUsize::new(budget),
            dropped: AtomicU64::new(0),
        }
    }

    /// The event to pass on, or `None` (counted) when it is too large, over
    /// the run's budget, or a result line that is not one JSON value.
    pub fn admit(&self, event: Event) -> Option<Event> {
        let size = event_size(&event);
        let event = match event {
            _ if size > MAX_EVENT_BYTES => None,
            Event::ResultLine(json) => serde_json::from_str::<serde_json::Value>(&json)
                .ok()
                .map(|v| Event::ResultLine(v.to_string())),
            e => Some(e),
        };
        let taken = event.is_some()
            && self
                .left
                .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |left| {
                    left.checked_sub(size)
                })
                .is_ok();
        if !taken {
            self.dropped.fetch_add(1, Ordering::Relaxed);
            return None;
        }
        event
    }

    /// Events dropped so far.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }
}

/// What an event costs: its text as sent, plus a fixed amount per record
/// (about what one rendered line of it takes).
pub fn event_size(event: &Event) -> usize {
    const RECORD: usize = 128;
    match event {
        Event::Start(s) => RECORD + s.target.len(),
        Event::Reply(_) | Event::Timeout(_) => RECORD,
        Event::Hop(h) => RECORD.saturating_add(h.probes.len().saturating_mul(RECORD / 2)),
        Event::Summary(s) => RECORD + s.target.len(),
        Event::Note(n) => n.len(),
        Event::ResultLine(j) => j.len(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn result_lines_must_be_one_json_value_and_come_out_on_one_line() {
        let gate = OutputGate::new(1 << 20);
        let pass = |json: &str| match gate.admit(Event::ResultLine(json.into())) {
            Some(Event::ResultLine(j)) => Some(j),
            _ => None,
        };
        assert_eq!(
            pass("{\n  \"a\": [1, 2]\n}").as_deref(),
            Some(r#"{"a":[1,2]}"#)
        );
        assert_eq!(pass("\"x\"").as_deref(), Some("\"x\""));
        // A forged report after a line, two values, or no JSON at all.
        assert_eq!(pass("{}\n[{\"name\":\"forged\"}]"), None);
        assert_eq!(pass("{} {}"), None);
        assert_eq!(pass("\u{1b}[2J"), None);
        assert_eq!(pass(""), None);
        assert_eq!(gate.dropped(), 4);
    }

    #[test]
    fn events_are_capped_one_by_one_and_in_all() {
        let gate = OutputGate::new(3 * MAX_EVENT_BYTES);
        assert!(
            gate.admit(Event::Note("x".repeat(MAX_EVENT_BYTES + 1)))
                .is_none()
        );
        let big = || Event::Note("y".repeat(MAX_EVENT_BYTES));
        assert!(gate.admit(big()).is_some());
        assert!(gate.admit(big()).is_some());
        assert!(gate.admit(big()).is_some());
        // The run's budget is spent: even small events are dropped now.
        assert!(gate.admit(big()).is_none());
        assert!(gate.admit(Event::Note("z".into())).is_none());
        assert_eq!(gate.dropped(), 3);
    }

    #[test]
    fn a_hop_with_a_million_probes_is_one_oversized_event() {
        let hop = super::super::progress::Hop {
            distance: 1,
            probes: vec![
                super::super::progress::HopProbe {
                    responder: None,
                    rtt: None,
                    type_: 0,
                    code: 0,
                };
                1_000_000
            ],
        };
        assert!(event_size(&Event::Hop(hop.clone())) > MAX_EVENT_BYTES);
        assert!(OutputGate::new(usize::MAX).admit(Event::Hop(hop)).is_none());
    }
}
