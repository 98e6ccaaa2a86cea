"""Host, Hop and their JSON: icmplib's names and rounding, schema v1."""

import json
import unittest

from icmp_host import Hop, Host, ICMPReply, ICMPRequest, to_json
from icmp_host import exceptions as x
from icmp_host.models import ProbeRecord, jitter, mdev


class HostTest(unittest.TestCase):
    def test_statistics_match_icmplib(self):
        h = Host("192.0.2.1", 3, [0.0414, 0.0502, 0.0301])
        self.assertEqual(h.min_rtt, 0.03)
        self.assertEqual(h.max_rtt, 0.05)
        self.assertEqual(h.avg_rtt, 0.041)
        self.assertEqual(h.packet_loss, 0.0)
        self.assertTrue(h.is_alive)
        h.packets_sent = 4
        self.assertEqual(h.packet_loss, 0.25)
        self.assertEqual(Host("x", 3, [1.0]).packet_loss, 0.67)

    def test_dead_host(self):
        dead = Host("192.0.2.9", 0, [])
        self.assertEqual(dead.packet_loss, 1.0)
        self.assertEqual((dead.min_rtt, dead.avg_rtt, dead.max_rtt), (0.0, 0.0, 0.0))
        self.assertFalse(dead.is_alive)

    def test_rounding_is_pythons(self):
        # Binary values just below or above the half, as Rust's round() mirrors.
        self.assertEqual(Host("a", 1, [2.675]).min_rtt, 2.675)
        self.assertEqual(Host("a", 1, [1.0005]).min_rtt, 1.0)
        self.assertEqual(Host("a", 1, [0.0415]).min_rtt, 0.042)

    def test_jitter_and_mdev(self):
        self.assertEqual(jitter([]), 0.0)
        self.assertEqual(jitter([5.0]), 0.0)
        self.assertAlmostEqual(jitter([1.0, 3.0, 2.0, 6.0]), 7 / 3)
        self.assertEqual(Host("a", 5, [1.0, 3.0, 2.0, 6.0]).jitter, 2.333)
        self.assertEqual(mdev([]), 0.0)
        self.assertAlmostEqual(mdev([1.0, 3.0]), 1.0)

    def test_json_is_schema_v1_in_order(self):
        h = Host("127.0.0.1", 2, [0.5], target="localhost",
                 probes=[ProbeRecord.timed_out(2), ProbeRecord("1", "reply")])
        h.probes[1].sequence = 1
        v = json.loads(to_json(h))
        self.assertEqual(list(v), [
            "address", "min_rtt", "avg_rtt", "max_rtt", "rtts", "packets_sent",
            "packets_received", "packet_loss", "jitter", "is_alive", "target",
            "duplicates", "probes"])
        self.assertEqual(v["packet_loss"], 0.5)
        self.assertIs(v["is_alive"], True)
        self.assertEqual([p["sequence"] for p in v["probes"]], [1, 2])
        self.assertEqual(v["probes"][1], {"sequence": 2, "status": "timeout"})
        self.assertIsInstance(v["min_rtt"], float)
        h.error = "no such name"
        self.assertEqual(json.loads(to_json(h))["error"], "no such name")

    def test_hop_json(self):
        hop = Hop(None, 2, [], 3)
        v = json.loads(to_json(hop))
        self.assertIsNone(v["address"])
        self.assertEqual(v["distance"], 3)
        self.assertEqual(v["packet_loss"], 1.0)
        self.assertEqual(list(v)[-5:], ["distance", "responders", "probes", "mark",
                                        "duplicates"])
        reply = ICMPReply("198.51.100.1", 4, 7, 5, 11, 0, 36, 0.0, rtt=1.5)
        hop.record(reply)
        hop.record(ICMPReply("198.51.100.2", 4, 7, 6, 11, 0, 36, 0.0, rtt=2.5))
        self.assertEqual(hop.address, "198.51.100.1")
        self.assertEqual([r.address for r in hop.responders],
                         ["198.51.100.1", "198.51.100.2"])
        self.assertEqual(hop.rtts, [1.5, 2.5])


class RequestReplyTest(unittest.TestCase):
    def test_request_masks_and_payload(self):
        r = ICMPRequest("192.0.2.1", 0x12345, 0x10001, payload=b"abc")
        self.assertEqual((r.id, r.sequence), (0x2345, 1))
        self.assertEqual(r.payload_size, 3)
        self.assertEqual((r.ttl, r.traffic_class, r.time), (64, 0, 0))
        self.assertIsNone(ICMPRequest("192.0.2.1", 1, 1).payload)

    def test_raise_for_status_follows_icmplib_tree(self):
        def reply(family, type, code, mtu=None):
            return ICMPReply("198.51.100.1", family, 1, 1, type, code, 36, 0.0, mtu=mtu)

        reply(4, 0, 0).raise_for_status()
        reply(6, 129, 0).raise_for_status()
        cases = [
            (reply(4, 3, 1), x.ICMPv4DestinationUnreachable, "Destination Host Unreachable"),
            (reply(6, 1, 3), x.ICMPv6DestinationUnreachable, "Destination Address Unreachable"),
            (reply(4, 11, 0), x.ICMPv4TimeExceeded, "Time to live exceeded"),
            (reply(6, 3, 0), x.ICMPv6TimeExceeded, "Time to live exceeded"),
            (reply(6, 2, 0, 1280), x.ICMPv6PacketTooBig, "Packet too big"),
            (reply(4, 12, 0), x.ICMPError, "Parameter problem"),
        ]
        for r, cls, text in cases:
            with self.assertRaises(cls) as ctx:
                r.raise_for_status()
            self.assertEqual(ctx.exception.message, text)
            self.assertIs(ctx.exception.reply, r)
        # Fragmentation Needed: a Destination Unreachable (icmplib) and too big.
        with self.assertRaises(x.DestinationUnreachable) as ctx:
            reply(4, 3, 4, 1400).raise_for_status()
        self.assertIsInstance(ctx.exception, x.PacketTooBig)
        self.assertEqual(ctx.exception.mtu, 1400)
        self.assertIsInstance(ctx.exception, x.ICMPLibError)

    def test_exception_tree(self):
        for cls in (x.SocketAddressError, x.SocketPermissionError,
                    x.SocketUnavailableError, x.SocketBroadcastError, x.TimeoutExceeded,
                    x.MessageTooBig, x.ResourceExhausted, x.Unsupported):
            self.assertTrue(issubclass(cls, x.ICMPSocketError), cls)
        for cls in (x.NameLookupError, x.PolicyDenied, x.Interrupted, x.InvalidArgument,
                    x.ICMPSocketError, x.ICMPError):
            self.assertTrue(issubclass(cls, x.ICMPLibError), cls)
        self.assertTrue(issubclass(x.InvalidArgument, ValueError))
        denied = x.PolicyDenied("destination", "192.0.2.1 is outside --allow")
        self.assertEqual(denied.rule, "destination")
        self.assertIn("192.0.2.1 is outside --allow", str(denied))
        self.assertEqual(x.MessageTooBig(1500).mtu, 1500)
        self.assertEqual(x.TimeoutExceeded(2).timeout, 2)


if __name__ == "__main__":
    unittest.main()
