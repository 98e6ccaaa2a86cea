//! ICMPv4 (RFC 792) and ICMPv6 (RFC 4443) message view and echo-request
//! emitter. Both families share the layout this crate needs: type, code,
//! checksum, four bytes of "rest of header", then data.

use super::{Error, Field, Result, checksum, read_u16, read_u32};
use crate::icmp::Family;

mod field {
    use super::Field;
    pub const TYPE: usize = 0;
    pub const CODE: usize = 1;
    pub const CHECKSUM: Field = 2..4;
    pub const ECHO_IDENT: Field = 4..6;
    pub const ECHO_SEQNO: Field = 6..8;
    /// IPv4 Fragmentation Needed: next-hop MTU (RFC 1191).
    pub const V4_NEXT_HOP_MTU: Field = 6..8;
    /// IPv6 Packet Too Big: MTU.
    pub const V6_MTU: Field = 4..8;
    pub const DATA: usize = 8;
}

/// Header length of every ICMP message handled here.
pub const HEADER_LEN: usize = 8;

/// Echo Request type of each family.
pub fn echo_request_type(family: Family) -> u8 {
    match family {
        Family::V4 => 8,
        Family::V6 => 128,
    }
}

/// A read-only view of an ICMP message.
#[derive(Debug, Clone, Copy)]
pub struct IcmpPacket<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> IcmpPacket<T> {
    /// Wraps a buffer holding at least the 8-byte header.
    pub fn new_checked(buffer: T) -> Result<Self> {
        if buffer.as_ref().len() < HEADER_LEN {
            return Err(Error::Truncated);
        }
        Ok(IcmpPacket { buffer })
    }

    /// Message type.
    pub fn msg_type(&self) -> u8 {
        self.buffer.as_ref()[field::TYPE]
    }

    /// Message code.
    pub fn msg_code(&self) -> u8 {
        self.buffer.as_ref()[field::CODE]
    }

    /// Checksum field.
    pub fn checksum(&self) -> u16 {
        read_u16(self.buffer.as_ref(), field::CHECKSUM)
    }

    /// Whether the ICMPv4 checksum over the whole message is valid.
    pub fn verify_checksum(&self) -> bool {
        checksum::verify(self.buffer.as_ref())
    }

    /// Echo identifier.
    pub fn echo_ident(&self) -> u16 {
        read_u16(self.buffer.as_ref(), field::ECHO_IDENT)
    }

    /// Echo sequence number.
    pub fn echo_seq_no(&self) -> u16 {
        read_u16(self.buffer.as_ref(), field::ECHO_SEQNO)
    }

    /// Next-hop MTU of an IPv4 Fragmentation Needed.
    pub fn v4_next_hop_mtu(&self) -> u16 {
        read_u16(self.buffer.as_ref(), field::V4_NEXT_HOP_MTU)
    }

    /// MTU of an IPv6 Packet Too Big.
    pub fn v6_mtu(&self) -> u32 {
        read_u32(self.buffer.as_ref(), field::V6_MTU)
    }

    /// Bytes after the header.
    pub fn data(&self) -> &[u8] {
        &self.buffer.as_ref()[field::DATA..]
    }

    /// Length of the whole message.
    pub fn total_len(&self) -> usize {
        self.buffer.as_ref().len()
    }
}

/// An Echo Request to put on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EchoRequest<'a> {
    /// Identifier field.
    pub ident: u16,
    /// Sequence number field.
    pub seq_no: u16,
    /// Payload.
    pub data: &'a [u8],
}

impl EchoRequest<'_> {
    /// Bytes [`EchoRequest::emit`] writes.
    pub fn buffer_len(&self) -> usize {
        HEADER_LEN + self.data.len()
    }

    /// Writes the message into `buf` (at least `buffer_len` bytes). IPv4
    /// gets its checksum; for IPv6 the kernel computes it (RFC 3542 §3.1),
    /// so the field is left zero.
    pub fn emit(&self, family: Family, buf: &mut [u8]) {
        let buf = &mut buf[..self.buffer_len()];
        buf[field::TYPE] = echo_request_type(family);
        buf[field::CODE] = 0;
        buf[field::CHECKSUM].fill(0);
        buf[field::ECHO_IDENT].copy_from_slice(&self.ident.to_be_bytes());
        buf[field::ECHO_SEQNO].copy_from_slice(&self.seq_no.to_be_bytes());
        buf[field::DATA..].copy_from_slice(self.data);
        if family == Family::V4 {
            let c = checksum::compute(buf);
            buf[field::CHECKSUM].copy_from_slice(&c.to_be_bytes());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Echo request id 0x1234, seq 1, payload "aaaa" (checksum worked by hand).
    static ECHO_REQUEST_BYTES: [u8; 12] = [
        0x08, 0x00, 0x23, 0x08, 0x12, 0x34, 0x00, 0x01, 0x61, 0x61, 0x61, 0x61,
    ];

    #[test]
    fn emit_matches_capture() {
        let req = EchoRequest {
            ident: 0x1234,
            seq_no: 1,
            data: b"aaaa",
        };
        let mut buf = vec![0xff; req.buffer_len()];
        req.emit(Family::V4, &mut buf);
        assert_eq!(buf, ECHO_REQUEST_BYTES);
        let view = IcmpPacket::new_checked(&buf[..]).unwrap();
        assert!(view.verify_checksum());
        assert_eq!(view.echo_ident(), 0x1234);
        assert_eq!(view.echo_seq_no(), 1);
        assert_eq!(view.data(), b"aaaa");
    }

    #[test]
    fn ipv6_leaves_checksum_to_the_kernel() {
        let req = EchoRequest {
            ident: 7,
            seq_no: 9,
            data: &[],
        };
        let mut buf = [0xffu8; 8];
        req.emit(Family::V6, &mut buf);
        assert_eq!(buf, [128, 0, 0, 0, 0, 7, 0, 9]);
    }

    #[test]
    fn short_is_rejected() {
        assert_eq!(
            IcmpPacket::new_checked(&[8u8; 7][..]).unwrap_err(),
            Error::Truncated
        );
    }
}
