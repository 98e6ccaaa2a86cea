//! [`Message`]: what a received ICMP packet means to the engine — an Echo
//! Reply, an error quoting one of our Echo Requests, or something else.

use std::net::{IpAddr, Ipv4Addr};

use super::icmp::{IcmpPacket, echo_request_type};
use super::{Error, Ipv4Packet, Ipv6Packet, Result};
use crate::icmp::Family;

const PROTO_ICMP: u8 = 1;
const PROTO_ICMPV6: u8 = 58;

/// A parsed ICMP message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Message<'a> {
    /// Family of the message.
    pub family: Family,
    /// ICMP type.
    pub icmp_type: u8,
    /// ICMP code.
    pub code: u8,
    /// Length of the ICMP message (header and data).
    pub len: usize,
    /// The part the engine acts on.
    pub body: Body<'a>,
}

/// The part of a message the engine acts on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Body<'a> {
    /// An Echo Reply.
    EchoReply {
        /// Identifier field.
        ident: u16,
        /// Sequence number field.
        seq_no: u16,
        /// Echoed payload.
        data: &'a [u8],
    },
    /// An error (unreachable, time exceeded, too big, parameter problem,
    /// redirect, source quench) that quotes an Echo Request.
    Error {
        /// What the quote says about the original request.
        quote: Quote,
        /// MTU of Packet Too Big / Fragmentation Needed.
        mtu: Option<u32>,
    },
    /// Anything else: Echo Requests (a raw socket sees our own on
    /// loopback), errors about other traffic, other types.
    Other,
}

/// The original Echo Request as quoted inside an ICMP error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quote {
    /// Source of the original request.
    pub source: IpAddr,
    /// Destination of the original request.
    pub destination: IpAddr,
    /// Its identifier.
    pub ident: u16,
    /// Its sequence number.
    pub seq_no: u16,
}

/// The IPv4 header fields of a raw-socket datagram the engine keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ipv4Info {
    /// Sender.
    pub source: Ipv4Addr,
    /// TTL on arrival.
    pub ttl: u8,
}

/// Parses what a raw IPv4 ICMP socket delivers: the IPv4 header (options
/// allowed) and the ICMP message, both checksums verified.
pub fn parse_ipv4_datagram(buf: &[u8]) -> Result<(Ipv4Info, Message<'_>)> {
    let ip = Ipv4Packet::new_checked(buf)?;
    if ip.protocol() != PROTO_ICMP {
        return Err(Error::BadVersion);
    }
    let info = Ipv4Info {
        source: ip.src_addr(),
        ttl: ip.ttl(),
    };
    let message = parse_icmp(Family::V4, ip.into_payload(), true)?;
    Ok((info, message))
}

/// Where a request handed back with its transmit stamp may begin: a raw
/// socket gets the packet from its link-layer header (none, Ethernet,
/// Linux cooked capture, a VLAN tag, a 4-byte tunnel header), a datagram
/// socket the ICMP message alone.
const LINK_HEADERS: [usize; 5] = [0, 14, 16, 18, 4];

/// The identifier and sequence number of one of our own Echo Requests, as
/// the kernel hands it back with its transmit stamp: the ICMP message, or
/// (raw sockets) the frame carrying it. Each candidate start must parse as
/// a whole, checksums and lengths included, and be an Echo Request.
pub fn parse_sent_echo(family: Family, buf: &[u8]) -> Result<(u16, u16)> {
    LINK_HEADERS
        .iter()
        .filter_map(|&at| buf.get(at..))
        .find_map(|frame| sent_echo_at(family, frame).ok())
        .ok_or(Error::Unexpected)
}

fn sent_echo_at(family: Family, buf: &[u8]) -> Result<(u16, u16)> {
    let ip6;
    let icmp = match (family, buf.first().map(|b| b >> 4)) {
        (Family::V4, Some(4)) => {
            let ip = Ipv4Packet::new_checked(buf)?;
            if ip.protocol() != PROTO_ICMP {
                return Err(Error::Unexpected);
            }
            ip.into_payload()
        }
        (Family::V6, Some(6)) => {
            ip6 = Ipv6Packet::new_checked(buf)?;
            match ip6.upper_layer()? {
                (PROTO_ICMPV6, payload) => payload,
                _ => return Err(Error::Unexpected),
            }
        }
        // An ICMP message: an Echo Request (type 8 or 128) never starts
        // with the nibble 4 or 6.
        _ => buf,
    };
    let icmp = IcmpPacket::new_checked(icmp)?;
    if icmp.msg_type() != echo_request_type(family) {
        return Err(Error::Unexpected);
    }
    Ok((icmp.echo_ident(), icmp.echo_seq_no()))
}

