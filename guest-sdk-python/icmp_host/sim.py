"""A scripted network with a virtual clock, for testing probes under
CPython: no sockets, no sleeping, no wasm. Deterministic.

A responder function decides, for each request sent, what comes back and
when. Receives advance the virtual clock to the next arrival or to the
timeout; sleeps advance it at once. Use it as a context manager: inside
the block, every `icmp_host` function uses it.

```python
from icmp_host import ping
from icmp_host.sim import Response, SimNetwork

with SimNetwork(lambda request: [Response.echo(5)]) as net:
    host = ping("192.0.2.1", count=2)
assert host.avg_rtt == 5.0 and len(net.sent) == 2
```
"""

from . import exceptions, progress
from .models import ICMPReply
from .network import Network, Rules, SocketStats
from .utils import family_of

#: Simulated timestamps start at 2026-01-01T00:00:00Z.
EPOCH = 1_767_225_600.0


class Response:
    """What comes back for one request: after `after` ms, from `source`
    (None: the destination itself), of ICMP `type`/`code` (type None: the
    family's Echo Reply), with `mtu` and arrival `ttl`."""

    def __init__(self, after, source=None, type=None, code=0, mtu=None, ttl=64):
        self.after = after
        self.source = source
        self.type = type
        self.code = code
        self.mtu = mtu
        self.ttl = ttl

    @classmethod
    def echo(cls, after, ttl=64):
        """An Echo Reply from the destination after `after` ms."""
        return cls(after, ttl=ttl)

    @classmethod
    def error(cls, after, source, type, code=0, mtu=None):
        """An ICMP error of `type`/`code` from `source` after `after` ms."""
        return cls(after, source, type, code, mtu)


class SimNetwork(Network):
    """A scripted network. `responder(request)` returns a list of
    `Response`s (empty: silence); `names` maps names to address lists;
    `interrupt_at` (virtual seconds) makes every call from then on raise
    `Interrupted`, as Ctrl-C does; `policy(address)` may raise
    `PolicyDenied`; `rules` is what `limits()` returns."""

    def __init__(self, responder, names=None, interrupt_at=None, privileged=True,
                 policy=None, rules=None):
        self.responder = responder
        self.names = dict(names or {})
        self.interrupt_at = interrupt_at
        self.privileged = privileged
        self.policy = policy
        self.rules = rules
        self.clock = 0.0
        #: (virtual send time, ICMPRequest) of every request sent.
        self.sent = []
        #: Every progress event emitted.
        self.events = []
        self._pending = []  # (arrival, socket id, ICMPReply)
        self._answered = set()
        self._sockets = 0

    # The clock.
    def _check(self):
        if self.interrupt_at is not None and self.clock >= self.interrupt_at:
            raise exceptions.Interrupted()

    def _advance(self, to):
        if self.interrupt_at is not None and to >= self.interrupt_at:
            self.clock = max(self.clock, self.interrupt_at)
            raise exceptions.Interrupted()
        self.clock = max(self.clock, to)

    def now(self):
        return self.clock

    def sleep(self, seconds):
        self._check()
        self._advance(self.clock + max(seconds, 0))

    def emit(self, event):
        self.events.append(event)

    def notes(self):
        """The text of every note emitted."""
        return [e.text for e in self.events if isinstance(e, progress.Note)]

    def replies(self):
        """Every reply reported as a progress event (notes such as
        Redirect included)."""
        return [e.reply for e in self.events if isinstance(e, progress.Reply)]

    def resolve(self, name, family):
        self._check()
        if family_of(name) is not None:
            found = [name]
        elif name in self.names:
            found = list(self.names[name])
        else:
            raise exceptions.NameLookupError(f"{name}: name or service not known")
        if family is not None:
            found = [a for a in found if family_of(a) == family]
        if not found:
            raise exceptions.NameLookupError(f"{name}: no IPv{family} address")
        return sorted(found, key=family_of)

    def open(self, options):
        self._check()
        if options.mode == "privileged" and not self.privileged:
            raise exceptions.SocketPermissionError("no raw sockets in this simulation")
        self._sockets += 1
        return SimSocket(self, self._sockets, options.family)

    def limits(self):
        if self.rules is None:
            return Rules((), (), False, False, self.privileged, True, 65507, 64, None, None,
                         len(self.sent), 1024, 4 << 20, 60.0, 256 << 20, 60.0, None)
        return self.rules

    def check_destination(self, address):
        if self.policy is not None:
            self.policy(address)

    # Sockets.
    def _send(self, socket, request):
        self._check()
        if family_of(request.destination) != socket.family_:
            raise exceptions.SocketAddressError(request.destination)
        if self.policy is not None:
            self.policy(request.destination)
        request._time = EPOCH + self.clock
        self.sent.append((self.clock, request))
        family = socket.family_
        echo = 0 if family == 4 else 129
        for r in self.responder(request):
            source = request.destination if r.source is None else r.source
            key = (socket.id, request.id, request.sequence, source)
            duplicate = key in self._answered
            self._answered.add(key)
            reply = ICMPReply(
                source, family, request.id, request.sequence,
                echo if r.type is None else r.type, r.code,
                8 + request.payload_size if r.type is None else 8 + 28 + request.payload_size,
                EPOCH + self.clock + r.after / 1000, rtt=float(r.after), ttl=r.ttl,
                original_destination=None if r.type is None else request.destination,
                mtu=r.mtu, duplicate=duplicate)
            self._pending.append((self.clock + r.after / 1000, socket.id, reply))
        self._pending.sort(key=lambda p: p[0])
        return request._time

    def _take(self, socket, match, until):
        """The first reply for `socket` (matching `match`) arriving by
        `until`, moving the clock to its arrival; None at `until`."""
        for n, (arrival, sid, reply) in enumerate(self._pending):
            if arrival > until:
                break
            if sid == socket.id and (match is None or match == (reply.id, reply.sequence)):
                del self._pending[n]
                self._advance(arrival)
                return reply
        self._advance(until)
        return None


