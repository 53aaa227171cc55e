"""The delivery policy of issue 19 with two nodes on one PostgreSQL database: the state of a
webhook's rate limit and circuit breaker is in the store, so the nodes keep them together.

- rateLimit: changes committed through both nodes reach the limited webhook at its limit
  (arrivals per second measured at the receiver, within 10 %, once the limit is raised on the
  other node over a backlog held at one a second, as in test_rate_limit.py).
- The circuit breaker: once open, both nodes together send one probe at a time, each at least
  the retry schedule's shortest wait after the one before (the same checks as test_breaker.py).

PostgreSQL only: run under scripts/with-postgres.sh. Without a server every case skips and the
suite exits 77 (a failure under HL_REQUIRE_ALL=1); ctest runs it only as e2e-pg/.
"""
import os
import sys
import threading
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import PG_URL, App, Receiver, Server, main, need, wait_for  # noqa: E402
from test_breaker import SCHEDULE, SHORTEST_GAP, Endpoint  # noqa: E402
from test_rate_limit import EVENTS, HOLD, check_held, check_rate, publish, raise_limit  # noqa: E402


class PolicyNodes(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        need(PG_URL, "a PostgreSQL server (HOOKLINE_TEST_PG_URL: run under "
             "scripts/with-postgres.sh)")

    def setUp(self):
        self.receivers = []

    def nodes(self, args=(), env=None):
        a = Server(extra_args=args, env=env)
        info = a.create_app()
        a.start()
        b = Server(extra_args=args, env=env, db=a.db)
        b.start()
        for s in (a, b):  # cleanups run last first: b stops before a drops the database
            self.addCleanup(self.stop_clean, s)
        return App(a, info), App(b, info)

    def stop_clean(self, s):
        rc = s.stop()
        log = s.log()
        s.cleanup()
        self.assertIn(rc, (None, 0), log[-3000:])
        for bad in ("AddressSanitizer", "runtime error:", "LeakSanitizer", "ThreadSanitizer"):
            self.assertNotIn(bad, log)

    def tearDown(self):
        for r in self.receivers:
            r.close()
            self.assertEqual(r.invalid, [])

    def test_rate_limit_is_shared(self):
        a, b = self.nodes()
        limited = Receiver()
        self.receivers.append(limited)
        w = a.webhook(limited.url(), entities=["agent"], rateLimit=HOLD)
        t = threading.Thread(target=publish, args=(b, EVENTS // 2, 2))
        t.start()
        publish(a, EVENTS - EVENTS // 2, 2)
        t.join()
        check_held(self, limited)
        since = raise_limit(b, w["uid"])  # the other node: the new limit is the store's
        reqs = limited.wait_count(EVENTS, timeout=120)
        check_rate(self, reqs, since, " on two nodes")

    def test_one_probe_at_a_time_between_nodes(self):
        a, b = self.nodes(("--breaker-after", "3"), {"HOOKLINE_RETRY_SCHEDULE": SCHEDULE})
        ep = Endpoint(self)
        w = a.webhook(ep.rx.url(), entities=["agent"])
        for i in range(4):
            a.ok("POST", "agents", {"agentName": "a%d" % i, "externalTenantId": "t"})
        wait_for(lambda: b.ok("GET", "webhooks/" + w["uid"])["breaker"] == "open", 30,
                 what="the breaker to open")
        mark = ep.mark()
        for i in range(6):
            (a if i % 2 else b).ok("POST", "agents", {"agentName": "b%d" % i,
                                                      "externalTenantId": "t"})
        wait_for(lambda: ep.count() >= mark + 5, 60, what="five probes")
        reqs = ep.since(mark)
        for before, after in zip(reqs, reqs[1:]):
            self.assertGreaterEqual(after[0], before[1], "two probes at once")
            self.assertGreaterEqual(after[0] - before[1], SHORTEST_GAP)
        ep.fail = False
        wait_for(lambda: len(ep.delivered()) == 10, 60, what="all ten delivered")
        self.assertEqual(a.ok("GET", "webhooks/" + w["uid"])["breaker"], "closed")


if __name__ == "__main__":
    main()
