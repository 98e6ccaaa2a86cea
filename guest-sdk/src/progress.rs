//! Progress events a probe reports while it runs. The host renders them
//! like ping and traceroute, as NDJSON, or not at all.

use std::time::Duration;

use crate::Address;
use crate::icmp::Reply;

/// The kind of probe, for the header line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProbeKind {
    /// `PING host (addr) 56(84) bytes of data.`
    Ping,
    /// `traceroute to host (addr), 30 hops max, 84 byte packets`
    Traceroute,
    /// No header.
    Other,
}

/// One probe of a traceroute hop, as the progress line shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct HopProbe {
    /// The responder; `None` for a timeout.
    pub responder: Option<Address>,
    /// Round-trip time when answered.
    pub rtt: Option<Duration>,
    /// ICMP type of the answer (0 for a timeout).
    pub icmp_type: u8,
    /// ICMP code of the answer.
    pub code: u8,
}

/// A finished ping's statistics, for ping's summary lines.
#[derive(Debug, Clone, PartialEq)]
pub struct Summary {
    /// The target as the user wrote it.
    pub target: String,
    /// Requests sent.
    pub packets_sent: u32,
    /// Echo replies received (duplicates not counted).
    pub packets_received: u32,
    /// Duplicate replies.
    pub duplicates: u32,
    /// ICMP errors received.
    pub errors: u32,
    /// Smallest RTT.
    pub min_rtt: Duration,
    /// Mean RTT.
    pub avg_rtt: Duration,
    /// Largest RTT.
    pub max_rtt: Duration,
    /// Population standard deviation of the RTTs.
    pub mdev: Duration,
    /// Time from first send to the end.
    pub elapsed: Duration,
}

/// Something a person watching the probe would want to see.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// A probe starts.
    Start {
        /// Which header to print.
        kind: ProbeKind,
        /// The target as written.
        target: String,
        /// The resolved address.
        address: Option<Address>,
        /// Payload bytes per request.
        payload_size: u32,
        /// Last distance a traceroute tries.
        max_hops: u8,
    },
    /// A reply or ICMP error arrived.
    Reply(Reply),
    /// A request got no answer in time.
    Timeout {
        /// Where it went.
        destination: Address,
        /// Its identifier.
        id: u16,
        /// Its sequence number.
        sequence: u16,
    },
    /// A traceroute hop is complete.
    Hop {
        /// The TTL of its probes.
        distance: u8,
        /// Every probe sent at this distance.
        probes: Vec<HopProbe>,
    },
    /// A ping finished.
    Summary(Summary),
    /// Free text.
    Note(String),
    /// A JSON value to write to stdout as its own line, at once (streaming).
    ResultLine(String),
}
