#!/usr/bin/env python3
"""How long the console's lists take with a million deliveries in the database (SQLite).

Makes an app with four webhooks through the real service, stops it, writes 1,000,000 events,
1,000,000 deliveries (90 % succeeded, 8 % failed, 2 % failing: pending after a failed attempt,
next attempt far off) and 1,000,000 attempts spread over the last 24 hours straight into the
SQLite file, starts the service again and times each list the console asks for: the median of 7
requests over loopback (one warm-up first). Loopback only; bounded.

    HOOKLINE_BIN=build/hookline python3 bench/console_lists.py [N]
"""
import os
import sqlite3
import statistics
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "e2e"))
import harness  # noqa: E402

N = int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000


def fill(db, hooks, n):
    now = int(time.time() * 1000)
    con = sqlite3.connect(db)
    (app_id, payload), = con.execute("SELECT app_id, payload FROM events LIMIT 1")
    con.execute("PRAGMA journal_mode=WAL")
    con.execute("PRAGMA synchronous=OFF")
    ids = [i for (i,) in con.execute("SELECT id FROM webhooks ORDER BY id")]
    base = con.execute("SELECT coalesce(max(id), 0) FROM events").fetchone()[0] + 1
    dbase = con.execute("SELECT coalesce(max(id), 0) FROM deliveries").fetchone()[0] + 1
    step = 86_400_000 // n
    con.execute("BEGIN")
    # events: one a delivery, types 0..8, a thousand tenants, oldest first over the last day
    con.execute("""WITH RECURSIVE s(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM s WHERE i < ?1 - 1)
        INSERT INTO events(id, uid, app_id, type, tenant, resource_uid, created_at, payload)
        SELECT ?2 + i, 'evt_b' || i, ?3, i % 9, 'tenant-' || (i % 1000), 'agent-b' || i,
               ?4 - 86400000 + i * ?5, ?6 FROM s""", (n, base, app_id, now, step, payload))
    con.execute("""WITH RECURSIVE s(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM s WHERE i < ?1 - 1)
        INSERT INTO deliveries(id, event_id, webhook_id, status, attempts, next_attempt_at,
                               last_status, last_error, created_at, delivered_at)
        SELECT ?2 + i, ?3 + i, CASE i % 4 WHEN 0 THEN ?4 WHEN 1 THEN ?5 WHEN 2 THEN ?6 ELSE ?7 END,
               CASE WHEN i % 50 = 7 THEN 0 WHEN i % 25 IN (3, 4) THEN 2 ELSE 1 END, 1,
               CASE WHEN i % 50 = 7 THEN 4102444800000 ELSE 0 END,
               CASE WHEN i % 50 = 7 OR i % 25 IN (3, 4) THEN 500 ELSE 200 END,
               CASE WHEN i % 50 = 7 OR i % 25 IN (3, 4) THEN 'HTTP 500' END,
               ?8 - 86400000 + i * ?9, ?8 - 86400000 + i * ?9 FROM s""",
                (n, dbase, base, ids[0], ids[1], ids[2], ids[3], now, step))
    con.execute("""INSERT INTO attempts(delivery_id, started_at, duration_us, status_code, error,
                                        response, webhook_id)
        SELECT id, created_at, 1000 + (id % 97) * 300, last_status, last_error, NULL, webhook_id
        FROM deliveries WHERE id >= ?1""", (dbase,))
    con.execute("COMMIT")
    con.execute("ANALYZE")
    con.close()


def timed(server, app, rest, reps=7):
    app.ok("GET", rest)  # warm-up
    times = []
    for _ in range(reps):
        t = time.perf_counter()
        r = app.call("GET", rest)
        times.append((time.perf_counter() - t) * 1000)
        if r.status != 200:
            raise SystemExit("%s -> %d %s" % (rest, r.status, r.body[:200]))
    return statistics.median(times), r.json()


def main():
    server = harness.Server(env={"HOOKLINE_RETRY_SCHEDULE": "0,7d"})
    if harness.PG_URL:
        raise SystemExit("this measures SQLite; run it without HOOKLINE_TEST_PG_URL")
    app = harness.App(server, server.create_app("bench"))
    server.start()
    try:
        hooks = [app.webhook("http://127.0.0.1:9/h%d" % i, active=False) for i in range(4)]
        app.ok("POST", "agents", {"agentName": "seed", "externalTenantId": "tenant-1"})
        server.stop()
        t = time.perf_counter()
        fill(server.db, hooks, N)
        print("wrote %d events, deliveries and attempts in %.1f s; database %.0f MiB" % (
            N, time.perf_counter() - t, os.path.getsize(server.db) / 1048576))
        server.start()
        w = hooks[1]["uid"]
        first, page = timed(server, app, "deliveries?limit=25")
        mid = page["nextCursor"]
        cases = [
            ("app deliveries, newest page", "deliveries?limit=25"),
            ("app deliveries, second page", "deliveries?limit=25&cursor=" + mid),
            ("app deliveries, failing", "deliveries?limit=25&status=failing"),
            ("app deliveries, failed", "deliveries?limit=25&status=failed"),
            ("app deliveries, one event type", "deliveries?limit=25&event=agent.deleted"),
            ("webhook deliveries, newest page", "webhooks/%s/deliveries?limit=25" % w),
            ("webhook deliveries, failing", "webhooks/%s/deliveries?limit=25&status=failing" % w),
            ("events, newest page", "events?limit=25"),
            ("events, one tenant", "events?limit=25&externalTenantId=tenant-7"),
            ("webhook series, 1 h by minute", "webhooks/%s/stats/series" % w),
            ("webhook series, 24 h by hour", "webhooks/%s/stats/series?window=24h" % w),
            ("webhook list (the console's first page)", "webhooks?limit=20"),
        ]
        print("| what the console asks (%d deliveries) | median ms | rows |" % N)
        print("| --- | ---: | ---: |")
        for name, rest in cases:
            ms, body = timed(server, app, rest)
            rows = len(body["data"]) if "data" in body else body["totals"]["attempts"]
            print("| %s | %.1f | %d |" % (name, ms, rows))
    finally:
        server.stop()
        server.cleanup()


if __name__ == "__main__":
    main()
