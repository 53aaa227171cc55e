"""Retention: what `hookline serve --retention` and `hookline prune` remove, and what they never do.

An event goes with its deliveries and their attempt logs once it is older than the retention and
none of its deliveries is owed; a delivery still owed (pending, retrying, paused, held by a
disabled webhook) keeps itself and its event whatever their age, and is still retried. Expired
idempotency keys go; agents, contexts and webhooks stay. Pruned events leave GET /events, pruned
deliveries answer 404, and /metrics counts what went. `hookline prune` follows the same rule
beside a running server and refuses a time it cannot read or one in the future; `hookline db
compact` refuses a SQLite file a server holds. Concurrent pruners (a server and the CLI; on
PostgreSQL two nodes too) remove each row once.

Nothing here waits for time to pass: events are made old by moving their created_at back in the
database (sqlite3 or psql), as an operator's clock would after days, and the pruner is observed
through /metrics and the API.
"""
import json
import os
import sqlite3
import subprocess
import sys
import threading

sys.path.insert(0, os.path.dirname(__file__))
from harness import BIN, PG_URL, App, Server, ServerTest, main, wait_for  # noqa: E402

HOUR_MS = 3600 * 1000
# Failing deliveries keep retrying every two seconds for a minute: owed for the whole test.
RETRY_OFTEN = ",".join(["0"] + ["2s"] * 31)
# Or wait an hour after the first failure.
RETRY_LATER = "0,1h"
PRUNED = 'hookline_pruned_total{kind="%s"}'


def db_rows(server, sql):
    """Runs SQL on the server's database beside it; returns the rows (lists of text on
    PostgreSQL)."""
    if PG_URL:
        r = subprocess.run(["psql", "-X", "-q", "-A", "-t", "-F", "\t", "-v", "ON_ERROR_STOP=1",
                            "-d", server.db, "-c", sql], capture_output=True, text=True,
                           timeout=60)
        if r.returncode != 0:
            raise AssertionError("psql failed: %s" % r.stderr)
        return [line.split("\t") for line in r.stdout.splitlines() if line]
    db = sqlite3.connect(server.db, timeout=30)
    try:
        rows = db.execute(sql).fetchall()
        db.commit()
        return rows
    finally:
        db.close()


def age(server, app, ms):
    """Moves the events of app ms into the past."""
    db_rows(server, "UPDATE events SET created_at = created_at - %d WHERE app_id ="
                    " (SELECT id FROM apps WHERE uid = '%s')" % (ms, app.uid))


def metrics(server):
    return server.metrics()


def deliveries(app, hook):
    return app.ok("GET", "webhooks/%s/deliveries?limit=100" % hook["uid"])["data"]


def settled(app, hook, n, pred, what):
    def ok():
        ds = deliveries(app, hook)
        return ds if len(ds) == n and all(pred(d) for d in ds) else None
    return wait_for(ok, timeout=30, what=what)


def event_ids(app):
    return [e["eventId"] for e in app.ok("GET", "events?limit=100")["data"]]


def new_app(server, name):
    return App(server, server.create_app(name))


class Switch:
    """A receiver's answer that a test can change: 503 until set, then 200."""

    def __init__(self):
        self.ok = threading.Event()

    def __call__(self, n, req):
        if self.ok.is_set():
            return 200, b'{"received":true}', {}, 0
        return 503, b"busy", {}, 0


