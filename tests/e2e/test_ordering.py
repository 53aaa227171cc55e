"""ordering: "resource" (issue 19): a webhook's deliveries about one resource go one at a time in
commit order, while other resources flow.

The receiver fails the first attempt of every third event. With ordering, each resource's
events still succeed in the order they were committed (a failed one holds back only its own
resource's later events), and its agent.deleted comes last. Other resources are not held back:
an event of another resource committed after a failed one is delivered before the failed one's
retry. All of it is shown by order at the receiver, never by timing.
"""
import json
import os
import sys
import threading

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import ServerTest, main, wait_for  # noqa: E402

RESOURCES = 4
UPDATES = 5


class FailEveryThird:
    """Answers 500 to the first attempt of every third event it sees (by arrival of its first
    attempt), 200 otherwise; keeps (eventId, status, resource uid, event type, agentName) in
    arrival order."""

    def __init__(self, test):
        self.lock = threading.Lock()
        self.seen = {}
        self.log = []
        self.rx = test.receiver(self.behave)

    def behave(self, n, req):
        body = json.loads(req["body"])
        eid = body["eventId"]
        with self.lock:
            first = eid not in self.seen
            if first:
                self.seen[eid] = len(self.seen)
            fail = first and self.seen[eid] % 3 == 0
            status = 500 if fail else 200
            self.log.append((eid, status, body["data"].get("uid"), body["event"],
                             body["data"].get("agentName")))
        return status, b"no" if fail else b"ok", {}, 0

    def delivered(self):
        with self.lock:
            return [x for x in self.log if x[1] == 200]


class Ordering(ServerTest):
    server_env = {"HOOKLINE_RETRY_SCHEDULE": "0,1s,1s,1s"}

    def test_validation_and_shown(self):
        rx = self.receiver()
        for bad in ("fifo", "", None, 1, True, ["resource"], "Resource"):
            r = self.app.call("POST", "webhooks", {"url": rx.url(), "entities": ["agent"],
                                                   "ordering": bad})
            self.assertEqual(r.status, 422, bad)
            err = r.json()["error"]
            self.assertEqual(err["code"], "ordering_invalid")
            self.assertTrue(err["message"].startswith("ordering "), err["message"])
        self.assertEqual(self.app.ok("GET", "webhooks")["data"], [])
        w = self.app.webhook(rx.url())
        self.assertEqual(w["ordering"], "none")
        w = self.app.webhook(rx.url(), ordering="resource")
        self.assertEqual(w["ordering"], "resource")
        self.assertEqual(self.app.ok("GET", "webhooks/" + w["uid"])["ordering"], "resource")
        p = self.app.ok("PATCH", "webhooks/" + w["uid"], {"ordering": "none"})
        self.assertEqual(p["ordering"], "none")
        r = self.app.call("PATCH", "webhooks/" + w["uid"], {"ordering": "lifo"})
        self.assertEqual(r.status, 422)
        listed = {x["uid"]: x for x in self.app.ok("GET", "webhooks")["data"]}
        self.assertEqual(listed[w["uid"]]["ordering"], "none")

    def test_each_resource_in_commit_order_under_failures(self):
        rx = FailEveryThird(self)
        self.app.webhook(rx.rx.url(), entities=["agent"], ordering="resource")
        # Interleaved: between two events of one resource come events of the others.
        agents = [self.app.ok("POST", "agents", {"agentName": "v0", "externalTenantId": "t"})
                  for _ in range(RESOURCES)]
        committed = {a["uid"]: [("agent.created", "v0")] for a in agents}
        for v in range(1, UPDATES + 1):
            for a in agents:
                self.app.ok("PATCH", "agents/" + a["uid"], {"agentName": "v%d" % v})
                committed[a["uid"]].append(("agent.updated", "v%d" % v))
        for a in agents:
            self.app.ok("DELETE", "agents/" + a["uid"], status=204)
            committed[a["uid"]].append(("agent.deleted", "v%d" % UPDATES))
        total = RESOURCES * (UPDATES + 2)
        wait_for(lambda: len(rx.delivered()) >= total, 120, what="every event delivered")

        # Each resource's events succeeded once each, in commit order, agent.deleted last.
        got = {}
        for _, _, uid, typ, name in rx.delivered():
            got.setdefault(uid, []).append((typ, name))
        for a in agents:
            self.assertEqual(got[a["uid"]], committed[a["uid"]])

        # Some first attempts failed (every third event), and the first of them held back
        # only its own resource: the next resource's event, committed right after it, went
        # before its retry.
        with rx.lock:
            log = list(rx.log)
        failed = [i for i, x in enumerate(log) if x[1] == 500]
        self.assertGreaterEqual(len(failed), total // 3 - 1)
        first = failed[0]
        eid, _, uid, _, _ = log[first]
        retry = next(j for j in range(first + 1, len(log)) if log[j][0] == eid)
        self.assertTrue([x for x in log[first + 1:retry] if x[2] != uid and x[1] == 200],
                        "other resources waited for a retry of %s" % uid)



class TestEvents(ServerTest):
    # The first test event's retry is 24 s or more away: long past the second one.
    server_env = {"HOOKLINE_RETRY_SCHEDULE": "0,30s"}

    def test_webhook_test_is_not_ordered(self):
        # Two webhook.test events are about the same "resource" (the webhook): the first one's
        # first attempt fails, and the second goes at once, not after the first's retry.
        rx = FailEveryThird(self)
        w = self.app.webhook(rx.rx.url(), entities=["agent"], ordering="resource")
        first = self.app.ok("POST", "webhooks/%s/test" % w["uid"], status=200)
        wait_for(lambda: len(rx.log) >= 1, 30, what="the first test event's attempt")
        self.assertEqual(rx.log[0][:2], (first["eventId"], 500))
        second = self.app.ok("POST", "webhooks/%s/test" % w["uid"], status=200)
        wait_for(lambda: len(rx.delivered()) >= 1, 20, what="the second test event delivered")
        self.assertEqual([x[0] for x in rx.delivered()], [second["eventId"]])


if __name__ == "__main__":
    main()
