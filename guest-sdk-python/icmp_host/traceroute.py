"""`traceroute`: icmplib's parameters, without its defects.

Every probe has its own sequence number, so a late reply never counts for
the wrong hop; a timeout does not abandon the hop's other probes; every
responder of a hop is kept (ECMP); the trace stops at a Destination
Unreachable or Packet Too Big and marks it like traceroute (`!H`, `!N`,
`!X`, `!F`...); a silent hop stays in the result (`address` None); probes
for several TTLs are in flight at once; and `fast` works as documented
(icmplib 3.x ignores it). An answer counts when the host's RTT is within
`timeout`, however late this loop gets to it.
"""

from . import codes, exceptions, progress
from ._packet import Packet
from .models import Hop, ProbeRecord, Trace
from .network import current
from .ping import refused_by_kernel
from .utils import family_of, resolve_one, unique_identifier

_WAITING, _IN_FLIGHT, _ANSWERED, _TIMED_OUT, _SKIPPED = range(5)


def traceroute(address, count=2, interval=0.05, timeout=2, first_hop=1, max_hops=30,
               fast=False, id=None, source=None, family=None, privileged=None,
               in_flight=16, **kwargs):
    """Traces the path to `address` and returns a `Trace`: the list of
    `Hop`s from `first_hop` to the destination (or `max_hops`), silent hops
    included, with `reached` telling whether the destination answered.

    icmplib's parameters and defaults; `count` probes per hop, `interval`
    seconds between two sends, `in_flight` probes unanswered at once at
    most (traceroute's `-N`). Keyword arguments: `payload`, `payload_size`,
    `traffic_class`, `dont_fragment`, `interface`.
    """
    packet = Packet("traceroute", source, family, privileged, kwargs)
    if count < 1 or in_flight < 1 or not 1 <= first_hop <= max_hops <= 255:
        raise exceptions.InvalidArgument(
            "need count ≥ 1, in_flight ≥ 1 and 1 ≤ first_hop ≤ max_hops ≤ 255")
    hops = max_hops - first_hop + 1
    total = hops * count
    if total > 0xFFFF:
        raise exceptions.InvalidArgument(f"{total} probes: at most 65535 fit in one trace")
    net = current()
    destination = resolve_one(address, family)
    net.emit(progress.Start(progress.TRACEROUTE, address, destination, packet.size,
                            max_hops))
    socket = net.open(packet.open_options(family_of(destination)))
    try:
        run = _Run(net, socket, packet, destination, count, interval, timeout,
                   first_hop, hops, fast, in_flight,
                   unique_identifier() if id is None else id & 0xFFFF)
        return Trace(run.trace(), address, destination, run.reached)
    finally:
        socket.close()


