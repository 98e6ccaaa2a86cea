"""`python3 -m icmp_host build ...` (see `icmp_host.build`)."""

import sys

from .build import main

if len(sys.argv) < 2 or sys.argv[1] != "build":
    print("usage: python3 -m icmp_host build [DIR] [-o OUT.wasm] [--module app]",
          file=sys.stderr)
    sys.exit(2)
sys.exit(main(sys.argv[2:]))
