//! Writing a plugin: implement [`Probe`] and call [`export_probe!`].
//!
//! ```ignore
//! struct Hello;
//! impl icmp_host_sdk::Probe for Hello {
//!     fn run(args: Vec<String>) -> Result<icmp_host_sdk::Output, icmp_host_sdk::RunError> {
//!         Ok(icmp_host_sdk::Output::Text(format!("{args:?}\n")))
//!     }
//! }
//! icmp_host_sdk::export_probe!(Hello);
//! ```

use std::fmt;

use crate::args::UsageError;
use crate::error::Error;

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
        /// The JSON document for stdout.
        json: Option<String>,
        /// How the probe went.
        outcome: Outcome,
    },
    /// Text the user asked for (`--help`), printed as is; exit 0.
    Text(String),
}

impl Output {
    /// Serialises `value` as the result.
    pub fn json<T: serde::Serialize>(value: &T, outcome: Outcome) -> Result<Output, RunError> {
        let json = serde_json::to_string(value)
            .map_err(|e| RunError::Failed(format!("cannot encode the result: {e}")))?;
        Ok(Output::Report {
            json: Some(json),
            outcome,
        })
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

#[doc(hidden)]
pub fn run_exported<P: Probe>(
    args: Vec<String>,
) -> Result<
    crate::bindings::icmp_host::probe::types::RunOutput,
    crate::bindings::icmp_host::probe::types::RunError,
> {
    use crate::bindings::icmp_host::probe::types as wit;
    match P::run(args) {
        Ok(Output::Text(t)) => Ok(wit::RunOutput::Text(t)),
        Ok(Output::Report { json, outcome }) => Ok(wit::RunOutput::Report(wit::Report {
            json,
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

/// Exports a [`Probe`] as the plugin's `run`.
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