class ServePrunes(ServerTest):
    """serve --retention 60s removes what is old and final, and nothing owed."""
    server_args = ("--retention", "60s")
    server_env = {"HOOKLINE_RETRY_SCHEDULE": RETRY_OFTEN}

    def test_old_final_go_owed_stay(self):
        done_app, owed_app, paused_app = self.app, None, None
        owed_app = new_app(self.server, "owed")
        paused_app = new_app(self.server, "paused")
        ok_rx, flaky = self.receiver(), Switch()
        owed_rx, paused_rx = self.receiver(flaky), self.receiver(lambda n, r: (503, b"", {}, 0))
        w_done = done_app.webhook(ok_rx.url("/done"))
        w_owed = owed_app.webhook(owed_rx.url("/owed"))
        w_paused = paused_app.webhook(paused_rx.url("/paused"))

        agents = [done_app.ok("POST", "agents", {"agentName": "a%d" % i, "externalTenantId": "t"})
                  for i in range(3)]
        published = done_app.ok("POST", "events", {"event": "agent.updated", "data": {
            "uid": "agent-ext", "externalTenantId": "t"}}, status=202,
            headers={"Idempotency-Key": "retention-key-1"})
        for i in range(2):
            owed_app.ok("POST", "agents", {"agentName": "b%d" % i, "externalTenantId": "t"})
        paused_app.ok("POST", "contexts", {"name": "c", "externalTenantId": "t"})

        done = settled(done_app, w_done, 4, lambda d: d["status"] == "succeeded", "4 delivered")
        settled(owed_app, w_owed, 2, lambda d: d["attempts"] >= 1, "2 attempted")
        settled(paused_app, w_paused, 1, lambda d: d["attempts"] >= 1, "1 attempted")
        paused_app.ok("PATCH", "webhooks/" + w_paused["uid"], {"active": False})
        paused = settled(paused_app, w_paused, 1, lambda d: d["status"] == "paused", "parked")
        done_events = event_ids(done_app)
        self.assertIn(published["eventId"], done_events)
        self.assertEqual(len(done_events), 4)
        m = metrics(self.server)
        self.assertEqual([m[PRUNED % k] for k in ("events", "deliveries", "attempts")], [0, 0, 0])
        self.assertGreater(m["hookline_db_bytes"], 0)
        self.assertEqual(db_rows(self.server, "SELECT count(*) FROM idempotency")[0][0] in
                         (1, "1"), True)

        # two hours pass for every event, and a day for the idempotency key
        for app in (done_app, owed_app, paused_app):
            age(self.server, app, 2 * HOUR_MS)
        db_rows(self.server, "UPDATE idempotency SET created_at = created_at - %d" % (25 * HOUR_MS))
        self.assertGreaterEqual(metrics(self.server)["hookline_oldest_event_age_seconds"], 7200)

        # the four final events go, with their deliveries and attempts, and nothing else
        wait_for(lambda: metrics(self.server)[PRUNED % "events"] >= 4, timeout=30,
                 what="the pruner to remove the old final events")
        m = metrics(self.server)
        self.assertEqual([m[PRUNED % k] for k in ("events", "deliveries", "attempts")], [4, 4, 4])
        self.assertEqual(event_ids(done_app), [])
        for eid in done_events:
            self.assertEqual(done_app.call("GET", "events/" + eid).status, 404)
        for d in done:
            self.assertEqual(done_app.call("GET", "deliveries/" + d["id"]).status, 404)
        self.assertEqual(deliveries(done_app, w_done), [])
        # current state is not history
        for a in agents:
            self.assertEqual(done_app.ok("GET", "agents/" + a["uid"])["uid"], a["uid"])
        self.assertEqual(done_app.ok("GET", "webhooks/" + w_done["uid"])["uid"], w_done["uid"])
        wait_for(lambda: db_rows(self.server, "SELECT count(*) FROM idempotency")[0][0] in (0, "0"),
                 timeout=30, what="the expired idempotency key to go")

        # what is owed stays, listed, and is still retried
        self.assertEqual(len(event_ids(owed_app)), 2)
        self.assertEqual(len(event_ids(paused_app)), 1)
        before = {d["id"]: d["attempts"] for d in deliveries(owed_app, w_owed)}
        later = settled(owed_app, w_owed, 2, lambda d: d["attempts"] > before[d["id"]],
                        "another attempt of each owed delivery")
        for d in later:
            self.assertEqual(d["status"], "failing")  # retried after a failed attempt
            full = owed_app.ok("GET", "deliveries/" + d["id"])
            self.assertEqual(len(full["attemptLog"]), full["attempts"])
        self.assertEqual(paused_app.ok("GET", "deliveries/" + paused[0]["id"])["status"], "paused")

        # once delivered, they are final and old: the next pass from the start (a restart
        # begins with one) removes them; a young event made meanwhile stays
        flaky.ok.set()
        settled(owed_app, w_owed, 2, lambda d: d["status"] == "succeeded", "2 delivered at last")
        young = done_app.ok("POST", "agents", {"agentName": "young", "externalTenantId": "t"})
        settled(done_app, w_done, 1, lambda d: d["status"] == "succeeded", "the young one")
        self.assertEqual(self.server.stop(), 0)
        self.server.start()
        wait_for(lambda: metrics(self.server)[PRUNED % "events"] >= 2, timeout=30,
                 what="the recovered endpoint's events to go")
        self.assertEqual(metrics(self.server)[PRUNED % "events"], 2)
        self.assertEqual(event_ids(owed_app), [])
        self.assertEqual(len(event_ids(done_app)), 1)
        self.assertEqual(done_app.ok("GET", "agents/" + young["uid"])["uid"], young["uid"])
        self.assertEqual(len(event_ids(paused_app)), 1)  # paused: owed still
        log = self.server.log()
        self.assertNotIn("cannot prune", log)
        self.assertIn("MiB on disk", log)


