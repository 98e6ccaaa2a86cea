"""traceroute against scripted paths: the Rust SDK's behaviour where
icmplib is wrong (stops at unreachables, keeps silent hops, honours
`fast`, one sequence per probe)."""

import json
import unittest

from icmp_host import InvalidArgument, progress, to_json, traceroute
from icmp_host.sim import Response, SimNetwork

TARGET = "192.0.2.9"


def router(n):
    return f"198.51.100.{n}"


def path(distance, silent=()):
    """Routers 1.. answer Time Exceeded; the target answers from `distance`."""
    def respond(request):
        if request.ttl >= distance:
            return [Response.echo(4)]
        if request.ttl in silent:
            return []
        return [Response.error(request.ttl, router(request.ttl), 11, 0)]
    return respond


class TracerouteTest(unittest.TestCase):
    def test_clean_path_reports_every_hop_and_stops_at_the_target(self):
        with SimNetwork(path(4)) as net:
            trace = traceroute(TARGET, timeout=0.5)
        self.assertTrue(trace.reached)
        self.assertEqual([h.distance for h in trace], [1, 2, 3, 4])
        self.assertEqual([h.address for h in trace],
                         [router(1), router(2), router(3), TARGET])
        self.assertTrue(all(h.packets_sent == 2 and len(h.rtts) == 2 for h in trace))
        sequences = [r.sequence for _, r in net.sent]
        self.assertEqual(len(set(sequences)), len(sequences))
        self.assertTrue(all(r.ttl <= 4 for _, r in net.sent))
        hops = [e.distance for e in net.events if isinstance(e, progress.Hop)]
        self.assertEqual(hops, [1, 2, 3, 4])

    def test_silent_hop_stays_visible_and_does_not_stall_the_trace(self):
        with SimNetwork(path(4, silent={2})) as net:
            trace = traceroute(TARGET, timeout=0.5)
        silent = trace[1]
        self.assertIsNone(silent.address)
        self.assertFalse(silent.is_alive)
        self.assertEqual(silent.packet_loss, 1.0)
        self.assertEqual([p.status for p in silent.probes], ["timeout", "timeout"])
        self.assertTrue(trace.reached)
        # Probes for later hops were in flight while hop 2 timed out.
        self.assertLess(net.clock, 1.0)

    def test_unreachable_stops_the_trace_with_its_mark(self):
        def respond(request):
            if request.ttl >= 3:
                return [Response.error(3, router(3), 3, 1)]
            return [Response.error(1, router(request.ttl), 11, 0)]
        with SimNetwork(respond):
            trace = traceroute(TARGET, timeout=0.5)
        self.assertFalse(trace.reached)
        self.assertEqual(len(trace), 3)
        self.assertEqual(trace[-1].mark, "!H")
        self.assertEqual(trace[-1].probes[0].message, "Destination Host Unreachable")

    def test_packet_too_big_is_marked_F(self):
        with SimNetwork(lambda r: [Response.error(1, router(1), 2, 0, mtu=1280)]):
            trace = traceroute("2001:db8::9", timeout=0.5)
        self.assertEqual((len(trace), trace[0].mark, trace[0].probes[0].mtu), (1, "!F", 1280))

    def test_ecmp_keeps_every_responder(self):
        def respond(request):
            if request.ttl >= 2:
                return [Response.echo(2)]
            return [Response.error(1, router(10 + request.sequence % 2), 11, 0)]
        with SimNetwork(respond):
            trace = traceroute(TARGET, count=4, timeout=0.5)
        self.assertEqual([r.address for r in trace[0].responders], [router(11), router(10)])
        self.assertEqual(trace[0].address, router(11))
        self.assertEqual(json.loads(to_json(trace))[0]["responders"][1]["rtts"], [1.0, 1.0])

    def test_fast_sends_one_probe_per_answering_hop(self):
        with SimNetwork(path(3, silent={2})) as net:
            trace = traceroute(TARGET, count=3, timeout=0.5, fast=True)
        self.assertEqual([h.packets_sent for h in trace], [1, 3, 1])
        self.assertEqual(len(net.sent), 5)

    def test_first_hop_and_max_hops_are_honoured(self):
        with SimNetwork(path(30)) as net:
            trace = traceroute(TARGET, first_hop=3, max_hops=5, timeout=0.5)
        self.assertEqual([h.distance for h in trace], [3, 4, 5])
        self.assertFalse(trace.reached)
        self.assertEqual(sorted({r.ttl for _, r in net.sent}), [3, 4, 5])
        with self.assertRaises(InvalidArgument):
            traceroute(TARGET, first_hop=6, max_hops=5)
        with self.assertRaises(InvalidArgument):
            traceroute(TARGET, count=300, max_hops=255)

    def test_late_reply_never_lands_on_another_hop(self):
        def respond(request):
            if request.ttl == 1:
                return [Response.error(900, router(1), 11, 0)]  # after its timeout
            return [Response.echo(2)]
        with SimNetwork(respond):
            trace = traceroute(TARGET, timeout=0.5)
        self.assertEqual(trace[0].address, None)
        self.assertEqual([p.status for p in trace[0].probes], ["timeout", "timeout"])
        self.assertEqual(trace[1].address, TARGET)

    def test_reply_already_queued_at_the_deadline_counts(self):
        # The answer's RTT is within the timeout: it counts, however late the
        # loop reads it (judged by the host's RTT, not the loop's clock).
        with SimNetwork(lambda r: [Response.echo(500)]):
            trace = traceroute(TARGET, count=1, timeout=0.5)
        self.assertTrue(trace.reached)
        self.assertEqual(trace[0].rtts, [500.0])

    def test_interrupted_trace_returns_the_hops_so_far(self):
        with SimNetwork(path(10, silent={3}), interrupt_at=0.3):
            trace = traceroute(TARGET, timeout=1, in_flight=2)
        self.assertFalse(trace.reached)
        self.assertTrue(1 <= len(trace) < 10)
        self.assertEqual(trace[0].address, router(1))

    def test_redirect_is_a_note(self):
        def respond(request):
            return [Response.error(1, "192.0.2.254", 5, 1), Response.echo(2)]
        with SimNetwork(respond) as net:
            trace = traceroute(TARGET, count=1, timeout=0.5)
        self.assertTrue(trace.reached)
        self.assertEqual(trace[0].address, TARGET)
        self.assertEqual([r.type for r in net.replies()], [5])

    def test_hop_json_schema_v1(self):
        with SimNetwork(path(2, silent={1})):
            trace = traceroute(TARGET, timeout=0.5)
        v = json.loads(to_json(trace))
        self.assertEqual([h["address"] for h in v], [None, TARGET])
        self.assertEqual(list(v[1]), [
            "address", "min_rtt", "avg_rtt", "max_rtt", "rtts", "packets_sent",
            "packets_received", "packet_loss", "jitter", "is_alive", "distance",
            "responders", "probes", "mark", "duplicates"])


if __name__ == "__main__":
    unittest.main()
