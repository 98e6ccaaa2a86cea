"""python-trace: icmplib's `traceroute`, in Python, sandboxed by icmp-host.
Silent hops stay in the list, the trace stops at a Destination
Unreachable (marked like traceroute: !H, !N, !X...), `--fast` works.

    PYTHONPATH=guest-sdk-python python3 -m icmp_host build plugins/examples/python-trace
    icmp-host run plugins/examples/python-trace/python-trace.wasm 127.0.0.1
"""

from icmp_host import ArgumentParser, add_packet_arguments, packet_kwargs, probe, traceroute
from icmp_host.args import seconds

parser = ArgumentParser(
    prog="icmp-host run python-trace.wasm",
    description="Trace the path to HOST: a JSON list of Hop records.")
parser.add_argument("host", metavar="HOST")
parser.add_argument("-q", "--count", type=int, default=2, help="probes per hop (2)")
parser.add_argument("-z", "--interval", type=seconds, default=0.05,
                    help="seconds between probes (0.05)")
parser.add_argument("-w", "--timeout", type=seconds, default=2, help="seconds to wait (2)")
parser.add_argument("-f", "--first-hop", type=int, default=1, help="first TTL (1)")
parser.add_argument("-m", "--max-hops", type=int, default=30, help="last TTL (30)")
parser.add_argument("-N", "--in-flight", type=int, default=16,
                    help="probes unanswered at once (16)")
parser.add_argument("--fast", action="store_true",
                    help="move on from a hop after its first answer")
add_packet_arguments(parser)


@probe
def run(args):
    a = parser.parse_args(args)
    return traceroute(a.host, count=a.count, interval=a.interval, timeout=a.timeout,
                      first_hop=a.first_hop, max_hops=a.max_hops, fast=a.fast,
                      in_flight=a.in_flight, **packet_kwargs(a))
