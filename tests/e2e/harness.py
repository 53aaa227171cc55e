"""End-to-end harness: the real build/hookline on a loopback port, real HTTP both ways.

Every test starts its own server with a temporary database, speaks HTTP to it with http.client,
and receives deliveries with real HTTP servers on 127.0.0.1. Nothing is mocked.

Skips. A case that cannot run because a tool or service is missing calls need(); main() then
exits SKIP_EXIT (77, registered with ctest as SKIP_RETURN_CODE) instead of 0, so that a suite in
which anything did not run is never reported as passed. Under HL_REQUIRE_ALL=1 (make test, whose
set-up installs PostgreSQL, node and npm) a missing piece is a failure instead.
"""
import atexit
import base64
import hashlib
import hmac
import http.client
import http.server
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import unittest
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import contract as _contract_module  # noqa: E402

BIN = os.environ.get("HOOKLINE_BIN") or os.path.join(
    os.path.dirname(__file__), "..", "..", "build", "hookline")
SOURCE_DIR = os.environ.get("HL_SOURCE_DIR") or os.path.join(os.path.dirname(__file__), "..", "..")


# HOOKLINE_TEST_BACKEND=postgres runs every server on a fresh database of the PostgreSQL server at
# HOOKLINE_TEST_PG_URL (scripts/with-postgres.sh starts one).
WANT_PG = os.environ.get("HOOKLINE_TEST_BACKEND") == "postgres"
PG_URL = os.environ.get("HOOKLINE_TEST_PG_URL") if WANT_PG else None

# The exit status of a suite in which some case did not run (ctest's SKIP_RETURN_CODE).
SKIP_EXIT = 77
REQUIRE_ALL = os.environ.get("HL_REQUIRE_ALL") == "1"


def need(available, what):
    """Skips the calling test (or setUpClass/setUpModule) unless available; what names the
    missing tool or service. Under HL_REQUIRE_ALL=1 it fails instead: make test provides them."""
    if available:
        return
    if REQUIRE_ALL:
        raise AssertionError("missing: %s (HL_REQUIRE_ALL=1 requires it)" % what)
    raise unittest.SkipTest("missing: " + what)


def pg_admin(sql, url=None):
    """Runs one SQL statement with psql on the test PostgreSQL server."""
    subprocess.run(["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", url or PG_URL, "-c", sql],
                   check=True, capture_output=True, timeout=60)


def pg_database(template=None):
    """Creates a database on the test PostgreSQL server, empty or a copy of the database at URL
    template; returns its URL."""
    name = "hl_" + uuid.uuid4().hex[:16]
    pg_admin("CREATE DATABASE " + name +
             (" TEMPLATE " + template.rsplit("/", 1)[1] if template else ""))
    return PG_URL.rsplit("/", 1)[0] + "/" + name


# The database every ServerTest case starts from: `hookline db init` and `apps create test` run
# once per suite process, into a template that each case's own database is a copy of (SQLite: the
# file; PostgreSQL: CREATE DATABASE ... TEMPLATE). Every case still gets a database of its own,
# in the state those two commands leave; what the copy saves is running them again per case. A
# Server made any other way starts from an empty database, as before.
_template = {}


