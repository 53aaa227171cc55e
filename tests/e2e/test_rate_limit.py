"""rateLimit (issue 19): deliveries a second to one webhook, counted in the store so that every
node together keeps to it, without holding dispatcher capacity that other webhooks need.

The rate is measured at the receiver over a backlog that is there for certain: the webhook is
created at HOLD a second, every change is published, and only then is its limit raised to LIMIT
(raise_limit). Arrivals after that moment, once the first burst is spent (arrivals less one over
the time from the first to the last), must be within 10 % of the limit. Publishing is therefore
never what is measured, however slow the machine (a sanitizer build publishing 100 changes from
four threads can take longer than LIMIT a second allows). Several nodes sharing one limit:
test_policy_nodes.py.
"""
import os
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import ServerTest, main  # noqa: E402

LIMIT = 10
HOLD = 1  # the limit while the backlog is published: far below how fast it is published
EVENTS = 100


def measured_rate(reqs, limit, since):
    """Arrivals a second after `since`, leaving out the first limit + 1 of them: raising the limit
    keeps the webhook's schedule, but if the held phase fell behind it, up to a second's worth and
    one more may go at once. Returns arrivals less one over the time from the first to the last
    of those counted, and how many were counted."""
    times = sorted(r["time"] for r in reqs if r["time"] >= since)[limit + 1:]
    if len(times) < 2:
        return 0.0, len(times)
    return (len(times) - 1) / (times[-1] - times[0]), len(times)


def raise_limit(app, uid, limit=LIMIT):
    """PATCH the webhook's rateLimit up to `limit`; returns the time just before, from which
    arrivals are measured."""
    since = time.time()
    app.ok("PATCH", "webhooks/" + uid, {"rateLimit": limit})
    return since


def check_held(test, rx, limit=LIMIT, events=EVENTS):
    """Before the limit is raised, so few have arrived that at least half the events are still
    there to measure after the first limit + 1 are left out."""
    most = events - (limit + 1) - events // 2
    test.assertLessEqual(len(rx.requests), most, "the backlog drained before the limit was raised")


def check_rate(test, reqs, since, what, limit=LIMIT, events=EVENTS):
    """The measured rate is within 10 % of the limit, over at least half the events: a backlog
    that had drained before the limit was raised would measure nothing."""
    rate, counted = measured_rate(reqs, limit, since)
    print("\nrateLimit %d%s: measured %.2f/s over %d deliveries" % (limit, what, rate, counted),
          file=sys.stderr)
    test.assertGreaterEqual(counted, events // 2, "only %d arrivals after the limit was raised"
                            % counted)
    test.assertGreaterEqual(rate, limit * 0.9, "measured %.2f/s" % rate)
    test.assertLessEqual(rate, limit * 1.1, "measured %.2f/s" % rate)


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
        w = self.app.webhook(limited.url(), entities=["agent"], rateLimit=HOLD)
        self.app.webhook(free.url(), entities=["agent"])
        publish(self.app, EVENTS)
        # The webhook without a limit has everything while the limited one is held back.
        free.wait_count(EVENTS, timeout=60)
        check_held(self, limited)
        since = raise_limit(self.app, w["uid"])
        reqs = limited.wait_count(EVENTS, timeout=120)
        check_rate(self, reqs, since, "")


if __name__ == "__main__":
    main()
