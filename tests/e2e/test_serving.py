"""How `hookline serve` serves: requests that wait hold no HTTP thread, probes for orchestrators,
/metrics on its own address, upload leftovers, and the systemd unit in examples/.

- POST /webhooks/{uid}/test waits for its attempt with its connection suspended (parked), so any
  number of tests to an endpoint that never answers delays nobody else: with 4 HTTP threads, 24
  pending tests, and another app's requests and /healthz answered while every test is pending.
- /readyz answers 200 when the database answers and the dispatcher runs; /healthz is liveness.
- --metrics-listen moves /metrics to its own address; the API's then answers 404 for it.
- A start removes upload leftovers nobody has written for 10 minutes, and nothing newer: nodes
  share the data folder, and a fresh temporary file is another node's upload in progress.
- examples/hookline.service passes `systemd-analyze verify` and scores as hardened.
- A change waits for its group commit parked too: 200 concurrent POST /agents on 2 HTTP threads
  all get 201 and every one is in the event log; on 1 HTTP thread, while the database is locked,
  changes wait unanswered (no 2xx before the commit) and /healthz still answers; SIGTERM with
  changes waiting answers each once it has committed, and every acknowledged change is in the
  log.
"""
import http.client
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

sys.path.insert(0, os.path.dirname(__file__))
from harness import (BIN, PG_URL, SOURCE_DIR, App, Server, ServerTest, free_port,  # noqa: E402
                     main, need, wait_for)


