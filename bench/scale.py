#!/usr/bin/env python3
"""The scale phase of make bench: every list and count of the API with millions of rows.

Makes an app with four (inactive) webhooks, one agent and one context through the real service,
stops it, and copies them straight into the database the way the backlog phase does (its template
rows copied in bulk by SQL): N events (eight event types, a thousand tenants, spread over the
last 24 hours), one delivery each (round robin over the webhooks: 90 % succeeded, 8 % failed,
2 % failing, 1 % pending), one attempt each, and R agents and contexts. Then, for each binary
given (--hl-before first: the schema only moves forward), it starts the service on that database
and times every list endpoint with each filter, a filter that matches nothing and a deep cursor
page: the median of 3 requests over one keep-alive loopback connection, after one warm-up.

SQLite by default; PostgreSQL when HOOKLINE_TEST_BACKEND=postgres and HOOKLINE_TEST_PG_URL are set
(scripts/with-postgres.sh). SQLite is measured as the service leaves it (no ANALYZE: hookline
never runs it); PostgreSQL after VACUUM ANALYZE, as autovacuum would leave a table this size.

    bench/scale.py --hl build-bench/hookline [--hl-before OLD] [--events N] [--resources R]
                   [--results results.json] [--name scale] [--md scale.md]
"""
import argparse
import http.client
import json
import os
import sqlite3
import statistics
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "e2e"))
import harness  # noqa: E402

DAY_MS = 86_400_000
FAR = 4_102_444_800_000  # 2100: the failing and pending rows are never due during the run


