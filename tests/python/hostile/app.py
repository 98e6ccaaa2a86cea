"""A hostile Python probe: each mode tries to exhaust or escape the
sandbox the way Python code would. The test runs them next to
well-behaved tenants (tests/e2e/python.rs)."""

import encodings.idna  # noqa: F401 — socket.create_connection encodes names with it
import os
import socket
import sys

from icmp_host import probe


def spin():
    while True:
        pass


def bomb():
    hoard = []
    while True:
        hoard.append(bytearray(1 << 20))


def passwd():
    with open("/etc/passwd") as f:
        return f.read()


def listdir():
    return os.listdir("/")


def connect():
    return str(socket.create_connection(("127.0.0.1", 22), timeout=1))


def tcp():
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.connect(("127.0.0.1", 22))
    return "connected"


def udp():
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.sendto(b"exfiltrated", ("127.0.0.1", 53))
    return "sent"


def environ():
    return {"environ": dict(os.environ), "argv": sys.argv, "cwd": os.getcwd()}


MODES = {f.__name__: f for f in (spin, bomb, passwd, listdir, connect, tcp, udp, environ)}


@probe
def run(args):
    if len(args) != 1 or args[0] not in MODES:
        return f"usage: hostile {{{','.join(MODES)}}}\n"
    return MODES[args[0]]()
