//! The Internet checksum (RFC 1071).

/// One's-complement sum of 16-bit big-endian words, folded, not inverted.
fn sum(data: &[u8]) -> u32 {
    let mut acc: u32 = 0;
    let mut chunks = data.chunks_exact(2);
    for w in &mut chunks {
        acc += u32::from(u16::from_be_bytes([w[0], w[1]]));
    }
    if let [last] = chunks.remainder() {
        acc += u32::from(*last) << 8;
    }
    while acc > 0xffff {
        acc = (acc & 0xffff) + (acc >> 16);
    }
    acc
}

/// The checksum to store in a header whose checksum field is zero.
pub fn compute(data: &[u8]) -> u16 {
    !(sum(data) as u16)
}

/// Whether data including its checksum field sums to all ones.
pub fn verify(data: &[u8]) -> bool {
    sum(data) == 0xffff
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc1071_example() {
        // RFC 1071 §3: 00 01 f2 03 f4 f5 f6 f7 sums to ddf2.
        let data = [0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7];
        assert_eq!(sum(&data), 0xddf2);
        assert_eq!(compute(&data), !0xddf2);
    }

    #[test]
    fn odd_length_and_round_trip() {
        let mut data = vec![8, 0, 0, 0, 0x12, 0x34, 0, 1, 0xab];
        let c = compute(&data);
        data[2..4].copy_from_slice(&c.to_be_bytes());
        assert!(verify(&data));
        data[8] ^= 1;
        assert!(!verify(&data));
    }
}