def template_database():
    """(database, the app's --json as a dict) of the suite's template, made on first use."""
    if not _template:
        tmp = tempfile.mkdtemp(prefix="hookline-template-")
        atexit.register(shutil.rmtree, tmp, True)
        db = pg_database() if PG_URL else os.path.join(tmp, "hookline.db")
        for args in (["db", "init"], ["apps", "create", "test", "--json"]):
            r = subprocess.run([BIN] + args + ["--database", db], capture_output=True, text=True,
                               timeout=60)
            if r.returncode != 0:
                raise AssertionError("hookline %s failed: %s" % (args, r.stderr))
        _template.update(db=db, app=json.loads(r.stdout))
    return _template["db"], _template["app"]


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def wait_for(pred, timeout=10.0, interval=0.01, what="condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        v = pred()
        if v:
            return v
        time.sleep(interval)
    raise AssertionError("timed out waiting for " + what)


def check_response(method, path, status, headers, body):
    """Checks one answer of hookline serve against openapi/hookline.yaml (contract.py); raises
    AssertionError when the document does not describe it. headers: lower-case names. Every
    Server.request goes through here; a test that talks to the server by other means calls it
    itself."""
    c = _contract_module.contract(SOURCE_DIR)
    if c is not None:
        c.check_response(method, path, status, headers, body)


def check_delivery(headers, body):
    """Checks one request hookline sent to a receiver against the document's webhooks; raises
    AssertionError when they do not describe it. headers: lower-case names."""
    c = _contract_module.contract(SOURCE_DIR)
    if c is not None:
        c.check_delivery(headers, body)


class Response:
    def __init__(self, status, headers, body):
        self.status = status
        self.headers = headers
        self.body = body

    def json(self):
        return json.loads(self.body) if self.body else None

    def __repr__(self):
        return "Response(%d, %r)" % (self.status, self.body[:300])


class Server:
    """One hookline serve process."""

    def __init__(self, tmpdir=None, mode="development", extra_args=(), env=None, db=None,
                 from_template=False):
        """from_template: the database is a copy of template_database()'s (db and tmpdir not
        given), whose app create_app() hands out the first time it is asked for "test"."""
        self.own_tmp = tmpdir is None
        self.tmp = tmpdir or tempfile.mkdtemp(prefix="hookline-e2e-")
        self.own_pg_db = db is None and PG_URL is not None
        self.template_app = None
        if from_template:
            tdb, self.template_app = template_database()
            db = pg_database(tdb) if PG_URL else os.path.join(self.tmp, "hookline.db")
            if not PG_URL:
                shutil.copyfile(tdb, db)
        self.db = db or (pg_database() if PG_URL else os.path.join(self.tmp, "hookline.db"))
        # Where serve keeps uploads and the development key: beside a SQLite file, in a folder
        # named after it; the same place (by --data-dir) on PostgreSQL.
        self.data_dir = os.path.join(self.tmp, "hookline-data")
        self.mode = mode
        self.extra_args = list(extra_args)
        self.env = dict(os.environ)
        self.env.setdefault("HOOKLINE_RETRY_SCHEDULE", "0,100ms,200ms,400ms")
        self.env.setdefault("HOOKLINE_TIMEOUT", "2s")
        if PG_URL:
            # A node does not drop leases when it starts (other nodes' are live): keep them short
            # for the tests that kill a server mid-delivery. Uploads and the development key go
            # where a SQLite file would have put them.
            self.env.setdefault("HOOKLINE_LEASE", "3s")
            self.env.setdefault("HOOKLINE_INGEST_LEASE", "5s")
            self.env.setdefault("HOOKLINE_DATA_DIR", self.data_dir)
        if env:
            self.env.update(env)
        self.proc = None
        self.port = None
        self.log_path = os.path.join(self.tmp, "server.log")

    def cli(self, *args, check=True):
        r = subprocess.run([BIN] + list(args) + ["--database", self.db], capture_output=True,
                           text=True, env=self.env, timeout=60)
        if check and r.returncode != 0:
            raise AssertionError("hookline %s failed: %s" % (args, r.stderr))
        return r

    def create_app(self, name="test"):
        if name == "test" and self.template_app:
            app, self.template_app = self.template_app, None
            return dict(app)
        # apps and keys need a database that exists: make it (as serve would) the first time
        self.cli("db", "init")
        r = self.cli("apps", "create", name, "--json")
        return json.loads(r.stdout)

    def start(self, port=None):
        self.port = port or self.port or free_port()
        self.logf = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            [BIN, "serve", "--listen", "127.0.0.1:%d" % self.port, "--database", self.db,
             "--mode", self.mode] + self.extra_args,
            stdout=self.logf, stderr=subprocess.STDOUT, env=self.env)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError("server exited: %s" % self.log())
            try:
                if self.request("GET", "/healthz").status == 200:
                    return self
            except OSError:
                pass
            time.sleep(0.02)
        raise AssertionError("server did not start: %s" % self.log())

    def log(self):
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def stop(self, sig=signal.SIGTERM, timeout=20):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                rc = self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                raise AssertionError("server did not stop on signal %d" % sig)
            self.logf.close()
            if rc < 0 and -rc != sig:
                # died of another signal (SIGABRT: a sanitizer or a library's abort): its output
                # goes to the test's, since the caller's cleanup() removes the log
                print("server on port %d died of signal %d; its log ends:\n%s"
                      % (self.port, -rc, self.log()[-3000:]), file=sys.stderr)
            return rc
        return None

    def kill(self):
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
            self.logf.close()

    def cleanup(self):
        self.kill()
        if self.own_tmp:
            shutil.rmtree(self.tmp, ignore_errors=True)
        if self.own_pg_db:
            pg_admin("DROP DATABASE IF EXISTS %s WITH (FORCE)" % self.db.rsplit("/", 1)[1])

    def request(self, method, path, body=None, key=None, headers=None, raw=None, timeout=30,
                validate=True):
        """One request; its answer is checked against the OpenAPI document (check_response)
        unless validate is False, which only the contract's own tests use."""
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        h = {}
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            h["Content-Type"] = "application/json"
        if raw is not None:
            data = raw
        if key:
            h["Authorization"] = "Bearer " + key
        if headers:
            h.update(headers)
        conn.request(method, path, body=data, headers=h)
        r = conn.getresponse()
        out = Response(r.status, {k.lower(): v for k, v in r.getheaders()}, r.read())
        conn.close()
        if validate:
            check_response(method, path, out.status, out.headers, out.body)
        return out

    def metrics(self):
        """The samples of GET /metrics as {name (with labels): value}."""
        r = self.request("GET", "/metrics")
        assert r.status == 200, r
        assert r.headers["content-type"].startswith("text/plain"), r.headers
        out = {}
        for line in r.body.decode().splitlines():
            if line and not line.startswith("#"):
                name, value = line.rsplit(" ", 1)
                out[name] = float(value)
        return out