def fill_sql(n, r, base, dbase, abase, rbase, app_id, hooks, now, pg, typed):
    """The SQL that copies the template rows (one event, one agent, one context) in bulk."""
    step = max(1, DAY_MS // n)
    if pg:
        seq = "generate_series(0, {m}) AS s(i)"
        cat = "s.i::text"
    else:
        seq = "(WITH RECURSIVE s(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM s WHERE i < {m})" \
              " SELECT i FROM s) s"
        cat = "s.i"
    ev_seq = seq.format(m=n - 1)
    res_seq = seq.format(m=r - 1)
    w = hooks
    return """
INSERT INTO events(id, uid, app_id, type, tenant, resource_uid, created_at, payload)
  SELECT {base} + s.i, 'evt_s' || {cat}, {app}, s.i % 8, 'tenant-' || (s.i % 1000),
         'agent-s' || {cat}, {now} - {day} + s.i * {step}, t.payload
  FROM {ev_seq}, (SELECT payload FROM events WHERE app_id = {app} ORDER BY id LIMIT 1) t;
INSERT INTO deliveries(id, event_id, webhook_id, status, attempts, next_attempt_at, lease_until,
                       last_status, last_error, created_at, delivered_at{tcol})
  SELECT {dbase} + s.i, {base} + s.i,
         CASE s.i % 4 WHEN 0 THEN {w0} WHEN 1 THEN {w1} WHEN 2 THEN {w2} ELSE {w3} END,
         CASE WHEN s.i % 100 = 11 OR s.i % 50 = 7 THEN 0 WHEN s.i % 25 IN (3, 4) THEN 2 ELSE 1 END,
         CASE WHEN s.i % 100 = 11 THEN 0 ELSE 1 END,
         CASE WHEN s.i % 100 = 11 OR s.i % 50 = 7 THEN {far} ELSE 0 END, 0,
         CASE WHEN s.i % 100 = 11 THEN 0 WHEN s.i % 50 = 7 OR s.i % 25 IN (3, 4) THEN 500
              ELSE 200 END,
         CASE WHEN s.i % 50 = 7 OR s.i % 25 IN (3, 4) THEN 'HTTP 500' END,
         {now} - {day} + s.i * {step},
         CASE WHEN s.i % 100 = 11 OR s.i % 50 = 7 THEN 0 ELSE {now} - {day} + s.i * {step} END
         {tval}
  FROM {ev_seq};
INSERT INTO attempts(id, delivery_id, started_at, duration_us, status_code, error, response)
  SELECT {abase} + s.i, {dbase} + s.i, {now} - {day} + s.i * {step}, 1000 + (s.i % 97) * 300,
         CASE WHEN s.i % 50 = 7 OR s.i % 25 IN (3, 4) THEN 500 ELSE 200 END,
         CASE WHEN s.i % 50 = 7 OR s.i % 25 IN (3, 4) THEN 'HTTP 500' END, NULL
  FROM {ev_seq} WHERE s.i % 100 <> 11;
INSERT INTO resources(id, uid, app_id, kind, parent_uid, tenant, body, version, created_at,
                      updated_at)
  SELECT {rbase} + s.i, 'res-s' || {cat}, {app}, t.kind, t.parent_uid, 'tenant-' || (s.i % 1000),
         t.body, 1, {now} - {day} + s.i, {now} - {day} + s.i
  FROM {res_seq}, resources t
  WHERE t.app_id = {app} AND t.kind = CASE WHEN s.i % 2 = 0 THEN 1 ELSE 2 END;
""".format(base=base, dbase=dbase, abase=abase, rbase=rbase, app=app_id, now=now, day=DAY_MS,
           step=step, far=FAR, tcol=", event_type" if typed else "",
           tval=", s.i % 8" if typed else "", ev_seq=ev_seq, res_seq=res_seq, cat=cat, w0=w[0], w1=w[1],
           w2=w[2], w3=w[3])


def psql(url, sql, timeout=3600):
    p = subprocess.run(["psql", "-X", "-q", "-tA", "-v", "ON_ERROR_STOP=1", "-d", url],
                       input=sql, capture_output=True, text=True, timeout=timeout)
    if p.returncode != 0:
        raise SystemExit("psql: %s" % p.stderr.strip()[:2000])
    return p.stdout.strip()


def fill(db, n, r, app_uid):
    """Writes the rows; returns the ids the cases need."""
    pg = db.startswith("postgres")
    now = int(time.time() * 1000)
    q_ids = ("SELECT (SELECT id FROM apps WHERE uid = '%s'),"
             " (SELECT coalesce(max(id), 0) + 1 FROM events),"
             " (SELECT coalesce(max(id), 0) + 1 FROM deliveries),"
             " (SELECT coalesce(max(id), 0) + 1 FROM attempts),"
             " (SELECT coalesce(max(id), 0) + 1 FROM resources)" % app_uid)
    if pg:
        app_id, base, dbase, abase, rbase = map(int, psql(db, q_ids + ";").split("|"))
        hooks = [int(x) for x in psql(db, "SELECT id FROM webhooks WHERE app_id = %d ORDER BY id;"
                                      % app_id).split()]
    else:
        con = sqlite3.connect(db)
        app_id, base, dbase, abase, rbase = con.execute(q_ids).fetchone()
        hooks = [i for (i,) in con.execute(
            "SELECT id FROM webhooks WHERE app_id = ? ORDER BY id", (app_id,))]
    # a schema that already has deliveries.event_type (the binary that made it is the new one):
    # the copies carry their event's type, as the service writes it
    q_typed = ("SELECT count(*) FROM information_schema.columns WHERE table_name = 'deliveries'"
               " AND column_name = 'event_type';")
    if pg:
        typed = int(psql(db, q_typed)) > 0
    else:
        typed = any(c[1] == "event_type" for c in con.execute("PRAGMA table_info(deliveries)"))
    sql = fill_sql(n, r, base, dbase, abase, rbase, app_id, hooks, now, pg, typed)
    if pg:
        psql(db, "BEGIN;" + sql + "COMMIT;" + "".join(
            "SELECT setval('%s_id_seq', (SELECT max(id) FROM %s));" % (t, t)
            for t in ("events", "deliveries", "attempts", "resources")) +
            "VACUUM ANALYZE;")
    else:
        con.execute("PRAGMA journal_mode = WAL")
        con.execute("PRAGMA synchronous = OFF")
        # the indexes take rows at many places at once (a thousand tenants, four webhooks): with
        # SQLite's default 2 MiB page cache a 10,000,000-row fill rereads their pages
        con.execute("PRAGMA cache_size = -2000000")
        con.executescript("BEGIN;" + sql + "COMMIT;")
        con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        con.close()
    return {"now": now, "base": base, "dbase": dbase, "rbase": rbase, "n": n, "r": r}


def iso(ms):
    t = time.gmtime(ms // 1000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", t) + ".%03dZ" % (ms % 1000)


def cases(ids, hook):
    """(name, path after /api/v1/appuid/APP/) for every list and count of the API."""
    n, now = ids["n"], ids["now"]
    mid = now - DAY_MS + (n // 4) * max(1, DAY_MS // n)  # a quarter into the day
    win = "since=%s&until=%s" % (iso(mid), iso(mid + 1000))
    old = "since=%s&until=%s" % (iso(now - 3 * DAY_MS), iso(now - 2 * DAY_MS))
    ev_deep = ids["base"] + n // 2
    dl_deep = ids["dbase"] + n // 2
    res_deep = ids["rbase"] + ids["r"] // 2
    wh = "webhooks/%s/" % hook
    out = [
        ("events", "events?limit=50"),
        ("events, deep cursor", "events?limit=50&cursor=%d" % ev_deep),
        ("events, event", "events?limit=50&event=agent.updated"),
        ("events, event (no match)", "events?limit=50&event=contextfile.deleted"),
        ("events, externalTenantId", "events?limit=50&externalTenantId=tenant-7"),
        ("events, externalTenantId (no match)", "events?limit=50&externalTenantId=tenant-nobody"),
        ("events, since+until (1 s)", "events?limit=50&" + win),
        ("events, since+until (no match)", "events?limit=50&" + old),
        ("events, since (last hour)", "events?limit=50&since=%s" % iso(now - 3_600_000)),
        ("events, event+tenant", "events?limit=50&event=agent.created&externalTenantId=tenant-8"),
    ]
    # webhook 1 of 4 gets the events i = 1 mod 4: types 1 and 5 (agent.updated, context.deleted)
    for label, base, ev in (("webhook deliveries", wh + "deliveries", "agent.updated"),
                            ("app deliveries", "deliveries", "contextfile.updated")):
        out += [
            (label, base + "?limit=50"),
            (label + ", deep cursor", base + "?limit=50&cursor=%d" % dl_deep),
            (label + ", status=failed", base + "?limit=50&status=failed"),
            (label + ", status=failing", base + "?limit=50&status=failing"),
            (label + ", status=pending", base + "?limit=50&status=pending"),
            (label + ", status=cancelled (no match)", base + "?limit=50&status=cancelled"),
            (label + ", event", base + "?limit=50&event=" + ev),
            (label + ", event (no match)", base + "?limit=50&event=contextfile.deleted"),
            (label + ", since+until (1 s)", base + "?limit=50&" + win),
            (label + ", since+until (no match)", base + "?limit=50&" + old),
        ]
    out += [
        ("webhook stats", wh + "stats"),
        ("webhook series (1 h)", wh + "stats/series"),
        ("webhooks", "webhooks?limit=50"),
        ("agents", "agents?limit=50"),
        ("agents, deep cursor", "agents?limit=50&cursor=%d" % res_deep),
        ("agents, externalTenantId", "agents?limit=50&externalTenantId=tenant-8"),
        ("agents, externalTenantId (no match)", "agents?limit=50&externalTenantId=nobody"),
        ("contexts", "contexts?limit=50"),
        ("contexts, externalTenantId", "contexts?limit=50&externalTenantId=tenant-9"),
        ("contexts, externalTenantId (no match)", "contexts?limit=50&externalTenantId=nobody"),
    ]
    return out


def timed(conn, path, key, reps=3):
    """Median ms of reps requests after one warm-up; None when the endpoint does not exist."""
    times, status, body = [], 0, b""
    for i in range(reps + 1):
        t = time.perf_counter()
        conn.request("GET", path, headers={"Authorization": "Bearer " + key})
        resp = conn.getresponse()
        body = resp.read()
        status = resp.status
        if i:
            times.append((time.perf_counter() - t) * 1000)
        if status == 404 and b"not_found" in body and b"webhook" not in body:
            return None, 0
        if status != 200:
            raise SystemExit("GET %s -> %d %s" % (path, status, body[:300]))
    j = json.loads(body)
    rows = len(j["data"]) if isinstance(j.get("data"), list) else 1
    return statistics.median(times), rows


def measure(server, app, ids, hook, binary):
    harness.BIN = binary
    # the schema brought up to date first (a new binary's migrations on a million rows take
    # longer than a start is given), and timed
    t = time.perf_counter()
    p = subprocess.run([binary, "db", "init", "--database", server.db], capture_output=True,
                       text=True, env=server.env, timeout=3600)
    if p.returncode != 0:
        raise SystemExit("hookline db init: %s" % p.stderr.strip()[-2000:])
    migrate_s = time.perf_counter() - t
    if server.db.startswith("postgres"):
        # what autovacuum does soon after a migration rewrote every delivery (its new column):
        # statistics for the new column and indexes, and the visibility map index-only scans use
        psql(server.db, "VACUUM ANALYZE;")
    server.start()
    out = {"migrate_s": round(migrate_s, 1), "cases": {}}
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=600)
    try:
        for name, rest in cases(ids, hook):
            ms, rows = timed(conn, app.path(rest), app.key)
            out["cases"][name] = None if ms is None else {"ms": round(ms, 2), "rows": rows}
            print("  %-55s %s" % (name, "n/a" if ms is None else "%9.2f ms %3d rows" % (ms, rows)),
                  flush=True)
    finally:
        conn.close()
        server.stop()
    return out


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--hl", help="the hookline binary measured (after)")
    p.add_argument("--hl-before", help="an earlier binary measured first on the same rows")
    p.add_argument("--events", type=int, default=1_000_000)
    p.add_argument("--resources", type=int, default=0, help="agents + contexts (default: events)")
    p.add_argument("--results", help="a results JSON file to add this phase to")
    p.add_argument("--name", default=None, help="its key there (default scale or scale_pg)")
    p.add_argument("--md", help="write the table as Markdown here")
    p.add_argument("--table", metavar="RESULTS", nargs="+", help="only print the table of the "
                   "scale and scale_pg runs in these results files (e.g. a 1,000,000 and a "
                   "10,000,000 run: a column each)")
    a = p.parse_args()
    if a.table:
        runs = []
        for path in a.table:
            with open(path) as f:
                allr = json.load(f)
            runs += [allr[k] for k in ("scale", "scale_pg") if k in allr]
        print(table(runs), end="")
        return
    if not a.hl:
        p.error("--hl is required")
    backend = "postgres" if harness.PG_URL else "sqlite"
    name = a.name or ("scale_pg" if harness.PG_URL else "scale")
    r = a.resources or a.events
    harness.BIN = a.hl_before or a.hl
    server = harness.Server(env={"HOOKLINE_RETRY_SCHEDULE": "0,7d"}, extra_args=["--api-rate", "0"])
    res = {"backend": backend, "events": a.events, "deliveries": a.events, "resources": r,
           "order": [c for c, _ in cases({"n": 1, "now": 0, "base": 0, "dbase": 0, "rbase": 0,
                                          "r": 1}, "x")]}
    try:
        info = server.create_app("scale")
        app = harness.App(server, info)
        server.start()
        hooks = [app.webhook("http://127.0.0.1:9/s%d" % i, active=False)["uid"] for i in range(4)]
        app.ok("POST", "agents", {"agentName": "seed", "externalTenantId": "tenant-1"})
        app.ok("POST", "contexts", {"name": "seed", "externalTenantId": "tenant-1"})
        server.stop()
        t = time.perf_counter()
        ids = fill(server.db, a.events, r, app.uid)
        res["fill_s"] = round(time.perf_counter() - t, 1)
        if not server.db.startswith("postgres"):
            res["db_mib"] = os.path.getsize(server.db) // 1048576
        print("scale (%s): %d events and deliveries, %d resources written in %.1f s" % (
            backend, a.events, r, res["fill_s"]), flush=True)
        runs = [("before", a.hl_before)] if a.hl_before else []
        runs.append(("after", a.hl))
        for label, binary in runs:
            print("scale (%s), %s: %s" % (backend, label, binary), flush=True)
            res[label] = measure(server, app, ids, hooks[1], binary)
            save(a.results, name, res)
    finally:
        server.stop()
        server.cleanup()
    if a.md:
        with open(a.md, "w") as f:
            f.write(table([res]))
    print(table([res]))


def save(path, name, res):
    """Adds res to the results file under name (after each binary: a failure keeps the rest)."""
    if not path:
        return
    try:
        with open(path) as f:
            allr = json.load(f)
    except (OSError, ValueError):
        allr = {}
    allr[name] = res
    with open(path, "w") as f:
        json.dump(allr, f, indent=1, sort_keys=True)


def table(runs):
    """One Markdown table: a row per case, a column per backend and binary."""
    cols = []
    sizes = sorted({r["events"] for r in runs})
    for r in runs:
        for label in ("before", "after"):
            if label in r:
                at = " at %s" % "{:,}".format(r["events"]) if len(sizes) > 1 else ""
                cols.append(("%s %s%s" % (r["backend"], label, at), r[label]["cases"]))
    names = runs[0].get("order") or list(cols[0][1]) if cols else []
    out = "| request (limit=50; %s events and deliveries) | " % " or ".join(
        "{:,}".format(n) for n in sizes)
    out += " | ".join(c for c, _ in cols) + " |\n"
    out += "|---|" + "---:|" * len(cols) + "\n"
    for n in names:
        cells = []
        for _, cs in cols:
            v = cs.get(n)
            cells.append("n/a" if v is None else "%.1f ms" % v["ms"])
        out += "| %s | %s |\n" % (n, " | ".join(cells))
    return out


if __name__ == "__main__":
    main()