class Blackhole:
    """A TCP listener on 127.0.0.1 that accepts connections and never answers."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(1024)
        self.port = self.sock.getsockname()[1]
        self.lock = threading.Lock()
        self.conns = []
        self.closed = False
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self):
        while True:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            with self.lock:
                if self.closed:
                    c.close()
                else:
                    self.conns.append(c)

    def url(self):
        return "http://127.0.0.1:%d/hook" % self.port

    def count(self):
        with self.lock:
            return len(self.conns)

    def hang_up(self):
        """Closes every connection, and every later one at once: the attempts fail."""
        with self.lock:
            self.closed = True
            for c in self.conns:
                c.close()

    def close(self):
        self.hang_up()
        self.sock.close()


class Calls:
    """Requests made in threads, each on its own connection, recording its answer."""

    def __init__(self):
        self.lock = threading.Lock()
        self.answers = []  # (status, json) or ("error", repr)
        self.threads = []

    def start(self, app, method, rest, body=None, timeout=120):
        def run():
            try:
                r = app.call(method, rest, body, timeout=timeout)
                out = (r.status, r.json())
            except (OSError, http.client.HTTPException) as e:
                out = ("error", repr(e))
            with self.lock:
                self.answers.append(out)
        t = threading.Thread(target=run, daemon=True)
        t.start()
        self.threads.append(t)

    def done(self):
        with self.lock:
            return list(self.answers)

    def join(self, timeout=120):
        for t in self.threads:
            t.join(timeout)
            if t.is_alive():
                raise AssertionError("a request never ended")
        return self.done()


class ParkedTests(ServerTest):
    """Tests to a blackhole: attempts stay in flight for the whole (long) timeout, so every test
    call stays pending until the blackhole hangs up."""
    server_args = ("--threads", "4", "--per-host", "64")
    # No retry comes due while a test runs: each answer carries exactly its one attempt, however
    # slowly a loaded machine gets to read it back.
    server_env = {"HOOKLINE_TIMEOUT": "60s", "HOOKLINE_RETRY_SCHEDULE": "0,1h"}
    N = 24

    def setUp(self):
        super().setUp()
        self.hole = Blackhole()
        self.addCleanup(self.hole.close)
        self.wh = self.app.webhook(self.hole.url(), entities=["agent"])

    def start_tests(self):
        calls = Calls()
        for _ in range(self.N):
            calls.start(self.app, "POST", "webhooks/%s/test" % self.wh["uid"])
        # Every test committed its delivery and its attempt is in flight: with the requests
        # parked, N attempts reach the blackhole; with N requests holding the 4 HTTP threads,
        # only 4 would.
        wait_for(lambda: self.hole.count() >= self.N, timeout=60,
                 what="%d test attempts in flight" % self.N)
        self.assertEqual(calls.done(), [], "a test answered before its attempt ended")
        return calls

    def test_pending_tests_delay_no_other_request(self):
        other = App(self.server, self.server.create_app("other"))
        calls = self.start_tests()
        # Another app's ordinary requests, and the probes, answer while every test is pending.
        for i in range(8):
            self.assertEqual(self.server.request("GET", "/healthz", timeout=30).status, 200)
            other.ok("POST", "agents", {"agentName": "a%d" % i, "externalTenantId": "t"},
                     timeout=30)
            other.ok("GET", "webhooks", timeout=30)
            self.app.ok("GET", "webhooks/" + self.wh["uid"], timeout=30)
        self.assertEqual(self.server.request("GET", "/readyz", timeout=30).status, 200)
        self.assertEqual(calls.done(), [], "a test answered before its attempt ended")
        # The attempts end (the blackhole hangs up): each test answers 200 with its delivery and
        # the attempt's record, as before.
        self.hole.hang_up()
        answers = calls.join()
        self.assertEqual(len(answers), self.N)
        for status, d in answers:
            self.assertEqual(status, 200, d)
            self.assertEqual(d["webhookUid"], self.wh["uid"])
            self.assertEqual(d["event"], "webhook.test")
            self.assertEqual(d["attempts"], 1, d)
            self.assertEqual(len(d["attemptLog"]), 1, d)
            self.assertIsNone(d["attemptLog"][0]["statusCode"], d)
            self.assertTrue(d["attemptLog"][0]["error"], d)
        self.assertEqual(len({d["id"] for _, d in answers}), self.N)

    def test_stop_answers_parked_tests(self):
        calls = self.start_tests()
        # SIGTERM with every test parked: each gets the delivery as it stands at once, and the
        # server stops cleanly once the attempts end (tearDown checks the sanitizers).
        self.server.proc.send_signal(signal.SIGTERM)
        answers = calls.join()
        self.hole.hang_up()
        self.assertEqual(self.server.stop(), 0, self.server.log()[-3000:])
        self.assertEqual(len(answers), self.N)
        for status, d in answers:
            self.assertEqual(status, 200, d)
            self.assertEqual(d["event"], "webhook.test")
            self.assertEqual(d["attempts"], 0, d)
            self.assertEqual(d["status"], "pending", d)
            self.assertEqual(d.get("attemptLog", []), [], d)


def post_agents(app, n):
    """n concurrent POST /agents, each on its own connection (Calls)."""
    calls = Calls()
    for i in range(n):
        calls.start(app, "POST", "agents", {"agentName": "a%d" % i, "externalTenantId": "t"})
    return calls


def created_agents(app):
    """The uids of every agent.created event in app's event log."""
    uids, cursor = [], None
    while True:
        rest = "events?event=agent.created&limit=100" + ("&cursor=" + cursor if cursor else "")
        page = app.ok("GET", rest)
        uids += [e["data"]["uid"] for e in page["data"]]
        cursor = page["nextCursor"]
        if not cursor:
            return uids


class CommitWaits(ServerTest):
    """Changes wait for the group commit with their connections suspended: a few HTTP threads
    serve any number of waiting changes."""
    server_args = ("--threads", "2")

    def test_many_writers_few_threads(self):
        answers = post_agents(self.app, 200).join()
        self.assertEqual(len(answers), 200)
        bad = [a for a in answers if a[0] != 201]
        self.assertEqual(bad, [], "%d of 200 changes not acknowledged" % len(bad))
        uids = {d["uid"] for _, d in answers}
        self.assertEqual(len(uids), 200)
        self.assertEqual(sorted(created_agents(self.app)), sorted(uids))


def answers_healthz(port):
    """1 when a new connection to port gets an answer to GET /healthz, else 0."""
    try:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        conn.request("GET", "/healthz")
        conn.getresponse().read()
        conn.close()
        return 1
    except (OSError, http.client.HTTPException):
        return 0


