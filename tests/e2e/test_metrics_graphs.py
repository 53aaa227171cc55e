"""The metrics worth graphing (README: Alerting > Metrics) move with what happened, on SQLite and
PostgreSQL: attempts by outcome after succeeding and failing receivers, the attempt duration and
delivery lag histograms, the API's requests by route template, webhooks by state after a pause
and a 410, the queue and the context files by state with a backlog. Every scrape passes
`promtool check metrics`. The examples are checked too: examples/alerts.yml by `promtool check
rules` and its unit tests (`promtool test rules tests/e2e/alerts_test.yml`), and every PromQL
expression of examples/grafana-dashboard.json and of the alerts parses (promtool) and names only
metrics a live hookline exports."""
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import unittest

import yaml

sys.path.insert(0, os.path.dirname(__file__))
from harness import PG_URL, ServerTest, free_port, main, need, pg_admin, wait_for  # noqa: E402

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
OUTCOMES = ("success", "http_4xx", "http_5xx", "http_other", "timeout", "connect", "dns", "tls",
            "blocked", "error")


def promtool():
    """The promtool binary (Debian's prometheus package), or a skip (a failure in make test)."""
    path = shutil.which("promtool")
    need(path, "promtool (Debian package prometheus; scripts/deps.sh test installs it)")
    return path


def scrape(server):
    """The text of GET /metrics."""
    r = server.request("GET", "/metrics")
    assert r.status == 200, r
    return r.body.decode()


def samples(text):
    """{name with labels: value} of a scrape."""
    out = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, value = line.rsplit(" ", 1)
            out[name] = float(value)
    return out


def check_metrics(test, text):
    """promtool check metrics on a scrape: the format and the naming conventions."""
    r = subprocess.run([promtool(), "check", "metrics"], input=text.encode(),
                       capture_output=True, timeout=60)
    test.assertEqual((r.returncode, r.stdout + r.stderr), (0, b""), "promtool check metrics")


def buckets(m, name, labels=""):
    """The cumulative buckets of a histogram as [(le, count)], in the scrape's order."""
    pre = name + "_bucket{" + labels + ("," if labels else "") + 'le="'
    return [(k[len(pre):-2], v) for k, v in m.items() if k.startswith(pre)]


def check_histogram(test, m, name, labels=""):
    """A histogram's buckets only grow, and +Inf holds its count. Returns the count."""
    b = buckets(m, name, labels)
    test.assertGreater(len(b), 5, name)
    test.assertEqual(b[-1][0], "+Inf")
    counts = [v for _, v in b]
    test.assertEqual(counts, sorted(counts), name + " buckets are cumulative")
    suffix = "{%s}" % labels if labels else ""
    test.assertEqual(b[-1][1], m[name + "_count" + suffix])
    return m[name + "_count" + suffix]