/// Parses an ICMP message without its IP header: raw IPv6 sockets and
/// datagram sockets deliver these. `verify_checksum` applies to ICMPv4 only.
pub fn parse_icmp(family: Family, buf: &[u8], verify_checksum: bool) -> Result<Message<'_>> {
    let icmp = IcmpPacket::new_checked(buf)?;
    if verify_checksum && family == Family::V4 && !icmp.verify_checksum() {
        return Err(Error::BadChecksum);
    }
    let (icmp_type, code) = (icmp.msg_type(), icmp.msg_code());
    let body = match (family, icmp_type) {
        (Family::V4, 0) | (Family::V6, 129) => Body::EchoReply {
            ident: icmp.echo_ident(),
            seq_no: icmp.echo_seq_no(),
            data: &buf[8..],
        },
        // Destination Unreachable, Source Quench, Redirect, Time Exceeded,
        // Parameter Problem: RFC 792 quotes the IP header + 8 bytes.
        (Family::V4, 3 | 4 | 5 | 11 | 12) => match quote_v4(icmp.data()) {
            Some(quote) => Body::Error {
                quote,
                mtu: (icmp_type == 3 && code == 4).then(|| u32::from(icmp.v4_next_hop_mtu())),
            },
            None => Body::Other,
        },
        // Destination Unreachable, Packet Too Big, Time Exceeded, Parameter
        // Problem: RFC 4443 quotes as much of the packet as fits.
        (Family::V6, 1..=4) => match quote_v6(icmp.data()) {
            Some(quote) => Body::Error {
                quote,
                mtu: (icmp_type == 2).then(|| icmp.v6_mtu()),
            },
            None => Body::Other,
        },
        _ => Body::Other,
    };
    Ok(Message {
        family,
        icmp_type,
        code,
        len: icmp.total_len(),
        body,
    })
}

/// The Echo Request quoted in an ICMPv4 error, if that is what it quotes.
fn quote_v4(data: &[u8]) -> Option<Quote> {
    let ip = Ipv4Packet::new_quoted(data).ok()?;
    if ip.protocol() != PROTO_ICMP {
        return None;
    }
    let echo = quoted_echo(Family::V4, ip.payload())?;
    Some(Quote {
        source: ip.src_addr().into(),
        destination: ip.dst_addr().into(),
        ident: echo.echo_ident(),
        seq_no: echo.echo_seq_no(),
    })
}

/// The Echo Request quoted in an ICMPv6 error, past extension headers.
fn quote_v6(data: &[u8]) -> Option<Quote> {
    let ip = Ipv6Packet::new_checked(data).ok()?;
    let (proto, rest) = ip.upper_layer().ok()?;
    if proto != PROTO_ICMPV6 {
        return None;
    }
    let echo = quoted_echo(Family::V6, rest)?;
    Some(Quote {
        source: ip.src_addr().into(),
        destination: ip.dst_addr().into(),
        ident: echo.echo_ident(),
        seq_no: echo.echo_seq_no(),
    })
}

fn quoted_echo(family: Family, buf: &[u8]) -> Option<IcmpPacket<&[u8]>> {
    let echo = IcmpPacket::new_checked(buf).ok()?;
    (echo.msg_type() == echo_request_type(family)).then_some(echo)
}

#[cfg(test)]
mod tests {
    use super::super::icmp::EchoRequest;
    use super::super::ipv4::tests::header as ipv4;
    use super::super::ipv6::tests::header as ipv6;
    use super::*;

    fn echo(family: Family, ident: u16, seq_no: u16, data: &[u8]) -> Vec<u8> {
        let req = EchoRequest {
            ident,
            seq_no,
            data,
        };
        let mut buf = vec![0; req.buffer_len()];
        req.emit(family, &mut buf);
        buf
    }

    /// An ICMPv4 message of `t`/`c` with `rest` (4 bytes) and `data`.
    fn icmp4(t: u8, c: u8, rest: [u8; 4], data: &[u8]) -> Vec<u8> {
        let mut m = vec![t, c, 0, 0];
        m.extend_from_slice(&rest);
        m.extend_from_slice(data);
        let sum = super::super::checksum::compute(&m);
        m[2..4].copy_from_slice(&sum.to_be_bytes());
        m
    }

    #[test]
    fn sent_requests_are_found_behind_any_link_header() {
        let v4 = echo(Family::V4, 0x1234, 9, b"payload");
        let v6 = echo(Family::V6, 0x4321, 7, b"payload");
        // A datagram socket gets the ICMP message alone.
        assert_eq!(parse_sent_echo(Family::V4, &v4), Ok((0x1234, 9)));
        assert_eq!(parse_sent_echo(Family::V6, &v6), Ok((0x4321, 7)));
        // A raw socket on loopback gets an Ethernet frame (as captured:
        // two zero MAC addresses, then the ethertype).
        let mut frame = vec![0u8; 12];
        frame.extend_from_slice(&[0x08, 0x00]);
        frame.extend_from_slice(&ipv4(&[], &v4));
        assert_eq!(parse_sent_echo(Family::V4, &frame), Ok((0x1234, 9)));
        let mut frame = vec![0u8; 12];
        frame.extend_from_slice(&[0x86, 0xdd]);
        frame.extend_from_slice(&ipv6(58, &v6));
        assert_eq!(parse_sent_echo(Family::V6, &frame), Ok((0x4321, 7)));
        // Not an Echo Request, or nothing whole: refused.
        let reply = icmp4(0, 0, [0x12, 0x34, 0, 9], b"payload");
        assert_eq!(parse_sent_echo(Family::V4, &reply), Err(Error::Unexpected));
        assert_eq!(
            parse_sent_echo(Family::V4, &frame[..20]),
            Err(Error::Unexpected)
        );
        assert_eq!(parse_sent_echo(Family::V4, &[]), Err(Error::Unexpected));
    }