# SQLite only: PostgreSQL has no group commit, and a change commits on its request's HTTP thread
# there (nothing waits parked), so this class is not defined on it rather than skipped.
if not PG_URL:
    class CommitLocked(ServerTest):
        """The database's write lock is held from outside while changes come in: they wait for
        their commit without an answer, and the one HTTP thread still serves /healthz (a change
        holding it would keep every other request waiting for the lock too)."""
        server_args = ("--threads", "1")

        def lock_database(self):
            """Takes SQLite's write lock from outside: the server's next commit waits for it (up
            to its 5 s busy timeout)."""
            import sqlite3
            db = sqlite3.connect(self.server.db, isolation_level=None, timeout=30)
            db.execute("BEGIN IMMEDIATE")
            self.addCleanup(db.close)
            return db

        N = 12  # changes waiting at once on one HTTP thread

        def start_waiting(self, db):
            calls = post_agents(self.app, self.N)
            # The changes reach the server and wait for the lock; the server still answers. With
            # a change holding the HTTP thread, /healthz would wait for the lock too (and the
            # changes, 5 s later, fail).
            time.sleep(0.2)  # lets the thread take a change (not an assertion on time)
            self.assertEqual(self.server.request("GET", "/healthz", timeout=4).status, 200)
            self.assertEqual(calls.done(), [], "a change was answered before it could commit")
            return calls

        def test_waiting_changes_hold_no_thread(self):
            db = self.lock_database()
            calls = self.start_waiting(db)
            db.execute("COMMIT")
            answers = calls.join()
            self.assertEqual([a[0] for a in answers], [201] * self.N, answers)
            acked = sorted(d["uid"] for _, d in answers)
            self.assertEqual(sorted(created_agents(self.app)), acked)

        def test_stop_answers_waiting_changes_after_commit(self):
            db = self.lock_database()
            calls = self.start_waiting(db)
            # SIGTERM while every change waits: none is answered before its commit, and the server
            # waits for the commits before it goes.
            self.server.proc.send_signal(signal.SIGTERM)
            time.sleep(0.2)
            self.assertEqual(calls.done(), [], "a change was answered before it could commit")
            self.assertIsNone(self.server.proc.poll(), "the server left with changes waiting")
            # A connection made meanwhile gets no answer (closed at once, or refused).
            wait_for(lambda: not answers_healthz(self.server.port),
                     what="a connection made during the stop to go unanswered")
            db.execute("COMMIT")
            answers = calls.join()
            self.assertEqual(self.server.stop(), 0, self.server.log()[-3000:])
            self.assertEqual(len(answers), self.N)
            acked = [d["uid"] for status, d in answers if status == 201]
            self.assertEqual(len(acked), self.N, answers)
            # Every acknowledged change is in the log, read back by a fresh server.
            self.server.start()
            self.assertEqual(sorted(created_agents(self.app)), sorted(acked))


class TestDeadline(ServerTest):
    """A test whose attempt cannot start before its deadline (one attempt at a time to the
    blackhole) is answered at the deadline with the delivery as it stands."""
    server_args = ("--per-host", "1")
    server_env = {"HOOKLINE_TIMEOUT": "1s"}

    def test_answer_at_deadline(self):
        hole = Blackhole()
        self.addCleanup(hole.close)
        wh = self.app.webhook(hole.url(), entities=["agent"])
        calls = Calls()
        for _ in range(6):
            calls.start(self.app, "POST", "webhooks/%s/test" % wh["uid"])
        answers = calls.join()
        self.assertEqual(len(answers), 6)
        settled = [d for s, d in answers if s == 200 and d["attempts"] == 1]
        waiting = [d for s, d in answers if s == 200 and d["attempts"] == 0]
        self.assertEqual(len(settled) + len(waiting), 6, answers)
        # The first attempt ends within the timeout, before its test's deadline (timeout + 2 s);
        # the sixth cannot start before five timeouts have passed.
        self.assertGreaterEqual(len(settled), 1, answers)
        self.assertGreaterEqual(len(waiting), 1, answers)
        for d in waiting:
            self.assertEqual(d["status"], "pending", d)
            self.assertEqual(d.get("attemptLog", []), [], d)
        for d in settled:
            self.assertEqual(len(d["attemptLog"]), 1, d)


