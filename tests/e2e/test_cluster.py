"""Several `hookline serve` nodes on one PostgreSQL database.

Every acknowledged change is delivered while changes are spread across the nodes, while a node is
killed with SIGKILL in the middle of the load (its leased deliveries are taken over once the
leases lapse; duplicates only for what it had in flight), and while the PostgreSQL server itself
is stopped and started again (the API answers 503 meanwhile, never hangs or crashes, and the nodes
reconnect by themselves). A commit on one node wakes the dispatchers of the others (LISTEN/NOTIFY).

Needs a PostgreSQL server: run under scripts/with-postgres.sh (HOOKLINE_TEST_PG_URL, and for the
restart test HOOKLINE_TEST_PG_CTL and HOOKLINE_TEST_PG_DATA). Without one every case skips and the
suite exits 77 (skipped; a failure under HL_REQUIRE_ALL=1); ctest runs it only as e2e-pg/.
"""
import http.client
import os
import shutil
import subprocess
import sys
import threading
import time
import unittest
import uuid

sys.path.insert(0, os.path.dirname(__file__))
from harness import App, Receiver, Server, main, need, wait_for  # noqa: E402

PG_URL = os.environ.get("HOOKLINE_TEST_PG_URL")
PG_CTL = os.environ.get("HOOKLINE_TEST_PG_CTL")
PG_DATA = os.environ.get("HOOKLINE_TEST_PG_DATA")
PSQL = shutil.which("psql")

NODES = 3
MAX_INFLIGHT = 16  # per node: the most attempts a killed node can leave unrecorded
HOLD_S = 3.0       # how long the receiver may sit on requests (below the attempt timeout)
NODE_ENV = {
    # longer than an attempt may take, so that only a dead node's deliveries change hands
    "HOOKLINE_LEASE": "6s",
    "HOOKLINE_TIMEOUT": "5s",
    "HOOKLINE_MAX_INFLIGHT": str(MAX_INFLIGHT),
    "HOOKLINE_PER_HOST": str(MAX_INFLIGHT),
    # A receiver that resets a connection gets the delivery again soon; never gives up here.
    "HOOKLINE_RETRY_SCHEDULE": ",".join(["0", "100ms", "200ms", "400ms"] + ["1s"] * 28),
}

# The test that proves NOTIFY wakes other nodes runs them with nothing else to wake them: sweeps
# (claims nobody announced) ten minutes apart, and leases as long (a node also wakes when a
# lease it saw may lapse). A delivery arriving at all within the wait shows that a notification
# woke a node; no latency is measured.
NOTIFY_ONLY = {"test_notify_wakes_the_other_nodes": {"HOOKLINE_SWEEP": "10m",
                                                      "HOOKLINE_LEASE": "10m"}}


def psql(url, sql):
    """Runs SQL on url with psql; returns the unaligned output lines."""
    r = subprocess.run([PSQL, "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-d", url,
                        "-c", sql], capture_output=True, text=True, timeout=60)
    if r.returncode != 0:
        raise AssertionError("psql failed: %s" % r.stderr)
    return [line for line in r.stdout.splitlines() if line]


def pg_ctl(*args):
    r = subprocess.run([PG_CTL] + list(args) + ["-D", PG_DATA], capture_output=True, text=True,
                       timeout=120)
    if r.returncode != 0:
        raise AssertionError("pg_ctl %s failed: %s%s" % (args, r.stdout, r.stderr))


class Writers:
    """Threads creating agents, round robin over the nodes, recording every answer."""

    def __init__(self, apps, threads=4, timeout=15):
        self.apps = list(apps)
        self.timeout = timeout
        self.lock = threading.Lock()
        self.acked = []        # agent uids answered 201
        self.statuses = {}     # status -> count
        self.errors = []       # connection errors and timeouts, by node index
        self.slowest = 0.0
        self.dead = set()      # nodes killed on purpose: no longer asked
        self.last_ok = {}      # node index -> monotonic time of its last 201
        self.stop_flag = threading.Event()
        self.threads = [threading.Thread(target=self.run, args=(i,)) for i in range(threads)]

    def start(self):
        for t in self.threads:
            t.start()
        return self

    def run(self, k):
        i = k
        while not self.stop_flag.is_set():
            i += 1
            node = i % len(self.apps)
            if node in self.dead:
                continue
            t0 = time.monotonic()
            try:
                r = self.apps[node].call("POST", "agents",
                                         {"agentName": "a%d-%d" % (k, i),
                                          "externalTenantId": "t"}, timeout=self.timeout)
            except (OSError, http.client.HTTPException) as e:
                with self.lock:
                    if node not in self.dead:
                        self.errors.append((node, repr(e)))
                time.sleep(0.01)
                continue
            took = time.monotonic() - t0
            with self.lock:
                self.slowest = max(self.slowest, took)
                self.statuses[r.status] = self.statuses.get(r.status, 0) + 1
                if r.status == 201:
                    self.acked.append(r.json()["uid"])
                    self.last_ok[node] = time.monotonic()
            if r.status != 201:
                time.sleep(0.01)

    def count(self):
        with self.lock:
            return len(self.acked)

    def stop(self):
        self.stop_flag.set()
        for t in self.threads:
            t.join(timeout=60)
            if t.is_alive():
                raise AssertionError("a writer hung")


