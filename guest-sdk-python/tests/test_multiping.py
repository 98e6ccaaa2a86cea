"""multiping: one socket per family, input order, names that do not
resolve reported per host, rate and interval pacing."""

import unittest

from icmp_host import multiping
from icmp_host.sim import Response, SimNetwork


class MultipingTest(unittest.TestCase):
    def test_mixed_families_unresolvable_names_and_input_order(self):
        names = {"v6.test": ["2001:db8::6"]}
        dead = {"192.0.2.3"}
        def respond(r):
            return [] if r.destination in dead else [Response.echo(2)]
        done = []
        with SimNetwork(respond, names=names) as net:
            hosts = multiping(["192.0.2.1", "v6.test", "missing.test", "192.0.2.3"],
                              timeout=0.5, on_done=lambda h: done.append(h.target))
        self.assertEqual([h.target for h in hosts],
                         ["192.0.2.1", "v6.test", "missing.test", "192.0.2.3"])
        self.assertEqual([h.address for h in hosts],
                         ["192.0.2.1", "2001:db8::6", "missing.test", "192.0.2.3"])
        self.assertEqual([h.is_alive for h in hosts], [True, True, False, False])
        self.assertEqual([h.packets_sent for h in hosts], [2, 2, 0, 2])
        self.assertIn("missing.test", hosts[2].error)
        self.assertEqual([p.status for p in hosts[3].probes], ["timeout", "timeout"])
        self.assertEqual(sorted(done), sorted(h.target for h in hosts))
        self.assertEqual(done[0], "missing.test")  # reported at once
        self.assertEqual(net._sockets, 2)  # one socket per family

    def test_rate_paces_all_hosts_and_interval_paces_each(self):
        targets = [f"192.0.2.{n}" for n in range(1, 11)]
        with SimNetwork(lambda r: [Response.echo(1)]) as net:
            hosts = multiping(targets, count=2, interval=0.5, rate=100, timeout=1)
        self.assertTrue(all(h.packets_received == 2 for h in hosts))
        times = [t for t, _ in net.sent]
        gaps = [b - a for a, b in zip(times, times[1:])]
        self.assertTrue(all(g >= 0.01 - 1e-9 for g in gaps), gaps)
        by_host = {}
        for t, r in net.sent:
            by_host.setdefault(r.destination, []).append(t)
        for sends in by_host.values():
            self.assertGreaterEqual(sends[1] - sends[0], 0.5 - 1e-9)

    def test_concurrent_tasks_bounds_hosts_in_flight(self):
        targets = [f"192.0.2.{n}" for n in range(1, 7)]
        with SimNetwork(lambda r: []) as net:
            hosts = multiping(targets, count=1, timeout=1, concurrent_tasks=2)
        self.assertTrue(all(h.packets_sent == 1 for h in hosts))
        # Two at a time, each waiting out its timeout: three waves.
        first = sorted(t for t, _ in net.sent)
        self.assertAlmostEqual(first[2] - first[0], 1.0, places=2)
        self.assertAlmostEqual(first[4] - first[0], 2.0, places=2)

    def test_duplicates_count_once_and_keys_are_unique_per_request(self):
        with SimNetwork(lambda r: [Response.echo(1), Response.echo(2)]) as net:
            hosts = multiping(["192.0.2.1", "192.0.2.2"], count=3, interval=0.1, timeout=0.5)
        self.assertTrue(all(h.packets_received == 3 for h in hosts))
        self.assertGreaterEqual(sum(h.duplicates for h in hosts), 4)
        keys = [(r.id, r.sequence) for _, r in net.sent]
        self.assertEqual(len(set(keys)), len(keys))

    def test_errors_are_per_probe_and_not_alive(self):
        with SimNetwork(lambda r: [Response.error(1, "198.51.100.1", 3, 1)]):
            (host,) = multiping(["192.0.2.1"], timeout=0.5)
        self.assertFalse(host.is_alive)
        self.assertEqual([p.status for p in host.probes], ["error", "error"])
        self.assertEqual([p.sequence for p in host.probes], [1, 2])

    def test_late_replies_are_judged_by_their_rtt(self):
        with SimNetwork(lambda r: [Response.echo(600)]):
            (late,) = multiping(["192.0.2.1"], count=1, timeout=0.5)
        self.assertFalse(late.is_alive)
        with SimNetwork(lambda r: [Response.echo(500)]):
            (in_time,) = multiping(["192.0.2.1"], count=1, timeout=0.5)
        self.assertTrue(in_time.is_alive)

    def test_source_quench_is_a_note_and_the_reply_still_counts(self):
        responses = [Response.error(1, "192.0.2.254", 4, 0), Response.echo(2)]
        with SimNetwork(lambda r: responses) as net:
            (host,) = multiping(["192.0.2.1"], count=1, timeout=0.5)
        self.assertEqual(host.rtts, [2.0])
        self.assertEqual([r.type for r in net.replies()], [4])

    def test_interrupt_reports_every_host(self):
        done = []
        targets = [f"192.0.2.{n}" for n in range(1, 5)]
        with SimNetwork(lambda r: [], interrupt_at=0.2):
            hosts = multiping(targets, count=2, timeout=1, concurrent_tasks=2,
                              on_done=lambda h: done.append(h.target))
        self.assertEqual(sorted(done), targets)
        self.assertEqual(len(hosts), 4)


if __name__ == "__main__":
    unittest.main()