class _Run:
    def __init__(self, net, socket, packet, destination, count, interval, timeout,
                 first_hop, hops, fast, in_flight, id):
        self.net, self.socket, self.packet = net, socket, packet
        self.destination = destination
        self.count, self.interval, self.timeout = count, interval, timeout
        self.fast, self.window, self.id = fast, in_flight, id
        self.total = hops * count
        # Probe i: hop i // count, sequence i + 1.
        self.state = [_WAITING] * self.total
        self.sent_at = [0.0] * self.total
        self.hops = [Hop(None, 0, [], first_hop + h) for h in range(hops)]
        self.last_hop = hops - 1  # hops past the destination are not probed
        self.reached = False
        self.emitted = 0

    def trace(self):
        net = self.net
        next_send = net.now()
        interrupted = False
        while True:
            if self.fast:
                self._skip_answered_hops()
            self._emit_finished()
            if self.emitted > self.last_hop or interrupted:
                break
            now = net.now()
            eligible = self._eligible()
            in_flight = self.state.count(_IN_FLIGHT)
            if eligible is not None and in_flight < self.window and now >= next_send:
                interrupted = self._send(eligible)
                next_send = now + self.interval
                continue
            expiries = [self.sent_at[i] + self.timeout
                        for i, s in enumerate(self.state) if s == _IN_FLIGHT]
            wake = min(expiries, default=None)
            if eligible is not None and in_flight < self.window:
                wake = next_send if wake is None else min(wake, next_send)
            if wake is None:
                # Nothing in flight and nothing left to send.
                self.state = [_SKIPPED if s == _WAITING else s for s in self.state]
                continue
            try:
                replies = self.socket.receive_many(1024, max(wake - now, 0))
            except exceptions.Interrupted:
                interrupted, replies = True, []
            for reply in replies:
                self._answer(reply)
            # Expire what was overdue before the replies above were read:
            # a reply already queued then was judged first.
            for i, s in enumerate(self.state):
                if s == _IN_FLIGHT and now >= self.sent_at[i] + self.timeout:
                    self._settle(i, _TIMED_OUT, ProbeRecord.timed_out(i + 1))
        # Whatever is still out when interrupted counts as unanswered.
        for i, s in enumerate(self.state):
            if s == _IN_FLIGHT and i // self.count <= self.last_hop:
                self._settle(i, _TIMED_OUT, ProbeRecord.timed_out(i + 1))
        probed = max((h + 1 for h, hop in enumerate(self.hops) if hop.packets_sent),
                     default=0)
        keep = min(probed, self.last_hop + 1) if interrupted else self.last_hop + 1
        return self.hops[:keep]

    def _eligible(self):
        """The next probe to send: the first waiting one (with `fast`, only
        after the hop's earlier probes all timed out)."""
        c = self.count
        for i in range((self.last_hop + 1) * c):
            if self.state[i] != _WAITING:
                continue
            if not self.fast or all(s == _TIMED_OUT for s in self.state[i - i % c:i]):
                return i
        return None

    def _send(self, i):
        """Sends probe `i`; True when the run was interrupted."""
        hop = self.hops[i // self.count]
        request = self.packet.request(self.destination, self.id, i + 1, hop.distance)
        try:
            self.socket.send(request)
        except exceptions.Interrupted:
            return True
        except exceptions.ICMPSocketError as e:
            if not refused_by_kernel(e):
                raise
            self._settle(i, _TIMED_OUT, ProbeRecord.failed(i + 1, str(e)))
            return False
        self.state[i] = _IN_FLIGHT
        self.sent_at[i] = self.net.now()
        hop.packets_sent += 1
        return False

    def _settle(self, i, state, record):
        self.state[i] = state
        self.hops[i // self.count].probes.append(record)

    def _answer(self, reply):
        i = reply.sequence - 1
        if reply.id != self.id or not 0 <= i < self.total:
            return
        hop = self.hops[i // self.count]
        if reply.is_note:
            self.net.emit(progress.Reply(reply))  # the host shows it as a note
            return
        # Duplicates, and answers after their probe's timeout, do not count.
        late = reply.rtt is not None and reply.rtt > self.timeout * 1000
        if reply.duplicate or late or self.state[i] != _IN_FLIGHT:
            hop.duplicates += int(reply.duplicate)
            return
        self.state[i] = _ANSWERED
        hop.record(reply)
        k = reply.kind
        ends = k == codes.ECHO_REPLY
        if k in (codes.DESTINATION_UNREACHABLE, codes.PACKET_TOO_BIG):
            hop.mark = codes.traceroute_mark(reply.family, reply.type, reply.code)
            ends = True
        if ends and i // self.count <= self.last_hop:
            self.reached = self.reached or k == codes.ECHO_REPLY
            self.last_hop = i // self.count
            for j in range((self.last_hop + 1) * self.count, self.total):
                if self.state[j] == _WAITING:
                    self.state[j] = _SKIPPED

    def _skip_answered_hops(self):
        c = self.count
        for h in range(self.last_hop + 1):
            if self.hops[h].is_alive:
                for i in range(h * c, (h + 1) * c):
                    if self.state[i] == _WAITING:
                        self.state[i] = _SKIPPED

    def _emit_finished(self):
        """Emits, in order, the hops whose probes are all settled."""
        c = self.count
        settled = (_ANSWERED, _TIMED_OUT, _SKIPPED)
        while self.emitted <= self.last_hop:
            h = self.emitted
            if not all(s in settled for s in self.state[h * c:(h + 1) * c]):
                break
            hop = self.hops[h]
            hop.probes.sort(key=lambda p: p.sequence)
            self.net.emit(progress.Hop(hop.distance, [
                progress.HopProbe(p.source, p.rtt, p.type or 0, p.code or 0)
                for p in hop.probes]))
            self.emitted += 1