class SimSocket:
    """A socket of a `SimNetwork`."""

    def __init__(self, net, id, family):
        self.net, self.id, self.family_ = net, id, family
        self._closed = False
        self._broadcast = False
        self._sent = 0
        self._received = 0

    def _open(self):
        if self._closed:
            raise exceptions.SocketUnavailableError()

    def send(self, request):
        self._open()
        if (self.family_ == 4 and not self._broadcast
                and str(request.destination).endswith(".255")):
            raise exceptions.SocketBroadcastError()
        t = self.net._send(self, request)
        self._sent += 1
        return t

    def send_many(self, requests):
        self._open()
        out = []
        for r in requests:
            try:
                out.append(self.send(r))
            except exceptions.Interrupted:
                raise
            except exceptions.ICMPLibError as e:
                out.append(e)
        return out

    def receive(self, match, timeout):
        self._open()
        self.net._check()
        reply = self.net._take(self, match, self.net.clock + timeout)
        if reply is None:
            raise exceptions.TimeoutExceeded(timeout)
        self._received += 1
        return reply

    def receive_many(self, max, timeout):
        self._open()
        self.net._check()
        first = self.net._take(self, None, self.net.clock + timeout)
        if first is None:
            return []
        out = [first]
        while len(out) < max:
            more = self.net._take(self, None, self.net.clock)
            if more is None:
                break
            out.append(more)
        self._received += len(out)
        return out

    def broadcast(self):
        return self._broadcast

    def set_broadcast(self, enabled):
        self._broadcast = enabled

    def address(self):
        return None

    def family(self):
        return self.family_

    def is_privileged(self):
        return self.net.privileged

    def is_closed(self):
        return self._closed

    def stats(self):
        return SocketStats(self._sent, self._received, 0, 0, 0)

    def close(self):
        self._closed = True