class Outcomes(ServerTest):
    """What it proves: each attempt counts once under the outcome its answer (or its failure to
    get one) gives: a 200 as success, a 500 as http_5xx, a 400 as http_4xx, a closed port as
    connect, each exactly as many times as the receivers saw requests and the delivery log
    records attempts; the duration histogram counts every attempt and the lag histogram every
    success, and no other outcome moves."""
    server_env = {"HOOKLINE_RETRY_SCHEDULE": "0,100ms", "HOOKLINE_TIMEOUT": "5s"}

    def test_attempts_by_outcome_and_histograms(self):
        m0 = self.server.metrics()
        self.assertEqual({o: m0['hookline_attempts_total{outcome="%s"}' % o] for o in OUTCOMES},
                         {o: 0 for o in OUTCOMES})
        ok = self.receiver()
        five = self.receiver(lambda n, req: (500, b"no", {}, 0))
        four = self.receiver(lambda n, req: (400, b"bad", {}, 0))
        closed = "http://127.0.0.1:%d/hook" % free_port()
        hooks = {name: self.app.webhook(url, entities=["agent"])["uid"]
                 for name, url in (("ok", ok.url()), ("5xx", five.url()), ("4xx", four.url()),
                                   ("connect", closed))}
        self.app.ok("POST", "agents", {"agentName": "a", "externalTenantId": "t"})

        def final(uid):
            ds = self.app.ok("GET", "webhooks/%s/deliveries" % uid)["data"]
            return ds[0] if ds and ds[0]["status"] in ("succeeded", "failed") else None
        done = {name: wait_for(lambda: final(uid), timeout=30, what=name + " delivery final")
                for name, uid in hooks.items()}
        self.assertEqual(done["ok"]["status"], "succeeded")
        attempts = {name: d["attempts"] for name, d in done.items()}
        self.assertEqual(attempts["5xx"], len(five.requests))
        self.assertEqual(attempts["4xx"], len(four.requests))
        self.assertGreaterEqual(attempts["connect"], 1)
        total = sum(attempts.values())

        text = scrape(self.server)
        m = samples(text)
        got = {o: m['hookline_attempts_total{outcome="%s"}' % o] for o in OUTCOMES}
        want = {o: 0 for o in OUTCOMES}
        want.update(success=1, http_5xx=attempts["5xx"], http_4xx=attempts["4xx"],
                    connect=attempts["connect"])
        self.assertEqual(got, want)
        self.assertEqual(check_histogram(self, m, "hookline_delivery_attempt_duration_seconds"),
                         total)
        self.assertEqual(check_histogram(self, m, "hookline_delivery_lag_seconds"), 1)
        self.assertGreater(m["hookline_delivery_attempt_duration_seconds_sum"], 0)
        check_metrics(self, text)


class Routes(ServerTest):
    """What it proves: the API's requests count under their route template (the OpenAPI path),
    method and status, by exact amounts, with a duration histogram per route; a path no route
    takes counts as "unmatched"; no app uid, webhook uid, key or made-up path text reaches a
    label; and every path of openapi/hookline.yaml is a route of its own."""

    def req(self, method, rest, body=None):
        return self.server.request(method, self.app.path(rest), body=body, key=self.app.key,
                                   validate=False)

    def test_requests_by_route(self):
        hook = self.app.webhook("http://127.0.0.1:9/hook", entities=["agent"])
        before = samples(scrape(self.server))
        for _ in range(3):
            self.assertEqual(self.req("GET", "webhooks").status, 200)
        self.assertEqual(self.req("GET", "webhooks/webhook-doesnotexist").status, 404)
        self.assertEqual(self.req("POST", "webhooks", {}).status, 422)
        self.assertEqual(self.req("GET", "nonsense/made-up-text").status, 404)
        self.assertEqual(self.server.request("GET", "/healthz").status, 200)
        text = scrape(self.server)
        after = samples(text)

        def delta(route, method, status):
            k = 'hookline_http_requests_total{route="%s",method="%s",status="%s"}' % (
                route, method, status)
            return after.get(k, 0) - before.get(k, 0)
        w = "/api/v1/appuid/{appUid}/webhooks"
        self.assertEqual(delta(w, "GET", "200"), 3)
        self.assertEqual(delta(w, "POST", "422"), 1)
        self.assertEqual(delta(w + "/{webhookUid}", "GET", "404"), 1)
        self.assertEqual(delta("unmatched", "GET", "404"), 1)
        self.assertEqual(delta("/healthz", "GET", "200"), 1)
        # the scrape before this one counted, the one being answered not yet
        self.assertEqual(delta("/metrics", "GET", "200"), 1)
        c = 'hookline_http_request_duration_seconds_count{route="%s"}' % w
        self.assertEqual(after[c] - before[c], 4)
        check_histogram(self, after, "hookline_http_request_duration_seconds", 'route="%s"' % w)
        for secret in (self.app.uid, self.app.key, hook["uid"], "doesnotexist", "made-up"):
            self.assertNotIn(secret, text)
        check_metrics(self, text)

    def test_every_documented_path_is_a_route(self):
        with open(os.path.join(ROOT, "openapi", "hookline.yaml")) as f:
            paths = list(yaml.safe_load(f)["paths"])
        for p in paths:
            url = re.sub(r"\{appUid\}", self.app.uid, p)
            url = re.sub(r"\{[^}]+\}", "x1", url)
            self.server.request("GET", url, key=self.app.key, validate=False)
        text = scrape(self.server)
        routes = set(re.findall(r'hookline_http_requests_total\{route="([^"]*)"', text))
        self.assertEqual(sorted(set(paths) - routes), [], "documented paths without a route")
        self.assertEqual(sorted(routes - set(paths) - {"unmatched"}), [],
                         "routes the document does not have")


