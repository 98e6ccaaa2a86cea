/*!
The ICMP wire format: zero-copy views of IPv4, IPv6, ICMPv4 and ICMPv6
packets, and [`Message`], the one parsed meaning the engine works with.

Contract: every parser here takes untrusted bytes and returns `Err` — never
panics — on anything short, inconsistent or corrupt. IPv4 header and ICMPv4
checksums are verified (raw sockets deliver packets before any check);
ICMPv6 checksums are verified by the kernel, which owns the pseudo-header.
*/

#[cfg(test)]
mod captures;
mod checksum;
mod icmp;
mod ipv4;
mod ipv6;
mod message;

pub use icmp::{EchoRequest, IcmpPacket};
pub use ipv4::Ipv4Packet;
pub use ipv6::Ipv6Packet;
pub use message::{
    Body, Ipv4Info, Message, Quote, parse_icmp, parse_ipv4_datagram, parse_sent_echo,
};

/// Why a packet was rejected. Small and `Copy`, so drop counters can say why.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Error {
    /// Shorter than its headers or length fields require.
    Truncated,
    /// A checksum does not match.
    BadChecksum,
    /// The IPv4 header length field is impossible.
    BadIhl,
    /// The IP version field is not the one expected.
    BadVersion,
    /// A length field contradicts the packet.
    BadLength,
    /// Well formed, but not the message expected here.
    Unexpected,
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Error::Truncated => "truncated packet",
            Error::BadChecksum => "bad checksum",
            Error::BadIhl => "bad IPv4 header length",
            Error::BadVersion => "bad IP version",
            Error::BadLength => "bad length field",
            Error::Unexpected => "not the message expected",
        })
    }
}

impl std::error::Error for Error {}

/// Result of a wire operation.
pub type Result<T> = std::result::Result<T, Error>;

/// A byte range of a header field.
type Field = std::ops::Range<usize>;

fn read_u16(buf: &[u8], f: Field) -> u16 {
    u16::from_be_bytes([buf[f.start], buf[f.start + 1]])
}

fn read_u32(buf: &[u8], f: Field) -> u32 {
    u32::from_be_bytes([
        buf[f.start],
        buf[f.start + 1],
        buf[f.start + 2],
        buf[f.start + 3],
    ])
}
