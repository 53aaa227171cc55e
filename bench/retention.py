#!/usr/bin/env python3
"""The retention phase of `make bench`: storage that stays flat under a steady load.

Two runs of the same open-loop load (POST /events at --rate, one webhook on hl-sink), each on a
fresh database, each starting its own `hookline serve`:

1. **without pruning** (`--retention 0`) for --base-s seconds: the API's response times, and what
   one change costs on disk (SQLite: the `dbstat` table; PostgreSQL: the relations' sizes),
   every change kept;
2. **with pruning** (`--retention --retention-s`) for --run-s seconds: the database (with its
   WAL) sampled every --sample-s seconds, so that its growth until the retention is reached and
   the plateau after it show; the API's response times while the pruner works (from a little
   after the retention, when the first events grow old), and before it (the first --retention-s
   seconds of the same run, nothing old yet).

In both, an app with one webhook on a closed port (`HOOKLINE_RETRY_SCHEDULE=0,1h`: one failed
attempt, then owed for an hour) gets --owed events before the load: they grow old like the rest
and must all still be listed, pending, at the end. Every change of the load must have reached
the sink. Pass --pg-url to run against PostgreSQL (a fresh database per run, dropped after).

Writes its figures under --name in --results (bench.py put); exits 1 when a check fails (nothing
owed lost, nothing missing, the plateau). Every wait is bounded. Loopback only.
"""
import argparse
import json
import os
import signal
import subprocess
import sys
import threading
import time
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench import (BenchError, Sink, die, http, metrics, put, run_load,  # noqa: E402
                   summary_us, wait_count)

PLATEAU_MAX = 1.15  # the peak of the second half against the peak of the first


def psql(url, sql):
    r = subprocess.run(["psql", "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-d", url,
                        "-c", sql], capture_output=True, text=True, timeout=120)
    if r.returncode != 0:
        raise BenchError("psql: %s" % r.stderr.strip())
    return [line for line in r.stdout.splitlines() if line]


class Database:
    """A fresh database for one run: a SQLite file, or a new PostgreSQL database."""

    def __init__(self, a, tag):
        self.pg_admin = a.pg_url
        if a.pg_url:
            self.name = "hl_retention_%s_%s" % (tag, uuid.uuid4().hex[:8])
            psql(a.pg_url, "CREATE DATABASE " + self.name)
            self.url = a.pg_url.rsplit("/", 1)[0] + "/" + self.name
        else:
            self.url = os.path.join(a.run, "retention-%s.db" % tag)
            for suffix in ("", "-wal", "-shm", ".lock"):
                if os.path.exists(self.url + suffix):
                    os.unlink(self.url + suffix)

    def on_disk(self, hl_port):
        """Bytes on disk: the file and its WAL, or the database's size as /metrics has it."""
        if self.pg_admin:
            return int(metrics(hl_port)["hookline_db_bytes"])
        n = 0
        for suffix in ("", "-wal"):
            try:
                n += os.path.getsize(self.url + suffix)
            except OSError:
                pass
        return n

    def drop(self):
        if self.pg_admin:
            psql(self.pg_admin, "DROP DATABASE IF EXISTS %s WITH (FORCE)" % self.name)


class Serve:
    """One `hookline serve`, stopped with SIGTERM."""

    def __init__(self, a, db, retention, log):
        env = dict(os.environ, HOOKLINE_RETRY_SCHEDULE="0,1h")
        self.log = open(log, "ab")
        # a hookline from before retention (--before-retention) knows no --retention and
        # keeps everything anyway
        keep = [] if a.before_retention else ["--retention", retention]
        self.proc = subprocess.Popen(
            [a.hl, "serve", "--listen", "127.0.0.1:%d" % a.hl_port, "--database", db.url,
             "--mode", "development", "--log-level", "warn",
             "--data-dir", os.path.join(a.run, "files-retention")] + keep,
            stdout=self.log, stderr=subprocess.STDOUT, env=env)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise BenchError("hookline serve exited at start (see %s)" % log)
            try:
                if http("GET", "http://127.0.0.1:%d/healthz" % a.hl_port, timeout=2)[0] == 200:
                    return
            except OSError:
                pass
            time.sleep(0.05)
        raise BenchError("hookline serve did not answer /healthz within 30 s")

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        try:
            rc = self.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            raise BenchError("hookline serve did not stop on SIGTERM")
        self.log.close()
        if rc != 0:
            raise BenchError("hookline serve exited with %d" % rc)


