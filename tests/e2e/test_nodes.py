"""Nodes on one PostgreSQL database, as the README runs a cluster: one data folder shared by every
node, and readiness that follows the database.

- A node that starts leaves the other nodes' uploads in progress alone: node A's slow upload,
  half sent when node B starts on the same --data-dir, completes and is processed.
- /readyz answers 503 naming the database while the PostgreSQL server is stopped (/healthz stays
  200: the process is alive), and 200 again once it is back.
- Operational events (issue 21) are made once whichever nodes record the attempts and sweep for
  silence together: one endpoint.failing and one endpoint.recovered per spell, one
  endpoint.silent per silence.

PostgreSQL only: run under scripts/with-postgres.sh (HOOKLINE_TEST_PG_URL, HOOKLINE_TEST_PG_CTL,
HOOKLINE_TEST_PG_DATA). Without one every case skips and the suite exits 77 (a failure under
HL_REQUIRE_ALL=1); ctest runs it only as e2e-pg/.
"""
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(__file__))
from harness import PG_URL, App, Receiver, Server, main, need, wait_for  # noqa: E402

PG_CTL = os.environ.get("HOOKLINE_TEST_PG_CTL")
PG_DATA = os.environ.get("HOOKLINE_TEST_PG_DATA")


def pg_ctl(*args):
    r = subprocess.run([PG_CTL] + list(args) + ["-D", PG_DATA], capture_output=True, text=True,
                       timeout=120)
    if r.returncode != 0:
        raise AssertionError("pg_ctl %s failed: %s%s" % (args, r.stdout, r.stderr))