class PruneCommand(ServerTest):
    """hookline prune, beside a server that keeps everything."""
    server_args = ("--retention", "0")
    server_env = {"HOOKLINE_RETRY_SCHEDULE": RETRY_LATER}

    def prune(self, *args):
        return self.server.cli("prune", *args, check=False)

    def test_prune_refusals_dry_run_and_run(self):
        rx = self.receiver()
        owed_app = new_app(self.server, "owed")
        w = self.app.webhook(rx.url("/ok"))
        w_owed = owed_app.webhook(self.receiver(lambda n, r: (503, b"", {}, 0)).url("/owed"))
        for i in range(3):
            self.app.ok("POST", "agents", {"agentName": "a%d" % i, "externalTenantId": "t"})
        owed_app.ok("POST", "agents", {"agentName": "b", "externalTenantId": "t"})
        done = settled(self.app, w, 3, lambda d: d["status"] == "succeeded", "3 delivered")
        settled(owed_app, w_owed, 1, lambda d: d["attempts"] >= 1, "1 attempted")
        self.assertIn("retention 0: every event is kept", self.server.log())

        refusals = (
            (("--before", "2099-01-01"), "--before 2099-01-01: that is in the future"),
            (("--before", "soon"), "--before soon: want now, a duration ago"),
            (("--before", "2026-13-01"), "--before 2026-13-01: want"),
            (("--before", "2026-11-01T12:00:00"), "want"),  # no zone: refused, not guessed
            ((), "--before TIME is required"),
            (("--before", "now", "--bogus"), "unknown option --bogus"),
        )
        for args, msg in refusals:
            r = self.prune(*args)
            self.assertEqual(r.returncode, 2, (args, r.stderr))
            self.assertIn(msg, r.stderr)
            self.assertEqual(r.stdout, "")
        self.assertEqual(len(event_ids(self.app)), 3)  # nothing removed

        r = self.prune("--before", "now", "--dry-run", "--json")
        self.assertEqual(r.returncode, 0, r.stderr)
        dry = json.loads(r.stdout)
        self.assertEqual((dry["dryRun"], dry["events"], dry["deliveries"], dry["attempts"],
                          dry["keptOwed"]), (True, 3, 3, 3, 1))
        self.assertEqual(len(event_ids(self.app)), 3)

        r = self.prune("--before", "now", "--json")
        self.assertEqual(r.returncode, 0, r.stderr)
        out = json.loads(r.stdout)
        self.assertEqual((out["dryRun"], out["events"], out["deliveries"], out["attempts"],
                          out["keptOwed"]), (False, 3, 3, 3, 1))
        self.assertEqual(event_ids(self.app), [])
        for d in done:
            self.assertEqual(self.app.call("GET", "deliveries/" + d["id"]).status, 404)
        self.assertEqual(len(event_ids(owed_app)), 1)
        self.assertEqual(deliveries(owed_app, w_owed)[0]["status"], "failing")

        r = self.prune("--before", "1h")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("removed 0 events, 0 deliveries and 0 attempts", r.stdout)
        self.assertNotIn("kept", r.stdout)  # the owed event is younger than an hour
        r = self.prune("--before", "now")
        self.assertIn("removed 0 events", r.stdout)
        self.assertIn("kept 1 older events: a delivery of each is still owed", r.stdout)