def new_app(a, db, name):
    # apps create refuses a database that is not there (only db init and serve make one)
    r = subprocess.run([a.hl, "db", "init", "--database", db.url],
                       capture_output=True, text=True, timeout=60)
    if r.returncode != 0:
        raise BenchError("db init: %s" % r.stderr.strip())
    r = subprocess.run([a.hl, "apps", "create", name, "--json", "--database", db.url],
                       capture_output=True, text=True, timeout=60)
    if r.returncode != 0:
        raise BenchError("apps create: %s" % r.stderr.strip())
    j = json.loads(r.stdout)
    return j["appUid"], j["apiKey"]


def api(a, app, key, method, rest, body=None):
    url = "http://127.0.0.1:%d/api/v1/appuid/%s/%s" % (a.hl_port, app, rest)
    return http(method, url, body, key, timeout=30)


def webhook(a, app, key, url):
    status, out = api(a, app, key, "POST", "webhooks",
                      {"url": url, "entities": ["agent", "context", "contextfile"],
                       "active": True})
    if status != 201:
        raise BenchError("POST /webhooks answered %d: %s" % (status, out))
    return out["uid"]


def setup(a, db):
    """Apps, webhooks and the owed events of one run; returns what the checks need."""
    app, key = new_app(a, db, "retention")
    owed_app, owed_key = new_app(a, db, "owed")
    return {"app": app, "key": key, "owed_app": owed_app, "owed_key": owed_key}


def start_run(a, db, s, retention, log):
    hl = Serve(a, db, retention, log)
    webhook(a, s["app"], s["key"], "http://127.0.0.1:%d/r" % a.sink_port)
    s["owed_hook"] = webhook(a, s["owed_app"], s["owed_key"],
                             "http://127.0.0.1:%d/owed" % a.dead_port)
    for i in range(a.owed):
        status, out = api(a, s["owed_app"], s["owed_key"], "POST", "events",
                          {"event": "agent.updated",
                           "data": {"uid": "agent-owed-%d" % i, "externalTenantId": "t"}})
        if status != 202:
            raise BenchError("POST /events answered %d: %s" % (status, out))
    return hl


def window(gen_file, t0_us, t1_us):
    """API response times (from the send, and from the time the request was due) of the
    requests sent in [t0, t1)."""
    rt, corr = [], []
    with open(gen_file) as f:
        for line in f:
            p = line.split()
            if len(p) != 5 or int(p[4]) // 100 != 2:
                continue
            answer, send, due = int(p[1]), int(p[2]), int(p[3])
            if t0_us <= send < t1_us:
                rt.append(answer - send)
                corr.append(answer - (due or send))
    return {"rt_us": summary_us(rt), "rt_corrected_us": summary_us(corr)}


def load(a, s, seconds, name):
    gen_file = os.path.join(a.run, name + ".gen.txt")
    t0 = time.time()
    g = run_load(a.tools, ["-p", a.hl_port, "-a", s["app"], "-k", s["key"], "-K", "events",
                           "-c", a.conns, "-d", seconds, "-r", a.rate, "-x", name[:6],
                           "-o", gen_file, "-m", int(a.rate * seconds * 2) + 1000, "-g", 30],
                 seconds + 90)
    return g, gen_file, int(t0 * 1e6)


def settle(a, s, sink, accepted, timeout):
    """Waits until every accepted change reached the sink and the queue holds only the owed
    deliveries; returns (delivered, queue depth)."""
    got, _ = wait_count(sink, accepted, timeout)
    deadline = time.monotonic() + timeout
    depth = -1
    while time.monotonic() < deadline:
        depth = int(metrics(a.hl_port)["hookline_queue_depth"])
        if depth <= a.owed:
            break
        time.sleep(0.2)
    return got, depth


def owed_check(a, s):
    """The owed events are all listed and their deliveries all pending."""
    status, evs = api(a, s["owed_app"], s["owed_key"], "GET", "events?limit=100")
    listed = len(evs["data"]) if status == 200 else -1
    status, dls = api(a, s["owed_app"], s["owed_key"], "GET",
                      "webhooks/%s/deliveries?limit=100" % s["owed_hook"])
    owed = ("pending", "failing")  # failing: pending after a failed attempt
    pending = len([d for d in dls["data"] if d["status"] in owed]) if status == 200 else -1
    attempted = len([d for d in dls["data"] if d["attempts"] >= 1]) if status == 200 else -1
    return {"events_listed": listed, "deliveries_pending": pending, "attempted": attempted,
            "expected": a.owed}


