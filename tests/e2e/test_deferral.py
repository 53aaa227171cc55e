"""Deferred fan-out (issue 19): a webhook with more than --defer-after deliveries waiting for a
first attempt gets its new ones owed, as one compact row per event, and made into deliveries as
its queue drains: oldest first, so that ordering holds; counted as pending meanwhile (its stats,
its JSON's `deferred`, /metrics); kept from retention; forgotten when the webhook is deleted;
kept across a kill -9, and made once deferral is turned off. Failing deliveries waiting for a
retry make no webhook defer. Only SQLite defers (its commits pay a whole page per webhook-first
index): on PostgreSQL the same cases show nothing owed and everything delivered.

A backlog is made by a rateLimit of 1 a second, and deferral is seen by making changes until one
is owed (the dispatcher looks for webhooks to defer every second): nothing here depends on how
fast anything runs.
"""
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import PG_URL, ServerTest, main, sqlite_only, wait_for  # noqa: E402
from test_retention import PRUNED, age, db_rows, new_app  # noqa: E402

DEFER_AFTER = 6
AGENTS = 4
MOST_CHANGES = 400  # bound on the changes made while waiting for one to be owed
HOUR_MS = 3600 * 1000


class Recorder:
    """A receiver keeping (eventId, resource uid, agentName) of each request, in arrival order."""

    def __init__(self, test):
        self.log = []
        self.rx = test.receiver(self.behave)

    def behave(self, n, req):
        body = json.loads(req["body"])
        self.log.append((body["eventId"], body["data"].get("uid"), body["data"].get("agentName")))
        return 200, b"ok", {}, 0

    def names(self, uid):
        return [name for _, u, name in list(self.log) if u == uid]


class Base(ServerTest):
    """What the cases below look at."""

    def deferring(self):
        """Webhooks deferring now (SQLite's column; none on PostgreSQL)."""
        if PG_URL:
            return 0
        return db_rows(self.server, "SELECT count(*) FROM webhooks WHERE deferring <> 0")[0][0]

    def get(self, w):
        return self.app.ok("GET", "webhooks/" + w["uid"])

    def stats(self, w):
        return self.app.ok("GET", "webhooks/%s/stats" % w["uid"])

    def listed(self, w):
        """How many deliveries the webhook's list shows, page by page."""
        n, cursor = 0, None
        while True:
            page = self.app.ok("GET", "webhooks/%s/deliveries?limit=100%s" % (
                w["uid"], "&cursor=" + cursor if cursor else ""))
            n += len(page["data"])
            cursor = page["nextCursor"]
            if cursor is None:
                return n

    def change(self, agents, names, k):
        """Renames agent k % AGENTS to its next name, noting the name in commit order."""
        a = agents[k % AGENTS]
        name = "v%d" % len(names[a])
        self.app.ok("PATCH", "agents/" + a, {"agentName": name})
        names[a].append(name)

    def backlog(self, hooks):
        """AGENTS agents, then renames until each of hooks has something owed (on PostgreSQL,
        which owes nothing, a fixed number): their uids and each one's names in commit order."""
        agents, names = [], {}
        for i in range(AGENTS):
            uid = self.app.ok("POST", "agents", {"agentName": "v0",
                                                 "externalTenantId": "t"})["uid"]
            agents.append(uid)
            names[uid] = ["v0"]
        k = 0
        while k < (MOST_CHANGES if not PG_URL else 3 * DEFER_AFTER):
            self.change(agents, names, k)
            k += 1
            if not PG_URL and all(self.get(w)["deferred"] > 0 for w in hooks):
                break
        if not PG_URL:
            for w in hooks:
                self.assertGreater(self.get(w)["deferred"], 0, "nothing owed after %d changes" % k)
        for _ in range(2 * AGENTS):  # owed on SQLite: the webhooks defer now
            self.change(agents, names, k)
            k += 1
        return agents, names

    def check_counted(self, w, total):
        """Everything made for w is a delivery listed or an owed one counted, never both."""
        before = self.get(w)["deferred"]
        listed = self.listed(w)
        after = self.get(w)["deferred"]
        if PG_URL:
            self.assertEqual((before, after, listed), (0, 0, total))
            return
        self.assertGreater(before, 0)
        # Owed rows only become deliveries meanwhile, one for one.
        self.assertLessEqual(listed + after, total)
        self.assertGreaterEqual(listed + before, total)
        st = self.stats(w)
        self.assertEqual(st["pending"] + st["succeeded"], total, st)


