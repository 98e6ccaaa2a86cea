//! # icmp-host guest SDK
//!
//! Write ICMP probes that run as sandboxed WebAssembly plugins inside
//! `icmp-host`. The host owns the privileged sockets; a plugin sees only
//! the `icmp-host:probe` WIT contract, wrapped here in Rust types that
//! follow icmplib 3.0.4:
//!
//! - plugin plumbing: [`Probe`], [`export_probe!`], [`Args`], [`PacketArgs`],
//!   [`Output`];
//! - the host, as free functions: [`emit`], [`note`], [`result_line`],
//!   [`now`], [`sleep`], [`wall_clock`], [`local_time`], [`limits`],
//!   [`check_destination`], [`resolve`];
//! - building blocks: [`Flight`] / [`probe_all`] (send many requests, hear
//!   about each answer or timeout as it happens), [`Cidr`] and [`Range`]
//!   (address iteration), [`largest_fitting`] / [`path_mtu`] (DF size
//!   search), [`json`] (results without serde);
//! - built-in probes, written with those blocks: [`ping()`], [`multiping()`],
//!   [`traceroute()`];
//! - sockets and messages: [`IcmpSocket`], [`EchoRequest`], [`Reply`]
//!   (with [`Reply::raise_for_status`]), typed [`Error`]s;
//! - result models with icmplib's field names: [`Host`], [`Hop`].
//!
//! Algorithms are written against the [`Network`] trait, so they run
//! natively against [`sim::SimNetwork`] — a scripted network with a virtual
//! clock — in ordinary `cargo test`s.
//!
//! A whole plugin:
//!
//! ```
//! use icmp_host_sdk::{Args, HostNetwork, Outcome, Output, PingOptions, Probe, RunError};
//!
//! struct Hello;
//!
//! impl Probe for Hello {
//!     fn run(args: Vec<String>) -> Result<Output, RunError> {
//!         let target = args.first().ok_or(RunError::Usage("missing HOST".into()))?;
//!         let options = PingOptions { count: 1, ..PingOptions::default() };
//!         let host = icmp_host_sdk::ping(&mut HostNetwork, target, &options)?;
//!         let outcome = Outcome::of(host.is_alive() as usize, 1);
//!         Ok(Output::json(&host, outcome))
//!     }
//! }
//!
//! icmp_host_sdk::export_probe!(Hello);
//! ```
#![deny(missing_docs)]

extern crate self as icmp_host_sdk;

mod args;
#[doc(hidden)]
// Generated FFI glue (the code `wit_bindgen::generate!` would expand to).
#[allow(clippy::all, missing_docs, unsafe_code)]
pub mod bindings;
mod error;
pub mod flight;
mod host;
mod icmp;
pub mod json;
mod limits;
mod model;
mod mtu;
mod multiping;
mod network;
mod ping;
mod plugin;
mod progress;
mod range;
pub mod sim;
mod traceroute;

pub use args::{Arg, Args, PacketArgs, UsageError};
pub use error::{Error, IcmpError, PolicyRule};
pub use flight::{Fate, Flight, FlightEvent, FlightOptions, probe_all};
pub use host::{
    IcmpSocket, SocketStats, check_destination, emit, limits, local_time, note, now, resolve,
    result_line, sleep, wall_clock, watched, write_report,
};
pub use icmp::{
    DEFAULT_PAYLOAD_SIZE, DEFAULT_TTL, EchoRequest, Mode, OpenOptions, PacketOptions, Reply,
    TimestampSource, header_len,
};
pub use icmp_host_vocab::{Address, Family, codes};
pub use limits::Limits;
pub use model::{Host, Probe as ProbeRecord, ProbeStatus, Stats, jitter, mdev, round};
pub use mtu::{Fit, MtuOptions, PathMtu, Reporter, largest_fitting, path_mtu};
pub use multiping::{MultipingOptions, multiping, multiping_each};
pub use network::{HostNetwork, Match, Network, Socket};
pub use ping::{PingOptions, ping, resolve_one, unique_identifier};
pub use plugin::{Outcome, Output, Probe, REPORT_PART, RunError};
pub use progress::{Event, HopProbe, ProbeKind, Summary};
pub use range::{Cidr, Range, RangeError};
pub use traceroute::{Hop, Responder, Trace, TracerouteOptions, traceroute};

#[doc(hidden)]
pub mod __private {
    pub use crate::bindings;
    pub use crate::plugin::run_exported;
    pub use wit_bindgen;
}
