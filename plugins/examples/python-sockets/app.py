"""python-sockets: icmplib's "Sockets in action", one request per TTL on
one socket until the destination answers: send an `ICMPRequest`,
`receive`, `raise_for_status`, catch `TimeExceeded`.

    PYTHONPATH=guest-sdk-python python3 -m icmp_host build plugins/examples/python-sockets
    icmp-host run plugins/examples/python-sockets/python-sockets.wasm 127.0.0.1
"""

from icmp_host import (
    ArgumentParser, DestinationUnreachable, ICMPRequest, ICMPv4Socket, ICMPv6Socket,
    Outcome, Report, TimeExceeded, TimeoutExceeded, is_ipv6_address, probe, resolve,
)
from icmp_host.args import seconds

parser = ArgumentParser(prog="icmp-host run python-sockets.wasm",
                        description="One Echo Request per TTL to HOST, with the sockets.")
parser.add_argument("host", metavar="HOST")
parser.add_argument("-m", "--max-hops", type=int, default=30, help="last TTL (30)")
parser.add_argument("-w", "--timeout", type=seconds, default=2, help="seconds to wait (2)")


@probe
def run(args):
    a = parser.parse_args(args)
    address = resolve(a.host)[0]
    hops, reached = [], False
    with (ICMPv6Socket if is_ipv6_address(address) else ICMPv4Socket)() as sock:
        for ttl in range(1, a.max_hops + 1):
            request = ICMPRequest(address, id=7, sequence=ttl, ttl=ttl)
            sock.send(request)
            try:
                reply = sock.receive(request, a.timeout)
                reply.raise_for_status()
            except TimeoutExceeded:
                hops.append({"ttl": ttl, "source": None, "error": "timeout"})
                continue
            except TimeExceeded as err:
                hops.append({"ttl": ttl, "source": err.reply.source, "rtt": err.reply.rtt,
                             "error": err.message})
                continue
            except DestinationUnreachable as err:
                hops.append({"ttl": ttl, "source": err.reply.source, "error": err.message})
                break
            hops.append({"ttl": ttl, "source": reply.source,
                         "rtt": round((reply.time - request.time) * 1000, 3)})
            reached = True
            break
    return Report(hops, Outcome.REACHED if reached else Outcome.NOT_REACHED)