class States(ServerTest):
    """What it proves: the database's gauges follow it. Webhooks count as active, paused (after
    PATCH active false) and disabled (after a 410), breaker_open 0; the queue counts deliveries
    held in flight as pending, those whose attempt failed as failing and those of a paused
    webhook as paused, each with the age of its oldest, and hookline_queue_depth is pending plus
    failing; once the held ones are answered they leave the queue. Context files not yet
    processed count by state with the age of the oldest."""
    server_env = {"HOOKLINE_RETRY_SCHEDULE": "0,1h", "HOOKLINE_TIMEOUT": "20s"}

    def sql(self, statement):
        if PG_URL:
            pg_admin(statement, url=self.server.db)
        else:
            subprocess.run(["sqlite3", "-cmd", ".timeout 20000", self.server.db, statement], check=True, timeout=60,
                           capture_output=True)

    def test_webhooks_and_queue_by_state(self):
        # A 410 disables its webhook; it is made first, so that the later events skip it.
        gone_rx = self.receiver(lambda n, req: (410, b"gone", {}, 0))
        gone = self.app.webhook(gone_rx.url(), entities=["agent"])
        self.app.ok("POST", "agents", {"agentName": "g", "externalTenantId": "t"})
        wait_for(lambda: self.app.ok("GET", "webhooks/%s" % gone["uid"])["disabledAt"],
                 timeout=20, what="the 410 disabling its webhook")

        hold = threading.Event()
        hold.set()

        def held(n, req):
            deadline = time.monotonic() + 30
            while hold.is_set() and time.monotonic() < deadline:
                time.sleep(0.01)
            return 200, b"", {}, 0
        held_rx = self.receiver(held)
        fail_rx = self.receiver(lambda n, req: (500, b"no", {}, 0))
        ok_rx = self.receiver()
        self.app.webhook(held_rx.url(), entities=["agent"])
        failing = self.app.webhook(fail_rx.url("/a"), entities=["agent"])
        to_pause = self.app.webhook(fail_rx.url("/b"), entities=["agent"])
        self.app.webhook(ok_rx.url(), entities=["agent"])
        try:
            for i in range(2):
                self.app.ok("POST", "agents", {"agentName": "a%d" % i, "externalTenantId": "t"})
            ok_rx.wait_count(2)
            held_rx.wait_count(1)

            def failing_shown(uid):
                st = self.app.ok("GET", "webhooks/%s/stats" % uid)
                return st if st.get("failing") == 2 else None
            for uid in (failing["uid"], to_pause["uid"]):
                wait_for(lambda: failing_shown(uid), timeout=20,
                         what="two failing deliveries recorded")
            self.app.ok("PATCH", "webhooks/%s" % to_pause["uid"], {"active": False})

            now_ms = int(time.time() * 1000)
            self.sql("INSERT INTO files(uid, app_id, path, size, sha256, state, lease_until,"
                     " created_at) SELECT 'metrics-waiting', id, 'x', 1, 'x', 0, 0, %d FROM apps"
                     " LIMIT 1" % (now_ms - 60000))
            self.sql("INSERT INTO files(uid, app_id, path, size, sha256, state, lease_until,"
                     " created_at) SELECT 'metrics-processing', id, 'x', 1, 'x', 1, %d, %d"
                     " FROM apps LIMIT 1" % (now_ms + 600000, now_ms - 1000))
            text = scrape(self.server)
            m = samples(text)
            self.assertEqual({s: m['hookline_webhooks{state="%s"}' % s]
                              for s in ("active", "paused", "disabled", "breaker_open")},
                             {"active": 3, "paused": 1, "disabled": 1, "breaker_open": 0})
            self.assertEqual({s: m['hookline_queue_deliveries{state="%s"}' % s]
                              for s in ("pending", "failing", "paused")},
                             {"pending": 2, "failing": 2, "paused": 2})
            self.assertEqual(m["hookline_queue_depth"], 4)
            for s in ("pending", "failing", "paused"):
                self.assertGreater(m['hookline_queue_oldest_age_seconds{state="%s"}' % s], 0, s)
            self.assertGreater(m["hookline_oldest_pending_age_seconds"], 0)
            self.assertEqual({s: m['hookline_ingest_files{state="%s"}' % s]
                              for s in ("waiting", "processing")},
                             {"waiting": 1, "processing": 1})
            self.assertGreaterEqual(m['hookline_ingest_oldest_age_seconds{state="waiting"}'], 60)
            check_metrics(self, text)
        finally:
            hold.clear()

        def drained():
            m = self.server.metrics()
            return m if m['hookline_queue_deliveries{state="pending"}'] == 0 else None
        m = wait_for(drained, timeout=30, what="the held deliveries answered")
        self.assertEqual(m['hookline_queue_oldest_age_seconds{state="pending"}'], 0)
        self.assertEqual(m["hookline_queue_depth"], 2)  # the failing ones wait an hour
        self.app.ok("DELETE", "webhooks/%s" % gone["uid"])
        m = self.server.metrics()
        self.assertEqual(m['hookline_webhooks{state="disabled"}'], 0)


