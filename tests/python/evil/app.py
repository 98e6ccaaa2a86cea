"""Imports an interface the host does not serve (`icmp-host-tests:evil/exfil`)."""

from wit_world.imports import exfil

from icmp_host import probe


@probe
def run(args):
    exfil.upload(" ".join(args))
    return "uploaded\n"
