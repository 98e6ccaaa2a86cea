//! Requests, replies and socket options: icmplib's `ICMPRequest`,
//! `ICMPReply` and socket parameters in Rust shape.

use std::time::Duration;

use crate::codes::{self, Kind};
use crate::error::IcmpError;
use crate::{Address, Family};

/// icmplib's default payload size in bytes.
pub const DEFAULT_PAYLOAD_SIZE: u32 = 56;
/// icmplib's default TTL / hop limit.
pub const DEFAULT_TTL: u8 = 64;

/// How the host reaches the network for a socket (icmplib's `privileged`,
/// plus automatic choice).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Mode {
    /// Raw sockets when the host may open them, datagram sockets otherwise.
    #[default]
    Auto,
    /// Raw ICMP sockets (`privileged=True`).
    Privileged,
    /// ICMP datagram sockets (`privileged=False`).
    Unprivileged,
}

/// How to open an [`crate::IcmpSocket`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenOptions {
    /// Address family of the socket.
    pub family: Family,
    /// Source address; `None` lets the kernel choose.
    pub source: Option<Address>,
    /// Raw, datagram or automatic.
    pub mode: Mode,
    /// Interface to send through (`SO_BINDTODEVICE`).
    pub interface: Option<String>,
}

impl OpenOptions {
    /// Defaults for a family: no source, automatic mode, any interface.
    pub fn new(family: Family) -> OpenOptions {
        OpenOptions {
            family,
            source: None,
            mode: Mode::Auto,
            interface: None,
        }
    }
}

/// An ICMP Echo Request (icmplib's `ICMPRequest`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EchoRequest {
    /// Where to send it.
    pub destination: Address,
    /// Identifier (the host maps it to a wire value of its own).
    pub id: u16,
    /// Sequence number (mapped like `id`).
    pub sequence: u16,
    /// Exact payload; `None` sends `payload_size` random bytes.
    pub payload: Option<Vec<u8>>,
    /// Payload size when `payload` is `None`.
    pub payload_size: u32,
    /// TTL / hop limit.
    pub ttl: u8,
    /// IPv4 TOS / IPv6 traffic class.
    pub traffic_class: u8,
    /// Forbid fragmentation (DF bit).
    pub dont_fragment: bool,
}

impl EchoRequest {
    /// A request with icmplib's defaults: 56 random bytes, TTL 64, class 0.
    ///
    /// ```
    /// use icmp_host_sdk::EchoRequest;
    /// let r = EchoRequest::new("192.0.2.1".parse().unwrap(), 7, 1)
    ///     .with_payload_size(1372)
    ///     .with_dont_fragment(true);
    /// assert_eq!(r.packet_len(), 1400);
    /// ```
    pub fn new(destination: Address, id: u16, sequence: u16) -> EchoRequest {
        EchoRequest {
            destination,
            id,
            sequence,
            payload: None,
            payload_size: DEFAULT_PAYLOAD_SIZE,
            ttl: DEFAULT_TTL,
            traffic_class: 0,
            dont_fragment: false,
        }
    }

    /// Bytes of payload this request carries.
    pub fn payload_len(&self) -> usize {
        match &self.payload {
            Some(p) => p.len(),
            None => self.payload_size as usize,
        }
    }

    /// Size of the IP packet on the wire: IP header (20 / 40 bytes), ICMP
    /// header (8) and payload — the number an MTU is compared with.
    pub fn packet_len(&self) -> usize {
        header_len(self.destination.family()) + self.payload_len()
    }

    /// The same request with `size` random payload bytes.
    pub fn with_payload_size(mut self, size: u32) -> EchoRequest {
        self.payload = None;
        self.payload_size = size;
        self
    }

    /// The same request with another TTL / hop limit.
    pub fn with_ttl(mut self, ttl: u8) -> EchoRequest {
        self.ttl = ttl;
        self
    }

    /// The same request with Don't Fragment set or cleared.
    pub fn with_dont_fragment(mut self, yes: bool) -> EchoRequest {
        self.dont_fragment = yes;
        self
    }
}

/// IP plus ICMP header bytes of an echo request of `family`.
pub fn header_len(family: Family) -> usize {
    match family {
        Family::V4 => 20 + 8,
        Family::V6 => 40 + 8,
    }
}

/// Which clock produced a receive time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimestampSource {
    /// The kernel stamped the packet on arrival.
    Kernel,
    /// The host's monotonic clock, read after the packet was read.
    HostMonotonic,
    /// The kernel stamped both the request as it left and the reply.
    KernelBoth,
}

impl TimestampSource {
    /// The name in results: `kernel`, `host-monotonic`, `kernel-both`.
    pub fn name(self) -> &'static str {
        match self {
            TimestampSource::Kernel => "kernel",
            TimestampSource::HostMonotonic => "host-monotonic",
            TimestampSource::KernelBoth => "kernel-both",
        }
    }
}

impl crate::json::ToJson for TimestampSource {
    fn write_json(&self, out: &mut String) {
        crate::json::Plain(self.name()).write_json(out)
    }
}

