"""icmp_host: write ICMP probes in Python, with icmplib's API, and run them
sandboxed in icmp-host.

```python
from icmp_host import ping, probe

@probe
def run(args):
    return ping(args[0], count=3, interval=0.2)
```

Build with `python3 -m icmp_host build` (componentize-py), run with
`icmp-host run ./probe.wasm 192.0.2.1`. The functions, classes, defaults
and exceptions are icmplib 3.x's; where icmplib is wrong this package
follows icmp-host's Rust SDK (see the README, "Write a probe in Python").
"""

from . import codes, progress
from .args import ArgumentParser, HelpRequested, UsageError, add_packet_arguments, packet_kwargs
from .exceptions import (
    DestinationUnreachable, ICMPError, ICMPLibError, ICMPSocketError,
    ICMPv4DestinationUnreachable, ICMPv4FragmentationNeeded, ICMPv4TimeExceeded,
    ICMPv6DestinationUnreachable, ICMPv6PacketTooBig, ICMPv6TimeExceeded, Interrupted,
    InvalidArgument, MessageTooBig, NameLookupError, PacketTooBig, PolicyDenied,
    ResourceExhausted, SocketAddressError, SocketBroadcastError, SocketPermissionError,
    SocketUnavailableError, TimeExceeded, TimeoutExceeded, Unsupported,
)
from .models import Hop, Host, ICMPReply, ICMPRequest, ProbeRecord, Responder, Trace
from .multiping import multiping
from .network import Rules, current
from .ping import ping
from .probe import Outcome, Report, probe, to_json
from .sockets import ICMPv4Socket, ICMPv6Socket
from .traceroute import traceroute
from .utils import (
    PID, is_hostname, is_ipv4_address, is_ipv6_address, resolve, unique_identifier,
)

__version__ = "0.2.2"


def limits():
    """The `Rules` this run is under: the host's policy (allowed and
    denied ranges, broadcast, multicast, raw sockets, names, payload and
    rate limits, packet budget) and the run's limits (batch sizes, memory,
    CPU and wall time). Read them to plan instead of learning each rule
    from a `PolicyDenied`."""
    return current().limits()


def check_destination(address):
    """Raises `PolicyDenied` if a request to `address` would be refused by
    the destination rules (ranges, multicast, broadcast); sends nothing."""
    current().check_destination(address)


def sleep(seconds):
    """Sleeps; raises `Interrupted` early when the run is ending (Ctrl-C,
    the wall-clock limit). Prefer it to `time.sleep` in probes."""
    current().sleep(seconds)


__all__ = [
    "ArgumentParser", "DestinationUnreachable", "HelpRequested", "Hop", "Host",
    "ICMPError", "ICMPLibError", "ICMPReply", "ICMPRequest", "ICMPSocketError",
    "ICMPv4DestinationUnreachable", "ICMPv4FragmentationNeeded", "ICMPv4Socket",
    "ICMPv4TimeExceeded", "ICMPv6DestinationUnreachable", "ICMPv6PacketTooBig",
    "ICMPv6Socket", "ICMPv6TimeExceeded", "Interrupted", "InvalidArgument",
    "MessageTooBig", "NameLookupError", "Outcome", "PID", "PacketTooBig", "PolicyDenied",
    "ProbeRecord", "Report", "ResourceExhausted", "Responder", "Rules",
    "SocketAddressError", "SocketBroadcastError", "SocketPermissionError",
    "SocketUnavailableError", "TimeExceeded", "TimeoutExceeded", "Trace", "Unsupported",
    "UsageError", "add_packet_arguments", "check_destination", "codes", "is_hostname",
    "is_ipv4_address", "is_ipv6_address", "limits", "multiping", "packet_kwargs", "ping",
    "probe", "progress", "resolve", "sleep", "to_json", "traceroute", "unique_identifier",
]

# Inside a component the generated bindings exist: load the SDK's side of
# them now, while componentize-py captures the modules (nothing can be
# imported for the first time once the plugin runs: it has no files).
try:
    from . import _wit  # noqa: F401
except ModuleNotFoundError as e:  # under CPython: no bindings, no host
    if e.name not in ("wit_world", "componentize_py_types"):
        raise
