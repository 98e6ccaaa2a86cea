//! The engine's vocabulary: families, addresses, requests and replies.

pub use icmp_host_vocab::{Address, Family};

/// How a socket reaches the network.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Raw when available, datagram otherwise.
    Auto,
    /// Raw sockets (`CAP_NET_RAW`).
    Privileged,
    /// Datagram ("ping") sockets (`net.ipv4.ping_group_range`).
    Unprivileged,
}

/// An Echo Request as a guest asked for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EchoRequest {
    /// Where to send it.
    pub destination: Address,
    /// The guest's identifier.
    pub id: u16,
    /// The guest's sequence number.
    pub sequence: u16,
    /// Exact payload, or `None` for `payload_size` random bytes.
    pub payload: Option<Vec<u8>>,
    /// Payload size when `payload` is `None`.
    pub payload_size: u32,
    /// TTL / hop limit.
    pub ttl: u8,
    /// TOS / traffic class.
    pub traffic_class: u8,
    /// Don't Fragment.
    pub dont_fragment: bool,
}

/// Which clock stamped a reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimestampSource {
    /// `SO_TIMESTAMPNS`.
    Kernel,
    /// The host's monotonic clock when the reader saw the packet.
    HostMonotonic,
    /// `SO_TIMESTAMPING` transmit stamp and the kernel's receive stamp.
    KernelBoth,
}

/// A reply or ICMP error, routed to the socket that sent its request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    /// Who sent it.
    pub source: Address,
    /// Its family.
    pub family: Family,
    /// The guest's identifier of the request.
    pub id: u16,
    /// The guest's sequence number of the request.
    pub sequence: u16,
    /// ICMP type.
    pub icmp_type: u8,
    /// ICMP code.
    pub code: u8,
    /// Size of the ICMP message.
    pub bytes_received: u32,
    /// Arrival, ns since the Unix epoch.
    pub received_at_ns: u64,
    /// Which clock stamped the arrival.
    pub timestamp_source: TimestampSource,
    /// Round-trip time in ns.
    pub rtt_ns: u64,
    /// TTL / hop limit on arrival.
    pub ttl: Option<u8>,
    /// For errors: the quoted request's destination.
    pub original_destination: Option<Address>,
    /// For Packet Too Big / Fragmentation Needed: the MTU.
    pub mtu: Option<u32>,
    /// A reply from this source for this request came before.
    pub duplicate: bool,
}

/// Counters of a virtual socket.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SocketStats {
    /// Requests sent.
    pub sent: u64,
    /// Messages delivered.
    pub received: u64,
    /// Messages dropped because the queue was full.
    pub queue_drops: u64,
    /// Echo replies with a payload other than the request's.
    pub corrupted: u64,
    /// Kernel drops on the underlying kernel socket.
    pub kernel_drops: u64,
}
