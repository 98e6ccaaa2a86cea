//! # icmp-host guest SDK
//!
//! Write ICMP probes that run as sandboxed WebAssembly plugins inside
//! `icmp-host`. The host owns the privileged sockets; a plugin sees only
//! the `icmp-host:probe` WIT contract, wrapped here in Rust types that
//! follow icmplib 3.0.4:
//!
//! - sockets and messages: [`IcmpSocket`], [`EchoRequest`], [`Reply`]
//!   (with [`Reply::raise_for_status`]), typed [`Error`]s;
//! - built-in functions: [`ping()`], [`multiping()`], [`traceroute()`], [`resolve()`];
//! - result models with icmplib's field names: [`Host`], [`Hop`];
//! - plugin plumbing: [`Probe`], [`export_probe!`], [`Args`].
//!
//! Algorithms are written against the [`Network`] trait, so they run
//! natively against [`sim::SimNetwork`] in tests.
#![deny(missing_docs)]

extern crate self as icmp_host_sdk;

mod args;
#[doc(hidden)]
pub mod bindings;
mod error;
mod host;
mod icmp;
mod model;
mod multiping;
mod network;
mod ping;
mod plugin;
mod progress;
pub mod sim;
mod traceroute;

pub use args::{Arg, Args, PacketArgs, UsageError};
pub use error::{Error, IcmpError, PolicyRule};
pub use host::{IcmpSocket, SocketStats, resolve};
pub use icmp::{
    DEFAULT_PAYLOAD_SIZE, DEFAULT_TTL, EchoRequest, Mode, OpenOptions, PacketOptions, Reply,
    TimestampSource,
};
pub use icmp_host_vocab::{Address, Family, codes};
pub use model::{Host, Probe as ProbeRecord, ProbeStatus, Stats, jitter, mdev, round};
pub use multiping::{MultipingOptions, multiping};
pub use network::{HostNetwork, Match, Network, Socket};
pub use ping::{PingOptions, ping, resolve_one, unique_identifier};
pub use plugin::{Outcome, Output, Probe, RunError};
pub use progress::{Event, HopProbe, ProbeKind, Summary};
pub use traceroute::{Hop, Responder, Trace, TracerouteOptions, traceroute};

#[doc(hidden)]
pub mod __private {
    pub use crate::bindings;
    pub use crate::plugin::run_exported;
    pub use wit_bindgen;
}