class Probes(ServerTest):
    def test_readyz_and_healthz(self):
        r = self.server.request("GET", "/readyz")
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json(), {"status": "ready", "checks": {
            "database": "ok", "migrations": "ok", "dispatcher": "ok"}})
        self.assertEqual(self.server.request("GET", "/healthz").json(), {"status": "ok"})
        for path in ("/readyz", "/healthz"):
            r = self.server.request("POST", path, raw=b"")
            self.assertEqual(r.status, 405, r)
            self.assertEqual(r.headers.get("allow"), "GET")
            self.assertEqual(r.json()["error"]["code"], "method_not_allowed")
        # Both answer without a key, and are not under the app prefix.
        self.assertEqual(self.app.call("GET", "readyz").status, 404)


class StopWhileConnecting(unittest.TestCase):
    """SIGTERM while clients keep connecting: the server stops with status 0. The stop used to
    call MHD_quiesce_daemon, which takes the listening socket out of each pool thread's epoll set
    while that thread may be doing the same; libmicrohttpd aborts the process (SIGABRT) when it
    finds the socket gone. That window is a few microseconds; tests/e2e/slow_epoll_del.c,
    preloaded, makes the main thread's removals wait 20 ms, and the old stop then aborted nearly
    every time."""
    CLIENTS = 3
    ROUNDS = 3

    def shim(self):
        need(shutil.which("cc"), "cc (to build tests/e2e/slow_epoll_del.c)")
        tmp = tempfile.mkdtemp(prefix="hookline-shim-")
        self.addCleanup(shutil.rmtree, tmp, True)
        so = os.path.join(tmp, "slow_epoll_del.so")
        subprocess.run(["cc", "-shared", "-fPIC", "-O1", "-o", so,
                        os.path.join(SOURCE_DIR, "tests", "e2e", "slow_epoll_del.c"), "-ldl"],
                       check=True, timeout=120)
        return so

    def test_stop_while_clients_connect(self):
        so = self.shim()
        # The sanitizer runtime must otherwise come first in the library list.
        asan = ":".join(filter(None, [os.environ.get("ASAN_OPTIONS"),
                                      "verify_asan_link_order=0"]))
        for _ in range(self.ROUNDS):
            s = Server(env={"LD_PRELOAD": so, "ASAN_OPTIONS": asan})
            self.addCleanup(s.cleanup)
            s.start()
            stop = threading.Event()
            answered = [0] * self.CLIENTS

            def client(i):
                while not stop.is_set():
                    try:
                        conn = http.client.HTTPConnection("127.0.0.1", s.port, timeout=30)
                        conn.request("GET", "/healthz")
                        if conn.getresponse().status == 200:
                            answered[i] += 1
                        conn.close()
                    except (OSError, http.client.HTTPException):
                        pass  # the server is stopping

            threads = [threading.Thread(target=client, args=(i,)) for i in range(self.CLIENTS)]
            for t in threads:
                t.start()
            try:
                # SIGTERM once every client is busy (the HTTP threads are awake)
                wait_for(lambda: min(answered) >= 5, timeout=60)
                rc = s.stop()
            finally:
                stop.set()
                for t in threads:
                    t.join()
            log = s.log()
            self.assertIn("slow_epoll_del: loaded", log)
            self.assertEqual(rc, 0, log[-3000:])
            self.assertNotIn("libmicrohttpd", log)
            self.assertIn("stopped", log)