class Concurrent(ServerTest):
    """A server's pruner and the CLI at once (on PostgreSQL, a second node's pruner too):
    every old final event goes exactly once, and what is owed stays."""
    server_args = ("--retention", "60s")
    server_env = {"HOOKLINE_RETRY_SCHEDULE": RETRY_LATER}
    EVENTS = 300

    def test_pruners_side_by_side(self):
        rx = self.receiver()
        w = self.app.webhook(rx.url("/ok"))
        owed_app = new_app(self.server, "owed")
        owed_app.webhook(self.receiver(lambda n, r: (503, b"", {}, 0)).url("/owed"))
        owed_app.ok("POST", "agents", {"agentName": "b", "externalTenantId": "t"})
        for i in range(self.EVENTS):
            self.app.ok("POST", "events", {"event": "agent.updated", "data": {
                "uid": "agent-%d" % i, "externalTenantId": "t"}}, status=202)
        rx.wait_count(self.EVENTS, "/ok", timeout=60)
        settled(self.app, w, min(self.EVENTS, 100), lambda d: d["status"] == "succeeded",
                "delivered")
        wait_for(lambda: metrics(self.server)["hookline_queue_depth"] == 1, timeout=60,
                 what="everything but the owed delivery recorded")

        nodes = [self.server]
        if PG_URL:
            other = Server(db=self.server.db, extra_args=self.server_args, env=self.server_env)
            nodes.append(other.start())
        try:
            # an hour and a half passes; the CLI prunes what is older than an hour meanwhile
            age(self.server, self.app, 90 * 60 * 1000)
            age(self.server, owed_app, 90 * 60 * 1000)
            r = self.server.cli("prune", "--before", "1h", "--json")
            cli = json.loads(r.stdout)

            def total():
                return cli["events"] + sum(metrics(n)[PRUNED % "events"] for n in nodes)
            wait_for(lambda: total() >= self.EVENTS, timeout=60, what="every old event pruned")
            self.assertEqual(total(), self.EVENTS)
            self.assertEqual(cli["deliveries"] + sum(metrics(n)[PRUNED % "deliveries"]
                                                     for n in nodes), self.EVENTS)
            self.assertEqual(event_ids(self.app), [])
            self.assertEqual(len(event_ids(owed_app)), 1)
            for n in nodes:
                self.assertNotIn("cannot prune", n.log())
        finally:
            for n in nodes[1:]:
                self.assertEqual(n.stop(), 0)
                n.cleanup()


class Refusals(ServerTest):
    """Bad retentions exit 2 naming the flag and the accepted forms; nothing starts."""

    def test_bad_retention(self):
        for args, env, shown in (
                (["--retention", "10s"], {}, "--retention 10s"),
                (["--retention", "59999ms"], {}, "--retention 59999ms"),
                (["--retention", "a week"], {}, "--retention a week"),
                (["--retention", "-1m"], {}, "--retention -1m"),
                ([], {"HOOKLINE_RETENTION": "30"}, "HOOKLINE_RETENTION=30")):
            e = dict(self.server.env)
            e.update(env)
            r = subprocess.run([BIN, "serve", "--listen", "127.0.0.1:0", "--database",
                                self.server.db] + args, capture_output=True, text=True,
                               env=e, timeout=60)
            self.assertEqual(r.returncode, 2, (args, env, r.stderr))
            self.assertIn(shown + ": want 0 (keep everything) or a duration of at least 1m",
                          r.stderr)

    def test_good_retentions_start(self):
        for value in ("0", "1m", "60s", "90d"):
            s = Server(extra_args=["--retention", value])
            try:
                s.start()
                self.assertEqual(s.request("GET", "/healthz").status, 200)
                self.assertEqual(s.stop(), 0)
            finally:
                s.cleanup()


