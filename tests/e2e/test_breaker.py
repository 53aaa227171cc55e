"""The circuit breaker (issue 19): after --breaker-after failed attempts in a row a webhook's
other deliveries wait while one probe at a time goes at the retry schedule's pace; a probe that
succeeds releases them at once. Its state is in the store: it holds across a restart.

Nothing here asserts how fast anything is: the probes are shown one at a time by their
intervals at the receiver (none overlaps another), and their pace by a lower bound on the gap
between them (the schedule's shortest wait less its jitter), which no slowness can break.
"""
import datetime
import os
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import Receiver, ServerTest, main, wait_for  # noqa: E402

# The first probe goes the schedule's second wait after the breaker opened, later ones after
# the third and on; every wait is spread by +-20 %.
SCHEDULE = "0,400ms,800ms,800ms,800ms,800ms,800ms,800ms,800ms,800ms,800ms,800ms"
SHORTEST_GAP = 0.4 * 0.8 - 0.02


class Endpoint:
    """A receiver that fails (500) until told otherwise, keeping each request's interval:
    (start, end, eventId, status)."""

    def __init__(self, test):
        self.fail = True
        self.lock = threading.Lock()
        self.log = []
        self.mark_time = 0
        self.rx = Receiver(self.behave)
        test.receivers.append(self.rx)

    def behave(self, n, req):
        start = time.monotonic()
        time.sleep(0.1)  # long enough for two requests at once to overlap
        status = 500 if self.fail else 200
        with self.lock:
            eid = req["headers"].get("x-webhook-event-id")
            self.log.append((start, time.monotonic(), eid, status))
        return status, b"down" if status == 500 else b"ok", {}, 0

    def since(self, mark):
        """The requests logged after the mark-th that started after the last mark() (attempts
        claimed before the breaker opened may still start after it is seen open)."""
        with self.lock:
            return sorted(r for r in self.log[mark:] if r[0] >= self.mark_time)

    def mark(self):
        """Marks now, a second after the breaker was seen open (attempts claimed by a claim
        that began before it opened are out by then), and returns the log's length."""
        time.sleep(1.0)
        self.mark_time = time.monotonic()
        return self.count()

    def count(self):
        with self.lock:
            return len(self.log)

    def delivered(self):
        with self.lock:
            return {eid for _, _, eid, status in self.log if status == 200}


class Breaker(ServerTest):
    server_args = ("--breaker-after", "3")
    server_env = {"HOOKLINE_RETRY_SCHEDULE": SCHEDULE}

    def publish(self, n, name):
        return [self.app.ok("POST", "agents", {"agentName": "%s %d" % (name, i),
                                               "externalTenantId": "t"})
                for i in range(n)]

    def breaker(self, uid):
        return self.app.ok("GET", "webhooks/" + uid)

    def wait_open(self, uid):
        return wait_for(lambda: (lambda w: w if w["breaker"] == "open" else None)(
            self.breaker(uid)), 30, what="the breaker to open")

    def assert_probes(self, ep, mark, n):
        """Waits for n requests after mark and checks that they went one at a time, each at
        least the shortest probe wait after the one before."""
        wait_for(lambda: ep.count() >= mark + n, 60, what="%d probes" % n)
        reqs = ep.since(mark)
        for before, after in zip(reqs, reqs[1:]):
            self.assertGreaterEqual(after[0], before[1],
                                    "two requests at once while the breaker is open")
            self.assertGreaterEqual(after[0] - before[1], SHORTEST_GAP,
                                    "a probe before the retry schedule's wait")
        self.assertTrue(all(r[3] == 500 for r in reqs))

    def test_opens_probes_one_at_a_time_holds_across_restart_and_releases(self):
        ep = Endpoint(self)
        healthy = self.receiver()
        dead = self.app.webhook(ep.rx.url(), entities=["agent"])
        self.assertEqual(dead["breaker"], "closed")
        self.assertIsNone(dead["breakerOpenedAt"])
        self.app.webhook(healthy.url(), entities=["agent"])
        self.publish(4, "before")
        opened = self.wait_open(dead["uid"])
        self.assertIsNotNone(opened["breakerOpenedAt"])
        self.assertIn(opened["uid"], [w["uid"] for w in self.app.ok("GET", "webhooks")["data"]
                                      if w["breaker"] == "open"])

        # Six more changes: the open breaker's webhook gets them one probe at a time, the
        # healthy one all at once.
        mark = ep.mark()
        self.publish(6, "while open")
        healthy.wait_count(10)
        self.assert_probes(ep, mark, 4)

        # The state is in the store.
        self.server.stop()
        self.server.start()
        again = self.breaker(dead["uid"])
        self.assertEqual(again["breaker"], "open")
        self.assertEqual(again["breakerOpenedAt"], opened["breakerOpenedAt"])
        mark = ep.mark()
        self.assert_probes(ep, mark, 3)

        # The endpoint is back: the next probe succeeds, and the rest go at once.
        ep.fail = False
        mark = ep.count()
        want = {r["headers"]["x-webhook-event-id"] for r in healthy.requests}
        wait_for(lambda: ep.delivered() >= want, 60, what="every event delivered")
        closed = self.breaker(dead["uid"])
        self.assertEqual(closed["breaker"], "closed")
        self.assertIsNone(closed["breakerOpenedAt"])
        after = [r for r in ep.since(mark) if r[3] == 200]
        self.assertGreaterEqual(len(after), 9)
        first = min(after)  # the probe
        rest = [r for r in after if r is not first]
        overlaps = any(b[0] < a[1] for a, b in zip(rest, rest[1:]))
        self.assertTrue(overlaps, "the released deliveries went one by one")