class App:
    """An app on a server, with helpers for its API."""

    def __init__(self, server, info):
        self.server = server
        self.uid = info["appUid"]
        self.key = info["apiKey"]
        self.key_id = info.get("keyId")

    def path(self, rest):
        return "/api/v1/appuid/%s/%s" % (self.uid, rest.lstrip("/"))

    def call(self, method, rest, body=None, **kw):
        return self.server.request(method, self.path(rest), body=body, key=self.key, **kw)

    def ok(self, method, rest, body=None, status=None, **kw):
        r = self.call(method, rest, body, **kw)
        want = status or (201 if method == "POST" else 204 if method == "DELETE" else 200)
        if r.status != want:
            raise AssertionError("%s %s -> %d (want %d): %s" % (method, rest, r.status, want,
                                                                r.body[:500]))
        return r.json()

    def webhook(self, url, entities=("agent", "context", "contextfile"), **extra):
        body = {"url": url, "entities": list(entities), "active": True}
        body.update(extra)
        return self.ok("POST", "webhooks", body)


class Receiver:
    """A real HTTP receiver on 127.0.0.1 that records every request.

    behave(n, req) -> (status, body, headers, delay_s) decides the answer to the n-th request
    (0-based) of a path; the default answers 200 {"received":true}.

    Every request is checked against the OpenAPI document's webhooks (check_delivery); what does
    not follow them is kept in self.invalid, which ServerTest's tearDown fails on. validate=False
    is for a receiver of something other than hookline's deliveries.
    """

    def __init__(self, behave=None, validate=True):
        self.invalid = []
        self.requests = []
        self.lock = threading.Condition()
        self.behave = behave or (lambda n, req: (200, b'{"received":true}', {}, 0))
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                req = {"path": self.path, "headers": {k.lower(): v for k, v in
                                                      self.headers.items()},
                       "body": body, "time": time.time()}
                with receiver.lock:
                    n = len([r for r in receiver.requests if r["path"] == self.path])
                    receiver.requests.append(req)
                    receiver.lock.notify_all()
                if validate:
                    try:
                        check_delivery(req["headers"], body)
                    except AssertionError as e:
                        receiver.invalid.append(str(e))
                status, rbody, rheaders, delay = receiver.behave(n, req)
                if delay:
                    time.sleep(delay)
                try:
                    self.send_response(status)
                    for k, v in rheaders.items():
                        self.send_header(k, v)
                    self.send_header("Content-Length", str(len(rbody)))
                    self.end_headers()
                    self.wfile.write(rbody)
                except OSError:
                    pass

            def log_message(self, *a):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def url(self, path="/hook"):
        return "http://127.0.0.1:%d%s" % (self.port, path)

    def bodies(self, path=None):
        with self.lock:
            return [json.loads(r["body"]) for r in self.requests
                    if path is None or r["path"] == path]

    def wait_count(self, n, path=None, timeout=15):
        def enough():
            with self.lock:
                return len([r for r in self.requests if path is None or r["path"] == path]) >= n
        wait_for(enough, timeout, what="%d requests at %s" % (n, path))
        with self.lock:
            return [r for r in self.requests if path is None or r["path"] == path]

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


