"""rateLimit (issue 19): deliveries a second to one webhook, counted in the store so that every
node together keeps to it, without holding dispatcher capacity that other webhooks need.

The rate is measured at the receiver once the first burst is spent (arrivals less one over the
time from the first to the last): it must be within 10 % of the limit. Its upper side cannot be broken by
a slow machine; its lower side needs only a few dozen deliveries a second. Several nodes
sharing one limit: test_nodes.py.
"""
import os
import sys
import threading

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import ServerTest, main  # noqa: E402

LIMIT = 10
EVENTS = 100


def measured_rate(reqs, limit):
    """Arrivals a second once the first burst (one delivery and a second's worth, which a
    webhook that had sent nothing may take at once) is spent: arrivals less one over the time
    from the first to the last of them."""
    times = sorted(r["time"] for r in reqs)[limit + 1:]
    return (len(times) - 1) / (times[-1] - times[0])


def publish(app, n, threads=4):
    """n agent creates from a few threads at once: far faster than the limit."""
    def work(k):
        for i in range(k, n, threads):
            app.ok("POST", "agents", {"agentName": "a%d" % i, "externalTenantId": "t"})
    ts = [threading.Thread(target=work, args=(k,)) for k in range(threads)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()


class RateLimit(ServerTest):

    def measured(self, reqs):
        return measured_rate(reqs, LIMIT)

    def test_validation_and_shown(self):
        rx = self.receiver()
        for bad in (0, -1, 10001, 2.5, "5", True, [], {}):
            r = self.app.call("POST", "webhooks", {"url": rx.url(), "entities": ["agent"],
                                                   "rateLimit": bad})
            self.assertEqual(r.status, 422, bad)
            err = r.json()["error"]
            self.assertEqual(err["code"], "rate_limit_invalid")
            self.assertTrue(err["message"].startswith("rateLimit "), err["message"])
        self.assertEqual(self.app.ok("GET", "webhooks")["data"], [])  # nothing stored
        w = self.app.webhook(rx.url())
        self.assertIsNone(w["rateLimit"])
        w = self.app.webhook(rx.url(), rateLimit=10000)
        self.assertEqual(w["rateLimit"], 10000)
        self.assertEqual(self.app.ok("GET", "webhooks/" + w["uid"])["rateLimit"], 10000)
        r = self.app.call("PATCH", "webhooks/" + w["uid"], {"rateLimit": 10001})
        self.assertEqual(r.status, 422)
        self.assertEqual(self.app.ok("GET", "webhooks/" + w["uid"])["rateLimit"], 10000)
        p = self.app.ok("PATCH", "webhooks/" + w["uid"], {"rateLimit": 1})
        self.assertEqual(p["rateLimit"], 1)
        p = self.app.ok("PATCH", "webhooks/" + w["uid"], {"description": "kept"})
        self.assertEqual(p["rateLimit"], 1)
        p = self.app.ok("PATCH", "webhooks/" + w["uid"], {"rateLimit": None})
        self.assertIsNone(p["rateLimit"])
        listed = {x["uid"]: x for x in self.app.ok("GET", "webhooks")["data"]}
        self.assertIsNone(listed[w["uid"]]["rateLimit"])

    def test_limit_is_kept_and_others_are_not_held(self):
        limited, free = self.receiver(), self.receiver()
        self.app.webhook(limited.url(), entities=["agent"], rateLimit=LIMIT)
        self.app.webhook(free.url(), entities=["agent"])
        publish(self.app, EVENTS)
        # The webhook without a limit has everything while the limited one is still going.
        free.wait_count(EVENTS, timeout=60)
        self.assertLess(len(limited.requests), EVENTS)
        reqs = limited.wait_count(EVENTS, timeout=120)
        rate = self.measured(reqs)
        print("\nrateLimit %d: measured %.2f/s over %d deliveries" % (LIMIT, rate, len(reqs)),
              file=sys.stderr)
        self.assertGreaterEqual(rate, LIMIT * 0.9, "measured %.2f/s" % rate)
        self.assertLessEqual(rate, LIMIT * 1.1, "measured %.2f/s" % rate)


if __name__ == "__main__":
    main()
