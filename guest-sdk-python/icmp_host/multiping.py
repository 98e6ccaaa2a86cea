"""`multiping`: many hosts over one socket per family.

icmplib runs a task with its own socket per host; here one socket per
family serves every host, the host demultiplexes the replies, sends are
paced by `rate` (requests per second over all hosts, fping's `-i`) and
each host keeps its own `interval`. A name that does not resolve is a
host that is not alive, with its `error` — never a failed call (icmplib
#44, #52). Results come back in input order; `on_done(host)` sees each
one as soon as it is finished (icmplib #42).
"""

from . import codes, exceptions, progress
from ._packet import Packet
from .models import Host, ProbeRecord
from .network import current
from .utils import family_of, resolve_one

#: Requests per host call, at most.
_BATCH = 256


def multiping(addresses, count=2, interval=0.5, timeout=2, concurrent_tasks=50,
              source=None, family=None, privileged=None, rate=1000, on_done=None,
              **kwargs):
    """Pings every address (names allowed) and returns a list of `Host`s in
    input order.

    icmplib's parameters and defaults. `concurrent_tasks` keeps icmplib's
    meaning — at most that many hosts are being pinged at once — but a
    host here costs no socket or task, so `None` (no bound) is fine even
    for thousands. `rate` paces sends over all hosts (requests per second;
    None or 0 for as fast as the host allows). `on_done(host)` is called
    as each host finishes. Keyword arguments: `payload`, `payload_size`,
    `traffic_class`, `ttl`, `dont_fragment`, `interface`.

    Raises `SocketPermissionError`, `SocketAddressError`, `PolicyDenied`
    (for the whole call: a destination the policy refuses, for example).
    """
    packet = Packet("multiping", source, family, privileged, kwargs)
    if count < 1:
        raise ValueError("count must be at least 1")
    if concurrent_tasks is not None and concurrent_tasks < 1:
        raise ValueError("concurrent_tasks must be at least 1 (or None)")
    if len(addresses) * count >= 1 << 32:
        raise exceptions.InvalidArgument("too many requests for one run")
    net = current()
    hosts, destinations = [], []
    for target in addresses:
        try:
            d = resolve_one(target, family)
            hosts.append(Host(d, 0, [], target=target))
            destinations.append(d)
        except exceptions.Interrupted:
            raise
        except (exceptions.NameLookupError, exceptions.PolicyDenied) as e:
            hosts.append(Host(target, 0, [], target=target, error=str(e)))
            destinations.append(None)
    sockets = {}
    try:
        for fam in (4, 6):
            if any(d is not None and family_of(d) == fam for d in destinations):
                sockets[fam] = net.open(packet.open_options(fam))
        _Run(net, sockets, packet, hosts, destinations, count, interval, timeout,
             concurrent_tasks, rate, on_done).run()
    finally:
        for s in sockets.values():
            s.close()
    return hosts