def sign_hex(secret, body):
    return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def sign_std(secret, msg_id, ts, body):
    key = base64.b64decode(secret[len("whsec_"):])
    mac = hmac.new(key, ("%s.%s." % (msg_id, ts)).encode() + body, hashlib.sha256).digest()
    return "v1," + base64.b64encode(mac).decode()


def check_signed(test, req, secret):
    """Asserts that a received request carries valid signatures of both schemes under secret."""
    h, body = req["headers"], req["body"]
    test.assertEqual(h.get("content-type"), "application/json")
    test.assertEqual(h.get("x-webhook-signature"), "sha256=" + sign_hex(secret, body))
    env = json.loads(body)
    test.assertEqual(h.get("x-webhook-event-id"), env["eventId"])
    test.assertEqual(h.get("x-webhook-timestamp"), env["timestamp"])
    test.assertEqual(h.get("webhook-id"), env["eventId"])
    ts = h.get("webhook-timestamp")
    test.assertTrue(ts and ts.isdigit() and abs(int(ts) - time.time()) < 300)
    sigs = h.get("webhook-signature", "").split(" ")
    test.assertIn(sign_std(secret, env["eventId"], ts, body), sigs)


class ServerTest(unittest.TestCase):
    """Base class: self.server started with one app, self.app; cleaned up after each test."""

    mode = "development"
    server_args = ()
    server_env = None

    def setUp(self):
        self.server = Server(mode=self.mode, extra_args=self.server_args, env=self.server_env,
                             from_template=True)
        self.app = App(self.server, self.server.create_app())
        self.server.start()
        self.receivers = []

    def tearDown(self):
        invalid = []
        for r in self.receivers:
            r.close()
            invalid += r.invalid
        rc = self.server.stop()
        log = self.server.log()
        self.server.cleanup()
        if rc not in (None, 0):
            raise AssertionError("server exited with %s: %s" % (rc, log[-3000:]))
        for bad in ("AddressSanitizer", "runtime error:", "LeakSanitizer", "ThreadSanitizer"):
            if bad in log:
                raise AssertionError("sanitizer report in server log:\n" + log[-6000:])
        if invalid:
            raise AssertionError("%d deliveries do not follow the document:\n%s"
                                 % (len(invalid), "\n".join(invalid[:3])))

    def receiver(self, behave=None):
        r = Receiver(behave)
        self.receivers.append(r)
        return r


