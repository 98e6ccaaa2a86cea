"""The network of a plugin running inside icmp-host: the generated
bindings of the `icmp-host:probe` world (componentize-py's `wit_world`),
converted to and from the SDK's types. The only module that imports
them; everything else runs under CPython too."""

import ipaddress
import time

import wit_world
from componentize_py_types import Err
from wit_world.imports import control, dns, limits, progress as wit_progress, sockets, types

from . import exceptions, progress
from .probe import Outcome, call, entry
from .models import ICMPReply
from .network import Cidr, Network, Rules, SocketStats
from .utils import format_address

_NS = 1_000_000_000

_RULES = {
    types.PolicyRule.DESTINATION: "destination",
    types.PolicyRule.MULTICAST: "multicast",
    types.PolicyRule.BROADCAST: "broadcast",
    types.PolicyRule.PACKET_BUDGET: "packet-budget",
    types.PolicyRule.PAYLOAD_SIZE: "payload-size",
    types.PolicyRule.SOCKETS: "sockets",
    types.PolicyRule.PRIVILEGED: "privileged",
    types.PolicyRule.NAMES: "names",
}

_SOURCES = {
    types.TimestampSource.KERNEL: "kernel",
    types.TimestampSource.HOST_MONOTONIC: "host-monotonic",
    types.TimestampSource.KERNEL_BOTH: "kernel-both",
}

_MODES = {"auto": types.Mode.AUTO, "privileged": types.Mode.PRIVILEGED,
          "unprivileged": types.Mode.UNPRIVILEGED}

_KINDS = {progress.PING: wit_progress.ProbeKind.PING,
          progress.TRACEROUTE: wit_progress.ProbeKind.TRACEROUTE,
          progress.OTHER: wit_progress.ProbeKind.OTHER}


def _error(e):
    """The SDK exception for a host `error`."""
    v = e.value if isinstance(e, Err) else e
    if isinstance(v, types.Error_NameLookup):
        return exceptions.NameLookupError(v.value)
    if isinstance(v, types.Error_SocketAddress):
        return exceptions.SocketAddressError(v.value)
    if isinstance(v, types.Error_SocketPermission):
        return exceptions.SocketPermissionError(v.value)
    if isinstance(v, types.Error_SocketUnavailable):
        return exceptions.SocketUnavailableError()
    if isinstance(v, types.Error_SocketBroadcast):
        return exceptions.SocketBroadcastError()
    if isinstance(v, types.Error_TimeoutExceeded):
        return exceptions.TimeoutExceeded(v.value / _NS)
    if isinstance(v, types.Error_IcmpSocket):
        return exceptions.ICMPSocketError(v.value)
    if isinstance(v, types.Error_PolicyDenied):
        return _denied(v.value)
    if isinstance(v, types.Error_Interrupted):
        return exceptions.Interrupted()
    if isinstance(v, types.Error_ResourceExhausted):
        return exceptions.ResourceExhausted(v.value)
    if isinstance(v, types.Error_InvalidArgument):
        return exceptions.InvalidArgument(v.value)
    if isinstance(v, types.Error_Unsupported):
        return exceptions.Unsupported(v.value)
    if isinstance(v, types.Error_MessageTooBig):
        return exceptions.MessageTooBig(v.value)
    return exceptions.ICMPLibError(f"unknown host error {v!r}")


def _denied(denial):
    return exceptions.PolicyDenied(_RULES.get(denial.rule, str(denial.rule)), denial.message)


def _call(f, *args):
    """Calls a host function, raising its error as the SDK's exception."""
    try:
        return f(*args)
    except Err as e:
        raise _error(e) from None


def _ns(seconds):
    """Seconds as host nanoseconds (never negative, never past u64)."""
    return min(max(int(seconds * _NS), 0), (1 << 64) - 1)


def to_ip(address):
    """An address string as the host's `ip-address`; a scope given by
    interface name (`fe80::1%eth0`) is resolved by the host."""
    text = str(address)
    try:
        ip = ipaddress.ip_address(text)
    except ValueError:
        raise exceptions.SocketAddressError(text) from None
    if isinstance(ip, ipaddress.IPv4Address):
        return types.IpAddress_Ipv4(tuple(ip.packed))
    scope = ip.scope_id or ""
    if scope and not scope.isdigit():
        found = _call(dns.resolve, text, types.Family.IPV6)
        if not found:
            raise exceptions.SocketAddressError(text)
        return found[0]
    plain = ipaddress.IPv6Address(text.split("%")[0])
    segments = tuple(int.from_bytes(plain.packed[i:i + 2], "big") for i in range(0, 16, 2))
    return types.IpAddress_Ipv6(types.Ipv6Address(segments, int(scope or 0)))


