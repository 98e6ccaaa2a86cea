//! IPv6 header view (RFC 8200), with extension headers walked to the
//! upper-layer header (needed for headers quoted in ICMPv6 errors).

use std::net::Ipv6Addr;

use super::{Error, Field, Result, read_u16};

mod field {
    use super::Field;
    pub const VERSION: usize = 0;
    pub const PAYLOAD_LEN: Field = 4..6;
    pub const NEXT_HEADER: usize = 6;
    pub const HOP_LIMIT: usize = 7;
    pub const SRC_ADDR: Field = 8..24;
    pub const DST_ADDR: Field = 24..40;
}

/// Fixed header length.
pub const HEADER_LEN: usize = 40;

/// Next-header values of extension headers we step over.
mod next_header {
    pub const HOP_BY_HOP: u8 = 0;
    pub const ROUTING: u8 = 43;
    pub const FRAGMENT: u8 = 44;
    pub const AUTH: u8 = 51;
    pub const DEST_OPTIONS: u8 = 60;
}

/// A read-only view of an IPv6 packet (whole or quoted).
#[derive(Debug, Clone, Copy)]
pub struct Ipv6Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Ipv6Packet<T> {
    /// Wraps a buffer holding at least the fixed header, version 6. The
    /// payload may be cut short (a quote in an ICMPv6 error).
    pub fn new_checked(buffer: T) -> Result<Self> {
        let buf = buffer.as_ref();
        if buf.len() < HEADER_LEN {
            return Err(Error::Truncated);
        }
        if buf[field::VERSION] >> 4 != 6 {
            return Err(Error::BadVersion);
        }
        Ok(Ipv6Packet { buffer })
    }

    /// Payload length field.
    pub fn payload_len(&self) -> u16 {
        read_u16(self.buffer.as_ref(), field::PAYLOAD_LEN)
    }

    /// Next header of the fixed header.
    pub fn next_header(&self) -> u8 {
        self.buffer.as_ref()[field::NEXT_HEADER]
    }

    /// Hop limit.
    pub fn hop_limit(&self) -> u8 {
        self.buffer.as_ref()[field::HOP_LIMIT]
    }

    /// Source address.
    pub fn src_addr(&self) -> Ipv6Addr {
        addr(&self.buffer.as_ref()[field::SRC_ADDR])
    }

    /// Destination address.
    pub fn dst_addr(&self) -> Ipv6Addr {
        addr(&self.buffer.as_ref()[field::DST_ADDR])
    }

    /// The upper-layer protocol and its bytes, past any extension headers.
    /// A non-first fragment has no upper-layer header and is rejected.
    pub fn upper_layer(&self) -> Result<(u8, &[u8])> {
        let buf = self.buffer.as_ref();
        let mut next = self.next_header();
        let mut at = HEADER_LEN;
        // Bounded: each step consumes at least 8 bytes of a bounded buffer.
        loop {
            match next {
                next_header::HOP_BY_HOP | next_header::ROUTING | next_header::DEST_OPTIONS => {
                    let hdr = buf.get(at..at + 2).ok_or(Error::Truncated)?;
                    next = hdr[0];
                    at += (usize::from(hdr[1]) + 1) * 8;
                }
                next_header::AUTH => {
                    // RFC 4302: length in 4-octet units, minus 2.
                    let hdr = buf.get(at..at + 2).ok_or(Error::Truncated)?;
                    next = hdr[0];
                    at += (usize::from(hdr[1]) + 2) * 4;
                }
                next_header::FRAGMENT => {
                    let hdr = buf.get(at..at + 8).ok_or(Error::Truncated)?;
                    if read_u16(hdr, 2..4) & 0xfff8 != 0 {
                        return Err(Error::BadLength); // not the first fragment
                    }
                    next = hdr[0];
                    at += 8;
                }
                upper => {
                    let rest = buf.get(at..).ok_or(Error::Truncated)?;
                    return Ok((upper, rest));
                }
            }
        }
    }
}

fn addr(b: &[u8]) -> Ipv6Addr {
    let mut a = [0u8; 16];
    a.copy_from_slice(b);
    Ipv6Addr::from(a)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A fixed header 2001:db8::1 -> 2001:db8::2, hop limit 64, then `rest`.
    pub(crate) fn header(next: u8, rest: &[u8]) -> Vec<u8> {
        let mut p = vec![0x60, 0, 0, 0];
        p.extend_from_slice(&(rest.len() as u16).to_be_bytes());
        p.push(next);
        p.push(64);
        p.extend_from_slice(&"2001:db8::1".parse::<Ipv6Addr>().unwrap().octets());
        p.extend_from_slice(&"2001:db8::2".parse::<Ipv6Addr>().unwrap().octets());
        p.extend_from_slice(rest);
        p
    }

    #[test]
    fn deconstruct() {
        let p = header(58, &[128, 0, 0, 0]);
        let v = Ipv6Packet::new_checked(&p[..]).unwrap();
        assert_eq!(v.hop_limit(), 64);
        assert_eq!(v.src_addr(), "2001:db8::1".parse::<Ipv6Addr>().unwrap());
        assert_eq!(v.dst_addr(), "2001:db8::2".parse::<Ipv6Addr>().unwrap());
        assert_eq!(v.upper_layer().unwrap(), (58, &[128, 0, 0, 0][..]));
    }

    #[test]
    fn walks_extension_headers() {
        // Hop-by-hop (8 bytes, padding), destination options (16 bytes), then ICMPv6.
        let mut rest = vec![60, 0, 1, 4, 0, 0, 0, 0];
        rest.extend_from_slice(&[58, 1, 1, 12, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
        rest.extend_from_slice(&[128, 0, 0xaa, 0xbb]);
        let p = header(0, &rest);
        let v = Ipv6Packet::new_checked(&p[..]).unwrap();
        assert_eq!(v.upper_layer().unwrap(), (58, &[128, 0, 0xaa, 0xbb][..]));
    }

    #[test]
    fn rejects_short_and_later_fragments() {
        assert_eq!(
            Ipv6Packet::new_checked(&[0x60; 39][..]).unwrap_err(),
            Error::Truncated
        );
        let p = header(0, &[58, 5]); // hop-by-hop claims 48 bytes
        let v = Ipv6Packet::new_checked(&p[..]).unwrap();
        assert_eq!(v.upper_layer().unwrap_err(), Error::Truncated);
        let p = header(44, &[58, 0, 0, 8, 0, 0, 0, 1, 128, 0]); // offset 1
        let v = Ipv6Packet::new_checked(&p[..]).unwrap();
        assert_eq!(v.upper_layer().unwrap_err(), Error::BadLength);
    }
}