class Deferral(Base):
    server_args = ("--defer-after", str(DEFER_AFTER), "--retention", "60s")

    def test_owed_made_in_commit_order_counted_and_kept_from_retention(self):
        plain, filtered, healthy = Recorder(self), Recorder(self), self.receiver()
        hooks = [self.app.webhook(plain.rx.url(), entities=["agent"], ordering="resource",
                                  rateLimit=1),
                 self.app.webhook(filtered.rx.url(), entities=["agent"], ordering="resource",
                                  rateLimit=1, filter={"data.externalTenantId": ["t"]})]
        self.app.webhook(healthy.url(), entities=["agent"])
        agents, names = self.backlog(hooks)
        total = sum(len(v) for v in names.values())
        healthy.wait_count(total, timeout=60)
        for w in hooks:
            self.check_counted(w, total)
        deferred = self.server.metrics()['hookline_queue_deliveries{state="deferred"}']
        self.assertEqual(deferred > 0, not PG_URL)

        # Two hours old, every event: another app's delivered ones go (and this app's already
        # delivered everywhere); the owed stay, as their delivery below shows.
        other = new_app(self.server, "other")
        done = self.receiver()
        other.webhook(done.url(), entities=["agent"])
        for i in range(3):
            other.ok("POST", "agents", {"agentName": "o%d" % i, "externalTenantId": "t"})
        done.wait_count(3)
        age(self.server, self.app, 2 * HOUR_MS)
        age(self.server, other, 2 * HOUR_MS)
        wait_for(lambda: other.ok("GET", "events?limit=100")["data"] == [], timeout=60,
                 what="the pruner to remove the other app's events")
        self.assertGreaterEqual(self.server.metrics()[PRUNED % "events"], 3)

        # Unlimited: everything arrives, each resource in commit order, each event once.
        for w in hooks:
            self.app.ok("PATCH", "webhooks/" + w["uid"], {"rateLimit": None})
        for rx in (plain, filtered):
            rx.rx.wait_count(total, timeout=60)
            self.assertEqual(len({e for e, _, _ in rx.log}), total)
            for a in agents:
                self.assertEqual(rx.names(a), names[a])
        for w in hooks:
            wait_for(lambda: self.get(w)["deferred"] == 0 and self.stats(w)["pending"] == 0,
                     timeout=30, what="nothing owed or pending")
        log = self.server.log()
        self.assertNotIn("cannot prune", log)
        if not PG_URL:
            self.assertIn("began deferring", log)
        wait_for(lambda: self.deferring() == 0, timeout=30, what="the webhooks to stop deferring")
        # Not deferring: a change is a delivery at once, owed to nobody.
        self.app.ok("PATCH", "agents/" + agents[0], {"agentName": "last"})
        self.assertEqual([self.get(w)["deferred"] for w in hooks], [0, 0])
        for rx in (plain, filtered):
            rx.rx.wait_count(total + 1, timeout=30)

    def test_kill_9_keeps_what_is_owed_and_turned_off_makes_it(self):
        rx = Recorder(self)
        w = self.app.webhook(rx.rx.url(), entities=["agent"], ordering="resource", rateLimit=1)
        agents, names = self.backlog([w])
        total = sum(len(v) for v in names.values())
        self.assertEqual(self.get(w)["deferred"] > 0, not PG_URL)
        # Killed, and started again with deferral turned off, the webhook still at 1 a second:
        # what was owed (kept across the kill: the first step after the start makes it, and
        # says so) is made, and new changes are deliveries, though its queue is long.
        self.server.kill()
        self.server.extra_args[self.server.extra_args.index("--defer-after") + 1] = "0"
        self.server.start()
        wait_for(lambda: self.get(w)["deferred"] == 0 and self.deferring() == 0, timeout=30,
                 what="everything owed made")
        if not PG_URL:
            wait_for(lambda: "1 webhook(s) stopped deferring" in self.server.log(), timeout=30,
                     what="the deferral kept across the kill, then ended")
        self.app.ok("PATCH", "agents/" + agents[0], {"agentName": "off"})
        names[agents[0]].append("off")
        total += 1
        self.assertEqual(self.get(w)["deferred"], 0)
        self.app.ok("PATCH", "webhooks/" + w["uid"], {"rateLimit": None})
        wait_for(lambda: len({e for e, _, _ in rx.log}) == total, timeout=60,
                 what="every event delivered")
        # At least once: an attempt cut short by the kill may come again, in its place.
        for a in agents:
            got = rx.names(a)
            self.assertEqual([n for i, n in enumerate(got) if n not in got[:i]], names[a])
        wait_for(lambda: self.get(w)["deferred"] == 0, timeout=30, what="nothing owed")

    @sqlite_only("PostgreSQL owes nothing: test_owed_made_in_commit_order... shows it")
    def test_a_deleted_webhook_is_owed_nothing(self):
        rx = Recorder(self)
        w = self.app.webhook(rx.rx.url(), entities=["agent"], rateLimit=1)
        self.backlog([w])
        self.assertGreater(db_rows(self.server, "SELECT count(*) FROM owed")[0][0], 0)
        self.assertEqual(self.app.call("DELETE", "webhooks/" + w["uid"]).status, 204)
        wait_for(lambda: db_rows(self.server, "SELECT count(*) FROM owed")[0][0] == 0,
                 timeout=30, what="the deleted webhook's owed rows dropped")
        wait_for(lambda: db_rows(self.server, "SELECT count(*) FROM webhooks WHERE deferring"
                                              " <> 0")[0][0] == 0,
                 timeout=30, what="the deleted webhook to stop deferring")