class Cluster(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        need(PG_URL, "a PostgreSQL server (HOOKLINE_TEST_PG_URL: run under "
             "scripts/with-postgres.sh)")
        need(PSQL, "psql")

    def setUp(self):
        name = "hl_cluster_" + uuid.uuid4().hex[:12]
        psql(PG_URL, "CREATE DATABASE " + name)
        self.addCleanup(psql, PG_URL, "DROP DATABASE IF EXISTS %s WITH (FORCE)" % name)
        self.db = PG_URL.rsplit("/", 1)[0] + "/" + name
        # While `hold` is set the receiver sits on requests (up to HOLD_S), so that the
        # dispatchers have attempts in flight that the test can count.
        self.hold = threading.Event()
        self.held = 0
        held_lock = threading.Lock()

        def behave(n, req):
            if self.hold.is_set():
                with held_lock:
                    self.held += 1
                deadline = time.monotonic() + HOLD_S
                while self.hold.is_set() and time.monotonic() < deadline:
                    time.sleep(0.01)
                with held_lock:
                    self.held -= 1
            return 200, b"ok", {}, 0.005

        self.rx = Receiver(behave)
        self.addCleanup(self.rx.close)
        self.nodes = []
        env = dict(NODE_ENV)
        env.update(NOTIFY_ONLY.get(self._testMethodName, {}))
        for _ in range(NODES):
            s = Server(env=env, db=self.db)
            s.env["HOOKLINE_DATA_DIR"] = s.data_dir  # each node's uploads in its own folder
            self.addCleanup(s.cleanup)
            self.nodes.append(s)
        info = self.nodes[0].create_app()
        for s in self.nodes:
            s.start()
        self.apps = [App(s, info) for s in self.nodes]
        self.webhook = self.apps[0].webhook(self.rx.url(), entities=["agent"])

    def tearDown(self):
        """Every node still running stops cleanly on SIGTERM, with nothing from the sanitizers.
        (The cleanups registered in setUp then remove folders, the receiver and the database.)"""
        self.hold.clear()
        failures = []
        for i, s in enumerate(self.nodes):
            rc = s.stop()
            log = s.log()
            if rc not in (None, 0):
                failures.append("node %d exited with %s: %s" % (i, rc, log[-3000:]))
            for bad in ("AddressSanitizer", "runtime error:", "LeakSanitizer"):
                if bad in log:
                    failures.append("sanitizer report in node %d's log:\n%s" % (i, log[-6000:]))
        if failures:
            raise AssertionError("\n".join(failures))

    # ---- helpers ----

    def received_uids(self):
        return {b["data"]["uid"] for b in self.rx.bodies()}

    def duplicates(self):
        ids = [b["eventId"] for b in self.rx.bodies()]
        return len(ids) - len(set(ids))

    def wait_all_delivered(self, acked, timeout):
        want = set(acked)
        wait_for(lambda: want <= self.received_uids(), timeout=timeout, interval=0.1,
                 what="all %d acknowledged changes delivered" % len(want))

    def assert_nothing_stuck(self):
        """Once every delivery landed, none is pending or leased in the database."""
        def settled():
            return psql(self.db, "SELECT count(*) FROM deliveries WHERE status <> 1"
                        " OR lease_until <> 0") == ["0"]
        wait_for(settled, timeout=15, interval=0.2, what="every delivery recorded as delivered")

    # ---- tests ----

    def test_changes_on_every_node_delivered_once(self):
        w = Writers(self.apps).start()
        try:
            wait_for(lambda: w.count() >= 150, timeout=60, what="150 acknowledged changes")
        finally:
            w.stop()
        self.assertEqual(w.errors, [])
        self.assertEqual(set(w.statuses), {201})
        self.assertEqual(set(w.last_ok), set(range(NODES)))  # every node took changes
        self.wait_all_delivered(w.acked, timeout=30)
        self.assert_nothing_stuck()
        time.sleep(0.5)
        self.assertEqual(self.duplicates(), 0)  # several dispatchers never share a delivery
        self.assertEqual(len(self.rx.bodies()), len(w.acked))

    def test_kill_9_a_node_under_load(self):
        w = Writers(self.apps).start()
        try:
            wait_for(lambda: w.count() >= 100, timeout=60, what="100 acknowledged changes")
            # Hold the receiver until more attempts are in flight than two nodes can carry
            # (MAX_INFLIGHT each): then every node, the victim included, has some.
            self.hold.set()
            wait_for(lambda: self.held > 2 * MAX_INFLIGHT, timeout=HOLD_S - 0.5,
                     what="attempts in flight on every node")
            victim = 0
            with w.lock:
                w.dead.add(victim)
            self.nodes[victim].kill()
            self.hold.clear()
            at_kill = w.count()
            wait_for(lambda: w.count() >= at_kill + 100, timeout=60,
                     what="100 more changes on the surviving nodes")
        finally:
            self.hold.clear()
            w.stop()
        self.assertEqual(w.errors, [])
        self.assertEqual(set(w.statuses), {201})
        # the victim's leases lapse (HOOKLINE_LEASE) and the others take its work over
        self.wait_all_delivered(w.acked, timeout=30)
        self.assert_nothing_stuck()
        time.sleep(0.5)
        dups = self.duplicates()
        # exactly the victim's unrecorded attempts go again: at least one, at most all it had
        self.assertGreaterEqual(dups, 1)
        self.assertLessEqual(dups, MAX_INFLIGHT)

    def foreign_commits_delivered(self, rounds):
        """Commits a delivery the way another node would (a transaction that ends with NOTIFY),
        rounds times, and waits for each to reach the receiver."""
        sql = ("INSERT INTO deliveries(event_id, webhook_id, status, next_attempt_at,"
               " created_at) SELECT id, (SELECT id FROM webhooks LIMIT 1), 0,"
               " (extract(epoch from now()) * 1000)::bigint,"
               " (extract(epoch from now()) * 1000)::bigint FROM events LIMIT 1;"
               " SELECT pg_notify('hookline_deliveries', 'another-node');\n"
               "\\echo committed\n")
        p = subprocess.Popen([PSQL, "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-d",
                              self.db], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        try:
            p.stdin.write("SELECT 1;\n\\echo connected\n")
            p.stdin.flush()
            while p.stdout.readline().strip() != "connected":
                self.assertIsNone(p.poll(), "psql exited")
            for _ in range(rounds):
                n = len(self.rx.requests)
                p.stdin.write(sql)
                p.stdin.flush()
                self.rx.wait_count(n + 1, timeout=30)
                while p.stdout.readline().strip() != "committed":
                    self.assertIsNone(p.poll(), "psql exited")
                time.sleep(0.05)
        finally:
            p.stdin.close()
            p.wait(timeout=30)
            p.stdout.close()

    def test_notify_wakes_the_other_nodes(self):
        """A commit that no dispatcher of this process saw (as another node's) is delivered: NOTIFY
        wakes the nodes, which have nothing else to wake them here (NOTIFY_ONLY)."""
        self.apps[1].ok("POST", "agents", {"agentName": "first", "externalTenantId": "t"})
        self.rx.wait_count(1)
        self.assert_nothing_stuck()
        self.foreign_commits_delivered(5)

    def test_database_restart_under_load(self):
        need(PG_CTL and PG_DATA, "HOOKLINE_TEST_PG_CTL and HOOKLINE_TEST_PG_DATA "
             "(scripts/with-postgres.sh)")
        w = Writers(self.apps, timeout=20).start()
        down = False
        try:
            wait_for(lambda: w.count() >= 80, timeout=60, what="80 acknowledged changes")
            with w.lock:
                before = dict(w.statuses)
            pg_ctl("stop", "-m", "fast", "-w", "-t", "60")
            down = True
            stopped_at = time.monotonic()
            # the API keeps answering, with 503, while the database is away
            wait_for(lambda: w.statuses.get(503, 0) > before.get(503, 0) + 10, timeout=20,
                     what="503 answers while the database is down")
            time.sleep(max(0.0, 2.0 - (time.monotonic() - stopped_at)))
            for s in self.nodes:
                self.assertIsNone(s.proc.poll(), "a node died with the database away")
                self.assertEqual(s.request("GET", "/healthz", timeout=5).status, 200)
            pg_ctl("start", "-w", "-t", "60")
            down = False
            started_at = time.monotonic()
            # every node reconnects by itself and takes changes again
            wait_for(lambda: all(w.last_ok.get(i, 0) > started_at for i in range(NODES)),
                     timeout=30, what="every node answering 201 again")
            at_restart = w.count()
            wait_for(lambda: w.count() >= at_restart + 50, timeout=60,
                     what="50 more changes after the restart")
        finally:
            if down:
                pg_ctl("start", "-w", "-t", "60")
            w.stop()
        self.assertEqual(w.errors, [])
        self.assertLess(w.slowest, 15.0)
        self.assertEqual(set(w.statuses) - {201, 503}, set(), w.statuses)
        self.wait_all_delivered(w.acked, timeout=45)
        self.assert_nothing_stuck()
        time.sleep(0.5)
        # attempts that finished while the database was away could not be recorded: they go again
        self.assertLessEqual(self.duplicates(), NODES * MAX_INFLIGHT)
        # Each listener reconnects on its own backoff (up to 5 s): wait for every one before
        # measuring wake-ups, or a listener still away makes them look like sweeps.
        for i, s in enumerate(self.nodes):
            wait_for(lambda: "postgres: listener connected again" in s.log(), timeout=30,
                     interval=0.1, what="node %d's listener connected again" % i)
        # the listeners are back: a commit elsewhere still wakes the dispatchers at once
        self.foreign_commits_delivered(5)


if __name__ == "__main__":
    main()