/// An answer to a request: an Echo Reply or an ICMP error quoting it
/// (icmplib's `ICMPReply`, plus TTL, RTT, MTU and the quoted destination).
#[derive(Debug, Clone, PartialEq)]
pub struct Reply {
    /// Who sent it: the target, or a router reporting an error.
    pub source: Address,
    /// Family of the message.
    pub family: Family,
    /// Identifier of the matched request.
    pub id: u16,
    /// Sequence number of the matched request.
    pub sequence: u16,
    /// ICMP type.
    pub icmp_type: u8,
    /// ICMP code.
    pub code: u8,
    /// Size of the ICMP message as received.
    pub bytes_received: u32,
    /// Arrival time, nanoseconds since the Unix epoch.
    pub received_at: u64,
    /// Which clock stamped the arrival.
    pub timestamp_source: TimestampSource,
    /// Round-trip time measured by the host.
    pub rtt: Duration,
    /// TTL / hop limit of the arriving packet.
    pub ttl: Option<u8>,
    /// For errors: the destination of the quoted request.
    pub original_destination: Option<Address>,
    /// For Packet Too Big / Fragmentation Needed: the next-hop MTU.
    pub mtu: Option<u32>,
    /// A reply for this request had already arrived.
    pub duplicate: bool,
}

impl Reply {
    /// What kind of message this is.
    pub fn kind(&self) -> Kind {
        codes::kind(self.family, self.icmp_type, self.code)
    }

    /// Whether this is an Echo Reply.
    pub fn is_echo_reply(&self) -> bool {
        self.kind() == Kind::EchoReply
    }

    /// `Ok` for an Echo Reply, the classified error otherwise (icmplib's
    /// `ICMPReply.raise_for_status`).
    ///
    /// ```no_run
    /// # fn demo(reply: icmp_host_sdk::Reply) {
    /// match reply.raise_for_status() {
    ///     Ok(()) => println!("alive, {:?}", reply.rtt),
    ///     Err(e) => println!("{e}"), // e.g. "Destination Host Unreachable (from 192.0.2.1)"
    /// }
    /// # }
    /// ```
    pub fn raise_for_status(&self) -> Result<(), IcmpError> {
        match IcmpError::from_reply(self) {
            None => Ok(()),
            Some(e) => Err(e),
        }
    }

    /// The RTT in milliseconds, as icmplib reports it.
    pub fn rtt_ms(&self) -> f64 {
        self.rtt.as_nanos() as f64 / 1e6
    }

    /// The words for an error or note ("Destination Host Unreachable",
    /// "Redirect Host"); `None` for an Echo Reply.
    pub fn describe(&self) -> Option<String> {
        codes::describe(self.family, self.icmp_type, self.code)
    }
}

/// What every built-in probe's packets carry and where they leave from:
/// icmplib's `source`, `family`, `payload`, `payload_size`, `traffic_class`
/// and `privileged`, plus the interface.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PacketOptions {
    /// Source address; for multiping, used for hosts of its family.
    pub source: Option<Address>,
    /// Family to resolve names in; `None` prefers IPv4.
    pub family: Option<Family>,
    /// Exact payload; `None` sends `payload_size` random bytes.
    pub payload: Option<Vec<u8>>,
    /// Payload size when `payload` is `None` (56).
    pub payload_size: u32,
    /// IPv4 TOS / IPv6 traffic class (0).
    pub traffic_class: u8,
    /// Raw, datagram or automatic.
    pub mode: Mode,
    /// Interface to send through.
    pub interface: Option<String>,
}

impl Default for PacketOptions {
    fn default() -> Self {
        PacketOptions {
            source: None,
            family: None,
            payload: None,
            payload_size: DEFAULT_PAYLOAD_SIZE,
            traffic_class: 0,
            mode: Mode::Auto,
            interface: None,
        }
    }
}

impl PacketOptions {
    /// Bytes of payload each request carries.
    pub fn payload_len(&self) -> u32 {
        self.payload
            .as_ref()
            .map_or(self.payload_size, |p| p.len() as u32)
    }

    /// How to open a socket of `family` for these packets.
    pub fn open_options(&self, family: Family) -> OpenOptions {
        OpenOptions {
            family,
            source: self.source,
            mode: self.mode,
            interface: self.interface.clone(),
        }
    }

    /// Flight settings that open sockets like these options say, with
    /// `timeout` per request (pacing and window left at their defaults).
    pub fn flight(&self, timeout: Duration) -> crate::flight::FlightOptions {
        crate::flight::FlightOptions {
            timeout,
            source: self.source,
            mode: self.mode,
            interface: self.interface.clone(),
            ..crate::flight::FlightOptions::default()
        }
    }

    /// An echo request with these packet settings.
    pub fn request(&self, destination: Address, id: u16, sequence: u16, ttl: u8) -> EchoRequest {
        EchoRequest {
            destination,
            id,
            sequence,
            payload: self.payload.clone(),
            payload_size: self.payload_size,
            ttl,
            traffic_class: self.traffic_class,
            dont_fragment: false,
        }
    }
}