class MetricsListen(unittest.TestCase):
    def serve(self, *args):
        s = Server(extra_args=args)
        self.addCleanup(s.cleanup)
        s.create_app()
        s.start()
        return s

    def get(self, port, path):
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        conn.request("GET", path)
        r = conn.getresponse()
        out = r.status, r.getheader("Content-Type"), r.read().decode()
        conn.close()
        return out

    def test_metrics_on_their_own_address(self):
        mport = free_port()
        s = self.serve("--metrics-listen", "127.0.0.1:%d" % mport)
        status, ctype, text = self.get(mport, "/metrics")
        self.assertEqual(status, 200, text)
        self.assertTrue(ctype.startswith("text/plain"), ctype)
        self.assertIn("hookline_queue_depth 0", text)
        # The API's address does not show them, and the metrics address shows nothing else.
        status, _, text = self.get(s.port, "/metrics")
        self.assertEqual(status, 404, text)
        self.assertEqual(json.loads(text)["error"]["code"], "not_found")
        for path in ("/healthz", "/readyz", "/api/v1/openapi.json", "/"):
            self.assertEqual(self.get(mport, path)[0], 404, path)
        self.assertEqual(self.get(s.port, "/healthz")[0], 200)
        self.assertEqual(s.stop(), 0, s.log())

    def test_metrics_on_the_api_address_by_default(self):
        s = self.serve()
        status, _, text = self.get(s.port, "/metrics")
        self.assertEqual(status, 200, text)
        self.assertIn("hookline_queue_depth", text)
        self.assertEqual(s.stop(), 0, s.log())

    def test_bad_address_is_refused(self):
        # In a folder of its own: a serve that wrongly starts puts nothing in the source tree.
        tmp = tempfile.mkdtemp(prefix="hookline-e2e-")
        self.addCleanup(shutil.rmtree, tmp, ignore_errors=True)
        args = [BIN, "serve", "--listen", "127.0.0.1:%d" % free_port()]
        for value in ("nope", "127.0.0.1", "127.0.0.1:99999"):
            r = subprocess.run(args + ["--metrics-listen", value], capture_output=True,
                               text=True, timeout=60, cwd=tmp)
            self.assertEqual(r.returncode, 2, (value, r.stderr))
            self.assertIn("--metrics-listen", r.stderr)
        env = dict(os.environ, HOOKLINE_METRICS_LISTEN="nope")
        r = subprocess.run(args, capture_output=True, text=True, timeout=60, env=env, cwd=tmp)
        self.assertEqual(r.returncode, 2, r.stderr)
        self.assertIn("HOOKLINE_METRICS_LISTEN", r.stderr)


class UploadLeftovers(unittest.TestCase):
    def test_start_removes_only_old_leftovers(self):
        s = Server()
        self.addCleanup(s.cleanup)
        s.create_app()
        uploads = os.path.join(s.data_dir, "uploads")
        os.makedirs(uploads, exist_ok=True)
        old, fresh = (os.path.join(uploads, n) for n in ("upload-old123", "upload-new456"))
        for p in (old, fresh):
            with open(p, "wb") as f:
                f.write(b"half a file")
        hours_ago = time.time() - 2 * 3600
        os.utime(old, (hours_ago, hours_ago))
        s.start()
        self.assertFalse(os.path.exists(old), "a leftover from two hours ago stayed")
        self.assertTrue(os.path.exists(fresh), "a file written just now went: it may be "
                        "another node's upload in progress")
        self.assertEqual(s.stop(), 0, s.log())


class SystemdUnit(unittest.TestCase):
    UNIT = os.path.join(SOURCE_DIR, "examples", "hookline.service")

    def test_unit_verifies_and_is_hardened(self):
        tool = shutil.which("systemd-analyze")
        need(tool, "systemd-analyze (Debian's systemd package)")
        with open(self.UNIT) as f:
            text = f.read()
        for want in ("User=hookline", "ProtectSystem=strict", "PrivateTmp=yes",
                     "Restart=on-failure", "NoNewPrivileges=yes"):
            self.assertIn(want, text)
        # systemd-analyze checks that ExecStart names an executable: point it at this build.
        exec_path = "/usr/local/bin/hookline"
        self.assertIn("ExecStart=" + exec_path + " serve", text)
        tmp = tempfile.mkdtemp(prefix="hookline-unit-")
        self.addCleanup(shutil.rmtree, tmp, ignore_errors=True)
        unit = os.path.join(tmp, "hookline.service")
        with open(unit, "w") as f:
            f.write(text.replace(exec_path, os.path.abspath(BIN)))
        r = subprocess.run([tool, "verify", unit], capture_output=True, text=True, timeout=120)
        # verify exits 0 even on unknown keys and bad values: its warnings must be empty too.
        self.assertEqual((r.returncode, r.stdout.strip(), r.stderr.strip()), (0, "", ""))
        r = subprocess.run([tool, "security", "--offline=true", "--threshold=20", unit],
                           capture_output=True, text=True, timeout=120)
        self.assertEqual(r.returncode, 0, r.stdout[-3000:] + r.stderr)


if __name__ == "__main__":
    main()
