"""ping against a scripted network: icmplib's behaviour where it is
right, the Rust SDK's where icmplib is wrong."""

import unittest

from icmp_host import (
    ICMPv4Socket, Interrupted, NameLookupError, PolicyDenied, progress, ping,
)
from icmp_host.exceptions import MessageTooBig, ICMPSocketError
from icmp_host.sim import Response, SimNetwork

TARGET = "192.0.2.1"


class PingTest(unittest.TestCase):
    def test_all_replies_give_icmplib_statistics(self):
        rtts = iter([1.0, 3.0, 2.0, 6.0])
        with SimNetwork(lambda r: [Response.echo(next(rtts))]) as net:
            host = ping(TARGET)
        self.assertEqual((host.address, host.packets_sent, host.packets_received),
                         (TARGET, 4, 4))
        self.assertEqual(host.rtts, [1.0, 3.0, 2.0, 6.0])
        self.assertEqual((host.min_rtt, host.avg_rtt, host.max_rtt), (1.0, 3.0, 6.0))
        self.assertEqual(host.jitter, 2.333)
        self.assertTrue(host.is_alive)
        # icmplib's defaults: 4 requests 1 s apart, sequences 1..4, TTL 64, 56 bytes.
        self.assertEqual([round(t, 3) for t, _ in net.sent], [0.0, 1.0, 2.0, 3.0])
        self.assertEqual([r.sequence for _, r in net.sent], [1, 2, 3, 4])
        self.assertTrue(all(r.ttl == 64 and r.payload_size == 56 for _, r in net.sent))
        self.assertEqual(len({r.id for _, r in net.sent}), 1)
        kinds = [type(e).__name__ for e in net.events]
        self.assertEqual(kinds[0], "Start")
        self.assertEqual(kinds.count("Reply"), 4)
        self.assertEqual(kinds[-1], "Summary")
        self.assertEqual(net.events[-1].packets_received, 4)

    def test_timeouts_count_as_loss_and_wait_the_timeout(self):
        answered = {1, 3}
        with SimNetwork(lambda r: [Response.echo(5)] if r.sequence in answered else []) as net:
            host = ping(TARGET, count=4, interval=0.2, timeout=0.5)
        self.assertEqual((host.packets_sent, host.packets_received, host.packet_loss),
                         (4, 2, 0.5))
        self.assertEqual([p.status for p in host.probes],
                         ["reply", "timeout", "reply", "timeout"])
        # A timed-out probe waits its timeout; the next send is an interval later.
        sends = [round(t, 3) for t, _ in net.sent]
        self.assertEqual(sends, [0.0, 0.2, 0.7, 0.9])
        self.assertEqual(sum(isinstance(e, progress.Timeout) for e in net.events), 2)

    def test_unreachable_is_kept_per_probe_not_alive(self):
        with SimNetwork(lambda r: [Response.error(2, "198.51.100.1", 3, 1)]):
            host = ping(TARGET, count=2, interval=0)
        self.assertFalse(host.is_alive)
        self.assertEqual(host.packets_sent, 2)
        self.assertEqual(host.packet_loss, 1.0)
        p = host.probes[0]
        self.assertEqual((p.status, p.source, p.type, p.code, p.message),
                         ("error", "198.51.100.1", 3, 1, "Destination Host Unreachable"))

    def test_redirect_is_a_note_and_the_reply_still_counts(self):
        responses = [Response.error(1, "192.0.2.254", 5, 1), Response.echo(3)]
        with SimNetwork(lambda r: responses) as net:
            host = ping(TARGET, count=1)
        self.assertTrue(host.is_alive)
        self.assertEqual(host.rtts, [3.0])
        self.assertEqual([p.status for p in host.probes], ["reply"])
        # Reported (the host shows it as iputils' note), never the answer.
        self.assertEqual([(r.source, r.type) for r in net.replies()],
                         [("192.0.2.254", 5), (TARGET, 0)])

    def test_duplicates_are_counted_once(self):
        with SimNetwork(lambda r: [Response.echo(1), Response.echo(2)]):
            host = ping(TARGET, count=3, interval=0.01)
        # The last duplicate arrives after the run ended (ping does not linger).
        self.assertEqual((host.packets_received, host.duplicates), (3, 2))
        self.assertEqual(host.rtts, [1.0, 1.0, 1.0])
        self.assertEqual(host.packet_loss, 0.0)

    def test_interrupt_returns_what_was_measured(self):
        with SimNetwork(lambda r: [Response.echo(1)], interrupt_at=2.5) as net:
            host = ping(TARGET, count=10)
        self.assertEqual((host.packets_sent, host.packets_received), (3, 3))
        self.assertIsInstance(net.events[-1], progress.Summary)

    def test_names_resolve_ipv4_first_unless_family_given(self):
        names = {"dual.test": ["2001:db8::1", "192.0.2.7"]}
        with SimNetwork(lambda r: [Response.echo(1)], names=names) as net:
            self.assertEqual(ping("dual.test", count=1).address, "192.0.2.7")
            six = ping("dual.test", count=1, family=6)
            self.assertEqual(six.address, "2001:db8::1")
            self.assertEqual(six.target, "dual.test")
            self.assertEqual(net.sent[-1][1].destination, "2001:db8::1")
            with self.assertRaises(NameLookupError):
                ping("missing.test", count=1)

    def test_request_fields_follow_options(self):
        with SimNetwork(lambda r: [Response.echo(1)]) as net:
            ping(TARGET, count=2, interval=0, id=0x1234, payload=b"\x01\x02", ttl=7,
                 traffic_class=0x20, dont_fragment=True)
        r = net.sent[0][1]
        self.assertEqual((r.id, r.payload, r.payload_size, r.ttl, r.traffic_class,
                          r.dont_fragment), (0x1234, b"\x01\x02", 2, 7, 0x20, True))
        with self.assertRaises(TypeError):
            ping(TARGET, colour="blue")
        with self.assertRaises(ValueError):
            ping(TARGET, ttl=300)

    def test_message_too_big_is_a_failed_probe_and_the_ping_goes_on(self):
        class TooBig(SimNetwork):
            def _send(self, socket, request):
                if request.sequence == 2:
                    raise MessageTooBig(1280)
                return super()._send(socket, request)

        with TooBig(lambda r: [Response.echo(1)]) as net:
            host = ping(TARGET, count=3, interval=0)
        self.assertEqual([p.status for p in host.probes], ["reply", "failed", "reply"])
        self.assertEqual(host.probes[1].message, "local error: message too long, mtu=1280")
        self.assertEqual(host.packets_sent, 2)
        self.assertIn("icmp_seq=2: local error: message too long, mtu=1280", net.notes())

    def test_no_route_is_a_failed_probe(self):
        class NoRoute(SimNetwork):
            def _send(self, socket, request):
                raise ICMPSocketError("Network is unreachable")

        with NoRoute(lambda r: []):
            host = ping(TARGET, count=2, interval=0)
        self.assertEqual([p.status for p in host.probes], ["failed", "failed"])
        self.assertEqual(host.packets_sent, 0)

    def test_policy_denial_raises_with_its_rule(self):
        def policy(address):
            raise PolicyDenied("destination", f"{address} is not in --allow")

        with SimNetwork(lambda r: [], policy=policy):
            with self.assertRaises(PolicyDenied) as ctx:
                ping(TARGET, count=1)
        self.assertEqual(ctx.exception.rule, "destination")

    def test_broadcast_keeps_every_responder(self):
        responses = [Response(1, "192.0.2.10"), Response(2, "192.0.2.11")]
        with SimNetwork(lambda r: responses):
            host = ping("192.0.2.255", count=1, broadcast=True)
        self.assertEqual(sorted(p.source for p in host.probes), ["192.0.2.10", "192.0.2.11"])
        self.assertEqual(host.packets_received, 2)

    def test_interrupted_sleep_between_probes(self):
        with SimNetwork(lambda r: [Response.echo(1)], interrupt_at=0.5):
            host = ping(TARGET, count=3)
        self.assertEqual(host.packets_sent, 1)
        with SimNetwork(lambda r: [], interrupt_at=0.0):
            with self.assertRaises(Interrupted):
                ping(TARGET, count=1)


