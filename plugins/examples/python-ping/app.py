"""python-ping: icmplib's `ping` (one host) and `multiping` (several), in
Python, sandboxed by icmp-host.

    PYTHONPATH=guest-sdk-python python3 -m icmp_host build plugins/examples/python-ping
    icmp-host run plugins/examples/python-ping/python-ping.wasm 127.0.0.1 -c 3
    icmp-host run plugins/examples/python-ping/python-ping.wasm 127.0.0.1 ::1
"""

from icmp_host import ArgumentParser, add_packet_arguments, multiping, packet_kwargs, ping, probe
from icmp_host.args import seconds

parser = ArgumentParser(
    prog="icmp-host run python-ping.wasm",
    description="Ping HOST (icmplib's ping, a Host record) or several hosts "
    "(icmplib's multiping, a list of Host records, in input order).")
parser.add_argument("hosts", nargs="+", metavar="HOST")
parser.add_argument("-c", "--count", type=int, help="requests per host (4; multiping 2)")
parser.add_argument("-i", "--interval", type=seconds,
                    help="seconds between requests to a host (1; multiping 0.5)")
parser.add_argument("-W", "--timeout", type=seconds, default=2, help="seconds to wait (2)")
parser.add_argument("-t", "--ttl", type=int, default=64, help="TTL / hop limit (64)")
parser.add_argument("--df", action="store_true", help="set Don't Fragment")
add_packet_arguments(parser)


@probe
def run(args):
    a = parser.parse_args(args)
    options = dict(packet_kwargs(a), timeout=a.timeout, ttl=a.ttl, dont_fragment=a.df)
    if len(a.hosts) == 1:
        return ping(a.hosts[0], count=a.count or 4, interval=a.interval or 1, **options)
    return multiping(a.hosts, count=a.count or 2, interval=a.interval or 0.5, **options)
