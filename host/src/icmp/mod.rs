/*!
The ICMP engine: the one place that owns ICMP sockets.

Plugins get [`VirtualSocket`]s. Underneath, each address family has one
shared raw socket (a *plane*) read by one task that parses every datagram
once ([`wire`]) and routes it by the wire identifier and sequence number the
engine chose when sending ([`demux`]). Guests pick their own ids and
sequences, as in icmplib; the engine maps them to wire values from a
randomised space, so no two guests — in this process or another — can take
each other's replies. Replies are also checked against the destination and
the payload.
*/

mod demux;
mod engine;
mod error;
mod transport;
mod types;
pub mod wire;

pub use demux::MAX_RETENTION;
pub use engine::{Engine, EngineConfig, OpenOptions, PlaneStats, RawSockets, VirtualSocket};
pub use error::Error;
pub use transport::{KernelSocket, Transport};
pub use types::{Address, EchoRequest, Family, Mode, Reply, SocketStats, TimestampSource};

#[cfg(test)]
pub(crate) use transport::scripted;