    #[test]
    fn echo_reply_inside_ipv4() {
        let mut reply = echo(Family::V4, 0xbeef, 3, b"hello");
        reply[0] = 0;
        reply[2..4].fill(0);
        let sum = super::super::checksum::compute(&reply);
        reply[2..4].copy_from_slice(&sum.to_be_bytes());
        let dgram = ipv4(&[], &reply);
        let (info, m) = parse_ipv4_datagram(&dgram).unwrap();
        assert_eq!(info.ttl, 64);
        assert_eq!(info.source, Ipv4Addr::new(10, 0, 0, 1));
        assert_eq!(m.len, 13);
        assert_eq!(
            m.body,
            Body::EchoReply {
                ident: 0xbeef,
                seq_no: 3,
                data: b"hello"
            }
        );
        let mut bad = dgram.clone();
        *bad.last_mut().unwrap() ^= 0xff;
        assert_eq!(parse_ipv4_datagram(&bad).unwrap_err(), Error::BadChecksum);
    }

    #[test]
    fn time_exceeded_quoting_a_header_with_options() {
        // The router quotes our request's IPv4 header (with 4 bytes of
        // options) and the first 8 bytes of the echo request.
        let request = echo(Family::V4, 0x0102, 0x0304, &[0; 56]);
        let quoted = ipv4(&[1, 1, 1, 0], &request); // NOP NOP NOP EOL
        let err = icmp4(11, 0, [0; 4], &quoted[..24 + 8]);
        let m = parse_icmp(Family::V4, &err, true).unwrap();
        assert_eq!((m.icmp_type, m.code), (11, 0));
        assert_eq!(
            m.body,
            Body::Error {
                quote: Quote {
                    source: "10.0.0.1".parse().unwrap(),
                    destination: "10.0.0.2".parse().unwrap(),
                    ident: 0x0102,
                    seq_no: 0x0304
                },
                mtu: None
            }
        );
    }

    #[test]
    fn fragmentation_needed_carries_the_mtu() {
        let request = echo(Family::V4, 1, 2, &[0; 8]);
        let quoted = ipv4(&[], &request);
        let err = icmp4(3, 4, [0, 0, 0x05, 0xdc], &quoted[..28]);
        let m = parse_icmp(Family::V4, &err, true).unwrap();
        assert!(matches!(
            m.body,
            Body::Error {
                mtu: Some(1500),
                ..
            }
        ));
    }

    #[test]
    fn errors_quoting_other_traffic_are_other() {
        let mut quoted = ipv4(&[], &[0; 8]);
        quoted[9] = 17; // UDP
        let err = icmp4(3, 3, [0; 4], &quoted);
        assert_eq!(
            parse_icmp(Family::V4, &err, false).unwrap().body,
            Body::Other
        );
        // Quote truncated inside the echo header.
        let quoted = ipv4(&[], &echo(Family::V4, 1, 2, &[]));
        let err = icmp4(11, 0, [0; 4], &quoted[..24]);
        assert_eq!(
            parse_icmp(Family::V4, &err, true).unwrap().body,
            Body::Other
        );
        // Our own echo request, as loopback shows it to a raw socket.
        let req = echo(Family::V4, 1, 2, &[]);
        assert_eq!(
            parse_icmp(Family::V4, &req, true).unwrap().body,
            Body::Other
        );
    }

    #[test]
    fn ipv6_packet_too_big_with_extension_header() {
        let request = echo(Family::V6, 0x0a0b, 0x0c0d, &[0; 16]);
        let mut ext = vec![58, 0, 1, 4, 0, 0, 0, 0]; // destination options, 8 bytes
        ext.extend_from_slice(&request);
        let quoted = ipv6(60, &ext);
        let mut err = vec![2, 0, 0, 0, 0, 0, 0x05, 0x00]; // MTU 1280
        err.extend_from_slice(&quoted);
        let m = parse_icmp(Family::V6, &err, false).unwrap();
        assert_eq!(
            m.body,
            Body::Error {
                quote: Quote {
                    source: "2001:db8::1".parse().unwrap(),
                    destination: "2001:db8::2".parse().unwrap(),
                    ident: 0x0a0b,
                    seq_no: 0x0c0d
                },
                mtu: Some(1280)
            }
        );
    }

    #[test]
    fn ipv6_echo_reply_and_neighbour_solicitation() {
        let reply = [129, 0, 0, 0, 0, 5, 0, 6, 0xaa];
        let m = parse_icmp(Family::V6, &reply, false).unwrap();
        assert_eq!(
            m.body,
            Body::EchoReply {
                ident: 5,
                seq_no: 6,
                data: &[0xaa]
            }
        );
        let ns = [135, 0, 0, 0, 0, 0, 0, 0];
        assert_eq!(
            parse_icmp(Family::V6, &ns, false).unwrap().body,
            Body::Other
        );
    }
}
