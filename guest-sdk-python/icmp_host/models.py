"""icmplib's models — `ICMPRequest`, `ICMPReply`, `Host`, `Hop` — with
icmplib's names and rounding, plus what icmplib drops: per-probe records,
duplicates, every responder of a hop, traceroute's marks. `to_dict()`
gives the JSON result schema v1 that the Rust plugins return."""

from . import codes
from . import exceptions

#: icmplib's defaults for a request.
DEFAULT_PAYLOAD_SIZE = 56
DEFAULT_TTL = 64


class ICMPRequest:
    """An ICMP Echo Request (icmplib's `ICMPRequest`).

    `payload` `None` lets the host fill `payload_size` random bytes (icmplib
    re-randomised them on every access; here they are chosen once, when
    sent). `dont_fragment` forbids fragmentation on the way. `time` is the
    send time (seconds since the epoch) once `send` has returned.
    """

    def __init__(self, destination, id, sequence, payload=None,
                 payload_size=DEFAULT_PAYLOAD_SIZE, ttl=DEFAULT_TTL,
                 traffic_class=0, dont_fragment=False):
        if payload is not None:
            payload = bytes(payload)
            payload_size = len(payload)
        self._destination = destination
        self._id = id & 0xFFFF
        self._sequence = sequence & 0xFFFF
        self._payload = payload
        self._payload_size = payload_size
        self._ttl = ttl
        self._traffic_class = traffic_class
        self._dont_fragment = bool(dont_fragment)
        self._time = 0

    def __repr__(self):
        return f"<ICMPRequest [{self._destination}]>"

    destination = property(lambda self: self._destination, doc="Where it goes.")
    id = property(lambda self: self._id, doc="Identifier (the host maps it).")
    sequence = property(lambda self: self._sequence, doc="Sequence number.")
    payload = property(lambda self: self._payload, doc="Exact payload, or None.")
    payload_size = property(lambda self: self._payload_size, doc="Payload bytes.")
    ttl = property(lambda self: self._ttl, doc="TTL / hop limit.")
    traffic_class = property(lambda self: self._traffic_class, doc="TOS / traffic class.")
    dont_fragment = property(lambda self: self._dont_fragment, doc="Don't Fragment.")
    time = property(lambda self: self._time, doc="Send time, seconds since the epoch.")


class ICMPReply:
    """A message received in answer to a request (icmplib's `ICMPReply`).

    icmplib's fields — `source`, `family` (4 or 6), `id`, `sequence`,
    `type`, `code`, `bytes_received`, `time` (arrival, seconds since the
    epoch) — plus `rtt` (ms, computed by the host from kernel timestamps),
    `ttl` of the arriving packet, `original_destination` and `mtu` of an
    error, `duplicate`, and `timestamp_source`.
    """

    def __init__(self, source, family, id, sequence, type, code, bytes_received,
                 time, rtt=None, ttl=None, original_destination=None, mtu=None,
                 duplicate=False, timestamp_source="kernel"):
        self.source = source
        self.family = family
        self.id = id
        self.sequence = sequence
        self.type = type
        self.code = code
        self.bytes_received = bytes_received
        self.time = time
        self.rtt = rtt
        self.ttl = ttl
        self.original_destination = original_destination
        self.mtu = mtu
        self.duplicate = duplicate
        self.timestamp_source = timestamp_source

    def __repr__(self):
        return f"<ICMPReply [{self.source}]>"

    @property
    def kind(self):
        """What the message means: one of the `codes` kinds."""
        return codes.kind(self.family, self.type)

    @property
    def is_echo_reply(self):
        """Whether this is an Echo Reply (the target answered)."""
        return self.kind == codes.ECHO_REPLY

    @property
    def is_note(self):
        """Redirect or Source Quench: information, never an answer."""
        return self.kind == codes.NOTE

    @property
    def message(self):
        """The message in words; `None` for an Echo Reply."""
        return codes.describe(self.family, self.type, self.code)

    def raise_for_status(self):
        """Raises `DestinationUnreachable`, `TimeExceeded`, `PacketTooBig`
        or `ICMPError` unless this is an Echo Reply."""
        error = exceptions.for_reply(self)
        if error is not None:
            raise error


