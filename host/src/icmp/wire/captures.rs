//! Packets captured in the lab (tcpdump on the client's link while iputils
//! ping ran): the parser's fixtures and the property tests' seeds. IPv4
//! ones start at the IP header, as raw IPv4 sockets deliver them; IPv6 ones
//! at the ICMPv6 header, as raw IPv6 sockets do.

/// Decodes a hex fixture.
pub fn hex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

/// Echo reply from 198.18.4.2, TTL 61 after three routers, id 0x7f7d seq 1.
pub const V4_ECHO_REPLY: &str = "45000054647800003d018808c6120402c6120102000025a97f7d0001d9ed0a6b00000000adac0a0000000000101112131415161718191a1b1c1d1e1f202122232425262728292a2b2c2d2e2f3031323334353637";
/// Time exceeded from r2 (198.18.2.2) quoting a request to 198.18.4.2, id 0x7f7e.
pub const V4_TIME_EXCEEDED: &str = "45c00070009e00003f01eb06c6120202c61201020b00f4ff00000000450000541c6440000101cc1cc6120102c612040208000b7c7f7e0001d9ed0a6b00000000bfd80a0000000000101112131415161718191a1b1c1d1e1f202122232425262728292a2b2c2d2e2f3031323334353637";
/// Host unreachable from r3 (198.18.3.2) for 198.18.5.1, id 0x7f7f.
pub const V4_HOST_UNREACHABLE: &str = "45c0007092eb00003e0158b9c6120302c61201020301fcfe0000000045000054ac9c40003e01fde4c6120102c61205010800154c7f7f0001d9ed0a6b00000000b5070b0000000000101112131415161718191a1b1c1d1e1f202122232425262728292a2b2c2d2e2f3031323334353637";
/// ICMPv6 echo reply, id 0x7f81 seq 1.
pub const V6_ECHO_REPLY: &str = "81002f167f810001d9ed0a6b0000000024600b0000000000101112131415161718191a1b1c1d1e1f202122232425262728292a2b2c2d2e2f3031323334353637";
/// ICMPv6 time exceeded quoting a request to fd00:1ab:4::2, id 0x7f85.
pub const V6_TIME_EXCEEDED: &str = "0300ab48000000006001b9e500403a01fd0001ab000100000000000000000002fd0001ab00040000000000000000000280007fed7f850001d9ed0a6b00000000d4840b0000000000101112131415161718191a1b1c1d1e1f202122232425262728292a2b2c2d2e2f3031323334353637";
/// ICMPv6 destination unreachable (code 0, no route) for fd00:1ab:5::1, id 0x7f86.
pub const V6_NO_ROUTE: &str = "01003489000000006001326700403a3efd0001ab000100000000000000000002fd0001ab000500000000000000000001800091d47f860001d9ed0a6b00000000c29c0b0000000000101112131415161718191a1b1c1d1e1f202122232425262728292a2b2c2d2e2f3031323334353637";

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::super::{Body, parse_icmp, parse_ipv4_datagram, parse_sent_echo};
    use super::*;
    use crate::icmp::Family;

    #[test]
    fn captured_packets_parse_to_their_meaning() {
        let v4_echo_reply = hex(V4_ECHO_REPLY);
        let v4_time_exceeded = hex(V4_TIME_EXCEEDED);
        let v4_host_unreachable = hex(V4_HOST_UNREACHABLE);
        let v6_echo_reply = hex(V6_ECHO_REPLY);
        let v6_time_exceeded = hex(V6_TIME_EXCEEDED);
        let v6_no_route = hex(V6_NO_ROUTE);
        let (ip, m) = parse_ipv4_datagram(&v4_echo_reply).unwrap();
        assert_eq!((ip.source.to_string().as_str(), ip.ttl), ("198.18.4.2", 61));
        assert!(matches!(
            m.body,
            Body::EchoReply {
                ident: 0x7f7d,
                seq_no: 1,
                ..
            }
        ));

        let (ip, m) = parse_ipv4_datagram(&v4_time_exceeded).unwrap();
        assert_eq!(ip.source.to_string(), "198.18.2.2");
        let Body::Error { quote, mtu: None } = m.body else {
            panic!("{m:?}")
        };
        assert_eq!((quote.ident, quote.seq_no), (0x7f7e, 1));
        assert_eq!(quote.destination.to_string(), "198.18.4.2");

        let (_, m) = parse_ipv4_datagram(&v4_host_unreachable).unwrap();
        assert_eq!((m.icmp_type, m.code), (3, 1));
        let Body::Error { quote, .. } = m.body else {
            panic!("{m:?}")
        };
        assert_eq!(quote.destination.to_string(), "198.18.5.1");

        let m = parse_icmp(Family::V6, &v6_echo_reply, false).unwrap();
        assert!(matches!(
            m.body,
            Body::EchoReply {
                ident: 0x7f81,
                seq_no: 1,
                ..
            }
        ));
        let m = parse_icmp(Family::V6, &v6_time_exceeded, false).unwrap();
        let Body::Error { quote, .. } = m.body else {
            panic!("{m:?}")
        };
        assert_eq!(
            (quote.ident, quote.destination.to_string().as_str()),
            (0x7f85, "fd00:1ab:4::2")
        );
        let m = parse_icmp(Family::V6, &v6_no_route, false).unwrap();
        assert_eq!((m.icmp_type, m.code), (1, 0));
    }

    fn seeds() -> Vec<(Family, Vec<u8>)> {
        vec![
            (Family::V4, hex(V4_ECHO_REPLY)),
            (Family::V4, hex(V4_TIME_EXCEEDED)),
            (Family::V4, hex(V4_HOST_UNREACHABLE)),
            (Family::V6, hex(V6_ECHO_REPLY)),
            (Family::V6, hex(V6_TIME_EXCEEDED)),
            (Family::V6, hex(V6_NO_ROUTE)),
        ]
    }

    /// Every parser on every input: must return, never panic.
    fn parse_everything(bytes: &[u8]) {
        let _ = parse_ipv4_datagram(bytes);
        for family in [Family::V4, Family::V6] {
            let _ = parse_icmp(family, bytes, true);
            let _ = parse_icmp(family, bytes, false);
            let _ = parse_sent_echo(family, bytes);
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(4096))]

        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
            parse_everything(&bytes);
        }

        #[test]
        fn mutated_captures_never_panic(
            seed in 0usize..6,
            flips in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..8),
            cut in any::<usize>(),
        ) {
            let (_, mut bytes) = seeds().swap_remove(seed);
            for (at, value) in flips {
                let i = at % bytes.len();
                bytes[i] = value;
            }
            bytes.truncate(cut % (bytes.len() + 1));
            parse_everything(&bytes);
        }
    }
}