class BreakerAndDisable(ServerTest):
    server_args = ("--breaker-after", "3", "--disable-after", "2s")
    server_env = {"HOOKLINE_RETRY_SCHEDULE": SCHEDULE}

    def test_failing_probes_disable_it_and_enabling_closes_it(self):
        ep = Endpoint(self)
        w = self.app.webhook(ep.rx.url(), entities=["agent"])
        for i in range(5):
            self.app.ok("POST", "agents", {"agentName": "a%d" % i, "externalTenantId": "t"})
        disabled = wait_for(lambda: (lambda g: g if not g["active"] else None)(
            self.app.ok("GET", "webhooks/" + w["uid"])), 60, what="the webhook disabled")
        self.assertIn("failing continuously", disabled["disabledReason"])
        self.assertEqual(disabled["breaker"], "open")
        ep.fail = False
        enabled = self.app.ok("PATCH", "webhooks/" + w["uid"], {"active": True})
        self.assertEqual(enabled["breaker"], "closed")
        self.assertIsNone(enabled["breakerOpenedAt"])
        wait_for(lambda: len(ep.delivered()) == 5, 30, what="the five delivered")

    def test_a_new_url_closes_it(self):
        ep = Endpoint(self)
        w = self.app.webhook(ep.rx.url(), entities=["agent"])
        for i in range(4):
            self.app.ok("POST", "agents", {"agentName": "a%d" % i, "externalTenantId": "t"})
        wait_for(lambda: self.app.ok("GET", "webhooks/" + w["uid"])["breaker"] == "open", 30,
                 what="the breaker to open")
        other = self.receiver()
        moved = self.app.ok("PATCH", "webhooks/" + w["uid"], {"url": other.url()})
        self.assertEqual(moved["breaker"], "closed")
        other.wait_count(4)


# Probes an hour apart: within a test, only a person's word moves an open breaker.
LONG_SCHEDULE = "0,1h,1h,1h"


