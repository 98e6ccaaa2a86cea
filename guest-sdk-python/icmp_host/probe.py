"""A probe's entry point: decorate `run(args)` with `@probe`.

```python
from icmp_host import ping, probe

@probe
def run(args):
    return ping(args[0], count=1)
```

`run` gets the arguments that followed the plugin's name and returns its
result: a `Host`, a `Trace` or list of `Hop`s, a list of `Host`s, any
JSON-serialisable value, a `Report` (a value with an explicit `Outcome`),
a `str` (text such as help, printed as is), or `None` when everything was
streamed with `progress.result_line`. The result is serialised as the
JSON schema v1 the Rust plugins return, and the outcome (every target
answered, none, some) becomes the exit status.

`UsageError` (and `HelpRequested`) from `args.ArgumentParser` become the
host's usage error (exit 2) and help text (exit 0); `InvalidArgument`
is a usage error too; any other exception fails the run (exit 2) with its
type, message and the line that raised it — the full traceback goes to
the plugin's stderr, which the host shows.
"""

import enum
import json
import sys
import traceback

from . import exceptions
from .args import HelpRequested, UsageError
from .models import Hop, Host, ProbeRecord, Responder, Trace


class Outcome(enum.Enum):
    """How a probe went; the host derives its exit status from it."""

    REACHED = "reached"  #: every target answered (exit 0)
    NOT_REACHED = "not-reached"  #: no target answered (exit 1)
    PARTIAL = "partial"  #: some answered, some did not (exit 1)

    @classmethod
    def of(cls, answered, total):
        """The outcome for `answered` of `total` targets."""
        if answered == 0:
            return cls.NOT_REACHED
        return cls.REACHED if answered >= total else cls.PARTIAL


class Report:
    """A result with an explicit outcome."""

    def __init__(self, value, outcome=Outcome.REACHED):
        self.value = value
        self.outcome = Outcome(outcome)


def _default(value):
    if isinstance(value, (Host, ProbeRecord, Responder)):
        return value.to_dict()
    if isinstance(value, (bytes, bytearray)):
        return value.hex()
    if isinstance(value, (set, frozenset, tuple)):
        return list(value)
    if hasattr(value, "to_dict"):
        return value.to_dict()
    raise TypeError(f"a {type(value).__name__} cannot be written as JSON")


def to_json(value):
    """`value` as compact JSON (schema v1 for `Host` and `Hop`)."""
    return json.dumps(value, default=_default, separators=(",", ":"), ensure_ascii=False,
                      allow_nan=False)


def outcome_of(value):
    """The outcome a result implies: a `Host` alive or not; a `Trace`
    reached or not; a list of hops reached when one answered with an Echo
    Reply; a list of hosts by how many are alive; anything else reached."""
    if isinstance(value, Report):
        return value.outcome
    if isinstance(value, Trace):
        return Outcome.REACHED if value.reached else Outcome.NOT_REACHED
    if isinstance(value, Hop):
        return Outcome.REACHED if value.is_alive else Outcome.NOT_REACHED
    if isinstance(value, Host):
        return Outcome.REACHED if value.is_alive else Outcome.NOT_REACHED
    if isinstance(value, list) and value and all(isinstance(v, Hop) for v in value):
        reached = any(p.status == "reply" for h in value for p in h.probes)
        return Outcome.REACHED if reached else Outcome.NOT_REACHED
    if isinstance(value, list) and value and all(isinstance(v, Host) for v in value):
        return Outcome.of(sum(h.is_alive for h in value), len(value))
    return Outcome.REACHED


def call(run, args):
    """Runs `run(args)` and returns what the host gets: `("text", str)`,
    `("report", json or None, Outcome)`, `("usage", message)` or
    `("failed", message)`. Never raises."""
    try:
        value = run(list(args))
        if isinstance(value, str):
            return ("text", value)
        outcome = outcome_of(value)
        if isinstance(value, Report):
            value = value.value
        return ("report", None if value is None else to_json(value), outcome)
    except HelpRequested as e:
        return ("text", str(e))
    except (UsageError, exceptions.InvalidArgument) as e:
        return ("usage", str(e))
    except exceptions.ICMPLibError as e:
        return ("failed", str(e))
    except SystemExit as e:
        return ("failed", f"the probe called exit({e.code})")
    except BaseException as e:  # noqa: BLE001 — a plugin never traps on a Python error
        traceback.print_exc(file=sys.stderr)
        where = traceback.extract_tb(e.__traceback__)
        line = f" (at {where[-1].filename}:{where[-1].lineno})" if where else ""
        return ("failed", f"{type(e).__name__}: {e}{line}")


_entry = None


def probe(run):
    """Makes `run(args)` the plugin's entry point (and gives its module the
    `WitWorld` class componentize-py exports). Returns `run` unchanged, so
    tests can call it directly."""
    global _entry
    _entry = run
    module = sys.modules.get(run.__module__)
    if module is not None and not hasattr(module, "WitWorld"):
        try:
            from ._wit import WitWorld
        except ImportError:
            pass  # under CPython (tests): nothing to export
        else:
            module.WitWorld = WitWorld
    return run


def entry():
    """The function decorated with `@probe`."""
    if _entry is None:
        raise RuntimeError("no probe: decorate your run(args) function with @icmp_host.probe")
    return _entry
