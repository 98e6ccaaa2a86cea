"""icmplib's `ICMPv4Socket` and `ICMPv6Socket`, over host-owned sockets.

The socket is virtual: the host multiplexes it with others and hands it
only the replies to its own requests, so the `id` you choose never
collides with anyone else's.
"""

from . import exceptions
from .network import OpenOptions, current, mode_of


class ICMPSocket:
    """Common part of `ICMPv4Socket` and `ICMPv6Socket`."""

    _family = None

    def __init__(self, address=None, privileged=None, interface=None):
        """Opens a socket. `address` is the source address (`None`: the
        kernel chooses); `privileged` True asks for a raw socket, False for
        a datagram ("ping") socket, None (the default) for whichever the
        host has — icmplib defaults to True, which here would fail
        whenever the host runs unprivileged; `interface` binds to a device
        (`SO_BINDTODEVICE`). Raises `SocketPermissionError`,
        `SocketAddressError` or `PolicyDenied`."""
        self._socket = None
        self._blocking = True
        options = OpenOptions(self._family, address, mode_of(privileged), interface)
        self._socket = current().open(options)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __del__(self):
        if getattr(self, "_socket", None) is not None:
            self.close()

    def _open(self):
        if self._socket is None or self._socket.is_closed():
            raise exceptions.SocketUnavailableError()
        return self._socket

    def send(self, request):
        """Sends an `ICMPRequest`; sets `request.time` to the moment the
        host handed it to the kernel (after any wait the host's rate
        limit imposed). Raises `SocketBroadcastError`, `PolicyDenied`,
        `MessageTooBig`, `ICMPSocketError`..."""
        request._time = self._open().send(request)

    def send_many(self, requests):
        """Sends several requests in one host call (at most
        `limits().max_batch`); sets each one's `time`, and returns, per
        request, `None` or the exception that stopped it."""
        results = self._open().send_many(list(requests))
        out = []
        for request, result in zip(requests, results):
            if isinstance(result, Exception):
                out.append(result)
            else:
                request._time = result
                out.append(None)
        return out

    def receive(self, request=None, timeout=2):
        """Waits up to `timeout` seconds for the reply to `request` (any
        message for this socket when `None`, as for broadcast) and returns
        an `ICMPReply`, which may be an ICMP error: call
        `raise_for_status()`. Raises `TimeoutExceeded`. A reply counts as
        in time when the kernel received it within `timeout` of the
        request's send, however late this call returns it."""
        match = None if request is None else (request.id, request.sequence)
        return self._open().receive(match, timeout if self._blocking else 0)

    def receive_many(self, max=1024, timeout=2):
        """Waits up to `timeout` seconds for at least one message, then
        returns every queued one, at most `max`; an empty list when the
        time passed."""
        return self._open().receive_many(max, timeout if self._blocking else 0)

    def close(self):
        """Releases the socket; later calls raise `SocketUnavailableError`."""
        if self._socket is not None:
            self._socket.close()

    def stats(self):
        """`SocketStats` since open: sent, received, queue and kernel drops,
        corrupted replies."""
        return self._open().stats()

    @property
    def blocking(self):
        """When False, `receive` returns at once (or raises
        `TimeoutExceeded`) instead of waiting."""
        return self._blocking

    @blocking.setter
    def blocking(self, enabled):
        self._blocking = bool(enabled)

    @property
    def address(self):
        """The source address bound at open, if any."""
        return self._open().address()

    @property
    def family(self):
        """4 or 6."""
        return self._family

    @property
    def is_privileged(self):
        """Whether the host uses a raw socket for this one."""
        return self._open().is_privileged()

    @property
    def is_closed(self):
        """Whether `close` was called."""
        return self._socket is None or self._socket.is_closed()


class ICMPv4Socket(ICMPSocket):
    """An IPv4 ICMP socket (icmplib's `ICMPv4Socket`)."""

    _family = 4

    @property
    def broadcast(self):
        """Whether broadcast destinations are allowed. Setting it is
        refused (`PolicyDenied`) unless the host's policy grants broadcast."""
        return self._open().broadcast()

    @broadcast.setter
    def broadcast(self, enabled):
        self._open().set_broadcast(bool(enabled))


class ICMPv6Socket(ICMPSocket):
    """An IPv6 ICMP socket (icmplib's `ICMPv6Socket`)."""

    _family = 6
