//! IPv4 header view (RFC 791), IHL-aware.

use std::net::Ipv4Addr;

use super::{Error, Field, Result, checksum, read_u16};

mod field {
    use super::Field;
    pub const VER_IHL: usize = 0;
    pub const LENGTH: Field = 2..4;
    pub const FLAGS_FRAG: Field = 6..8;
    pub const TTL: usize = 8;
    pub const PROTOCOL: usize = 9;
    pub const SRC_ADDR: Field = 12..16;
    pub const DST_ADDR: Field = 16..20;
}

/// Minimum header length.
pub const MIN_HEADER_LEN: usize = 20;

/// A read-only view of an IPv4 packet.
#[derive(Debug, Clone, Copy)]
pub struct Ipv4Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Ipv4Packet<T> {
    /// Wraps without checks; accessors may panic on short buffers.
    fn new_unchecked(buffer: T) -> Self {
        Ipv4Packet { buffer }
    }

    /// Wraps a whole received datagram: version 4, IHL sane, total length
    /// within the buffer, header checksum valid.
    pub fn new_checked(buffer: T) -> Result<Self> {
        let p = Self::new_quoted(buffer)?;
        let len = p.buffer.as_ref().len();
        let total = usize::from(p.total_len());
        if total < p.header_len() {
            return Err(Error::BadLength);
        }
        if total > len {
            return Err(Error::Truncated);
        }
        if !checksum::verify(&p.buffer.as_ref()[..p.header_len()]) {
            return Err(Error::BadChecksum);
        }
        Ok(p)
    }

    /// Wraps a header quoted inside an ICMP error: the header must be whole,
    /// the payload may be cut short (routers quote as little as 8 bytes).
    pub fn new_quoted(buffer: T) -> Result<Self> {
        let buf = buffer.as_ref();
        if buf.len() < MIN_HEADER_LEN {
            return Err(Error::Truncated);
        }
        if buf[field::VER_IHL] >> 4 != 4 {
            return Err(Error::BadVersion);
        }
        let p = Self::new_unchecked(buffer);
        if p.header_len() < MIN_HEADER_LEN {
            return Err(Error::BadIhl);
        }
        if p.header_len() > p.buffer.as_ref().len() {
            return Err(Error::Truncated);
        }
        Ok(p)
    }

    /// Header length in bytes (IHL × 4), options included.
    pub fn header_len(&self) -> usize {
        usize::from(self.buffer.as_ref()[field::VER_IHL] & 0x0f) * 4
    }

    /// Total length field.
    pub fn total_len(&self) -> u16 {
        read_u16(self.buffer.as_ref(), field::LENGTH)
    }

    /// Whether Don't Fragment is set.
    pub fn dont_fragment(&self) -> bool {
        read_u16(self.buffer.as_ref(), field::FLAGS_FRAG) & 0x4000 != 0
    }

    /// Time to live.
    pub fn ttl(&self) -> u8 {
        self.buffer.as_ref()[field::TTL]
    }

    /// Protocol of the payload (1 for ICMP).
    pub fn protocol(&self) -> u8 {
        self.buffer.as_ref()[field::PROTOCOL]
    }

    /// Source address.
    pub fn src_addr(&self) -> Ipv4Addr {
        let b = &self.buffer.as_ref()[field::SRC_ADDR];
        Ipv4Addr::new(b[0], b[1], b[2], b[3])
    }

    /// Destination address.
    pub fn dst_addr(&self) -> Ipv4Addr {
        let b = &self.buffer.as_ref()[field::DST_ADDR];
        Ipv4Addr::new(b[0], b[1], b[2], b[3])
    }

    /// The payload: after the header, up to the total length or the end of
    /// the buffer, whichever comes first.
    pub fn payload(&self) -> &[u8] {
        let buf = self.buffer.as_ref();
        let end = usize::from(self.total_len()).clamp(self.header_len(), buf.len());
        &buf[self.header_len()..end]
    }
}

impl<'a> Ipv4Packet<&'a [u8]> {
    /// The payload, borrowed for as long as the buffer.
    pub fn into_payload(self) -> &'a [u8] {
        let buf = self.buffer;
        let end = usize::from(self.total_len()).clamp(self.header_len(), buf.len());
        &buf[self.header_len()..end]
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// 20-byte header + 4 bytes: 10.0.0.1 -> 10.0.0.2, TTL 64, ICMP.
    pub(crate) fn header(options: &[u8], payload: &[u8]) -> Vec<u8> {
        let hl = 20 + options.len();
        let total = (hl + payload.len()) as u16;
        let mut p = vec![
            0x40 | (hl / 4) as u8,
            0,
            (total >> 8) as u8,
            total as u8,
            0,
            0,
            0x40,
            0,
            64,
            1,
            0,
            0,
            10,
            0,
            0,
            1,
            10,
            0,
            0,
            2,
        ];
        p.extend_from_slice(options);
        let c = checksum::compute(&p);
        p[10..12].copy_from_slice(&c.to_be_bytes());
        p.extend_from_slice(payload);
        p
    }

    #[test]
    fn deconstruct() {
        let p = header(&[], &[1, 2, 3, 4]);
        let v = Ipv4Packet::new_checked(&p[..]).unwrap();
        assert_eq!(v.header_len(), 20);
        assert_eq!(v.ttl(), 64);
        assert_eq!(v.protocol(), 1);
        assert!(v.dont_fragment());
        assert_eq!(v.src_addr(), Ipv4Addr::new(10, 0, 0, 1));
        assert_eq!(v.dst_addr(), Ipv4Addr::new(10, 0, 0, 2));
        assert_eq!(v.payload(), &[1, 2, 3, 4]);
    }

    #[test]
    fn options_are_skipped() {
        // Record Route option: type 7, length 8, pointer 4, one empty slot; pad.
        let p = header(&[7, 7, 4, 0, 0, 0, 0, 1], &[9, 9]);
        let v = Ipv4Packet::new_checked(&p[..]).unwrap();
        assert_eq!(v.header_len(), 28);
        assert_eq!(v.payload(), &[9, 9]);
    }

    #[test]
    fn rejects_bad_headers() {
        let good = header(&[], &[0; 8]);
        let mut p = good.clone();
        p[5] ^= 1;
        assert_eq!(
            Ipv4Packet::new_checked(&p[..]).unwrap_err(),
            Error::BadChecksum
        );
        let mut p = good.clone();
        p[0] = 0x44; // IHL 4
        assert_eq!(Ipv4Packet::new_checked(&p[..]).unwrap_err(), Error::BadIhl);
        let mut p = good.clone();
        p[0] = 0x4f; // IHL 60 > 28 bytes
        assert_eq!(
            Ipv4Packet::new_checked(&p[..]).unwrap_err(),
            Error::Truncated
        );
        assert_eq!(
            Ipv4Packet::new_checked(&good[..19]).unwrap_err(),
            Error::Truncated
        );
        let mut p = good.clone();
        p[0] = 0x65;
        assert_eq!(
            Ipv4Packet::new_checked(&p[..]).unwrap_err(),
            Error::BadVersion
        );
        // Total length beyond the buffer: truncated as a datagram, fine as a quote.
        assert_eq!(
            Ipv4Packet::new_checked(&good[..24]).unwrap_err(),
            Error::Truncated
        );
        assert_eq!(
            Ipv4Packet::new_quoted(&good[..24]).unwrap().payload().len(),
            4
        );
    }
}
