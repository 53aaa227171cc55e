"""The operator's view (issue 13, points 5 to 7): which commands create a database, where serve
keeps its data, errors that say what is missing, and logs one can search.

- apps and keys refuse a database that does not exist (a SQLite file that is not there, or a
  PostgreSQL database without hookline's schema) and create nothing; `db init` and serve create
  it. serve keeps uploads and the development key in a folder of its own beside the database.
- A port in use names the OS error and how to choose another; a missing argument is named;
  `keys list --json` prints one array, as `apps list --json` does.
- --log-format json writes one JSON object per line (time, level, message, fields); every API
  request is logged with its method, route template, status, duration and app, never its key,
  secret or body; the dispatcher names deliveries, webhooks and events by their public ids;
  --listen HOST:0 logs the port it got; libmicrohttpd's own messages stay out of info.
"""
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(__file__))
from harness import (BIN, PG_URL, App, Server, ServerTest, free_port, main, pg_admin,  # noqa: E402
                     pg_database, postgres_only, wait_for)

SANITIZER = ("AddressSanitizer", "runtime error:", "LeakSanitizer")


def clean_env(**extra):
    env = {k: v for k, v in os.environ.items() if not k.startswith("HOOKLINE_")}
    env.update(extra)
    return env


def run(args, timeout=60, env=None):
    return subprocess.run([BIN] + args, capture_output=True, text=True, timeout=timeout,
                          env=env or clean_env(), stdin=subprocess.DEVNULL)


def pg_has_schema(url):
    r = subprocess.run(["psql", "-X", "-A", "-t", "-d", url, "-c",
                        "SELECT to_regclass('schema_version') IS NOT NULL"],
                       capture_output=True, text=True, timeout=60, check=True)
    return r.stdout.strip() == "t"