class BreakerByHand(ServerTest):
    """What a person does to an open breaker: a recover closes it, a resend is its probe."""
    server_args = ("--breaker-after", "3")
    server_env = {"HOOKLINE_RETRY_SCHEDULE": LONG_SCHEDULE}

    def opened(self, ep, n):
        """A webhook on ep whose breaker opened on n changes' first attempts (all failed)."""
        w = self.app.webhook(ep.rx.url(), entities=["agent"])
        for i in range(n):
            self.app.ok("POST", "agents", {"agentName": "a%d" % i, "externalTenantId": "t"})
        wait_for(lambda: self.app.ok("GET", "webhooks/" + w["uid"])["breaker"] == "open", 30,
                 what="the breaker to open")
        return w

    def test_a_recover_closes_it_and_everything_goes(self):
        ep = Endpoint(self)
        # Three failed attempts open it (each recorded by then); a fourth change waits behind
        # it, due and not tried.
        w = self.opened(ep, 3)
        self.app.ok("POST", "agents", {"agentName": "waits", "externalTenantId": "t"})
        # Held back, due: its next attempt shows as now at the earliest, not in the past.
        time.sleep(0.05)
        before = datetime.datetime.now(datetime.timezone.utc)
        waits = [d for d in self.deliveries(w) if d["status"] == "pending"]
        self.assertEqual(len(waits), 1)
        waits = waits[0]
        shown = datetime.datetime.fromisoformat(waits["nextAttemptAt"].replace("Z", "+00:00"))
        self.assertGreaterEqual(shown, before - datetime.timedelta(milliseconds=1))
        ep.fail = False
        got = self.app.ok("POST", "webhooks/%s/recover" % w["uid"],
                          {"since": "2020-01-01T00:00:00Z"}, status=202)
        self.assertEqual((got["failed"], got["failing"]), (0, 3))
        self.assertEqual(self.app.ok("GET", "webhooks/" + w["uid"])["breaker"], "closed")
        wait_for(lambda: len(ep.delivered()) == 4, 30, what="the four delivered")

    def test_a_recover_of_a_still_dead_endpoint_opens_it_again(self):
        ep = Endpoint(self)
        w = self.opened(ep, 4)
        mark = ep.mark()
        self.app.ok("POST", "webhooks/%s/recover" % w["uid"], {"since": "2020-01-01T00:00:00Z"},
                    status=202)
        # Closed, it tries them again; they fail, and it opens again after three failures.
        wait_for(lambda: len(ep.since(mark)) >= 3, 30, what="the recovered attempts")
        wait_for(lambda: self.app.ok("GET", "webhooks/" + w["uid"])["breaker"] == "open", 30,
                 what="the breaker to open again")

    def deliveries(self, w):
        return self.app.ok("GET", "webhooks/%s/deliveries" % w["uid"])["data"]

    def test_a_resend_is_its_probe_and_releases_the_rest(self):
        ep = Endpoint(self)
        w = self.opened(ep, 3)
        mark = ep.mark()
        # Three more wait behind the open breaker (due, not tried); the three that failed wait
        # for their own retries, an hour away.
        for i in range(3):
            self.app.ok("POST", "agents", {"agentName": "b%d" % i, "externalTenantId": "t"})
        waiting = [d for d in self.deliveries(w) if d["attempts"] == 0]
        self.assertEqual(len(waiting), 3)
        ep.fail = False
        one = [d for d in self.deliveries(w) if d["attempts"] == 1][0]
        self.app.ok("POST", "deliveries/%s/resend" % one["id"], status=202)
        want = {one["eventId"]} | {d["eventId"] for d in waiting}
        wait_for(lambda: ep.delivered() >= want, 30, what="the resent and the waiting delivered")
        first = ep.since(mark)[0]
        self.assertEqual(first[2], one["eventId"], "the resent delivery was not the probe")
        self.assertEqual(self.app.ok("GET", "webhooks/" + w["uid"])["breaker"], "closed")

    def test_a_failed_resend_keeps_it_open(self):
        ep = Endpoint(self)
        w = self.opened(ep, 4)
        mark = ep.mark()
        one = self.deliveries(w)[-1]
        self.app.ok("POST", "deliveries/%s/resend" % one["id"], status=202)
        wait_for(lambda: ep.since(mark), 30, what="the resent delivery tried")
        self.assertEqual([r[2] for r in ep.since(mark)], [one["eventId"]])
        got = wait_for(lambda: (lambda d: d if d["attempts"] == one["attempts"] + 1 else None)(
            self.app.ok("GET", "deliveries/" + one["id"])), 30, what="its attempt recorded")
        self.assertEqual(got["status"], "failing")
        self.assertEqual(self.app.ok("GET", "webhooks/" + w["uid"])["breaker"], "open")
        # One probe, not two: a bound to see a second one come (absence, not a timing claim).
        time.sleep(1)
        self.assertEqual([r[2] for r in ep.since(mark)], [one["eventId"]])


if __name__ == "__main__":
    main()