def contract_status():
    """Prints what was checked against the OpenAPI document. Returns 1 when something did not
    follow it (even if the test that met it went on), SKIP_EXIT when nothing could be checked
    (the modules are missing: 1 under HL_REQUIRE_ALL), else 0."""
    if _contract_module.MISSING:
        print("\nresponses and deliveries were NOT checked against openapi/hookline.yaml: "
              "missing %s" % _contract_module.MISSING, file=sys.stderr)
        return 1 if REQUIRE_ALL else SKIP_EXIT
    c = _contract_module.contract(SOURCE_DIR)
    line, failures = c.report()
    print("\n" + line, file=sys.stderr)
    for f in failures[:10]:
        print("  NOT IN THE DOCUMENT: " + f, file=sys.stderr)
    return 1 if failures else 0


def exit_status(result):
    """0 when every case ran and passed, SKIP_EXIT when none failed but some did not run (1
    under HL_REQUIRE_ALL), 1 otherwise; a run of no case at all is a failure too. Then what
    contract_status() says."""
    status = _exit_status(result)
    checked = contract_status()
    return status if status == 1 or checked == 0 else checked


def _exit_status(result):
    if not result.wasSuccessful():
        return 1
    if result.skipped:
        cases = len([t for t, _ in result.skipped if isinstance(t, unittest.TestCase)])
        print("\nnot everything ran (%d skipped, %d run):" % (len(result.skipped),
                                                           result.testsRun - cases),
              file=sys.stderr)
        for test, reason in result.skipped:
            print("  SKIPPED %s: %s" % (test, reason), file=sys.stderr)
        return 1 if REQUIRE_ALL else SKIP_EXIT
    if result.testsRun == 0:
        print("no test ran", file=sys.stderr)
        return 1
    return 0


def sqlite_only(why):
    """Marks a test method or class whose path is the same on both backends up to the store, so
    that its PostgreSQL run would repeat the SQLite one: it runs on SQLite only. why names what
    covers the PostgreSQL store code it reaches (store_test, plans_test, another e2e case), so
    that the PostgreSQL coverage is kept there, not lost. main() lists what it left out."""
    def mark(obj):
        obj.sqlite_only = why
        return obj
    return mark


class _Loader(unittest.TestLoader):
    """The default loader; under HOOKLINE_TEST_BACKEND=postgres it leaves out sqlite_only cases
    (not a skip: they ran, or run, in the suite's SQLite copy), naming each in left_out."""

    def __init__(self):
        super().__init__()
        self.left_out = []

    def getTestCaseNames(self, cls):
        names = super().getTestCaseNames(cls)
        if not WANT_PG:
            return names
        keep = []
        for n in names:
            why = getattr(getattr(cls, n), "sqlite_only", None) or getattr(cls, "sqlite_only",
                                                                          None)
            if why:
                self.left_out.append("%s.%s (%s)" % (cls.__name__, n, why))
            else:
                keep.append(n)
        return keep


def main():
    """Runs the module's tests; exits with exit_status(). Under HOOKLINE_TEST_BACKEND=postgres
    without a server (HOOKLINE_TEST_PG_URL) nothing runs: that is a skip, never a quiet run on
    SQLite."""
    if WANT_PG and not PG_URL:
        print("HOOKLINE_TEST_BACKEND=postgres but HOOKLINE_TEST_PG_URL is not set: run under "
              "scripts/with-postgres.sh", file=sys.stderr)
        sys.exit(1 if REQUIRE_ALL else SKIP_EXIT)
    loader = _Loader()
    prog = unittest.main(verbosity=2, exit=False, testLoader=loader)
    if loader.left_out:
        print("\nleft to the SQLite run (same path up to the store): %d cases" %
              len(loader.left_out), file=sys.stderr)
        for case in loader.left_out:
            print("  SQLITE ONLY " + case, file=sys.stderr)
    sys.exit(exit_status(prog.result))
