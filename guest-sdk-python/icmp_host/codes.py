"""ICMP types and codes: what they are called, what they mean to a person,
and how traceroute marks them. The same table as the Rust SDK's, so Python
and Rust plugins word their results alike."""

# ICMPv4 (RFC 792) and ICMPv6 (RFC 4443) types the SDK names.
V4_ECHO_REPLY = 0
V4_DEST_UNREACHABLE = 3
V4_SOURCE_QUENCH = 4
V4_REDIRECT = 5
V4_TIME_EXCEEDED = 11
V4_PARAMETER_PROBLEM = 12
V4_CODE_FRAG_NEEDED = 4

V6_DEST_UNREACHABLE = 1
V6_PACKET_TOO_BIG = 2
V6_TIME_EXCEEDED = 3
V6_PARAMETER_PROBLEM = 4
V6_ECHO_REPLY = 129
V6_REDIRECT = 137

# What a message means to a prober.
ECHO_REPLY = "echo-reply"
DESTINATION_UNREACHABLE = "destination-unreachable"
PACKET_TOO_BIG = "packet-too-big"
TIME_EXCEEDED = "time-exceeded"
PARAMETER_PROBLEM = "parameter-problem"
NOTE = "note"
OTHER = "other"

_KINDS = {
    (4, V4_ECHO_REPLY): ECHO_REPLY,
    (6, V6_ECHO_REPLY): ECHO_REPLY,
    (4, V4_DEST_UNREACHABLE): DESTINATION_UNREACHABLE,
    (6, V6_DEST_UNREACHABLE): DESTINATION_UNREACHABLE,
    (6, V6_PACKET_TOO_BIG): PACKET_TOO_BIG,
    (4, V4_TIME_EXCEEDED): TIME_EXCEEDED,
    (6, V6_TIME_EXCEEDED): TIME_EXCEEDED,
    (4, V4_PARAMETER_PROBLEM): PARAMETER_PROBLEM,
    (6, V6_PARAMETER_PROBLEM): PARAMETER_PROBLEM,
    (4, V4_SOURCE_QUENCH): NOTE,
    (4, V4_REDIRECT): NOTE,
    (6, V6_REDIRECT): NOTE,
}


def kind(family, icmp_type):
    """Classifies an ICMP type of `family` (4 or 6): one of the constants
    above. Redirect and Source Quench are `NOTE`: information for the
    user, never the answer to a request."""
    return _KINDS.get((family, icmp_type), OTHER)


_UNREACHABLE_V4 = {
    0: "Destination Net Unreachable",
    1: "Destination Host Unreachable",
    2: "Destination Protocol Unreachable",
    3: "Destination Port Unreachable",
    4: "Fragmentation needed but Don't Fragment set",
    5: "Source route failed",
    6: "Destination network unknown",
    7: "Destination host unknown",
    8: "Source host isolated",
    9: "Destination network administratively prohibited",
    10: "Destination host administratively prohibited",
    11: "Network unreachable for type of service",
    12: "Host unreachable for type of service",
    13: "Communication administratively prohibited",
    14: "Host precedence violation",
    15: "Precedence cutoff in effect",
}

_UNREACHABLE_V6 = {
    0: "No route to destination",
    1: "Communication administratively prohibited",
    2: "Beyond scope of source address",
    3: "Destination Address Unreachable",
    4: "Destination Port Unreachable",
    5: "Source address failed ingress/egress policy",
    6: "Reject route to destination",
    7: "Error in source routing header",
}


def describe(family, icmp_type, code):
    """A sentence for an ICMP message, worded as iputils words it; `None`
    for an Echo Reply."""
    k = kind(family, icmp_type)
    if k == ECHO_REPLY:
        return None
    if k == DESTINATION_UNREACHABLE:
        table = _UNREACHABLE_V4 if family == 4 else _UNREACHABLE_V6
        return table.get(code, f"Destination unreachable, code {code}")
    if k == PACKET_TOO_BIG:
        return "Packet too big"
    if k == TIME_EXCEEDED:
        return {0: "Time to live exceeded", 1: "Fragment reassembly time exceeded"}.get(
            code, "Time exceeded"
        )
    if k == PARAMETER_PROBLEM:
        return "Parameter problem"
    if (family, icmp_type) == (4, V4_SOURCE_QUENCH):
        return "Source quench"
    if k == NOTE:
        return "Redirect"
    return f"ICMP type {icmp_type}, code {code}"


_MARKS_V4 = {0: "!N", 6: "!N", 11: "!N", 1: "!H", 7: "!H", 12: "!H", 2: "!P",
             4: "!F", 5: "!S", 9: "!X", 10: "!X", 13: "!X", 14: "!V", 15: "!C"}
_MARKS_V6 = {0: "!N", 6: "!N", 1: "!X", 5: "!X", 2: "!S", 3: "!H"}


def traceroute_mark(family, icmp_type, code):
    """traceroute's annotation for an error that ends a trace (`!H`, `!N`,
    `!P`, `!X`, `!F`, ...), or `None` for a message that does not."""
    k = kind(family, icmp_type)
    if k == PACKET_TOO_BIG:
        return "!F"
    if k != DESTINATION_UNREACHABLE:
        return None
    # Port unreachable is the target itself answering (UDP probes): no mark.
    if (family, code) in ((4, 3), (6, 4)):
        return None
    marks = _MARKS_V4 if family == 4 else _MARKS_V6
    return marks.get(code, f"!<{code}>")