def read_answer(sock):
    """Reads one HTTP answer with a Content-Length body from sock: (status, body)."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            raise AssertionError("connection closed before the answer: %r" % data)
        data += chunk
    head, body = data.split(b"\r\n\r\n", 1)
    lines = head.decode().split("\r\n")
    length = 0
    for line in lines[1:]:
        k, v = line.split(":", 1)
        if k.strip().lower() == "content-length":
            length = int(v)
    while len(body) < length:
        chunk = sock.recv(65536)
        if not chunk:
            break
        body += chunk
    return int(lines[0].split()[1]), body


class Nodes(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        need(PG_URL, "a PostgreSQL server (HOOKLINE_TEST_PG_URL: run under "
             "scripts/with-postgres.sh)")

    def node(self, **kw):
        s = Server(**kw)
        # Cleanups run last first: stop (and check) before removing the folder and database.
        self.addCleanup(s.cleanup)
        self.addCleanup(self.stop_clean, s)
        return s

    def stop_clean(self, s):
        rc = s.stop()
        log = s.log()
        self.assertIn(rc, (None, 0), log[-3000:])
        for bad in ("AddressSanitizer", "runtime error:", "LeakSanitizer", "ThreadSanitizer"):
            self.assertNotIn(bad, log)

    def test_a_starting_node_leaves_uploads_in_progress_alone(self):
        shared = tempfile.mkdtemp(prefix="hookline-shared-")
        self.addCleanup(shutil.rmtree, shared, ignore_errors=True)
        env = {"HOOKLINE_DATA_DIR": shared}
        a = self.node(env=env)
        info = a.create_app()
        a.start()
        b = self.node(env=env, db=a.db)
        app = App(a, info)
        ctx = app.ok("POST", "contexts", {"name": "kb", "externalTenantId": "t-1"})
        data = b"".join(b"line %d of a file that goes up slowly\n" % i for i in range(6000))
        sock = socket.create_connection(("127.0.0.1", a.port), timeout=60)
        self.addCleanup(sock.close)
        sock.sendall(("POST %s HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\n"
                      "Content-Type: text/plain\r\nContent-Length: %d\r\n\r\n"
                      % (app.path("contexts/%s/files?fileName=slow.txt" % ctx["uid"]), app.key,
                         len(data))).encode())
        half = len(data) // 2
        sock.sendall(data[:half])
        uploads = os.path.join(shared, "uploads")
        wait_for(lambda: any(os.path.getsize(os.path.join(uploads, n)) >= half
                             for n in os.listdir(uploads)), what="the first half on disk")
        # Node B starts on the same folder while A's upload is half done.
        b.start()
        sock.sendall(data[half:])
        status, body = read_answer(sock)
        self.assertEqual(status, 202, body)
        f = json.loads(body)
        self.assertEqual(f["sizeBytes"], len(data))

        def processed():
            g = app.ok("GET", "contexts/%s/files/%s" % (ctx["uid"], f["uid"]))
            return g if g["processingStatus"] in ("completed", "failed") else None
        g = wait_for(processed, timeout=60, interval=0.1, what="the file processed")
        self.assertEqual(g["processingStatus"], "completed", g)
        with open(os.path.join(shared, "files", f["uid"]), "rb") as fh:
            self.assertEqual(fh.read(), data)

    def test_readyz_follows_the_database(self):
        need(PG_CTL and PG_DATA, "HOOKLINE_TEST_PG_CTL and HOOKLINE_TEST_PG_DATA "
             "(scripts/with-postgres.sh)")
        s = self.node()
        s.create_app()
        s.start()
        r = s.request("GET", "/readyz")
        self.assertEqual(r.status, 200, r)
        pg_ctl("stop", "-m", "fast", "-w", "-t", "60")
        try:
            r = wait_for(lambda: (lambda r: r if r.status == 503 else None)(
                s.request("GET", "/readyz", timeout=30)), timeout=30, interval=0.1,
                what="/readyz 503 with the database stopped")
            body = r.json()
            self.assertEqual(body["status"], "unavailable", body)
            self.assertTrue(body["checks"]["database"].startswith("unreachable"), body)
            self.assertEqual(body["checks"]["dispatcher"], "ok", body)
            self.assertEqual(s.request("GET", "/healthz", timeout=30).status, 200)
        finally:
            pg_ctl("start", "-w", "-t", "60")
        wait_for(lambda: s.request("GET", "/readyz", timeout=30).status == 200, timeout=60,
                 interval=0.2, what="/readyz 200 with the database back")

    def test_operational_events_once_across_nodes(self):
        args = ("--retry-schedule", "0,200ms,200ms,200ms,200ms,200ms", "--test-silence-floor",
                "1s")
        a = self.node(extra_args=args)
        info = a.create_app()
        a.start()
        nodes = [a]
        for _ in range(2):
            n = self.node(extra_args=args, db=a.db)
            n.start()
            nodes.append(n)
        app = App(a, info)
        ops, rec = Receiver(), Receiver(
            lambda i, req: ((500, b"{}", {}, 0) if req["path"] == "/flaky" and i < 4
                            else (200, b"{}", {}, 0)))
        self.addCleanup(ops.close)
        self.addCleanup(rec.close)
        app.ok("POST", "operational-webhooks",
               {"url": ops.url("/ops"), "events": ["endpoint.failing", "endpoint.recovered",
                                                   "endpoint.silent"]})
        flaky = app.webhook(rec.url("/flaky"))
        # One change, on another node: its retries are claimed and recorded by any of the three
        # (one at a time: the next attempt is claimed after the last one is recorded).
        App(nodes[1], info).ok("POST", "agents", {"agentName": "a", "externalTenantId": "t"})

        def log(name, uid):
            evs = app.ok("GET", "events?limit=100&event=" + name)["data"]
            return [e for e in evs if e["data"]["uid"] == uid]

        def flaky_done():
            d = app.ok("GET", "webhooks/%s/deliveries" % flaky["uid"])["data"]
            return d and d[0]["status"] == "succeeded"
        wait_for(flaky_done, 60, what="the flaky webhook's delivery")
        self.assertEqual(app.ok("GET", "webhooks/%s/deliveries" % flaky["uid"])["data"][0]
                         ["attempts"], 5)
        self.assertEqual(len(log("endpoint.failing", flaky["uid"])), 1)
        self.assertEqual(len(log("endpoint.recovered", flaky["uid"])), 1)
        quiet = app.webhook(rec.url("/quiet"), silenceAlertSeconds=1, expectEvents=True)
        # The quiet webhook expects events and gets none: it goes silent once however many
        # nodes sweep. A webhook made after that alert goes silent a second later:
        # every node swept meanwhile, and none alerted the first one again.
        wait_for(lambda: log("endpoint.silent", quiet["uid"]), 60, what="the silent alert")
        later = app.webhook(rec.url("/later"), silenceAlertSeconds=1, expectEvents=True)
        wait_for(lambda: log("endpoint.silent", later["uid"]), 60, what="the later alert")
        self.assertEqual(len(log("endpoint.silent", quiet["uid"])), 1)
        wait_for(lambda: len([b for b in ops.bodies("/ops") if b["event"] == "endpoint.silent"])
                 >= 2, 60, what="the alerts delivered")


if __name__ == "__main__":
    main()
