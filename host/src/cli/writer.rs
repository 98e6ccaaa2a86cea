//! The host's own output: lines written by a thread of their own, so that a
//! slow terminal or a full pipe never blocks a host call or a tokio worker
//! (or, for a short report, by [`Writer::finish`] once the run is over),
//! and plugin text made harmless on a terminal.
//!
//! Stdout lines (results) and report parts are never dropped: what a run
//! may send is bounded before it gets here
//! ([`icmp_host::runtime::MAX_EVENT_BYTES`] and the output limit) — except
//! a result line after the report has begun, which would land inside it.
//! Stderr lines (progress) wait in a queue of at most
//! [`MAX_PENDING_BYTES`]; past that they are dropped and counted.
//!
//! A report handed over in one part of at most [`HELD_REPORT_BYTES`] (as
//! most plugins hand theirs, when they return) starts no thread: it is
//! written by [`Writer::finish`], so a short run does without one.

use std::borrow::Cow;
use std::io::{IsTerminal, Write};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, Sender, channel};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use icmp_host::runtime::PartSink;
use tokio::sync::Notify;

/// Progress bytes that may wait for stderr before lines are dropped.
pub const MAX_PENDING_BYTES: usize = 1 << 20;

/// The largest first report part held for [`Writer::finish`] rather than
/// written by the thread. Far fewer bytes than a run may hand over before
/// it waits for them to be written, or it would wait for ever.
pub const HELD_REPORT_BYTES: usize = 64 << 10;
const _: () = assert!(HELD_REPORT_BYTES < icmp_host::runtime::MAX_REPORT_BACKLOG);

enum Line {
    Stdout(String),
    Stderr(String),
    /// A part of the report: written as it is, without a newline.
    Report(String),
}

/// Writes lines to stdout and stderr on its own thread, started with the
/// first result or progress line, or with a report part unless it is the
/// first and at most [`HELD_REPORT_BYTES`] (a quiet run handing over a
/// short report in one part starts none).
pub struct Writer {
    tx: Mutex<Option<Sender<Line>>>,
    /// The lines' receiving end, until the thread takes it.
    rx: Mutex<Option<Receiver<Line>>>,
    /// The thread; it returns whether the report left its line open.
    thread: Mutex<Option<JoinHandle<bool>>>,
    pending: Arc<AtomicUsize>,
    dropped: AtomicU64,
    /// A report part was queued: result lines are over.
    report_begun: AtomicBool,
    /// Report bytes queued and not yet written.
    report_pending: Arc<AtomicUsize>,
    /// Notified as each report part is written.
    report_written: Arc<Notify>,
    /// The largest first report part held: [`HELD_REPORT_BYTES`].
    report_held: usize,
    stdout_terminal: bool,
    stderr_terminal: bool,
}

impl Writer {
    /// A writer; its thread starts when there is a line to write at once.
    pub fn start() -> Arc<Writer> {
        let (tx, rx) = channel::<Line>();
        Arc::new(Writer {
            tx: Mutex::new(Some(tx)),
            rx: Mutex::new(Some(rx)),
            thread: Mutex::new(None),
            pending: Arc::new(AtomicUsize::new(0)),
            dropped: AtomicU64::new(0),
            report_begun: AtomicBool::new(false),
            report_pending: Arc::new(AtomicUsize::new(0)),
            report_written: Arc::new(Notify::new()),
            report_held: HELD_REPORT_BYTES,
            stdout_terminal: std::io::stdout().is_terminal(),
            stderr_terminal: std::io::stderr().is_terminal(),
        })
    }

    /// Starts the writing thread, once.
    fn start_thread(&self) {
        let Some(rx) = self.rx.lock().unwrap_or_else(|e| e.into_inner()).take() else {
            return;
        };
        let drain = self.drain(rx);
        let thread = std::thread::Builder::new()
            .name("output".into())
            .spawn(drain)
            .ok();
        *self.thread.lock().unwrap_or_else(|e| e.into_inner()) = thread;
    }

