/*!
A run's progress events as NDJSON lines: recorded as the plugin emits
them (bounded in bytes; past the bound, lines are counted and dropped),
readable from the start by any number of streams while the run goes on,
and closed when it ends. Streamed results (`result-line`) are also kept
for the run's envelope. The sink notes when the target was resolved and
when the first answer came, for `/probe`'s phases.
*/

use std::sync::Mutex;
use std::time::{Duration, Instant};

use bytes::Bytes;
use tokio::sync::Notify;

use super::probe::Timings;
use crate::report;
use crate::runtime::{ProgressSink, progress, types};

/// Most bytes of events kept per run.
pub const MAX_BYTES: usize = 1 << 20;

#[derive(Debug, Default)]
struct State {
    lines: Vec<Bytes>,
    results: Vec<serde_json::Value>,
    bytes: usize,
    dropped: u64,
    closed: bool,
    timings: Timings,
}

/// The events of one run.
#[derive(Debug)]
pub struct EventLog {
    state: Mutex<State>,
    notify: Notify,
    start: Instant,
}

impl Default for EventLog {
    /// An empty log for a run starting now.
    fn default() -> EventLog {
        EventLog {
            state: Mutex::default(),
            notify: Notify::new(),
            start: Instant::now(),
        }
    }
}

impl EventLog {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn push(&self, line: Vec<u8>, result: Option<serde_json::Value>) {
        let mut st = self.lock();
        if st.closed {
            return;
        }
        if st.bytes + line.len() > MAX_BYTES {
            st.dropped += 1;
            return;
        }
        st.bytes += line.len();
        st.lines.push(line.into());
        st.results.extend(result);
        drop(st);
        self.notify.notify_waiters();
    }

    /// No more events: streams end once they have read everything.
    pub fn close(&self) {
        self.lock().closed = true;
        self.notify.notify_waiters();
    }

    /// When the run started.
    pub fn started(&self) -> Instant {
        self.start
    }

    /// The results the run streamed (`result-line` events), in order.
    pub fn results(&self) -> Vec<serde_json::Value> {
        self.lock().results.clone()
    }

    /// Bytes of events kept.
    pub fn bytes(&self) -> usize {
        self.lock().bytes
    }

    /// Events dropped past [`MAX_BYTES`].
    pub fn dropped(&self) -> u64 {
        self.lock().dropped
    }

    /// When things happened, for `/probe`.
    pub fn timings(&self) -> Timings {
        self.lock().timings
    }

    /// Lines from index `from` on, waiting for some while the run goes on;
    /// `None` once the log is closed and everything was read.
    pub async fn read_from(&self, from: usize) -> Option<Vec<Bytes>> {
        loop {
            let notified = self.notify.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            {
                let st = self.lock();
                if st.lines.len() > from {
                    return Some(st.lines[from..].to_vec());
                }
                if st.closed {
                    return None;
                }
            }
            notified.await;
        }
    }

    fn note_timing(&self, event: &progress::Event) {
        let elapsed = self.start.elapsed();
        let mut st = self.lock();
        let t = &mut st.timings;
        match event {
            progress::Event::Start(s) if t.resolved.is_none() => {
                t.resolved = Some(elapsed);
                t.address = s.address.as_ref().map(report::ip);
            }
            progress::Event::Reply(r) if t.first_send.is_none() => {
                let rtt = Duration::from_nanos(r.rtt);
                t.first_send = Some(elapsed.saturating_sub(rtt));
                t.first_rtt = Some(rtt);
                if is_echo_reply(r) {
                    t.reply_hop_limit = r.ttl;
                }
            }
            _ => {}
        }
    }
}

fn is_echo_reply(r: &types::Reply) -> bool {
    matches!(
        (r.family, r.type_),
        (types::Family::Ipv4, 0) | (types::Family::Ipv6, 129)
    )
}

impl ProgressSink for EventLog {
    fn emit(&self, event: progress::Event) {
        self.note_timing(&event);
        let json = report::event_json(&event);
        let result = matches!(event, progress::Event::ResultLine(_)).then(|| json["value"].clone());
        let mut line = serde_json::to_vec(&json).unwrap_or_default();
        line.push(b'\n');
        self.push(line, result);
    }

    /// The runtime dropped one (over the run's output caps).
    fn dropped(&self) {
        self.lock().dropped += 1;
    }
}
