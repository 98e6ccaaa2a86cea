"""Command-line arguments for probes: `argparse`, made fit for a plugin.

A plugin has no terminal and must not exit the process: `ArgumentParser`
here raises `UsageError` (the host prints it and exits with status 2)
instead of exiting, and `--help` becomes the text the host prints.
`add_packet_arguments` adds the options every built-in plugin takes, and
`packet_kwargs` turns them into keyword arguments for `ping`,
`multiping` and `traceroute`.
"""

import argparse


class UsageError(Exception):
    """The arguments are wrong; the message says why (exit status 2)."""


class HelpRequested(Exception):
    """`--help` was given; the message is the help text (exit status 0)."""


class ArgumentParser(argparse.ArgumentParser):
    """`argparse.ArgumentParser` that raises instead of exiting."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("exit_on_error", False)
        super().__init__(*args, **kwargs)

    def error(self, message):
        raise UsageError(f"{message} (try --help)")

    def exit(self, status=0, message=None):
        if status:
            raise UsageError(message or "bad arguments")
        raise HelpRequested(message or "")

    def print_help(self, file=None):
        raise HelpRequested(self.format_help())

    def print_usage(self, file=None):
        raise HelpRequested(self.format_usage())

    def parse_args(self, args=None, namespace=None):
        if args is None:
            raise UsageError("parse_args needs the plugin's arguments: parse_args(args)")
        try:
            return super().parse_args(args, namespace)
        except argparse.ArgumentError as e:
            raise UsageError(f"{e} (try --help)") from None


def seconds(text):
    """An argument type: a non-negative number of seconds."""
    value = float(text)
    if not value >= 0 or value == float("inf"):
        raise ValueError(text)
    return value


seconds.__name__ = "seconds"


def _hex(text):
    return bytes.fromhex(text)


_hex.__name__ = "hex bytes"


def add_packet_arguments(parser):
    """Adds the request and socket options of the built-in plugins:
    `-I/--source`, `--interface`, `--payload HEX`, `-s/--payload-size`,
    `-Q/--traffic-class`, `--privileged`/`--unprivileged`, `-4`/`-6`."""
    g = parser.add_argument_group("packet options")
    g.add_argument("-I", "--source", metavar="ADDRESS", help="source address")
    g.add_argument("--interface", metavar="NAME", help="send through this interface")
    g.add_argument("--payload", type=_hex, metavar="HEX", help="exact payload, as hex bytes")
    g.add_argument("-s", "--payload-size", type=int, default=56, metavar="N",
                   help="random payload bytes (default: 56)")
    g.add_argument("-Q", "--traffic-class", type=int, default=0, metavar="N",
                   help="IPv4 TOS / IPv6 traffic class (default: 0)")
    mode = g.add_mutually_exclusive_group()
    mode.add_argument("--privileged", dest="privileged", action="store_true", default=None,
                      help="raw socket (needs CAP_NET_RAW)")
    mode.add_argument("--unprivileged", dest="privileged", action="store_false",
                      help="datagram socket (needs net.ipv4.ping_group_range)")
    fam = g.add_mutually_exclusive_group()
    fam.add_argument("-4", dest="family", action="store_const", const=4,
                     help="resolve names to IPv4 only")
    fam.add_argument("-6", dest="family", action="store_const", const=6,
                     help="resolve names to IPv6 only")
    return parser


def packet_kwargs(ns):
    """Keyword arguments for the built-in functions from the options of
    `add_packet_arguments`."""
    kwargs = {"source": ns.source, "family": ns.family, "privileged": ns.privileged,
              "payload_size": ns.payload_size, "traffic_class": ns.traffic_class,
              "interface": ns.interface}
    if ns.payload is not None:
        kwargs["payload"] = ns.payload
    return kwargs