    /// Writes out every line `rx` brings until it closes; returns whether
    /// the report left its line open.
    fn drain(&self, rx: Receiver<Line>) -> impl FnOnce() -> bool + Send + 'static {
        let left = Arc::clone(&self.pending);
        let report_left = Arc::clone(&self.report_pending);
        let report_written = Arc::clone(&self.report_written);
        move || {
            let mut open_line = false;
            for line in rx {
                // A closed pipe (`| head`) is not an error: keep
                // draining so nothing waits on us.
                match line {
                    Line::Stdout(text) => {
                        let mut out = std::io::stdout().lock();
                        let _ = writeln!(out, "{text}").and_then(|()| out.flush());
                    }
                    Line::Stderr(text) => {
                        left.fetch_sub(text.len(), Ordering::Relaxed);
                        let _ = writeln!(std::io::stderr().lock(), "{text}");
                    }
                    Line::Report(part) => {
                        if let Some(last) = part.chars().last() {
                            open_line = last != '\n';
                        }
                        let mut out = std::io::stdout().lock();
                        let _ = out.write_all(part.as_bytes()).and_then(|()| out.flush());
                        report_left.fetch_sub(part.len(), Ordering::Relaxed);
                        report_written.notify_one();
                    }
                }
            }
            open_line
        }
    }

    /// Queues `line`, starting the thread first if `start`.
    fn send(&self, line: Line, start: bool) -> bool {
        let tx = self.tx.lock().unwrap_or_else(|e| e.into_inner());
        let Some(tx) = tx.as_ref() else {
            return false;
        };
        if start {
            self.start_thread();
        }
        tx.send(line).is_ok()
    }

    /// Queues a result line for stdout (escaped on a terminal); `false`
    /// when it was dropped because the report has begun.
    pub fn stdout(&self, text: &str) -> bool {
        if self.report_begun.load(Ordering::Relaxed) {
            return false;
        }
        let text = if self.stdout_terminal {
            escape_controls(text).into_owned()
        } else {
            text.to_owned()
        };
        self.send(Line::Stdout(text), true)
    }

    /// Queues a progress line for stderr (escaped on a terminal); `false`
    /// when it was dropped because too much is waiting already.
    pub fn stderr(&self, text: &str) -> bool {
        let text = if self.stderr_terminal {
            escape_controls(text).into_owned()
        } else {
            text.to_owned()
        };
        let len = text.len();
        let admitted = self
            .pending
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |p| {
                (p + len <= MAX_PENDING_BYTES).then_some(p + len)
            })
            .is_ok();
        if !admitted || !self.send(Line::Stderr(text), true) {
            if admitted {
                self.pending.fetch_sub(len, Ordering::Relaxed);
            }
            self.dropped.fetch_add(1, Ordering::Relaxed);
            return false;
        }
        true
    }

    /// Writes out what is queued and stops the thread (or, if none was
    /// started, writes it here); later lines are dropped. Returns how many
    /// stderr lines were dropped in all.
    pub fn finish(&self) -> u64 {
        drop(self.tx.lock().unwrap_or_else(|e| e.into_inner()).take());
        let thread = self.thread.lock().unwrap_or_else(|e| e.into_inner()).take();
        let held = self.rx.lock().unwrap_or_else(|e| e.into_inner()).take();
        let open_line = match (thread, held) {
            (Some(t), _) => t.join().unwrap_or(false),
            (None, Some(rx)) => self.drain(rx)(),
            (None, None) => false,
        };
        if open_line {
            let mut out = std::io::stdout().lock();
            let _ = out.write_all(b"\n").and_then(|()| out.flush());
        }
        self.dropped.load(Ordering::Relaxed)
    }
}

/// A report written out part by part, as `run` prints it.
impl PartSink for Writer {
    /// Queues a part of the run's report for stdout, as it is (escaped on a
    /// terminal); [`Writer::finish`] ends its line. Result lines after it
    /// are dropped. Only a short first part waits for `finish` (so nothing
    /// piles up unwritten, empty parts least of all: they are ignored).
    fn write(&self, part: String) {
        if part.is_empty() {
            return;
        }
        let first = !self.report_begun.swap(true, Ordering::Relaxed);
        let part = match self.stdout_terminal {
            true => escape_controls(&part).into_owned(),
            false => part,
        };
        let len = part.len();
        self.report_pending.fetch_add(len, Ordering::Relaxed);
        let start = !first || len > self.report_held;
        if !self.send(Line::Report(part), start) {
            self.report_pending.fetch_sub(len, Ordering::Relaxed);
        }
    }

