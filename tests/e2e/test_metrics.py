"""GET /metrics: the Prometheus text operators scrape. The queue figures come from the store; the
attempt counters belong to this node's dispatcher and reach the API only through the hook that
`hookline serve` wires in, so these tests fail when that wiring is missing."""
import os
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(__file__))
from harness import ServerTest, main, wait_for  # noqa: E402

OK = 'hookline_attempts_total{outcome="success"}'
FAILED = 'hookline_attempts_total{outcome="http_5xx"}'
DEPTH = "hookline_queue_depth"
INFLIGHT = "hookline_inflight"
AGE = "hookline_oldest_pending_age_seconds"


class Metrics(ServerTest):
    """What it proves: /metrics follows what happened, by exact amounts. Attempts held by the
    receiver show as in flight and pending (with an age) and not yet as attempts; once answered,
    each counts as one success and the queue empties; a failing endpoint (500) adds exactly the
    attempts its receiver saw and the delivery log records to the http_5xx outcome, and none to
    the successes."""
    # Attempts outlast the receiver's hold; three attempts in all for a failing endpoint.
    server_env = {"HOOKLINE_TIMEOUT": "10s", "HOOKLINE_RETRY_SCHEDULE": "0,100ms,100ms"}

    def metrics(self):
        """The samples of GET /metrics as {name (with labels): value}."""
        return self.server.metrics()

    def metrics_reach(self, want, what):
        """Waits until every sample in want has its value; returns all samples."""
        def ok():
            m = self.metrics()
            return m if all(m.get(k) == v for k, v in want.items()) else None
        try:
            return wait_for(ok, timeout=15, what=what)
        except AssertionError:
            self.assertEqual({k: self.metrics().get(k) for k in want}, want, what)
            raise

    def test_metrics_follow_deliveries(self):
        m = self.metrics()
        self.assertEqual({k: m[k] for k in (OK, FAILED, DEPTH, INFLIGHT, AGE)},
                         {OK: 0, FAILED: 0, DEPTH: 0, INFLIGHT: 0, AGE: 0})

        hold = threading.Event()
        hold.set()

        def held(n, req):
            deadline = time.monotonic() + 20
            while hold.is_set() and time.monotonic() < deadline:
                time.sleep(0.01)
            return 200, b"", {}, 0
        rx = self.receiver(held)
        self.app.webhook(rx.url(), entities=["agent"])
        try:
            for i in range(3):
                self.app.ok("POST", "agents", {"agentName": "a%d" % i, "externalTenantId": "t"})
            rx.wait_count(3)
            m = self.metrics_reach({DEPTH: 3, INFLIGHT: 3}, "three attempts in flight")
            self.assertGreater(m[AGE], 0)
            self.assertEqual((m[OK], m[FAILED]), (0, 0))  # none has finished
        finally:
            hold.clear()
        m = self.metrics_reach({OK: 3, DEPTH: 0, INFLIGHT: 0}, "three successes recorded")
        self.assertEqual((m[FAILED], m[AGE]), (0, 0))
        self.assertEqual(len(rx.requests), 3)

        # An endpoint answering 500 to everything: three attempts, then the delivery gives up.
        bad_rx = self.receiver(lambda n, req: (500, b"no", {}, 0))
        bad = self.app.webhook(bad_rx.url(), entities=["agent"])
        self.app.ok("POST", "agents", {"agentName": "b", "externalTenantId": "t"})

        def given_up():
            ds = self.app.ok("GET", "webhooks/%s/deliveries" % bad["uid"])["data"]
            return ds if ds and ds[0]["status"] == "failed" else None
        d = wait_for(given_up, timeout=15, what="the failing delivery given up")[0]
        self.assertEqual(d["attempts"], 3)
        self.assertEqual(len(bad_rx.requests), 3)
        m = self.metrics_reach({OK: 4, FAILED: 3, DEPTH: 0, INFLIGHT: 0},
                               "one more success and three failures")
        self.assertEqual(m[AGE], 0)

    def test_get_only_and_no_key(self):
        r = self.server.request("POST", "/metrics")
        self.assertEqual(r.status, 405)
        self.assertEqual(r.headers["allow"], "GET")
        self.assertEqual(r.json()["error"]["code"], "method_not_allowed")
        # outside the app prefix: no API key needed
        self.assertEqual(self.server.request("GET", "/metrics").status, 200)


if __name__ == "__main__":
    main()
