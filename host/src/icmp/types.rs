//! The engine's vocabulary: families, addresses, requests and replies.

use std::fmt;
use std::net::{IpAddr, SocketAddr, SocketAddrV4, SocketAddrV6};

/// IP version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Family {
    /// IPv4.
    V4,
    /// IPv6.
    V6,
}

impl Family {
    /// The family of an address.
    pub fn of(ip: IpAddr) -> Family {
        match ip {
            IpAddr::V4(_) => Family::V4,
            IpAddr::V6(_) => Family::V6,
        }
    }
}

impl fmt::Display for Family {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Family::V4 => "IPv4",
            Family::V6 => "IPv6",
        })
    }
}

/// An IP address plus the interface scope of a link-local IPv6 address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Address {
    /// The address.
    pub ip: IpAddr,
    /// Interface index for scoped IPv6 addresses; 0 otherwise.
    pub scope_id: u32,
}

impl Address {
    /// An unscoped address.
    pub fn new(ip: IpAddr) -> Address {
        Address { ip, scope_id: 0 }
    }

    /// The address family.
    pub fn family(&self) -> Family {
        Family::of(self.ip)
    }

    /// As a socket address (ICMP has no ports: port 0).
    pub fn to_socket_addr(self) -> SocketAddr {
        match self.ip {
            IpAddr::V4(ip) => SocketAddr::V4(SocketAddrV4::new(ip, 0)),
            IpAddr::V6(ip) => SocketAddr::V6(SocketAddrV6::new(ip, 0, 0, self.scope_id)),
        }
    }

    /// From a socket address, keeping the IPv6 scope.
    pub fn from_socket_addr(a: SocketAddr) -> Address {
        match a {
            SocketAddr::V4(a) => Address::new((*a.ip()).into()),
            SocketAddr::V6(a) => Address {
                ip: (*a.ip()).into(),
                scope_id: a.scope_id(),
            },
        }
    }
}

impl fmt::Display for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.scope_id {
            0 => write!(f, "{}", self.ip),
            s => write!(f, "{}%{}", self.ip, s),
        }
    }
}

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