class Databases(unittest.TestCase):
    """Only serve and db init create a database."""

    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="hookline-op-")
        self.pg_url = None

    def tearDown(self):
        shutil.rmtree(self.tmp, ignore_errors=True)
        if self.pg_url:
            pg_admin("DROP DATABASE IF EXISTS %s WITH (FORCE)" % self.pg_url.rsplit("/", 1)[1])

    def missing_db(self):
        """A database hookline has not set up: a path that does not exist on SQLite, an empty
        database on PostgreSQL. Returns (url, created), created() telling whether anything of
        hookline's is there now."""
        if PG_URL:
            self.pg_url = pg_database()
            return self.pg_url, lambda: pg_has_schema(self.pg_url)
        db = os.path.join(self.tmp, "hookline.dbx")
        return db, lambda: sorted(os.listdir(self.tmp)) != []

    def test_apps_and_keys_refuse_a_missing_database(self):
        db, created = self.missing_db()
        for args in (["apps", "list"], ["apps", "list", "--json"], ["apps", "create", "x"],
                     ["keys", "list"], ["keys", "create", "app-x"], ["keys", "revoke", "key_x"]):
            with self.subTest(args=args):
                r = run(args + ["--database", db])
                self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
                self.assertEqual(r.stdout, "")
                self.assertIn("no hookline schema" if PG_URL else "no database at " + db,
                              r.stderr)
                self.assertIn("hookline db init --database", r.stderr)
                self.assertFalse(created(), "%s created the database" % args)
                for bad in SANITIZER:
                    self.assertNotIn(bad, r.stderr)

    def test_an_empty_file_is_not_a_database(self):
        # on PostgreSQL, an empty database: the test above
        db = PG_URL and pg_database() or os.path.join(self.tmp, "empty.db")
        self.pg_url = PG_URL and db
        if not PG_URL:
            open(db, "w").close()
        r = run(["apps", "list", "--database", db])
        self.assertEqual(r.returncode, 1)
        self.assertIn("no hookline schema", r.stderr)
        if PG_URL:
            self.assertFalse(pg_has_schema(db))
        else:
            self.assertIn("%s is not a hookline database" % db, r.stderr)
            self.assertEqual(os.path.getsize(db), 0)

    def test_db_init_creates_it_and_apps_work_then(self):
        db, created = self.missing_db()
        r = run(["db", "init", "--database", db])
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("is ready", r.stdout)
        self.assertTrue(created())
        if not PG_URL:
            # the database alone: its data folder is serve's to make
            self.assertEqual(sorted(f for f in os.listdir(self.tmp)
                                    if not f.startswith("hookline.dbx")), [])
        app = json.loads(run(["apps", "create", "a", "--json", "--database", db]).stdout)
        listed = json.loads(run(["apps", "list", "--json", "--database", db]).stdout)
        self.assertEqual([a["appUid"] for a in listed], [app["appUid"]])
        # again: nothing to do, nothing lost
        self.assertEqual(run(["db", "init", "--database", db]).returncode, 0)
        listed = json.loads(run(["apps", "list", "--json", "--database", db]).stdout)
        self.assertEqual([a["appUid"] for a in listed], [app["appUid"]])

    @postgres_only("SQLite migrates under its one writer lock: no node holds a table")
    def test_an_upgrade_waiting_for_a_busy_table_fails_fast_and_changes_nothing(self):
        """PostgreSQL: a migration that must wait for a lock a running node holds (the counters'
        backfill locks deliveries against writes; every migration records itself in
        schema_version) gives up after its lock_timeout with an error that says what to do,
        instead of queueing every writer of the live service behind it; nothing of it stays.
        Here the lock is an open transaction holding schema_version, which any migration's
        last statement needs."""
        self.pg_url = pg_database()
        pg_admin("CREATE TABLE schema_version(version BIGINT PRIMARY KEY,"
                 " applied_at BIGINT NOT NULL)", self.pg_url)
        holder = subprocess.Popen(["psql", "-X", "-q", "-tA", "-d", self.pg_url],
                                  stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        try:
            holder.stdin.write("BEGIN; LOCK TABLE schema_version IN EXCLUSIVE MODE;"
                               " SELECT 'held';\n")
            holder.stdin.flush()
            self.assertEqual(holder.stdout.readline().strip(), "held")
            # without a lock timeout the migration waits for the holder (up to its 300 s
            # statement timeout): the bound here is only how long the test waits for an answer
            try:
                r = run(["db", "init", "--database", self.pg_url], timeout=60)
            except subprocess.TimeoutExpired:
                self.fail("db init waited for the lock instead of giving up")
            self.assertNotEqual(r.returncode, 0)
            self.assertIn("migration to schema 1 failed: it waited 5s for a table lock that"
                          " running hookline nodes hold; it was not applied (the migrations"
                          " before it were, each on its own): run the upgrade when the database"
                          " is quiet", r.stderr)
            self.assertIn("or retry it (", r.stderr)  # PostgreSQL's own words follow
            self.assertNotIn("Sanitizer", r.stderr)
            # migration 1 rolled back whole: none of its tables, no version recorded
            holder.stdin.write("SELECT count(*) FROM schema_version;"
                               " SELECT to_regclass('apps') IS NULL;\n")
            holder.stdin.flush()
            self.assertEqual([holder.stdout.readline().strip() for _ in range(2)], ["0", "t"])
            holder.stdin.write("COMMIT;\n")
            holder.stdin.flush()
        finally:
            holder.stdin.close()
            holder.wait(timeout=60)
            holder.stdout.close()
        # the lock gone, the same upgrade runs
        r = run(["db", "init", "--database", self.pg_url])
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertTrue(pg_has_schema(self.pg_url))

    def test_db_usage(self):
        for args, want in ((["db"], "missing what to do: db init"),
                           (["db", "drop"], "unknown subcommand 'drop'")):
            r = run(args + ["--database", os.path.join(self.tmp, "x.db")])
            self.assertEqual(r.returncode, 2)
            self.assertIn(want, r.stderr)
        self.assertEqual(os.listdir(self.tmp), [])

    def test_serve_keeps_its_data_in_a_folder_of_its_own(self):
        # SQLite: two databases in one folder, each with its own data folder beside it, and
        # nothing else of serve's in the shared folder (which serve makes). PostgreSQL: no file
        # to be beside, so ./hookline-data.
        shared = os.path.join(self.tmp, "shared")
        names = {"z.db": "z-data", "y.sqlite": "y-data"}
        for name in (["pg"] if PG_URL else names):
            db = pg_database() if PG_URL else os.path.join(shared, name)
            self.pg_url = PG_URL and db
            log = open(os.path.join(self.tmp, name + ".log"), "w+")
            port = free_port()
            p = subprocess.Popen([BIN, "serve", "--listen", "127.0.0.1:%d" % port, "--database",
                                  db], cwd=self.tmp, stdout=log, stderr=subprocess.STDOUT,
                                 env=clean_env())
            try:
                wait_for(lambda: p.poll() is None and os.path.exists(os.path.join(
                    self.tmp, "hookline-data" if PG_URL else os.path.join("shared", names[name]),
                    "dev-app-uid")), 30, 0.05, "the development app")
                p.send_signal(signal.SIGTERM)
                self.assertEqual(p.wait(timeout=30), 0)
            finally:
                if p.poll() is None:
                    p.kill()
                    p.wait()
                log.close()
        if PG_URL:
            folders = {os.path.join(self.tmp, "hookline-data")}
        else:
            extra = sorted(f for f in os.listdir(shared)
                           if not any(f.startswith(n) for n in names))
            self.assertEqual(extra, sorted(names.values()))
            folders = {os.path.join(shared, f) for f in names.values()}
        for folder in folders:
            self.assertEqual(sorted(os.listdir(folder)),
                             ["dev-api-key", "dev-app-uid", "files", "uploads"])


class Errors(unittest.TestCase):
    """Errors that name what is wrong."""

    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="hookline-op-")
        self.db = PG_URL and pg_database() or os.path.join(self.tmp, "h.db")
        self.assertEqual(run(["db", "init", "--database", self.db]).returncode, 0)

    def tearDown(self):
        shutil.rmtree(self.tmp, ignore_errors=True)
        if PG_URL:
            pg_admin("DROP DATABASE IF EXISTS %s WITH (FORCE)" % self.db.rsplit("/", 1)[1])

    def test_missing_arguments_are_named(self):
        for args, want in (
                (["apps"], "missing what to do: apps create NAME or apps list"),
                (["apps", "create"], "missing the NAME of the app to create"),
                (["apps", "remove"], "unknown subcommand 'remove'"),
                (["keys"], "missing what to do: keys create APP_UID"),
                (["keys", "create"], "missing the APP_UID of the app to make a key for"),
                (["keys", "revoke"], "missing the KEY_ID of the key to revoke"),
                (["keys", "rotate"], "unknown subcommand 'rotate'")):
            with self.subTest(args=args):
                r = run(args + ["--database", self.db])
                self.assertEqual(r.returncode, 2)
                self.assertIn(want, r.stderr)

    def test_unknown_app_is_named(self):
        for args in (["keys", "list", "app-nope"], ["keys", "create", "app-nope"]):
            with self.subTest(args=args):
                r = run(args + ["--database", self.db])
                self.assertEqual(r.returncode, 1)
                self.assertIn("app-nope", r.stderr)
                self.assertIn("no such app", r.stderr)

    def test_list_json_is_one_array_for_apps_and_keys(self):
        a = json.loads(run(["apps", "create", "a", "--json", "--database", self.db]).stdout)
        run(["keys", "create", a["appUid"], "--database", self.db])
        for args in (["apps", "list"], ["keys", "list"], ["keys", "list", a["appUid"]]):
            with self.subTest(args=args):
                r = run(args + ["--json", "--database", self.db])
                self.assertEqual(r.returncode, 0, r.stderr)
                got = json.loads(r.stdout)
                self.assertIsInstance(got, list)
                self.assertEqual(len(got), 1 if args[0] == "apps" else 2)
        keys = json.loads(run(["keys", "list", "--json", "--database", self.db]).stdout)
        self.assertEqual({k["appUid"] for k in keys}, {a["appUid"]})
        self.assertEqual({k["revoked"] for k in keys}, {False})

    def test_port_in_use_says_why_and_what_to_do(self):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        s.listen(1)
        try:
            addr = "127.0.0.1:%d" % s.getsockname()[1]
            r = run(["serve", "--listen", addr, "--database", self.db, "--mode", "production",
                     "--data-dir", os.path.join(self.tmp, "data")])
        finally:
            s.close()
        self.assertEqual(r.returncode, 1)
        self.assertIn("cannot listen on %s: Address already in use" % addr, r.stderr)
        self.assertIn("--listen 127.0.0.1:8081", r.stderr)
        self.assertIn("make run LISTEN=127.0.0.1:8081", r.stderr)


