"""The entry point: results become schema-v1 JSON and an outcome; usage
errors, help and Python errors become what the host expects."""

import contextlib
import io
import json
import unittest

from icmp_host import (
    ArgumentParser, Host, Hop, InvalidArgument, Outcome, PolicyDenied, Report, Trace,
    add_packet_arguments, is_hostname, is_ipv4_address, is_ipv6_address, limits,
    check_destination, packet_kwargs, ping, resolve, unique_identifier,
)
from icmp_host.args import seconds
from icmp_host.probe import call, outcome_of, probe
from icmp_host.sim import Response, SimNetwork


class CallTest(unittest.TestCase):
    def test_results_and_outcomes(self):
        alive, dead = Host("192.0.2.1", 1, [1.0]), Host("192.0.2.2", 1, [])
        self.assertEqual(call(lambda a: alive, [])[2], Outcome.REACHED)
        self.assertEqual(call(lambda a: dead, [])[2], Outcome.NOT_REACHED)
        self.assertEqual(call(lambda a: [alive, dead], [])[2], Outcome.PARTIAL)
        self.assertEqual(call(lambda a: [dead, dead], [])[2], Outcome.NOT_REACHED)
        self.assertEqual(call(lambda a: Trace([], "x", "192.0.2.1", True), [])[2],
                         Outcome.REACHED)
        self.assertEqual(outcome_of([Hop(None, 1, [], 1)]), Outcome.NOT_REACHED)
        kind, text, outcome = call(lambda a: {"answer": a}, ["x"])
        self.assertEqual((kind, json.loads(text), outcome),
                         ("report", {"answer": ["x"]}, Outcome.REACHED))
        self.assertEqual(call(lambda a: Report([1], Outcome.PARTIAL), []),
                         ("report", "[1]", Outcome.PARTIAL))
        self.assertEqual(call(lambda a: None, []), ("report", None, Outcome.REACHED))
        self.assertEqual(call(lambda a: "hello\n", []), ("text", "hello\n"))

    def test_errors(self):
        def usage(a):
            raise InvalidArgument("count must be positive")
        self.assertEqual(call(usage, []), ("usage", "count must be positive"))

        def denied(a):
            raise PolicyDenied("names", "name lookups are disabled (--no-names)")
        kind, message = call(denied, [])
        self.assertEqual(kind, "failed")
        self.assertIn("names", message)

        def crash(a):
            return {}["missing"]
        stderr = io.StringIO()
        with contextlib.redirect_stderr(stderr):
            kind, message = call(crash, [])
        self.assertEqual(kind, "failed")
        self.assertTrue(message.startswith("KeyError: 'missing' (at "), message)
        self.assertIn("test_probe.py:", message)
        self.assertIn("Traceback", stderr.getvalue())  # the plugin's stderr

        def not_json(a):
            return {"x": object()}
        with contextlib.redirect_stderr(io.StringIO()):
            kind, message = call(not_json, [])
        self.assertEqual((kind, message.split(":")[0]), ("failed", "TypeError"))

        def exits(a):
            raise SystemExit(3)
        self.assertEqual(call(exits, []), ("failed", "the probe called exit(3)"))

    def test_probe_returns_the_function(self):
        def run(args):
            return None
        self.assertIs(probe(run), run)


class ArgsTest(unittest.TestCase):
    def parser(self):
        p = ArgumentParser(prog="icmp-host run t.wasm")
        p.add_argument("host")
        p.add_argument("-c", "--count", type=int, default=4)
        p.add_argument("-W", "--timeout", type=seconds, default=2)
        return add_packet_arguments(p)

    def test_parse_and_packet_kwargs(self):
        a = self.parser().parse_args(["192.0.2.1", "-c", "3", "-s", "100", "-6",
                                      "--unprivileged", "--payload", "0a0b"])
        self.assertEqual((a.host, a.count, a.timeout), ("192.0.2.1", 3, 2))
        kw = packet_kwargs(a)
        self.assertEqual((kw["family"], kw["privileged"], kw["payload_size"], kw["payload"]),
                         (6, False, 100, b"\n\x0b"))

    def test_usage_errors_and_help_never_exit(self):
        def run(args):
            return self.parser().parse_args(args) and None
        kind, message = call(run, ["192.0.2.1", "-c", "many"])
        self.assertEqual(kind, "usage")
        self.assertIn("invalid int value: 'many'", message)
        kind, message = call(run, [])
        self.assertEqual(kind, "usage")
        self.assertIn("required: host", message)
        kind, message = call(run, ["192.0.2.1", "--bogus"])
        self.assertEqual((kind, "unrecognized arguments: --bogus" in message), ("usage", True))
        kind, message = call(run, ["-W", "-1", "192.0.2.1"])
        self.assertEqual(kind, "usage")
        kind, text = call(run, ["--help"])
        self.assertEqual(kind, "text")
        self.assertTrue(text.startswith("usage: icmp-host run t.wasm"), text)
        self.assertIn("--payload-size", text)


class UtilsTest(unittest.TestCase):
    def test_address_and_name_tests(self):
        self.assertTrue(is_ipv4_address("192.0.2.1"))
        self.assertFalse(is_ipv4_address("192.0.2.256"))
        self.assertFalse(is_ipv4_address("::1"))
        self.assertTrue(is_ipv6_address("fe80::1%eth0"))
        self.assertTrue(is_ipv6_address("2001:db8::1"))
        self.assertFalse(is_ipv6_address("2001:db8::1::2"))
        self.assertFalse(is_ipv6_address("example.com:80"))  # icmplib: ':' in a
        self.assertTrue(is_hostname("example.com"))
        self.assertTrue(is_hostname("localhost"))
        self.assertTrue(is_hostname("host-1.lab.test."))
        for bad in ("192.0.2.1", "::1", "-bad.test", "a..b", "x" * 64 + ".test", "1.2.3.999",
                    "", None):
            self.assertFalse(is_hostname(bad), bad)
        self.assertNotEqual(unique_identifier(), unique_identifier())

    def test_resolve_and_limits_through_the_network(self):
        def policy(address):
            if address.startswith("198.51.100."):
                raise PolicyDenied("destination", f"{address} is denied")
        names = {"dual.test": ["2001:db8::1", "192.0.2.1"]}
        with SimNetwork(lambda r: [Response.echo(1)], names=names, policy=policy):
            self.assertEqual(resolve("dual.test"), ["192.0.2.1", "2001:db8::1"])
            self.assertEqual(resolve("dual.test", family=6), ["2001:db8::1"])
            with self.assertRaises(ValueError):
                resolve("dual.test", family=5)
            self.assertEqual(limits().max_batch, 1024)
            check_destination("192.0.2.1")
            with self.assertRaises(PolicyDenied):
                check_destination("198.51.100.1")
            self.assertTrue(ping("192.0.2.1", count=1).is_alive)

    def test_outside_a_network_the_error_says_where_to_run(self):
        with self.assertRaises(RuntimeError) as ctx:
            resolve("x.test")
        self.assertIn("SimNetwork", str(ctx.exception))


if __name__ == "__main__":
    unittest.main()
