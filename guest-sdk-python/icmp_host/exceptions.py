"""icmplib's exception tree, plus the host's own answers.

```
ICMPLibError
├─ NameLookupError
├─ PolicyDenied                 the host's policy refused (.rule, .message)
├─ Interrupted                  Ctrl-C or the wall-clock limit: return what you have
├─ InvalidArgument              also a ValueError
├─ ICMPSocketError
│  ├─ SocketAddressError
│  ├─ SocketPermissionError
│  ├─ SocketUnavailableError
│  ├─ SocketBroadcastError
│  ├─ TimeoutExceeded
│  ├─ MessageTooBig             a Don't-Fragment request larger than the MTU (.mtu); not sent
│  ├─ ResourceExhausted
│  └─ Unsupported
└─ ICMPError (.reply)
   ├─ DestinationUnreachable → ICMPv4DestinationUnreachable, ICMPv6DestinationUnreachable
   ├─ TimeExceeded           → ICMPv4TimeExceeded, ICMPv6TimeExceeded
   └─ PacketTooBig (.mtu)    → ICMPv6PacketTooBig, ICMPv4FragmentationNeeded
                               (the latter is also an ICMPv4DestinationUnreachable, as in icmplib)
```
"""

from . import codes


class ICMPLibError(Exception):
    """Base of every error this package raises."""

    def __init__(self, message):
        super().__init__(message)
        self._message = message

    @property
    def message(self):
        """The error in words."""
        return self._message


class NameLookupError(ICMPLibError):
    """A name could not be resolved."""


class PolicyDenied(ICMPLibError):
    """The host's policy refused the call. `rule` names the rule
    (`destination`, `multicast`, `broadcast`, `packet-budget`,
    `payload-size`, `sockets`, `privileged`, `names`); `message` says
    why, naming the rule's setting."""

    def __init__(self, rule, message):
        super().__init__(f"denied by policy ({rule}): {message}")
        self.rule = rule
        self.reason = message


class Interrupted(ICMPLibError):
    """The run is ending (Ctrl-C or the wall-clock limit): the built-in
    functions return what they have; your own loops should too."""

    def __init__(self, message="interrupted"):
        super().__init__(message)


class InvalidArgument(ICMPLibError, ValueError):
    """An argument is out of range (the host's words)."""


class ICMPSocketError(ICMPLibError):
    """A socket failed."""


class SocketAddressError(ICMPSocketError):
    """The source or destination address is unusable."""

    def __init__(self, address):
        super().__init__(f"The address '{address}' cannot be used")
        self.address = address


class SocketPermissionError(ICMPSocketError):
    """The host lacks the privilege for the requested mode."""

    def __init__(self, message):
        super().__init__(message)


class SocketUnavailableError(ICMPSocketError):
    """The socket is closed."""

    def __init__(self):
        super().__init__("The socket can no longer be used after its closure")


class SocketBroadcastError(ICMPSocketError):
    """A broadcast destination, but broadcast is not enabled on the socket."""

    def __init__(self):
        super().__init__(
            "Broadcast is not allowed: please use the broadcast property to allow it"
        )


class TimeoutExceeded(ICMPSocketError):
    """No reply arrived within `timeout` seconds."""

    def __init__(self, timeout):
        super().__init__(f"The timeout has been reached ({timeout}s)")
        self.timeout = timeout


class MessageTooBig(ICMPSocketError):
    """A Don't-Fragment request is larger than the local interface MTU or
    the path MTU the kernel has cached (`mtu`); nothing was sent
    (iputils: "local error: message too long")."""

    def __init__(self, mtu):
        super().__init__(f"local error: message too long, mtu={mtu}")
        self.mtu = mtu


class ResourceExhausted(ICMPSocketError):
    """A host capacity (sockets, requests in flight, identifiers) is used up."""


class Unsupported(ICMPSocketError):
    """The host or platform cannot do this."""


class ICMPError(ICMPLibError):
    """An ICMP error message came back; `reply` is the message."""

    def __init__(self, message, reply):
        super().__init__(message)
        self.reply = reply


class DestinationUnreachable(ICMPError):
    """Destination Unreachable."""


class ICMPv4DestinationUnreachable(DestinationUnreachable):
    """ICMPv4 Destination Unreachable (type 3)."""


class ICMPv6DestinationUnreachable(DestinationUnreachable):
    """ICMPv6 Destination Unreachable (type 1)."""


class TimeExceeded(ICMPError):
    """Time Exceeded: the TTL / hop limit ran out, or reassembly timed out."""


class ICMPv4TimeExceeded(TimeExceeded):
    """ICMPv4 Time Exceeded (type 11)."""


class ICMPv6TimeExceeded(TimeExceeded):
    """ICMPv6 Time Exceeded (type 3)."""


class PacketTooBig(ICMPError):
    """A router could not forward the request without fragmenting it;
    `mtu` is its next-hop MTU (`None` when the router did not say)."""

    @property
    def mtu(self):
        return self.reply.mtu


class ICMPv6PacketTooBig(PacketTooBig):
    """ICMPv6 Packet Too Big (type 2)."""


class ICMPv4FragmentationNeeded(ICMPv4DestinationUnreachable, PacketTooBig):
    """ICMPv4 Destination Unreachable, Fragmentation Needed (type 3 code 4)."""


def for_reply(reply):
    """The exception `reply.raise_for_status()` raises, or `None` for an
    Echo Reply."""
    family, icmp_type, code = reply.family, reply.type, reply.code
    k = codes.kind(family, icmp_type)
    if k == codes.ECHO_REPLY:
        return None
    text = codes.describe(family, icmp_type, code)
    if k == codes.DESTINATION_UNREACHABLE:
        if family == 4 and code == codes.V4_CODE_FRAG_NEEDED:
            cls = ICMPv4FragmentationNeeded
        else:
            cls = ICMPv4DestinationUnreachable if family == 4 else ICMPv6DestinationUnreachable
    elif k == codes.TIME_EXCEEDED:
        cls = ICMPv4TimeExceeded if family == 4 else ICMPv6TimeExceeded
    elif k == codes.PACKET_TOO_BIG:
        cls = ICMPv6PacketTooBig
    else:
        cls = ICMPError
    return cls(text, reply)