class FailingRetries(Base):
    """Deliveries failing, their retries an hour away, are no backlog: the webhook's next events
    go at once. (The breaker opens after more failures than this makes.)"""
    server_args = ("--defer-after", str(DEFER_AFTER), "--breaker-after", "100")
    server_env = {"HOOKLINE_RETRY_SCHEDULE": "0,1h"}

    def test_failing_retries_hold_nothing_back(self):
        def behave(n, req):
            bad = json.loads(req["body"])["data"].get("agentName", "").startswith("bad")
            return (500, b"no", {}, 0) if bad else (200, b"ok", {}, 0)
        rx = self.receiver(behave)
        w = self.app.webhook(rx.url(), entities=["agent"])
        for i in range(3 * DEFER_AFTER):
            self.app.ok("POST", "agents", {"agentName": "bad %d" % i, "externalTenantId": "t"})
        wait_for(lambda: self.stats(w)["failing"] == 3 * DEFER_AFTER, timeout=30,
                 what="every bad one failing")
        # Time for the dispatcher's look for webhooks to defer (every second) to make this one
        # defer, were failing ones counted: a bound for an absence, not a timing claim.
        time.sleep(2.5)
        self.assertEqual(self.deferring(), 0)
        for i in range(DEFER_AFTER):
            self.app.ok("POST", "agents", {"agentName": "good %d" % i, "externalTenantId": "t"})
        wait_for(lambda: len(rx.requests) == 4 * DEFER_AFTER, timeout=30,
                 what="the good ones delivered")
        self.assertEqual(self.get(w)["deferred"], 0)
        self.assertEqual(self.deferring(), 0)


if __name__ == "__main__":
    main()