class ProbeRecord:
    """What became of one request: `status` is `reply`, `error` (an ICMP
    error came back), `timeout` or `failed` (it could not be sent)."""

    __slots__ = ("sequence", "status", "source", "rtt", "ttl", "type", "code",
                 "mtu", "timestamp_source", "message")

    def __init__(self, sequence, status, source=None, rtt=None, ttl=None, type=None,
                 code=None, mtu=None, timestamp_source=None, message=None):
        self.sequence = sequence
        self.status = status
        self.source = source
        self.rtt = rtt
        self.ttl = ttl
        self.type = type
        self.code = code
        self.mtu = mtu
        self.timestamp_source = timestamp_source
        self.message = message

    @classmethod
    def answered(cls, reply, sequence=None):
        """A probe answered by `reply` (an echo reply or an ICMP error)."""
        message = reply.message
        return cls(reply.sequence if sequence is None else sequence,
                   "reply" if message is None else "error", reply.source, reply.rtt,
                   reply.ttl, reply.type, reply.code, reply.mtu, reply.timestamp_source,
                   message)

    @classmethod
    def timed_out(cls, sequence):
        """A probe that got no answer in time."""
        return cls(sequence, "timeout")

    @classmethod
    def failed(cls, sequence, message):
        """A probe that could not be sent."""
        return cls(sequence, "failed", message=message)

    def to_dict(self):
        """Schema v1: `sequence`, `status`, then what is known."""
        d = {"sequence": self.sequence, "status": self.status}
        for key in ("source", "rtt", "ttl", "type", "code", "mtu", "timestamp_source",
                    "message"):
            value = getattr(self, key)
            if value is not None:
                d[key] = value
        return d

    def __repr__(self):
        return f"<ProbeRecord {self.sequence} {self.status}>"


def jitter(rtts):
    """Mean absolute difference of consecutive RTTs (icmplib's jitter); 0
    with fewer than two."""
    if len(rtts) < 2:
        return 0.0
    return sum(abs(a - b) for a, b in zip(rtts, rtts[1:])) / (len(rtts) - 1)


def mdev(rtts):
    """Population standard deviation (iputils' mdev); 0 when empty."""
    if not rtts:
        return 0.0
    mean = sum(rtts) / len(rtts)
    return (sum((r - mean) ** 2 for r in rtts) / len(rtts)) ** 0.5