class SocketTest(unittest.TestCase):
    """icmplib's "Use the sockets" example, step by step."""

    def test_send_receive_raise_for_status(self):
        from icmp_host import ICMPRequest, TimeExceeded, TimeoutExceeded

        def net(request):
            if request.ttl < 3:
                return [Response.error(1, "198.51.100.1", 11, 0)]
            return [Response.echo(4)]

        with SimNetwork(net):
            with ICMPv4Socket() as sock:
                request = ICMPRequest(TARGET, id=12345, sequence=1, ttl=2)
                sock.send(request)
                self.assertGreater(request.time, 0)
                reply = sock.receive(request, timeout=2)
                self.assertEqual(reply.source, "198.51.100.1")
                with self.assertRaises(TimeExceeded):
                    reply.raise_for_status()
                request = ICMPRequest(TARGET, id=12345, sequence=2, ttl=64)
                sock.send(request)
                reply = sock.receive(request)
                reply.raise_for_status()
                self.assertAlmostEqual((reply.time - request.time) * 1000, 4.0, places=3)
                self.assertEqual(reply.rtt, 4.0)
                with self.assertRaises(TimeoutExceeded):
                    sock.receive(ICMPRequest(TARGET, 12345, 9), timeout=0.1)
            self.assertTrue(sock.is_closed)
            from icmp_host import SocketUnavailableError
            with self.assertRaises(SocketUnavailableError):
                sock.send(request)

    def test_broadcast_needs_the_property(self):
        from icmp_host import ICMPRequest, SocketBroadcastError

        with SimNetwork(lambda r: [Response.echo(1)]):
            sock = ICMPv4Socket()
            with self.assertRaises(SocketBroadcastError):
                sock.send(ICMPRequest("192.0.2.255", 1, 1))
            sock.broadcast = True
            self.assertTrue(sock.broadcast)
            sock.send(ICMPRequest("192.0.2.255", 1, 1))
            sock.close()

    def test_blocking_false_does_not_wait(self):
        from icmp_host import ICMPRequest, TimeoutExceeded

        with SimNetwork(lambda r: [Response.echo(50)]) as net:
            with ICMPv4Socket() as sock:
                sock.blocking = False
                request = ICMPRequest(TARGET, 1, 1)
                sock.send(request)
                with self.assertRaises(TimeoutExceeded):
                    sock.receive(request)
                self.assertEqual(net.clock, 0.0)

    def test_privileged_true_needs_raw_sockets(self):
        from icmp_host import SocketPermissionError

        with SimNetwork(lambda r: [], privileged=False):
            with self.assertRaises(SocketPermissionError):
                ICMPv4Socket(privileged=True)
            ICMPv4Socket().close()


if __name__ == "__main__":
    unittest.main()
