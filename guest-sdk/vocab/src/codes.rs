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
#[non_exhaustive]
pub enum Kind {
    /// An Echo Reply: the target answered.
    EchoReply,
    /// Destination Unreachable, except IPv4 Fragmentation Needed.
    DestinationUnreachable,
    /// Too big for a link on the path: IPv6 Packet Too Big, or IPv4
    /// Destination Unreachable code 4 (Fragmentation Needed). Either
    /// carries the next-hop MTU.
    PacketTooBig,
    /// Time Exceeded: TTL / hop limit ran out, or reassembly timed out.
    TimeExceeded,
    /// Parameter Problem.
    ParameterProblem,
    /// IPv4 Redirect: a router names a better next hop. A note, never an
    /// answer to a probe (iputils keeps waiting for the reply).
    Redirect,
    /// IPv4 Source Quench (deprecated, RFC 6633). A note, never an answer.
    SourceQuench,
    /// Anything else.
    Other,
}

impl Kind {
    /// Whether this message is only a note: probes keep waiting for the
    /// real answer (Redirect, Source Quench).
    pub fn is_note(self) -> bool {
        matches!(self, Kind::Redirect | Kind::SourceQuench)
    }
}

/// Classifies a message of the given family by type and code.
///
/// ```
/// use icmp_host_vocab::Family;
/// use icmp_host_vocab::codes::{Kind, kind};
///
/// // IPv4 Fragmentation Needed and IPv6 Packet Too Big are one notion.
/// assert_eq!(kind(Family::V4, 3, 4), Kind::PacketTooBig);
/// assert_eq!(kind(Family::V6, 2, 0), Kind::PacketTooBig);
/// assert_eq!(kind(Family::V4, 3, 1), Kind::DestinationUnreachable);
/// assert!(kind(Family::V4, 5, 1).is_note());
/// ```
pub fn kind(family: Family, icmp_type: u8, code: u8) -> Kind {
    match (family, icmp_type) {
        (Family::V4, v4::ECHO_REPLY) | (Family::V6, v6::ECHO_REPLY) => Kind::EchoReply,
        (Family::V4, v4::DEST_UNREACHABLE) if code == v4::CODE_FRAG_NEEDED => Kind::PacketTooBig,
        (Family::V4, v4::DEST_UNREACHABLE) | (Family::V6, v6::DEST_UNREACHABLE) => {
            Kind::DestinationUnreachable
        }
        (Family::V6, v6::PACKET_TOO_BIG) => Kind::PacketTooBig,
        (Family::V4, v4::REDIRECT) => Kind::Redirect,
        (Family::V4, v4::SOURCE_QUENCH) => Kind::SourceQuench,
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
    kind(family, icmp_type, 0).is_note()
}

/// A sentence for an error message, worded for people (iputils' phrasing
/// where users grep for it). `None` for an Echo Reply.
///
/// ```
/// use icmp_host_vocab::{Family, codes};
/// assert_eq!(
///     codes::describe(Family::V4, 3, 1).as_deref(),
///     Some("Destination Host Unreachable")
/// );
/// assert_eq!(codes::describe(Family::V4, 0, 0), None);
/// ```
pub fn describe(family: Family, icmp_type: u8, code: u8) -> Option<String> {
    let text = match kind(family, icmp_type, code) {
        Kind::EchoReply => return None,
        Kind::DestinationUnreachable => match family {
            Family::V4 => unreachable_v4(code),
            Family::V6 => unreachable_v6(code),
        },
        Kind::PacketTooBig if family == Family::V4 => unreachable_v4(code),
        Kind::PacketTooBig => "Packet too big",
        Kind::Redirect if redirect(code).is_empty() => {
            return Some(format!("Redirect, Bad Code: {code}"));
        }
        Kind::Redirect => redirect(code),
        Kind::SourceQuench => "Source Quench",
        Kind::TimeExceeded => match code {
            0 => "Time to live exceeded",
            1 => "Fragment reassembly time exceeded",
            _ => "Time exceeded",
        },
        Kind::ParameterProblem => "Parameter problem",
        _ => "",
    };
    if text.is_empty() {
        let what = match kind(family, icmp_type, code) {
            Kind::DestinationUnreachable => "Destination unreachable",
            Kind::TimeExceeded => "Time exceeded",
            _ => "ICMP type ",
        };
        let mut s = String::from(what);
        if what.ends_with(' ') {
            s.push_str(&icmp_type.to_string());
        }
        s.push_str(", code ");
        s.push_str(&code.to_string());
        return Some(s);
    }
    Some(text.to_owned())
}

/// RFC 792 codes of Redirect, in iputils' words.
fn redirect(code: u8) -> &'static str {
    match code {
        0 => "Redirect Network",
        1 => "Redirect Host",
        2 => "Redirect Type of Service and Network",
        3 => "Redirect Type of Service and Host",
        _ => "",
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
/// `!P`, `!X`, `!F`, ...), or `None` for replies that don't stop it.
///
/// ```
/// use icmp_host_vocab::{Family, codes};
/// assert_eq!(codes::traceroute_mark(Family::V4, 3, 1).as_deref(), Some("!H"));
/// assert_eq!(codes::traceroute_mark(Family::V4, 3, 4).as_deref(), Some("!F"));
/// assert_eq!(codes::traceroute_mark(Family::V4, 11, 0), None);
/// ```
pub fn traceroute_mark(family: Family, icmp_type: u8, code: u8) -> Option<String> {
    let mark = match (kind(family, icmp_type, code), family) {
        (Kind::DestinationUnreachable, Family::V4) => match code {
            0 | 6 | 11 => "!N",
            1 | 7 | 12 => "!H",
            2 => "!P",
            3 => return None, // the target itself answered (UDP probes)
            5 => "!S",
            9 | 10 | 13 => "!X",
            14 => "!V",
            15 => "!C",
            _ => return Some(unknown_mark(code)),
        },
        (Kind::DestinationUnreachable, Family::V6) => match code {
            0 | 6 => "!N",
            1 | 5 => "!X",
            2 => "!S",
            3 => "!H",
            4 => return None,
            _ => return Some(unknown_mark(code)),
        },
        (Kind::PacketTooBig, _) => "!F",
        _ => return None,
    };
    Some(mark.to_owned())
}

fn unknown_mark(code: u8) -> String {
    let mut s = String::from("!<");
    s.push_str(&code.to_string());
    s.push('>');
    s
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
    fn one_too_big_notion_for_both_families() {
        assert_eq!(kind(Family::V4, 3, 4), Kind::PacketTooBig);
        assert_eq!(kind(Family::V6, 2, 0), Kind::PacketTooBig);
        assert_eq!(kind(Family::V4, 3, 3), Kind::DestinationUnreachable);
        assert_eq!(
            describe(Family::V4, 3, 4).as_deref(),
            Some("Fragmentation needed but Don't Fragment set")
        );
        assert_eq!(traceroute_mark(Family::V6, 2, 0).as_deref(), Some("!F"));
    }

    #[test]
    fn redirect_and_source_quench_are_notes() {
        assert!(kind(Family::V4, 5, 1).is_note());
        assert!(kind(Family::V4, 4, 0).is_note());
        assert!(!kind(Family::V4, 3, 1).is_note());
        assert!(!kind(Family::V6, 4, 0).is_note()); // v6 type 4 is Parameter Problem
        assert_eq!(describe(Family::V4, 5, 1).as_deref(), Some("Redirect Host"));
        assert_eq!(
            describe(Family::V4, 13, 0).as_deref(),
            Some("ICMP type 13, code 0")
        );
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