def from_ip(ip):
    """The host's `ip-address` as a string, written as `ping` does."""
    if ip is None:
        return None
    if isinstance(ip, types.IpAddress_Ipv4):
        return ".".join(str(b) for b in ip.value)
    v6 = ip.value
    packed = b"".join(s.to_bytes(2, "big") for s in v6.segments)
    return format_address(ipaddress.IPv6Address(packed), v6.scope_id)


def _family(f):
    return 4 if f == types.Family.IPV4 else 6


def _wit_family(f):
    return None if f is None else (types.Family.IPV4 if f == 4 else types.Family.IPV6)


def to_reply(r):
    """A host `reply` as an `ICMPReply` (times in seconds, RTT in ms)."""
    return ICMPReply(
        from_ip(r.source), _family(r.family), r.id, r.sequence, r.type, r.code,
        r.bytes_received, r.received_at / _NS, rtt=r.rtt / 1e6, ttl=r.ttl,
        original_destination=from_ip(r.original_destination), mtu=r.mtu,
        duplicate=r.duplicate, timestamp_source=_SOURCES.get(r.timestamp_source, "kernel"))


def _request(req):
    return types.EchoRequest(
        to_ip(req.destination), req.id, req.sequence,
        None if req.payload is None else bytes(req.payload), req.payload_size, req.ttl,
        req.traffic_class, req.dont_fragment)


class HostSocket:
    """An `icmp-socket` of the host."""

    def __init__(self, options):
        source = None if options.source is None else to_ip(options.source)
        self._s = _call(sockets.IcmpSocket.open, sockets.OpenOptions(
            _wit_family(options.family), source, _MODES[options.mode], options.interface))

    def send(self, request):
        return _call(self._s.send, _request(request)) / _NS

    def send_many(self, requests):
        out = _call(self._s.send_many, [_request(r) for r in requests])
        return [r.value / _NS if not isinstance(r, Err) else _error(r) for r in out]

    def receive(self, match, timeout):
        m = None if match is None else sockets.ReplyMatch(*match)
        return to_reply(_call(self._s.receive, m, _ns(timeout)))

    def receive_many(self, max, timeout):
        try:
            found = _call(self._s.receive_many, max, _ns(timeout))
        except exceptions.TimeoutExceeded:
            return []
        return [to_reply(r) for r in found]

    def broadcast(self):
        return self._s.broadcast()

    def set_broadcast(self, enabled):
        _call(self._s.set_broadcast, enabled)

    def address(self):
        return from_ip(self._s.address())

    def family(self):
        return _family(self._s.family())

    def is_privileged(self):
        return self._s.is_privileged()

    def is_closed(self):
        return self._s.is_closed()

    def stats(self):
        s = self._s.stats()
        return SocketStats(s.sent, s.received, s.queue_drops, s.corrupted, s.kernel_drops)

    def close(self):
        self._s.close()