def bytes_per_change(a, db, changes):
    """What the database holds per change, by table and index."""
    if a.pg_url:
        rows = psql(db.url, "SELECT relname, pg_total_relation_size(oid) FROM pg_class"
                            " WHERE relkind = 'r' AND relnamespace = 'public'::regnamespace")
        parts = {name: int(size) for name, size in (r.split("|") for r in rows)}
        method = "pg_total_relation_size (heap, indexes, TOAST) of each table"
    else:
        r = subprocess.run(["sqlite3", db.url, "SELECT name, sum(pgsize) FROM dbstat"
                                               " GROUP BY name"],
                           capture_output=True, text=True, timeout=120)
        if r.returncode != 0:
            raise BenchError("sqlite3 dbstat: %s" % r.stderr.strip())
        parts = {name: int(size) for name, size in
                 (line.split("|") for line in r.stdout.splitlines() if line)}
        method = "SQLite's dbstat: pages of each table and index"
    total = sum(parts.values())
    big = {k: round(v / changes, 1) for k, v in sorted(parts.items(), key=lambda kv: -kv[1])
           if v >= 0.01 * total}
    return {"changes": changes, "bytes": total, "per_change": round(total / changes, 1),
            "parts_per_change": big, "method": method}


class Sampler(threading.Thread):
    """The database's size, the pruned counts and the queue every few seconds."""

    def __init__(self, a, db, t0):
        super().__init__(daemon=True)
        self.a, self.db, self.t0 = a, db, t0
        self.samples = []
        self.stop_flag = threading.Event()
        self.error = None

    def run(self):
        while not self.stop_flag.is_set():
            try:
                m = metrics(self.a.hl_port)
                self.samples.append({
                    "t": round(time.time() - self.t0, 1),
                    "bytes": self.db.on_disk(self.a.hl_port),
                    "pruned_events": int(m.get('hookline_pruned_total{kind="events"}', 0)),
                    "queue_depth": int(m.get("hookline_queue_depth", -1)),
                    "oldest_event_age_s": round(m.get("hookline_oldest_event_age_seconds", 0),
                                                1)})
            except (OSError, BenchError, ValueError) as e:
                self.error = repr(e)
            self.stop_flag.wait(self.a.sample_s)


def plateau(samples, run_s):
    half = run_s / 2.0
    first = [x["bytes"] for x in samples if x["t"] <= half]
    second = [x["bytes"] for x in samples if half < x["t"] <= run_s]
    if not first or not second:
        return None, None, None
    return max(first), max(second), max(second) / float(max(first))


def run_baseline(a, sink):
    db = Database(a, "base")
    try:
        s = setup(a, db)
        hl = start_run(a, db, s, "0", os.path.join(a.run, "hookline-retention.log"))
        try:
            sink.reset()
            g, gen_file, t0 = load(a, s, a.base_s, "retb")
            got, depth = settle(a, s, sink, g["ok"], 120)
            res = {"gen": g, "delivered": got, "missing": max(0, g["ok"] - got),
                   "queue_depth_after": depth, "owed": owed_check(a, s),
                   # the first seconds warm the server up, as in the latency phase
                   "api": window(gen_file, t0 + int(a.warmup_s * 1e6), t0 + 10**15)}
        finally:
            hl.stop()
        res["storage"] = bytes_per_change(a, db, g["ok"] + a.owed)
        return res
    finally:
        db.drop()


def run_pruning(a, sink):
    db = Database(a, "run")
    try:
        s = setup(a, db)
        hl = start_run(a, db, s, "%ds" % a.retention_s,
                       os.path.join(a.run, "hookline-retention.log"))
        try:
            sink.reset()
            t0 = time.time()
            sampler = Sampler(a, db, t0)
            sampler.start()
            g, gen_file, t0_us = load(a, s, a.run_s, "retr")
            got, depth = settle(a, s, sink, g["ok"], 120)
            sampler.stop_flag.set()
            sampler.join(30)
            m = metrics(a.hl_port)
            lead = int((a.retention_s + a.sample_s) * 1e6)
            res = {"gen": g, "delivered": got, "missing": max(0, g["ok"] - got),
                   "queue_depth_after": depth, "owed": owed_check(a, s),
                   "samples": sampler.samples, "sampler_error": sampler.error,
                   "pruned": {k: int(m['hookline_pruned_total{kind="%s"}' % k])
                              for k in ("events", "deliveries", "attempts")},
                   "api_before_pruning": window(gen_file, t0_us + int(a.warmup_s * 1e6),
                                                t0_us + int(a.retention_s * 1e6)),
                   "api_pruning": window(gen_file, t0_us + lead, t0_us + 10**15)}
        finally:
            hl.stop()
        first, second, ratio = plateau(res["samples"], a.run_s)
        res["plateau"] = {"first_half_peak": first, "second_half_peak": second, "ratio": ratio}
        return res
    finally:
        db.drop()


