//! ICMP types and codes: what they are called, what they mean to a person,
//! and how traceroute marks them. One table, used by the SDK's errors and by
//! the host's progress lines.

use crate::Family;

/// ICMPv4 types this crate names (RFC 792).
pub mod v4 {
    /// Echo Reply.
    pub const ECHO_REPLY: u8 = 0;
    /// Destination Unreachable.
    pub const DEST_UNREACHABLE: u8 = 3;
    /// Source Quench (deprecated, RFC 6633).
    pub const SOURCE_QUENCH: u8 = 4;
    /// Redirect.
    pub const REDIRECT: u8 = 5;
    /// Echo Request.
    pub const ECHO_REQUEST: u8 = 8;
    /// Time Exceeded.
    pub const TIME_EXCEEDED: u8 = 11;
    /// Parameter Problem.
    pub const PARAMETER_PROBLEM: u8 = 12;
    /// Destination Unreachable code 4: Fragmentation Needed (RFC 1191).
    pub const CODE_FRAG_NEEDED: u8 = 4;
}

/// ICMPv6 types this crate names (RFC 4443).
pub mod v6 {
    /// Destination Unreachable.
    pub const DEST_UNREACHABLE: u8 = 1;
    /// Packet Too Big.
    pub const PACKET_TOO_BIG: u8 = 2;
    /// Time Exceeded.
    pub const TIME_EXCEEDED: u8 = 3;
    /// Parameter Problem.
    pub const PARAMETER_PROBLEM: u8 = 4;
    /// Echo Request.
    pub const ECHO_REQUEST: u8 = 128;
    /// Echo Reply.
    pub const ECHO_REPLY: u8 = 129;
}

/// What an ICMP message means to a prober.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// An Echo Reply: the target answered.
    EchoReply,
    /// Destination Unreachable (including IPv4 Fragmentation Needed).
    DestinationUnreachable,
    /// Packet Too Big (IPv6).
    PacketTooBig,
    /// Time Exceeded: TTL / hop limit ran out, or reassembly timed out.
    TimeExceeded,
    /// Parameter Problem.
    ParameterProblem,
    /// Source Quench or Redirect: rare, passed through.
    Other,
}

/// Classifies a type of the given family.
pub fn kind(family: Family, icmp_type: u8) -> Kind {
    match (family, icmp_type) {
        (Family::V4, v4::ECHO_REPLY) | (Family::V6, v6::ECHO_REPLY) => Kind::EchoReply,
        (Family::V4, v4::DEST_UNREACHABLE) | (Family::V6, v6::DEST_UNREACHABLE) => {
            Kind::DestinationUnreachable
        }
        (Family::V6, v6::PACKET_TOO_BIG) => Kind::PacketTooBig,
        (Family::V4, v4::TIME_EXCEEDED) | (Family::V6, v6::TIME_EXCEEDED) => Kind::TimeExceeded,
        (Family::V4, v4::PARAMETER_PROBLEM) | (Family::V6, v6::PARAMETER_PROBLEM) => {
            Kind::ParameterProblem
        }
        _ => Kind::Other,
    }
}

/// Redirect and Source Quench: information for the sender's routing and
/// pacing, never a probe's answer. Report them as notes and keep waiting
/// for the reply that usually follows (a router that redirects still
/// forwards the request, RFC 1812 §5.2.7.2; Source Quench is deprecated,
/// RFC 6633).
pub fn is_note(family: Family, icmp_type: u8) -> bool {
    matches!(
        (family, icmp_type),
        (Family::V4, v4::SOURCE_QUENCH | v4::REDIRECT)
    )
}

/// A sentence for an error message, worded for people (iputils' phrasing
/// where users grep for it). `None` for an Echo Reply.
pub fn describe(family: Family, icmp_type: u8, code: u8) -> Option<String> {
    let text = match kind(family, icmp_type) {
        Kind::EchoReply => return None,
        Kind::DestinationUnreachable => match family {
            Family::V4 => unreachable_v4(code),
            Family::V6 => unreachable_v6(code),
        },
        Kind::PacketTooBig => "Packet too big",
        Kind::TimeExceeded => match code {
            0 => "Time to live exceeded",
            1 => "Fragment reassembly time exceeded",
            _ => "Time exceeded",
        },
        Kind::ParameterProblem => "Parameter problem",
        Kind::Other => match (family, icmp_type) {
            (Family::V4, v4::SOURCE_QUENCH) => "Source Quench",
            (Family::V4, v4::REDIRECT) => match code {
                0 => "Redirect Network",
                1 => "Redirect Host",
                2 => "Redirect Type of Service and Network",
                3 => "Redirect Type of Service and Host",
                _ => return Some(format!("Redirect, Bad Code: {code}")),
            },
            _ => return Some(format!("ICMP type {icmp_type}, code {code}")),
        },
    };
    if text.is_empty() {
        return Some(format!("{}, code {code}", describe_type(family, icmp_type)));
    }
    Some(text.to_owned())
}

fn describe_type(family: Family, icmp_type: u8) -> &'static str {
    match kind(family, icmp_type) {
        Kind::DestinationUnreachable => "Destination unreachable",
        Kind::TimeExceeded => "Time exceeded",
        _ => "ICMP message",
    }
}