def _event(event):
    """An SDK progress event as the host's."""
    if isinstance(event, progress.Start):
        return wit_progress.Event_Start(wit_progress.Start(
            _KINDS.get(event.kind, wit_progress.ProbeKind.OTHER), event.target,
            None if event.address is None else to_ip(event.address),
            event.payload_size, min(event.max_hops, 255)))
    if isinstance(event, progress.Reply):
        r = event.reply
        return wit_progress.Event_Reply(types.Reply(
            to_ip(r.source), types.Family.IPV4 if r.family == 4 else types.Family.IPV6,
            r.id, r.sequence, r.type, r.code, r.bytes_received, _ns(r.time),
            {v: k for k, v in _SOURCES.items()}.get(r.timestamp_source,
                                                  types.TimestampSource.KERNEL),
            _ns((r.rtt or 0) / 1000), r.ttl,
            None if r.original_destination is None else to_ip(r.original_destination),
            r.mtu, r.duplicate))
    if isinstance(event, progress.Timeout):
        return wit_progress.Event_Timeout(wit_progress.Timeout(
            to_ip(event.destination), event.id, event.sequence))
    if isinstance(event, progress.Hop):
        return wit_progress.Event_Hop(wit_progress.Hop(event.distance, [
            wit_progress.HopProbe(None if p.responder is None else to_ip(p.responder),
                                  None if p.rtt is None else _ns(p.rtt / 1000),
                                  p.type, p.code)
            for p in event.probes]))
    if isinstance(event, progress.Summary):
        ms = lambda v: _ns(v / 1000)  # noqa: E731
        return wit_progress.Event_Summary(wit_progress.Summary(
            event.target, event.packets_sent, event.packets_received, event.duplicates,
            event.errors, ms(event.min_rtt), ms(event.avg_rtt), ms(event.max_rtt),
            ms(event.mdev), _ns(event.elapsed)))
    if isinstance(event, progress.Note):
        return wit_progress.Event_Note(event.text)
    if isinstance(event, progress.ResultLine):
        return wit_progress.Event_ResultLine(event.json)
    raise TypeError(f"not a progress event: {event!r}")


def _cidr(c):
    return Cidr(from_ip(c.address), c.prefix)


class HostNetwork(Network):
    """The network of the running plugin: the host's sockets, resolver,
    progress, sleep and policy."""

    def open(self, options):
        return HostSocket(options)

    def resolve(self, name, family):
        return [from_ip(a) for a in _call(dns.resolve, name, _wit_family(family))]

    #: Whether anyone sees the run's progress events (asked once).
    _watched = None

    def emit(self, event):
        # Unwatched (`run -q`), only result lines are worth a host call.
        if not isinstance(event, progress.ResultLine) and not self._is_watched():
            return
        wit_progress.emit(_event(event))

    @classmethod
    def _is_watched(cls):
        if cls._watched is None:
            cls._watched = wit_progress.watched()
        return cls._watched

    def now(self):
        return time.monotonic()

    def sleep(self, seconds):
        _call(control.sleep, _ns(seconds))

    def limits(self):
        r = limits.current()
        return Rules(
            tuple(_cidr(c) for c in r.allow), tuple(_cidr(c) for c in r.deny),
            r.allow_broadcast, r.allow_multicast, r.allow_privileged, r.allow_names,
            r.max_payload, r.max_sockets, r.max_pps, r.max_packets, r.packets_sent,
            r.max_batch, r.max_batch_bytes, r.max_timeout / _NS, r.memory, r.cpu / _NS,
            None if r.wall is None else r.wall / _NS)

    def check_destination(self, address):
        try:
            limits.check_destination(to_ip(address))
        except Err as e:
            raise _denied(e.value) from None


# A report longer than this (characters) goes to the host in parts
# (`progress.write-report`), so the host never copies it whole.
_REPORT_PART = 1 << 20


def _hand_over(json):
    """What `run` returns of a report: all of a short one; nothing of a long
    one, handed over in parts. Past the run's output limit the host takes
    no more parts and fails the run itself."""
    if json is None or len(json) <= _REPORT_PART:
        return json
    for start in range(0, len(json), _REPORT_PART):
        if not wit_progress.write_report(json[start:start + _REPORT_PART]):
            break
    return None


class WitWorld(wit_world.WitWorld):
    """The export componentize-py wraps: calls the `@probe` function. It
    never lets an exception escape (that would trap the plugin)."""

    def run(self, args):
        try:
            result = call(entry(), args)
        except BaseException as e:  # noqa: BLE001 — only if the SDK itself fails
            result = ("failed", f"icmp_host: {type(e).__name__}: {e}")
        if result[0] == "text":
            return types.RunOutput_Text(result[1])
        if result[0] == "report":
            outcome = {Outcome.REACHED: types.Outcome.REACHED,
                       Outcome.NOT_REACHED: types.Outcome.NOT_REACHED,
                       Outcome.PARTIAL: types.Outcome.PARTIAL}[result[2]]
            return types.RunOutput_Report(types.Report(_hand_over(result[1]), outcome))
        if result[0] == "usage":
            raise Err(types.RunError_Usage(result[1]))
        raise Err(types.RunError_Failed(result[1]))
