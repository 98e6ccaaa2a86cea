//! Writing a plugin: implement [`Probe`] and call [`export_probe!`].
//!
//! ```
//! use icmp_host_sdk::{Output, Probe, RunError};
//!
//! struct Hello;
//!
//! impl Probe for Hello {
//!     fn run(args: Vec<String>) -> Result<Output, RunError> {
//!         Ok(Output::Text(format!("hello, {}\n", args.join(" "))))
//!     }
//! }
//!
//! icmp_host_sdk::export_probe!(Hello);
//! ```
//!
//! The exported `run` installs a panic hook first: a panic is reported on
//! the plugin's stderr with its message and location (`panicked at
//! src/lib.rs:12:5: ...`), which the host shows with the trap it causes.

use std::fmt;

use crate::args::UsageError;
use crate::error::Error;
use crate::json::ToJson;

/// How a probe went; the host turns it into the exit status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Every target answered (exit 0).
    Reached,
    /// No target answered (exit 1).
    NotReached,
    /// Some answered, some did not (exit 1).
    Partial,
}

impl Outcome {
    /// The outcome for `answered` of `total` targets.
    ///
    /// ```
    /// use icmp_host_sdk::Outcome;
    /// assert_eq!(Outcome::of(3, 3), Outcome::Reached);
    /// assert_eq!(Outcome::of(1, 3), Outcome::Partial);
    /// assert_eq!(Outcome::of(0, 3), Outcome::NotReached);
    /// ```
    pub fn of(answered: usize, total: usize) -> Outcome {
        match answered {
            0 => Outcome::NotReached,
            n if n >= total => Outcome::Reached,
            _ => Outcome::Partial,
        }
    }
}

/// What a finished plugin hands back.
#[derive(Debug, Clone, PartialEq)]
pub enum Output {
    /// A JSON result (`None` when it was streamed already) and its outcome.
    Report {
        /// The JSON document for stdout (over 1 MiB, [`crate::export_probe!`]
        /// hands it to the host in parts).
        json: Option<String>,
        /// How the probe went.
        outcome: Outcome,
    },
    /// Text the user asked for (`--help`), printed as is; exit 0.
    Text(String),
}

impl Output {
    /// `value` as the JSON result.
    ///
    /// ```
    /// use icmp_host_sdk::{Host, Outcome, Output};
    /// let out = Output::json(&Host::new("x", "192.0.2.1"), Outcome::NotReached);
    /// let Output::Report { json: Some(json), .. } = out else { unreachable!() };
    /// assert!(json.starts_with(r#"{"address":"192.0.2.1""#));
    /// ```
    pub fn json<T: ToJson + ?Sized>(value: &T, outcome: Outcome) -> Output {
        Output::Report {
            json: Some(value.to_json()),
            outcome,
        }
    }

    /// The end of a run whose results were streamed with
    /// [`crate::result_line`]: no final document, only the outcome.
    pub fn streamed(outcome: Outcome) -> Output {
        Output::Report {
            json: None,
            outcome,
        }
    }
}

/// Why a plugin could not do its job (exit 2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RunError {
    /// Bad arguments.
    Usage(String),
    /// The probe could not run.
    Failed(String),
}

impl fmt::Display for RunError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RunError::Usage(m) | RunError::Failed(m) => f.write_str(m),
        }
    }
}

impl From<UsageError> for RunError {
    fn from(e: UsageError) -> Self {
        RunError::Usage(e.0)
    }
}

impl From<Error> for RunError {
    fn from(e: Error) -> Self {
        match e {
            Error::InvalidArgument(m) => RunError::Usage(m),
            other => RunError::Failed(other.to_string()),
        }
    }
}

/// A plugin's entry point.
pub trait Probe {
    /// Runs with the arguments that followed the plugin's name.
    fn run(args: Vec<String>) -> Result<Output, RunError>;
}

/// What a panic says: `panicked at FILE:LINE:COL: MESSAGE`.
fn panic_report(info: &std::panic::PanicHookInfo<'_>) -> String {
    let payload = info.payload();
    let message = payload
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("(no message)");
    let mut report = String::from("panicked at ");
    if let Some(at) = info.location() {
        report.push_str(at.file());
        for n in [at.line(), at.column()] {
            report.push(':');
            report.push_str(&n.to_string());
        }
    }
    report.push_str(": ");
    report.push_str(message);
    report.push('\n');
    report
}

/// Reports panics on stderr, which the host keeps and shows with the trap.
fn install_panic_hook() {
    std::panic::set_hook(Box::new(|info| {
        use std::io::Write;
        let _ = std::io::stderr().write_all(panic_report(info).as_bytes());
    }));
}

