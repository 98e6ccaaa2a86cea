"""The seam between probe algorithms and the world.

A `Network` opens sockets, resolves names, tells the time, sleeps and
reports progress. Inside icmp-host the network is the host's
(`icmp_host._wit.HostNetwork`, over the generated bindings); in tests it
is `icmp_host.sim.SimNetwork`, a scripted network with a virtual clock.
`current()` is whichever is in use: the innermost `with SimNetwork(...)`,
else the host's.

Times are seconds: `now()` is a monotonic clock, send and receive times
(`ICMPRequest.time`, `ICMPReply.time`) are seconds since the epoch, RTTs
are milliseconds (icmplib's units).
"""

from dataclasses import dataclass
from typing import Optional

AUTO = "auto"
PRIVILEGED = "privileged"
UNPRIVILEGED = "unprivileged"


def mode_of(privileged):
    """icmplib's `privileged` flag as a socket mode: True raw, False
    datagram, None (the default here) whichever the host has."""
    if privileged is None:
        return AUTO
    return PRIVILEGED if privileged else UNPRIVILEGED


@dataclass(frozen=True)
class OpenOptions:
    """How to open a socket."""

    family: int
    source: Optional[str] = None
    mode: str = AUTO
    interface: Optional[str] = None


@dataclass(frozen=True)
class SocketStats:
    """Counters of one socket since it was opened."""

    sent: int
    received: int
    queue_drops: int
    corrupted: int
    kernel_drops: int


@dataclass(frozen=True)
class Cidr:
    """An address prefix."""

    address: str
    prefix: int

    def __str__(self):
        return f"{self.address}/{self.prefix}"


@dataclass(frozen=True)
class Rules:
    """The policy and limits a run is under (`icmp_host.limits()`).
    Durations are seconds, sizes bytes."""

    allow: tuple
    deny: tuple
    allow_broadcast: bool
    allow_multicast: bool
    allow_privileged: bool
    allow_names: bool
    max_payload: int
    max_sockets: int
    max_pps: Optional[float]
    max_packets: Optional[int]
    packets_sent: int
    max_batch: int
    max_batch_bytes: int
    max_timeout: float
    memory: int
    cpu: float
    wall: Optional[float]


class Network:
    """What a probe needs from outside. Subclasses implement every method."""

    def open(self, options):
        """Opens a socket (an object with `send`, `send_many`, `receive`,
        `receive_many`, `broadcast`, `set_broadcast`, `address`, `family`,
        `is_privileged`, `is_closed`, `stats`, `close`)."""
        raise NotImplementedError

    def resolve(self, name, family):
        """Every address of `name` as strings, IPv4 first."""
        raise NotImplementedError

    def emit(self, event):
        """Reports a progress event (`icmp_host.progress`)."""
        raise NotImplementedError

    def now(self):
        """Monotonic seconds since an arbitrary origin."""
        raise NotImplementedError

    def sleep(self, seconds):
        """Sleeps; raises `Interrupted` early when the run is ending."""
        raise NotImplementedError

    def limits(self):
        """The `Rules` of this run."""
        raise NotImplementedError

    def check_destination(self, address):
        """Raises `PolicyDenied` if a request to `address` would be refused."""
        raise NotImplementedError

    # Used as a context manager, a network is `current()` inside the block.
    def __enter__(self):
        _stack.append(self)
        return self

    def __exit__(self, *exc):
        _stack.remove(self)
        return False


_stack = []
_host = None


def current():
    """The network in use: the innermost `with network:`, else the host's."""
    if _stack:
        return _stack[-1]
    global _host
    if _host is None:
        try:
            from ._wit import HostNetwork
        except ImportError as e:
            raise RuntimeError(
                "icmp_host is running outside icmp-host: use it inside a component "
                "built with componentize-py, or inside `with SimNetwork(...)` in tests"
            ) from e
        _host = HostNetwork()
    return _host