class Compact(ServerTest):
    """hookline db compact: once, for files made before auto-vacuum; never beside a server."""

    def test_compact(self):
        if PG_URL:
            r = self.server.cli("db", "compact", check=False)
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertIn("VACUUM events", r.stderr)
            self.assertIn("compacted:", r.stdout)
            return
        # a new file gives space back by itself: no advice at start
        self.assertEqual(db_rows(self.server, "PRAGMA auto_vacuum")[0][0], 2)
        self.assertNotIn("predates incremental auto-vacuum", self.server.log())
        r = self.server.cli("db", "compact", check=False)
        self.assertEqual(r.returncode, 1)
        self.assertIn("in use by another hookline serve (pid %d" % self.server.proc.pid, r.stderr)
        self.assertEqual(r.stdout, "")
        r = self.server.cli("db", "bogus", check=False)
        self.assertEqual(r.returncode, 2)
        self.assertIn("want db init or db compact", r.stderr)

    def test_prune_gives_space_back(self):
        """On a new SQLite file, what hookline prune frees past the reserve goes back to the
        file system (PostgreSQL: nothing to give back, autovacuum reuses it)."""
        for i in range(300):
            self.app.ok("POST", "events", {"event": "agent.updated", "data": {
                "uid": "agent-%d" % i, "externalTenantId": "t",
                "pad": os.urandom(1500).hex()}}, status=202)
        pages = None if PG_URL else db_rows(self.server, "PRAGMA page_count")[0][0]
        out = json.loads(self.server.cli("prune", "--before", "now", "--json").stdout)
        self.assertEqual(out["events"], 300)
        if PG_URL:
            self.assertEqual(out["releasedBytes"], 0)
            return
        self.assertGreater(out["releasedBytes"], 0)
        after = db_rows(self.server, "PRAGMA page_count")[0][0]
        page = db_rows(self.server, "PRAGMA page_size")[0][0]
        # (the server's own pruner may give some back meanwhile too)
        self.assertLessEqual(after, pages - out["releasedBytes"] // page)
        # a tenth of the file stays free for new rows
        free = db_rows(self.server, "PRAGMA freelist_count")[0][0]
        self.assertLessEqual(free, after // 10 + 1)
        self.assertLess(after, pages / 2)

    def test_old_file(self):
        """A SQLite file made before auto-vacuum: serve says once how to give its space back;
        db compact does, once the server is stopped. (PostgreSQL has no such files: there serve
        only reports the database's size.)"""
        if PG_URL:
            self.assertNotIn("predates incremental auto-vacuum", self.server.log())
            self.assertIn("MiB on disk", self.server.log())
            return
        old = Server()
        try:
            # made the way hookline made files before: WAL first, auto-vacuum off for good
            db = sqlite3.connect(old.db)
            db.execute("PRAGMA journal_mode = WAL")
            db.close()
            app = App(old, old.create_app())
            old.start()
            for i in range(50):
                app.ok("POST", "events", {"event": "agent.updated", "data": {
                    "uid": "agent-%d" % i, "externalTenantId": "t", "pad": "x%d" % i * 400}},
                    status=202)
            self.assertIn("predates incremental auto-vacuum", old.log())
            self.assertEqual(old.stop(), 0)
            old.cli("prune", "--before", "now", "--json")
            size = os.path.getsize(old.db)
            r = old.cli("db", "compact")
            self.assertIn("compacted:", r.stdout)
            self.assertIn("db compact:", r.stderr)  # the progress line
            self.assertLess(os.path.getsize(old.db), size)
            self.assertEqual(db_rows(old, "PRAGMA auto_vacuum")[0][0], 2)
            old.start()
            self.assertEqual(app.ok("GET", "events")["data"], [])
            self.assertEqual(old.stop(), 0)
            self.assertEqual(old.log().count("predates incremental auto-vacuum"), 1)
        finally:
            old.cleanup()

if __name__ == "__main__":
    main()