# ---- the examples ----

FUNCS_AND_WORDS = {"and", "or", "unless", "offset", "bool", "by", "without", "on", "ignoring",
                   "group_left", "group_right", "inf", "nan", "atan2"}


def metric_names(expr):
    """The metric names a PromQL expression reads: what is left once strings, label matchers,
    ranges, grouping clauses, functions (a name followed by "("), keywords and numbers are
    taken out."""
    e = re.sub(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`', '""', expr)
    e = re.sub(r"\{[^}]*\}", " ", e)
    e = re.sub(r"\[[^\]]*\]", " ", e)
    e = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", e)
    names = []
    for mt in re.finditer(r"(?<![\w.])[a-zA-Z_:][a-zA-Z0-9_:]*", e):
        rest = e[mt.end():].lstrip()
        if rest.startswith("(") or mt.group(0).lower() in FUNCS_AND_WORDS:
            continue
        names.append(mt.group(0))
    return names


def dashboard_exprs(dash):
    """Every PromQL expression of a Grafana dashboard: its panels' targets (rows' panels too)
    and its query variables."""
    out = []

    def panels(ps):
        for p in ps:
            out.extend(t["expr"] for t in p.get("targets", []) if t.get("expr"))
            panels(p.get("panels", []))
    panels(dash.get("panels", []))
    for v in dash.get("templating", {}).get("list", []):
        q = v.get("query")
        if v.get("type") == "query" and isinstance(q, dict) and q.get("query"):
            out.append(q["query"])
    return out


class Examples(ServerTest):
    """What it proves: examples/alerts.yml loads in Prometheus (promtool check rules) and its
    alerts fire on the series they are about and not otherwise (promtool test rules with
    tests/e2e/alerts_test.yml); every expression of examples/grafana-dashboard.json and of the
    alerts parses as PromQL (promtool check rules over them as recording rules) and names only
    metrics a live hookline exports (its /metrics' families; a histogram's _bucket, _sum and
    _count). The name check is tried on expressions naming a metric hookline lacks, which it
    must refuse. The README's table of metrics lists exactly the families /metrics has."""

    def exported(self):
        text = scrape(self.server)
        names = set()
        for fam, kind in re.findall(r"^# TYPE (\S+) (\S+)$", text, re.M):
            names.add(fam)
            if kind == "histogram":
                names.update(fam + s for s in ("_bucket", "_sum", "_count"))
        return names

    def check_rules_file(self, path):
        r = subprocess.run([promtool(), "check", "rules", path], capture_output=True,
                           timeout=60)
        self.assertEqual(r.returncode, 0, (r.stdout + r.stderr).decode())

    def check_exprs(self, exprs, exported, what):
        self.assertTrue(exprs, what + " has expressions")
        for e in exprs:
            names = metric_names(e)
            self.assertTrue(names, "%s: %s names no metric" % (what, e))
            self.assertEqual([n for n in names if n not in exported], [], "%s: %s" % (what, e))
        # Each one parses: as recording rules in a rules file promtool loads.
        rules = {"groups": [{"name": "parse", "rules": [
            {"record": "check:expr_%d" % i,
             "expr": e.replace("$__rate_interval", "5m").replace("$__interval", "1m")}
            for i, e in enumerate(exprs)]}]}
        with tempfile.NamedTemporaryFile("w", suffix=".yml", delete=False) as f:
            yaml.safe_dump(rules, f)
        try:
            self.check_rules_file(f.name)
        finally:
            os.unlink(f.name)

    def test_name_check_refuses_unknown_metrics(self):
        exported = self.exported()
        self.assertEqual(metric_names('sum by (route) (rate(hookline_http_requests_total'
                                      '{status=~"5.."}[5m])) / 2 > bool 1e3'),
                         ["hookline_http_requests_total"])
        self.assertEqual(metric_names("histogram_quantile(0.99, sum by (le) (rate("
                                      "hookline_delivery_lag_seconds_bucket[$__rate_interval]"
                                      ")))"), ["hookline_delivery_lag_seconds_bucket"])
        for e in ("hookline_attempts_totl", "rate(webhooks_sent_total[5m])",
                  "hookline_queue_depth + up"):
            self.assertTrue([n for n in metric_names(e) if n not in exported], e)

    def test_alert_rules(self):
        path = os.path.join(ROOT, "examples", "alerts.yml")
        self.check_rules_file(path)
        with open(path) as f:
            groups = yaml.safe_load(f)["groups"]
        exprs = [r["expr"] for g in groups for r in g["rules"]]
        self.assertTrue(all("alert" in r for g in groups for r in g["rules"]))
        self.check_exprs(exprs, self.exported(), "examples/alerts.yml")
        r = subprocess.run([promtool(), "test", "rules", "alerts_test.yml"],
                           cwd=os.path.dirname(os.path.abspath(__file__)), capture_output=True,
                           timeout=120)
        self.assertEqual(r.returncode, 0, (r.stdout + r.stderr).decode())

    def test_readme_lists_every_metric(self):
        with open(os.path.join(ROOT, "README.md"), encoding="utf-8") as f:
            readme = f.read()
        section = readme.split("### Metrics\n", 1)[1].split("\n#", 1)[0]
        listed = set(re.findall(r"^\| `(hookline_\w+)` \|", section, re.M))
        families = set(re.findall(r"^# TYPE (\S+) ", scrape(self.server), re.M))
        self.assertEqual(listed, families, "README Alerting > Metrics against GET /metrics")

    def test_grafana_dashboard(self):
        with open(os.path.join(ROOT, "examples", "grafana-dashboard.json")) as f:
            dash = json.load(f)
        self.assertTrue(dash.get("title"))
        self.check_exprs(dashboard_exprs(dash), self.exported(), "grafana-dashboard.json")


if __name__ == "__main__":
    main()
