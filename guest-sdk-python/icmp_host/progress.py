"""Progress events: the host renders them like ping and traceroute do, as
NDJSON, or not at all. A plugin never prints its results; it returns them
(or streams them with `result_line`)."""

from dataclasses import dataclass, field
from typing import List, Optional

from . import network
from .probe import to_json

PING = "ping"
TRACEROUTE = "traceroute"
OTHER = "other"


@dataclass
class Start:
    """A probe starts (ping's and traceroute's header line)."""

    kind: str
    target: str
    address: Optional[str]
    payload_size: int
    max_hops: int = 0


@dataclass
class Reply:
    """A reply or ICMP error arrived (an `ICMPReply`)."""

    reply: object


@dataclass
class Timeout:
    """A request got no answer in time."""

    destination: str
    id: int
    sequence: int


@dataclass
class HopProbe:
    """One probe of a traceroute hop: responder and RTT (ms) when answered."""

    responder: Optional[str]
    rtt: Optional[float]
    type: int = 0
    code: int = 0


@dataclass
class Hop:
    """A traceroute hop is complete."""

    distance: int
    probes: List[HopProbe] = field(default_factory=list)


@dataclass
class Summary:
    """A ping's statistics, for ping's summary lines (RTTs in ms, elapsed
    in seconds)."""

    target: str
    packets_sent: int
    packets_received: int
    duplicates: int
    errors: int
    min_rtt: float
    avg_rtt: float
    max_rtt: float
    mdev: float
    elapsed: float


@dataclass
class Note:
    """A line of free text."""

    text: str


@dataclass
class ResultLine:
    """One JSON document written to stdout at once, on its own line."""

    json: str


def emit(event):
    """Reports `event` to the host."""
    network.current().emit(event)


def note(text):
    """Shows a line of text to the user watching (stderr; never silenced
    into the result)."""
    emit(Note(str(text)))


def result_line(value):
    """Streams `value` (a `Host`, `Hop`, list, dict...) as one JSON line on
    stdout now, before the run ends. Return `None` from `run` when every
    result was streamed."""
    emit(ResultLine(to_json(value)))