/// A report larger than this goes to the host in parts of about this size
/// ([`crate::write_report`]), so neither side holds or copies it whole.
pub const REPORT_PART: usize = 1 << 20;

/// What `run` returns of a report: all of a small one; nothing of a large
/// one, handed over in parts. Past the run's output limit the host takes
/// no more parts and fails the run itself.
fn hand_over(json: String) -> Option<String> {
    if json.len() <= REPORT_PART {
        return Some(json);
    }
    for part in parts(&json, REPORT_PART) {
        if !crate::write_report(part) {
            break;
        }
    }
    None
}

/// `text` in pieces of at most `size` bytes (4 at least, a character's
/// most), split between characters.
fn parts(text: &str, size: usize) -> impl Iterator<Item = &str> {
    let mut rest = text;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        // A boundary is at most 3 bytes back, and not at 0.
        let mut end = size.max(4).min(rest.len());
        while !rest.is_char_boundary(end) {
            end -= 1;
        }
        // `end` is a boundary, so this always splits. (`split_at` would link
        // the panic that `Debug`-formats the string: about 7 KB.)
        let (part, after) = rest.split_at_checked(end).unwrap_or((rest, ""));
        rest = after;
        Some(part)
    })
}

#[doc(hidden)]
pub fn run_exported<P: Probe>(
    args: Vec<String>,
) -> Result<
    crate::bindings::icmp_host::probe::types::RunOutput,
    crate::bindings::icmp_host::probe::types::RunError,
> {
    use crate::bindings::icmp_host::probe::types as wit;
    install_panic_hook();
    match P::run(args) {
        Ok(Output::Text(t)) => Ok(wit::RunOutput::Text(t)),
        Ok(Output::Report { json, outcome }) => Ok(wit::RunOutput::Report(wit::Report {
            json: json.and_then(hand_over),
            outcome: match outcome {
                Outcome::Reached => wit::Outcome::Reached,
                Outcome::NotReached => wit::Outcome::NotReached,
                Outcome::Partial => wit::Outcome::Partial,
            },
        })),
        Err(RunError::Usage(m)) => Err(wit::RunError::Usage(m)),
        Err(RunError::Failed(m)) => Err(wit::RunError::Failed(m)),
    }
}

/// Exports a [`Probe`] as the plugin's `run`, with a panic hook that
/// reports the panic's message and location. Once per plugin crate.
///
/// ```
/// struct Noop;
/// impl icmp_host_sdk::Probe for Noop {
///     fn run(_: Vec<String>) -> Result<icmp_host_sdk::Output, icmp_host_sdk::RunError> {
///         Ok(icmp_host_sdk::Output::Text("nothing to do\n".into()))
///     }
/// }
/// icmp_host_sdk::export_probe!(Noop);
/// ```
#[macro_export]
macro_rules! export_probe {
    ($probe:ty) => {
        struct __IcmpHostExport;
        impl $crate::__private::bindings::Guest for __IcmpHostExport {
            fn run(
                args: ::std::vec::Vec<::std::string::String>,
            ) -> ::std::result::Result<
                $crate::__private::bindings::icmp_host::probe::types::RunOutput,
                $crate::__private::bindings::icmp_host::probe::types::RunError,
            > {
                $crate::__private::run_exported::<$probe>(args)
            }
        }
        $crate::__private::bindings::__export_probe_world!(__IcmpHostExport);
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn panic_report_names_message_and_location() {
        let report = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
        let seen = std::sync::Arc::clone(&report);
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            *seen.lock().unwrap() = panic_report(info);
        }));
        let line = line!() + 1;
        let _ = std::panic::catch_unwind(|| panic!("boom {}", 42));
        std::panic::set_hook(previous);
        let report = report.lock().unwrap().clone();
        assert_eq!(
            report,
            format!("panicked at guest-sdk/src/plugin.rs:{line}:45: boom 42\n")
        );
    }

    #[test]
    fn parts_split_between_characters_and_lose_nothing() {
        let text = "ab\u{e9}\u{1f600}cd"; // 1, 1, 2, 4, 1, 1 bytes
        let split = |size| parts(text, size).collect::<Vec<_>>();
        assert_eq!(split(100), [text]);
        assert_eq!(split(5), ["ab\u{e9}", "\u{1f600}c", "d"]);
        assert_eq!(split(4), ["ab\u{e9}", "\u{1f600}", "cd"]);
        // Never less than a character: 4 bytes at least.
        assert_eq!(split(1), split(4));
        assert_eq!(parts("", 4).count(), 0);
    }
}