    fn backlog(&self) -> usize {
        self.report_pending.load(Ordering::Relaxed)
    }

    fn written(&self) -> &Notify {
        &self.report_written
    }
}

/// Text from a plugin made safe for a terminal: every control character
/// but newline and tab — C0 (ESC starts escape sequences), DEL and C1
/// (U+0080–U+009F, CSI among them) — as a JSON-style `\u00XX` escape, so
/// JSON stays valid JSON.
pub fn escape_controls(text: &str) -> Cow<'_, str> {
    let unsafe_char = |c: char| c.is_control() && c != '\n' && c != '\t';
    if !text.chars().any(unsafe_char) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 16);
    for c in text.chars() {
        if unsafe_char(c) {
            out.push_str(&format!("\\u{:04x}", u32::from(c)));
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_are_escaped_json_style() {
        assert_eq!(
            escape_controls("plain ümlaut\tand\nlines"),
            "plain ümlaut\tand\nlines"
        );
        assert_eq!(escape_controls("\u{1b}[2Jgone"), "\\u001b[2Jgone");
        assert_eq!(
            escape_controls("csi \u{9b}31m del \u{7f}"),
            "csi \\u009b31m del \\u007f"
        );
        assert_eq!(escape_controls("bell\u{7}\r"), "bell\\u0007\\u000d");
        // Inside a JSON string an escape keeps the document valid.
        let json = format!("{{\"a\":\"x{}y\"}}", '\u{9b}');
        let v: serde_json::Value = serde_json::from_str(&escape_controls(&json)).unwrap();
        assert_eq!(v["a"], "x\u{9b}y");
    }

    #[test]
    fn progress_past_the_pending_cap_is_dropped_and_counted() {
        let w = Writer {
            tx: Mutex::new(None), // nothing drains: everything waits
            rx: Mutex::new(None),
            thread: Mutex::new(None),
            pending: Arc::new(AtomicUsize::new(0)),
            dropped: AtomicU64::new(0),
            report_begun: AtomicBool::new(false),
            report_pending: Arc::new(AtomicUsize::new(0)),
            report_written: Arc::new(Notify::new()),
            report_held: HELD_REPORT_BYTES,
            stdout_terminal: false,
            stderr_terminal: false,
        };
        // With the thread gone, every line is dropped, never blocked on.
        assert!(!w.stderr("line"));
        assert_eq!(w.finish(), 1);
        let (tx, rx) = channel();
        let w = Writer {
            tx: Mutex::new(Some(tx)),
            ..w
        };
        let line = "x".repeat(1000);
        let mut admitted = 0;
        for _ in 0..2000 {
            admitted += usize::from(w.stderr(&line));
        }
        assert_eq!(admitted, MAX_PENDING_BYTES / 1000);
        assert_eq!(
            w.dropped.load(Ordering::Relaxed),
            1 + 2000 - admitted as u64
        );
        drop(rx);
    }

    #[test]
    fn a_short_report_in_one_part_is_written_at_finish_any_other_at_once() {
        let started = |w: &Writer| w.thread.lock().unwrap().is_some();
        let w = Writer::start();
        w.write(String::new());
        w.write("{}".into());
        w.write(String::new());
        assert!(
            !started(&w),
            "one short part (empty ones ignored) starts no thread"
        );
        assert_eq!(w.backlog(), 2);
        w.finish();
        assert_eq!(w.backlog(), 0, "finish wrote the held report");

        let w = Writer::start();
        w.write("[1,".into());
        assert!(!started(&w));
        w.write("2]".into());
        assert!(started(&w), "a second part is written by the thread");
        w.finish();
        assert_eq!(w.backlog(), 0);

        let w = Writer {
            report_held: 4,
            ..Arc::into_inner(Writer::start()).unwrap()
        };
        w.write("[1,2]".into());
        assert!(started(&w), "a first part past the held bytes too");
        w.finish();

        let w = Writer::start();
        w.write("{}".into());
        assert!(w.stderr("progress"));
        assert!(started(&w), "a progress line is written at once");
        w.finish();
        assert_eq!(w.backlog(), 0);
    }
}
