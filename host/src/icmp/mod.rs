/*!
The ICMP engine: the one place that owns ICMP sockets.

Plugins get [`VirtualSocket`]s, each held by a [`Tenant`] within its
[`Quota`]. Underneath, each address family has one shared raw socket (a
*plane*, `plane`) read by one task that parses every datagram once
([`wire`]) and routes it by the wire identifier and sequence number the
engine chose when sending (`table`) to the owner's bounded queue (`queue`).
Beside it, send-only sockets: for socket-wide options (`raw`), and a
*lane* whose thread shares bursts of requests with their sender (`lane`).
Guests pick their own ids and sequences, as in icmplib; the engine maps
them to wire values from a randomised space, so no two guests — in this
process or another — can take each other's replies. Replies are also
checked against the destination and the payload.
*/

mod clock;
mod engine;
mod error;
mod lane;
mod plane;
mod queue;
mod raw;
mod reader;
mod socket;
mod table;
mod tenant;
mod transport;
mod types;
pub mod wire;

pub use engine::{Engine, EngineConfig, OpenOptions};
pub use error::Error;
pub use plane::PlaneStats;
pub use raw::RawSockets;
pub use reader::ReaderPlace;
pub use socket::{Started, VirtualSocket};
pub use table::{QUARANTINE, RETENTION};
pub use tenant::{Account, Quota, QuotaExceeded, Tenant, TenantCounters};
pub use transport::{KernelSocket, Transport};
pub use types::{Address, EchoRequest, Family, Mode, Reply, SocketStats, TimestampSource};

#[cfg(test)]
pub(crate) use transport::scripted;
