"""GET /metrics: the Prometheus text operators scrape. The queue figures come from the store; the
attempt counters belong to this node's dispatcher and reach the API only through the hook that
`hookline serve` wires in, so these tests fail when that wiring is missing."""
import os
import sys
import unittest

sys.path.insert(0, os.path.dirname(__file__))
from harness import ServerTest, main, wait_for  # noqa: E402

SUCCEEDED = 'hookline_attempts_total{outcome="succeeded"}'
FAILED = 'hookline_attempts_total{outcome="failed"}'


class Metrics(ServerTest):
    server_env = {"HOOKLINE_TIMEOUT": "1s", "HOOKLINE_RETRY_SCHEDULE": "0,100ms"}

    def metrics(self):
        r = self.server.request("GET", "/metrics")
        self.assertEqual(r.status, 200)
        self.assertTrue(r.headers["content-type"].startswith("text/plain"))
        out = {}
        for line in r.body.decode().splitlines():
            if line and not line.startswith("#"):
                name, value = line.rsplit(" ", 1)
                out[name] = float(value)
        return out

    def test_attempt_counters_come_from_the_dispatcher(self):
        m = self.metrics()
        for name in ("hookline_queue_depth", "hookline_oldest_pending_age_seconds",
                     "hookline_inflight", SUCCEEDED, FAILED):
            self.assertIn(name, m)
        self.assertEqual(m[SUCCEEDED], 0)
        self.assertEqual(m[FAILED], 0)
        good = self.receiver()
        bad = self.receiver(lambda n, req: (500, b"no", {}, 0))
        self.app.webhook(good.url(), entities=["agent"])
        self.app.webhook(bad.url(), entities=["agent"])
        self.app.ok("POST", "agents", {"agentName": "counted", "externalTenantId": "t"})
        good.wait_count(1)
        bad.wait_count(1)

        def counted():
            m = self.metrics()
            return m if m[SUCCEEDED] >= 1 and m[FAILED] >= 1 else None
        m = wait_for(counted, timeout=15, what="one succeeded and one failed attempt counted")
        self.assertEqual(m[SUCCEEDED], 1)

    def test_get_only_and_no_key(self):
        r = self.server.request("POST", "/metrics")
        self.assertEqual(r.status, 405)
        self.assertEqual(r.headers["allow"], "GET")
        self.assertEqual(r.json()["error"]["code"], "method_not_allowed")
        # outside the app prefix: no API key needed
        self.assertEqual(self.server.request("GET", "/metrics").status, 200)


if __name__ == "__main__":
    main()
