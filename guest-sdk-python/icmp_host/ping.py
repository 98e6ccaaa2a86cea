"""`ping`: icmplib's stop-and-wait ping, without its defects: errors are
kept per probe instead of swallowed, duplicates are counted, Redirect and
Source Quench are notes (never the answer), and a timeout is judged by
the host against the request's own send time."""

from . import exceptions, progress
from ._packet import Packet
from .models import Host, ProbeRecord, mdev
from .network import current
from .utils import family_of, resolve_one, unique_identifier


def ping(address, count=4, interval=1, timeout=2, id=None, source=None, family=None,
         privileged=None, **kwargs):
    """Sends `count` Echo Requests to `address` (a name or an address),
    `interval` seconds apart, each waiting up to `timeout` seconds for its
    reply, and returns a `Host`.

    icmplib's parameters and defaults (`privileged` defaults to None: the
    host picks raw or datagram sockets). Keyword arguments: `payload`,
    `payload_size` (56), `traffic_class` (0), `ttl` (64), `dont_fragment`
    (False), `interface` (None), `broadcast` (False: ping a broadcast
    address and keep every responder's reply; the host must allow it).

    Raises `NameLookupError`, `SocketPermissionError`,
    `SocketAddressError`, `PolicyDenied`. A request the kernel refuses (no
    route, `MessageTooBig`) is recorded as a failed probe and the ping goes
    on, as iputils does. Ctrl-C or the host's wall-clock limit ends it
    early with what it has.
    """
    packet = Packet("ping", source, family, privileged, kwargs, extra=("broadcast",))
    broadcast = bool(kwargs.get("broadcast", False))
    if count < 1:
        raise ValueError("count must be at least 1")
    net = current()
    destination = resolve_one(address, family)
    net.emit(progress.Start(progress.PING, address, destination, packet.size))
    socket = net.open(packet.open_options(family_of(destination)))
    try:
        if broadcast:
            socket.set_broadcast(True)
        return _run(net, socket, address, destination, packet, count, interval, timeout,
                    unique_identifier() if id is None else id & 0xFFFF, broadcast)
    finally:
        socket.close()


def _run(net, socket, target, destination, packet, count, interval, timeout, id,
         broadcast):
    host = Host(destination, 0, [], target=target)
    errors = 0
    start = net.now()
    last_send = None
    for i in range(count):
        # Keep to the `interval` grid, but never closer than `interval` to
        # the previous send: a probe that waited out its timeout does not
        # cause a burst of catch-up sends.
        if last_send is not None:
            due = max(start + interval * i, last_send + interval)
            wait = due - net.now()
            if wait > 0:
                try:
                    net.sleep(wait)
                except exceptions.Interrupted:
                    break
        last_send = net.now()
        _drain_duplicates(net, socket, host)
        sequence = (i + 1) & 0xFFFF
        request = packet.request(destination, id, sequence)
        try:
            socket.send(request)
            host.packets_sent += 1
        except exceptions.Interrupted:
            break
        except exceptions.ICMPSocketError as e:
            if not refused_by_kernel(e):
                raise
            # The kernel refused this one packet (no route, too big): go on.
            net.emit(progress.Note(f"icmp_seq={sequence}: {e}"))
            host.probes.append(ProbeRecord.failed(sequence, str(e)))
            continue
        answered, interrupted = False, False
        deadline = net.now() + timeout
        while True:
            try:
                reply = socket.receive((id, sequence), max(deadline - net.now(), 0))
            except exceptions.TimeoutExceeded:
                if not answered:
                    host.probes.append(ProbeRecord.timed_out(sequence))
                    net.emit(progress.Timeout(destination, id, sequence))
                break
            except exceptions.Interrupted:
                if not answered:
                    host.probes.append(ProbeRecord.timed_out(sequence))
                interrupted = True
                break
            if reply.is_note:
                # Redirect / Source Quench: information, which the host shows
                # as iputils does; the reply may still come.
                net.emit(progress.Reply(reply))
                continue
            net.emit(progress.Reply(reply))
            if reply.duplicate:
                host.duplicates += 1
                continue
            if reply.is_echo_reply:
                host.rtts.append(reply.rtt)
            else:
                errors += 1
            host.probes.append(ProbeRecord.answered(reply))
            if not broadcast:
                break
            answered = True  # broadcast: every responder answers; listen on
        if interrupted:
            break
    _drain_duplicates(net, socket, host)
    rtts = host.rtts
    net.emit(progress.Summary(
        target, host.packets_sent, host.packets_received, host.duplicates, errors,
        min(rtts, default=0.0), sum(rtts) / len(rtts) if rtts else 0.0,
        max(rtts, default=0.0), mdev(rtts), max(net.now() - start, 0.0)))
    return host


def refused_by_kernel(error):
    """Whether a send error concerns that one request only (the kernel
    refused it: no route, message too big), so a probe carries on."""
    return type(error) in (exceptions.ICMPSocketError, exceptions.MessageTooBig)


def _drain_duplicates(net, socket, host):
    """Counts duplicates already queued; late originals stay lost, as in ping."""
    try:
        queued = socket.receive_many(1024, 0)
    except exceptions.ICMPLibError:
        return
    for reply in queued:
        if reply.duplicate:
            host.duplicates += 1
            net.emit(progress.Reply(reply))