def main():
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    for k in ("--hl", "--tools", "--run", "--results"):
        p.add_argument(k, required=True)
    for k in ("--hl-port", "--sink-port", "--dead-port"):
        p.add_argument(k, type=int, required=True)
    p.add_argument("--name", default="retention")
    p.add_argument("--pg-url", help="PostgreSQL server to make the runs' databases on")
    p.add_argument("--rate", type=float, default=300)
    p.add_argument("--conns", type=int, default=16)
    p.add_argument("--base-s", type=float, default=60)
    p.add_argument("--run-s", type=float, default=270)
    p.add_argument("--retention-s", type=int, default=60)
    p.add_argument("--sample-s", type=float, default=5)
    p.add_argument("--warmup-s", type=float, default=5)
    p.add_argument("--owed", type=int, default=50)
    p.add_argument("--before-retention", action="store_true",
                   help="--hl is a hookline from before retention: run only the first run "
                        "(bytes per change with everything kept), for a before/after figure")
    a = p.parse_args()
    if a.retention_s < 60:
        die("--retention-s: hookline serve takes 60 s or more")
    if a.run_s <= a.retention_s + 2 * a.sample_s:
        die("--run-s must be longer than the retention, or nothing is ever pruned")
    sink = Sink(a.sink_port)
    try:
        base = run_baseline(a, sink)
        if a.before_retention:
            put(a.results, a.name, {"backend": "postgres" if a.pg_url else "sqlite",
                                    "rate": a.rate, "base_s": a.base_s, "baseline": base})
            print("%s: bytes/change %s kept (%s); API p99 %s; missing %d" % (
                a.name, base["storage"]["per_change"], base["storage"]["parts_per_change"],
                base["api"]["rt_us"].get("p99"), base["missing"]))
            return
        run = run_pruning(a, sink)
    except BenchError as e:
        die(str(e))
    res = {"backend": "postgres" if a.pg_url else "sqlite", "rate": a.rate, "conns": a.conns,
           "base_s": a.base_s, "run_s": a.run_s, "retention_s": a.retention_s,
           "sample_s": a.sample_s, "owed_events": a.owed, "baseline": base, "pruning": run}
    b99 = base["api"]["rt_us"].get("p99")
    p99 = run["api_pruning"]["rt_us"].get("p99")
    res["p99_ok"] = None if b99 is None or p99 is None else p99 <= 1.5 * b99 + 1000
    # The plateau is reached about one retention in: a run shorter than two retentions (and a
    # margin) has no plateau in its first half to compare with, and is not judged.
    judged = a.run_s >= 2 * a.retention_s + 30
    res["plateau_ok"] = (run["plateau"]["ratio"] is not None
                         and run["plateau"]["ratio"] <= PLATEAU_MAX) if judged else None
    res["owed_ok"] = all(o["events_listed"] == a.owed and o["deliveries_pending"] == a.owed
                         for o in (base["owed"], run["owed"]))
    res["missing"] = base["missing"] + run["missing"]
    put(a.results, a.name, res)
    print("%s (%s): bytes/change %s kept; DB+WAL peak %s then %s (x%s); API p99 %s without "
          "pruning, %s with; pruned %s events; owed kept %s; missing %d" % (
              a.name, res["backend"], base["storage"]["per_change"],
              run["plateau"]["first_half_peak"], run["plateau"]["second_half_peak"],
              "%.3f" % run["plateau"]["ratio"] if run["plateau"]["ratio"] else "?",
              "%.2f ms" % (b99 / 1000.0) if b99 else "?", "%.2f ms" % (p99 / 1000.0) if p99
              else "?", run["pruned"]["events"], res["owed_ok"], res["missing"]))
    # A lost delivery ends the run; a size that does not plateau is a figure (the Results table
    # says "no"), and must not keep the phases after this one from being measured.
    if res["plateau_ok"] is False:
        print("retention: the database did not plateau (x%.3f): reported, not fatal"
              % run["plateau"]["ratio"], file=sys.stderr)
    failed = [what for what, ok in (("nothing owed lost", res["owed_ok"]),
                                    ("nothing missing", res["missing"] == 0)) if not ok]
    if failed:
        die("retention: not met: " + ", ".join(failed))


if __name__ == "__main__":
    main()