/// RFC 792, RFC 1122 and RFC 1812 codes of IPv4 Destination Unreachable.
fn unreachable_v4(code: u8) -> &'static str {
    match code {
        0 => "Destination Net Unreachable",
        1 => "Destination Host Unreachable",
        2 => "Destination Protocol Unreachable",
        3 => "Destination Port Unreachable",
        4 => "Fragmentation needed but Don't Fragment set",
        5 => "Source route failed",
        6 => "Destination network unknown",
        7 => "Destination host unknown",
        8 => "Source host isolated",
        9 => "Destination network administratively prohibited",
        10 => "Destination host administratively prohibited",
        11 => "Network unreachable for type of service",
        12 => "Host unreachable for type of service",
        13 => "Communication administratively prohibited",
        14 => "Host precedence violation",
        15 => "Precedence cutoff in effect",
        _ => "",
    }
}

/// RFC 4443 codes of ICMPv6 Destination Unreachable.
fn unreachable_v6(code: u8) -> &'static str {
    match code {
        0 => "No route to destination",
        1 => "Communication administratively prohibited",
        2 => "Beyond scope of source address",
        3 => "Destination Address Unreachable",
        4 => "Destination Port Unreachable",
        5 => "Source address failed ingress/egress policy",
        6 => "Reject route to destination",
        7 => "Error in source routing header",
        _ => "",
    }
}

/// traceroute's annotation for an error that ends a trace (`!H`, `!N`,
/// `!P`, `!X`, ...), or `None` for replies that don't stop it.
pub fn traceroute_mark(family: Family, icmp_type: u8, code: u8) -> Option<String> {
    let mark = match (kind(family, icmp_type), family) {
        (Kind::DestinationUnreachable, Family::V4) => match code {
            0 | 6 | 11 => "!N",
            1 | 7 | 12 => "!H",
            2 => "!P",
            3 => return None, // the target itself answered (UDP probes)
            4 => "!F",
            5 => "!S",
            9 | 10 | 13 => "!X",
            14 => "!V",
            15 => "!C",
            _ => return Some(format!("!<{code}>")),
        },
        (Kind::DestinationUnreachable, Family::V6) => match code {
            0 | 6 => "!N",
            1 | 5 => "!X",
            2 => "!S",
            3 => "!H",
            4 => return None,
            _ => return Some(format!("!<{code}>")),
        },
        (Kind::PacketTooBig, _) => "!F",
        _ => return None,
    };
    Some(mark.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_unreachable_code_has_words() {
        for code in 0..=15 {
            let text = describe(Family::V4, v4::DEST_UNREACHABLE, code).unwrap();
            assert!(!text.contains("code"), "v4 code {code}: {text}");
        }
        for code in 0..=7 {
            let text = describe(Family::V6, v6::DEST_UNREACHABLE, code).unwrap();
            assert!(!text.contains("code"), "v6 code {code}: {text}");
        }
        assert_eq!(
            describe(Family::V4, 3, 99).unwrap(),
            "Destination unreachable, code 99"
        );
    }

    #[test]
    fn iputils_wording_where_users_grep() {
        assert_eq!(
            describe(Family::V4, 3, 1).as_deref(),
            Some("Destination Host Unreachable")
        );
        assert_eq!(
            describe(Family::V4, 3, 13).as_deref(),
            Some("Communication administratively prohibited")
        );
        assert_eq!(
            describe(Family::V4, 11, 0).as_deref(),
            Some("Time to live exceeded")
        );
        assert_eq!(describe(Family::V6, 129, 0), None);
    }

    #[test]
    fn redirect_and_source_quench_are_notes_in_iputils_words() {
        assert!(is_note(Family::V4, v4::REDIRECT));
        assert!(is_note(Family::V4, v4::SOURCE_QUENCH));
        assert!(!is_note(Family::V4, v4::DEST_UNREACHABLE));
        assert!(!is_note(Family::V6, v4::REDIRECT));
        let say = |t, c| describe(Family::V4, t, c).unwrap();
        assert_eq!(say(v4::REDIRECT, 1), "Redirect Host");
        assert_eq!(say(v4::REDIRECT, 0), "Redirect Network");
        assert_eq!(say(v4::REDIRECT, 9), "Redirect, Bad Code: 9");
        assert_eq!(say(v4::SOURCE_QUENCH, 0), "Source Quench");
    }

    #[test]
    fn traceroute_marks() {
        assert_eq!(traceroute_mark(Family::V4, 3, 1).as_deref(), Some("!H"));
        assert_eq!(traceroute_mark(Family::V4, 3, 0).as_deref(), Some("!N"));
        assert_eq!(traceroute_mark(Family::V4, 3, 13).as_deref(), Some("!X"));
        assert_eq!(traceroute_mark(Family::V6, 1, 1).as_deref(), Some("!X"));
        assert_eq!(traceroute_mark(Family::V6, 1, 3).as_deref(), Some("!H"));
        assert_eq!(traceroute_mark(Family::V4, 11, 0), None);
    }
}