class Host:
    """A pinged host (icmplib's `Host`): icmplib's properties and rounding,
    plus `target` (as written), `duplicates`, `probes` (one `ProbeRecord`
    per request) and `error` (why it could not be pinged at all)."""

    def __init__(self, address, packets_sent, rtts, target=None, duplicates=0,
                 probes=None, error=None):
        self._address = address
        self._packets_sent = packets_sent
        self._rtts = list(rtts)
        self.target = address if target is None else target
        self.duplicates = duplicates
        self.probes = [] if probes is None else probes
        self.error = error

    def __repr__(self):
        return f"<{type(self).__name__} [{self._address}]>"

    def __str__(self):
        return "\n".join((
            f"  {self._address or '*':-^41}",
            f"  {'Packets sent:':<29}{self.packets_sent:>12}",
            f"  {'Packets received:':<29}{self.packets_received:>12}",
            f"  {'Packet loss:':<29}{self.packet_loss * 100:>11}%",
            f"  {'Round-trip times:':<29}"
            f"{f'{self.min_rtt}/{self.avg_rtt}/{self.max_rtt} ms':>12}",
            f"  {'Jitter:':<29}{f'{self.jitter} ms':>12}",
            f"  {'-' * 41}",
        ))

    @property
    def address(self):
        """The address pinged (for a hop: its first responder, or None)."""
        return self._address

    @property
    def rtts(self):
        """RTTs of the echo replies, in ms, in arrival order."""
        return self._rtts

    @property
    def packets_sent(self):
        """Requests sent."""
        return self._packets_sent

    @packets_sent.setter
    def packets_sent(self, value):
        self._packets_sent = value

    @property
    def packets_received(self):
        """Replies received (`len(rtts)`)."""
        return len(self._rtts)

    @property
    def min_rtt(self):
        """Smallest RTT in ms, 3 places; 0.0 without replies."""
        return round(min(self._rtts), 3) if self._rtts else 0.0

    @property
    def avg_rtt(self):
        """Mean RTT in ms, 3 places; 0.0 without replies."""
        return round(sum(self._rtts) / len(self._rtts), 3) if self._rtts else 0.0

    @property
    def max_rtt(self):
        """Largest RTT in ms, 3 places; 0.0 without replies."""
        return round(max(self._rtts), 3) if self._rtts else 0.0

    @property
    def packet_loss(self):
        """Fraction of requests unanswered, 2 places. 1.0 when nothing was
        sent (icmplib says 0.0, which reads as a healthy host)."""
        if not self._packets_sent:
            return 1.0
        received = min(self.packets_received, self._packets_sent)
        return round(1 - received / self._packets_sent, 2)

    @property
    def jitter(self):
        """icmplib's jitter in ms, 3 places."""
        return round(jitter(self._rtts), 3)

    @property
    def is_alive(self):
        """Whether anything answered."""
        return bool(self._rtts)

    def _icmplib_fields(self):
        return {
            "address": self._address,
            "min_rtt": float(self.min_rtt),
            "avg_rtt": float(self.avg_rtt),
            "max_rtt": float(self.max_rtt),
            "rtts": list(self._rtts),
            "packets_sent": self._packets_sent,
            "packets_received": self.packets_received,
            "packet_loss": float(self.packet_loss),
            "jitter": float(self.jitter),
            "is_alive": self.is_alive,
        }

    def to_dict(self):
        """The result schema v1 record (README "Result schema v1")."""
        d = self._icmplib_fields()
        d["target"] = self.target
        d["duplicates"] = self.duplicates
        d["probes"] = [p.to_dict() for p in sorted(self.probes, key=lambda p: p.sequence)]
        if self.error is not None:
            d["error"] = self.error
        return d


class Responder:
    """One responder of a hop and the RTTs (ms) of its answers."""

    __slots__ = ("address", "rtts")

    def __init__(self, address, rtts=None):
        self.address = address
        self.rtts = [] if rtts is None else rtts

    def to_dict(self):
        return {"address": self.address, "rtts": list(self.rtts)}

    def __repr__(self):
        return f"<Responder [{self.address}]>"


class Hop(Host):
    """One hop of a trace (icmplib's `Hop`): `distance` is its TTL;
    `address` its first responder, `None` for a silent hop (kept, unlike
    icmplib); `responders` every distinct responder (ECMP); `mark`
    traceroute's annotation when the trace ended here with an error."""

    def __init__(self, address, packets_sent, rtts, distance, responders=None,
                 probes=None, mark=None, duplicates=0):
        super().__init__(address, packets_sent, rtts, probes=probes,
                         duplicates=duplicates)
        self._distance = distance
        self.responders = [] if responders is None else responders
        self.mark = mark

    @property
    def distance(self):
        """The TTL of this hop's probes."""
        return self._distance

    @property
    def address(self):
        if self.responders:
            return self.responders[0].address
        return self._address

    def record(self, reply, sequence=None):
        """Counts an answer to one of this hop's probes."""
        self._rtts.append(reply.rtt)
        self.probes.append(ProbeRecord.answered(reply, sequence))
        for r in self.responders:
            if r.address == reply.source:
                r.rtts.append(reply.rtt)
                break
        else:
            self.responders.append(Responder(reply.source, [reply.rtt]))

    def to_dict(self):
        """The result schema v1 record (README "Result schema v1")."""
        d = self._icmplib_fields()
        d["address"] = self.address
        d["distance"] = self._distance
        d["responders"] = [r.to_dict() for r in self.responders]
        d["probes"] = [p.to_dict() for p in sorted(self.probes, key=lambda p: p.sequence)]
        d["mark"] = self.mark
        d["duplicates"] = self.duplicates
        return d


class Trace(list):
    """What `traceroute` returns: the list of `Hop`s (icmplib's return
    value), plus `target`, `address` and `reached` (the destination
    answered)."""

    def __init__(self, hops, target, address, reached):
        super().__init__(hops)
        self.target = target
        self.address = address
        self.reached = reached