def json_lines(text):
    """Every line of text as a JSON object; fails on a line that is not one."""
    out = []
    for line in text.splitlines():
        if not line.strip():
            continue
        try:
            v = json.loads(line)
        except ValueError:
            raise AssertionError("not a JSON log line: %r" % line)
        if not isinstance(v, dict) or set(v) != {"time", "level", "message", "fields"}:
            raise AssertionError("not a log object: %r" % line)
        out.append(v)
    return out


class JsonLogs(ServerTest):
    server_args = ("--log-format", "json")

    def setUp(self):
        super().setUp()
        # The development app's banner is for a person and goes to stdout; a harness server
        # has an app already, so there is none: every line is the log's.
        self.rx = self.receiver(lambda n, req: (500 if n == 0 else 200, b"ok", {}, 0))

    def lines(self):
        return json_lines(self.server.log())

    def test_requests_and_attempts_by_public_ids(self):
        w = self.app.webhook(self.rx.url("/h"), entities=["agent"])
        agent = self.app.ok("POST", "agents", {"agentName": "A", "externalTenantId": "t-1",
                                               "instructions": "very-secret-instructions"})
        self.rx.wait_count(2, "/h")
        self.app.ok("GET", "webhooks/" + w["uid"])
        self.assertEqual(self.app.call("GET", "webhooks/webhook-nope").status, 404)
        self.assertEqual(self.server.request("GET", self.app.path("webhooks")).status, 401)
        dlv = self.app.ok("GET", "webhooks/%s/deliveries" % w["uid"])["data"][0]["id"]
        wait_for(lambda: len([x for x in self.lines()
                              if x["message"].startswith("attempt")]) >= 2,
                 what="both attempts logged")
        lines = self.lines()
        for x in lines:
            self.assertRegex(x["time"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
            self.assertIn(x["level"], ("info", "warn", "error"))

        requests = [x["fields"] for x in lines if x["message"] == "request"]
        want = [("POST", "/api/v1/appuid/{appUid}/webhooks", 201, self.app.uid),
                ("POST", "/api/v1/appuid/{appUid}/agents", 201, self.app.uid),
                ("GET", "/api/v1/appuid/{appUid}/webhooks/{webhookUid}", 200, self.app.uid),
                ("GET", "/api/v1/appuid/{appUid}/webhooks/{webhookUid}", 404, self.app.uid),
                ("GET", "/api/v1/appuid/{appUid}/webhooks", 401, None),
                ("GET", "/api/v1/appuid/{appUid}/webhooks/{webhookUid}/deliveries", 200,
                 self.app.uid)]
        got = [(f["method"], f["route"], f["status"], f.get("app")) for f in requests]
        self.assertEqual(got, want)
        for f in requests:
            self.assertIsInstance(f["duration_ms"], (int, float))
            self.assertGreaterEqual(f["duration_ms"], 0)

        attempts = [x for x in lines if x["message"].startswith("attempt")]
        self.assertEqual([x["level"] for x in attempts], ["warn", "info"])
        for x in attempts:
            f = x["fields"]
            self.assertEqual((f["delivery"], f["webhook"]), (dlv, w["uid"]))
            self.assertRegex(f["event"], r"^evt_")
        self.assertEqual([x["fields"]["status"] for x in attempts], [500, 200])
        self.assertEqual([x["fields"]["attempt"] for x in attempts], [1, 2])

        text = self.server.log()
        for secret in (self.app.key, w["secret"], "very-secret-instructions", agent["uid"]):
            self.assertNotIn(secret, text)
        # no row numbers: ids are dlv_…, webhook-…, evt_…, app-…
        self.assertIsNone(re.search(r'"(delivery|webhook|event|app)":\d', text), text)

    def test_libmicrohttpd_stays_quiet(self):
        # Broken requests: a bad request line, a connection closed mid-headers, one closed
        # mid-body. Whatever libmicrohttpd has to say about them is debug, not info.
        for raw in (b"NONSENSE\r\n\r\n", b"GET /healthz HTTP/1.1\r\nHost: x",
                    b"POST /api/v1/appuid/%s/agents HTTP/1.1\r\nHost: x\r\n"
                    b"Content-Length: 100\r\n\r\n{\"a\"" % self.app.uid.encode()):
            c = socket.create_connection(("127.0.0.1", self.server.port))
            c.sendall(raw)
            c.shutdown(socket.SHUT_WR)
            c.settimeout(10)
            try:
                while c.recv(4096):
                    pass
            except OSError:
                pass
            c.close()
        self.assertEqual(self.server.request("GET", "/healthz").status, 200)
        for x in self.lines():
            self.assertNotIn("http:", x["message"])
            self.assertNotEqual(x["level"], "debug")


class ListenPort(unittest.TestCase):

    def test_port_zero_logs_the_port_bound(self):
        srv = Server()
        srv.port = 0
        try:
            srv.logf = open(srv.log_path, "ab")
            srv.proc = subprocess.Popen(
                [BIN, "serve", "--listen", "127.0.0.1:0", "--database", srv.db],
                stdout=srv.logf, stderr=subprocess.STDOUT, env=srv.env)
            m = wait_for(lambda: re.search(r"listening on 127\.0\.0\.1:(\d+) ", srv.log()),
                         20, 0.05, "the listening line")
            srv.port = int(m.group(1))
            self.assertNotEqual(srv.port, 0)
            self.assertEqual(srv.request("GET", "/healthz").status, 200)
            self.assertEqual(srv.stop(), 0)
        finally:
            srv.cleanup()


if __name__ == "__main__":
    main()
