"""Addresses and names: icmplib's `resolve`, `is_hostname`,
`is_ipv4_address`, `is_ipv6_address` and `unique_identifier`."""

import ipaddress
import itertools
import re

from . import network
from .exceptions import NameLookupError

#: icmplib exports the process id as the default identifier; here every
#: probe gets its own identifier from `unique_identifier()` and the host
#: maps identifiers to its own wire values, so the value never matters.
PID = 1

_next_id = itertools.count(PID + 1)


def unique_identifier():
    """A fresh 16-bit identifier for a probe that did not choose one. The
    host translates identifiers, so these only need to be distinct within
    the plugin (icmplib: PID + 1, + 1 per call)."""
    return next(_next_id) & 0xFFFF


_LABEL = re.compile(r"(?!-)[A-Za-z0-9_-]{1,63}(?<!-)$")


def is_hostname(name):
    """Whether `name` is a host name or FQDN (not an address literal)."""
    if not isinstance(name, str) or not name or len(name) > 253:
        return False
    if is_ipv4_address(name) or is_ipv6_address(name):
        return False
    labels = name[:-1].split(".") if name.endswith(".") else name.split(".")
    if not all(_LABEL.match(label) for label in labels):
        return False
    # A dotted all-numeric name is a malformed address, not a name.
    return not labels[-1].isdigit()


def is_ipv4_address(address):
    """Whether `address` is an IPv4 literal."""
    try:
        ipaddress.IPv4Address(address)
        return True
    except (ValueError, TypeError):
        return False


def is_ipv6_address(address):
    """Whether `address` is an IPv6 literal (a scope, `fe80::1%eth0`, is
    allowed)."""
    if not isinstance(address, str):
        return False
    try:
        ipaddress.IPv6Address(address)
        return True
    except ValueError:
        return False


def family_of(address):
    """4 or 6 for an address literal; `None` otherwise."""
    if is_ipv4_address(address):
        return 4
    if is_ipv6_address(address):
        return 6
    return None


def format_address(ip, scope_id=0):
    """Writes an `ipaddress` address as `ping` does: IPv6 compressed, an
    IPv4-mapped IPv6 address with its IPv4 part dotted, a scope as
    `%index`."""
    if isinstance(ip, ipaddress.IPv6Address):
        mapped = ip.ipv4_mapped
        text = f"::ffff:{mapped}" if mapped is not None else ip.compressed.split("%")[0]
        return f"{text}%{scope_id}" if scope_id else text
    return str(ip)


def _check_family(family):
    if family not in (None, 4, 6):
        raise ValueError(f"family must be None, 4 or 6, not {family!r}")


def resolve(name, family=None):
    """Resolves `name` through the host (under its policy) to every
    address, IPv4 first, as icmplib does; `family` (4 or 6) keeps one.
    Raises `NameLookupError` (or `PolicyDenied` when names are not
    allowed)."""
    _check_family(family)
    return network.current().resolve(name, family)


def resolve_one(target, family=None):
    """One address for `target`: a literal of the wanted family as is (no
    host call), a name through the host, IPv4 first."""
    _check_family(family)
    literal = family_of(target)
    if literal is not None and (family is None or family == literal):
        return target
    addresses = resolve(target, family)
    if not addresses:
        raise NameLookupError(f"{target}: no address")
    return addresses[0]