class _Run:
    """Request k is round k % count of host k // count; its (id, sequence)
    is k split in two halves."""

    def __init__(self, net, sockets, packet, hosts, destinations, count, interval,
                 timeout, concurrent_tasks, rate, on_done):
        self.net, self.sockets, self.packet = net, sockets, packet
        self.hosts, self.destinations = hosts, destinations
        self.count, self.interval, self.timeout = count, interval, timeout
        self.limit = concurrent_tasks
        self.gap = 1 / rate if rate else 0.0
        self.on_done = on_done
        self.unsettled = [count if d is not None else 0 for d in destinations]
        self.sent_at = {}  # k -> send time, while in flight
        self.waiting = [i for i, d in enumerate(destinations) if d is not None]
        self.waiting.reverse()  # popped from the end, in input order
        self.active = {}  # host -> [next round, due time]
        for i, d in enumerate(destinations):
            if d is None:
                self._done(i)

    def _done(self, i):
        self.hosts[i].probes.sort(key=lambda p: p.sequence)
        if self.on_done is not None:
            self.on_done(self.hosts[i])

    def _settle(self, k, record):
        i = k // self.count
        record.sequence = k % self.count + 1
        self.hosts[i].probes.append(record)
        self.unsettled[i] -= 1
        if self.unsettled[i] == 0:
            self.active.pop(i, None)
            self._done(i)

    def run(self):
        net = self.net
        next_send = net.now()
        try:
            while self.waiting or self.active:
                now = net.now()
                while self.waiting and (self.limit is None or len(self.active) < self.limit):
                    self.active[self.waiting.pop()] = [0, now]
                due = sorted((due, i) for i, (r, due) in self.active.items()
                             if r < self.count and due <= now)
                if due and now >= next_send:
                    # Catch up on at most 10 ms of lateness (and none of the
                    # time nothing was due): never a burst.
                    next_send = max(next_send, due[0][0], now - 0.01)
                    n = _BATCH if not self.gap else min(int((now - next_send) / self.gap) + 1,
                                                        _BATCH)
                    self._send([i for _, i in due[:n]])
                    next_send += self.gap * min(n, len(due))
                    continue
                self._receive(now, next_send)
        except exceptions.Interrupted:
            # What was still out counts as unanswered; hosts not finished
            # are reported with what they have.
            for k in list(self.sent_at):
                del self.sent_at[k]
                self._settle(k, ProbeRecord.timed_out(0))
            for i in sorted(self.active) + self.waiting[::-1]:
                self._done(i)

    def _send(self, batch):
        by_family = {}
        for i in batch:
            r = self.active[i][0]
            k = i * self.count + r
            d = self.destinations[i]
            by_family.setdefault(family_of(d), []).append(
                (k, self.packet.request(d, k >> 16, k & 0xFFFF)))
        for fam, items in by_family.items():
            results = self.sockets[fam].send_many([req for _, req in items])
            sent = self.net.now()
            for (k, _), result in zip(items, results):
                i = k // self.count
                entry = self.active[i]
                entry[0] += 1
                entry[1] = max(entry[1] + self.interval, sent)
                if isinstance(result, exceptions.Interrupted):
                    raise result
                if isinstance(result, Exception):
                    self._settle(k, ProbeRecord.failed(0, str(result)))
                    continue
                self.hosts[i].packets_sent += 1
                self.sent_at[k] = sent

    def _receive(self, now, next_send):
        expiry = min(self.sent_at.values(), default=None)
        if expiry is not None:
            expiry += self.timeout
        sends = [due for r, due in self.active.values() if r < self.count]
        send = max(min(sends), next_send) if sends else None
        wake = min(w for w in (expiry, send, now + 1) if w is not None)
        families = list(self.sockets)
        for n, fam in enumerate(families):
            # Every socket is drained; only the last one waits.
            wait = max(wake - now, 0) if n + 1 == len(families) else 0
            for reply in self.sockets[fam].receive_many(4096, wait):
                self._answer(reply)
        # Expire what was overdue before the replies above were read.
        for k, sent in list(self.sent_at.items()):
            if now >= sent + self.timeout:
                del self.sent_at[k]
                self._settle(k, ProbeRecord.timed_out(0))

    def _answer(self, reply):
        k = (reply.id << 16) | reply.sequence
        if k >= len(self.hosts) * self.count:
            return
        host = self.hosts[k // self.count]
        if reply.is_note:
            self.net.emit(progress.Reply(reply))  # the host shows it as a note
            return
        if reply.duplicate:
            host.duplicates += 1
            return
        late = reply.rtt is not None and reply.rtt > self.timeout * 1000
        if k not in self.sent_at or late:
            return  # answered after its timeout: expiry settles it
        del self.sent_at[k]
        if reply.kind == codes.ECHO_REPLY:
            host.rtts.append(reply.rtt)
        self._settle(k, ProbeRecord.answered(reply))
