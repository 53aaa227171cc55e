"""One `hookline serve` per SQLite file.

A second serve on the same SQLite file refuses to start, naming the file and the process that
has it, and leaves the first one alone: its leased delivery in flight is not sent again, and it
goes on delivering. The short CLI commands (apps, keys) keep working beside it, and once the
first one stops the file can be served again. On PostgreSQL several nodes share the database by
design: there the second serve starts, and still nothing in flight is sent twice.
"""
import os
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(__file__))
from harness import BIN, PG_URL, Server, ServerTest, free_port, main, wait_for  # noqa: E402


class SecondServe(ServerTest):
    # attempts may wait on the held receiver well past the default timeout
    server_env = {"HOOKLINE_TIMEOUT": "20s"}

    def test_second_serve_is_refused_and_the_first_goes_on(self):
        release = threading.Event()

        def behave(n, req):
            if req["path"] == "/held" and n == 0:
                release.wait(15)  # in flight, under the first server's lease
            return 200, b'{"received":true}', {}, 0

        rx = self.receiver(behave)
        self.app.webhook(rx.url("/held"), entities=["agent"])
        first = self.app.ok("POST", "agents", {"agentName": "a", "externalTenantId": "t"})
        rx.wait_count(1, "/held")

        if PG_URL:
            # nodes share a PostgreSQL database: the second one serves beside the first
            other = Server(db=self.server.db, env=self.server_env)
            try:
                other.start()
                self.assertEqual(other.request("GET", "/healthz").status, 200)
            finally:
                release.set()
                other.stop()
                other.cleanup()
        else:
            proc = subprocess.Popen(
                [BIN, "serve", "--listen", "127.0.0.1:%d" % free_port(), "--database",
                 self.server.db, "--mode", "development"],
                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=self.server.env)
            try:
                out, err = proc.communicate(timeout=60)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.communicate()
                release.set()
                self.fail("a second serve on the same SQLite file kept running")
            release.set()
            self.assertNotEqual(proc.returncode, 0)
            self.assertIn("in use by another hookline serve", err)
            self.assertIn(self.server.db, err)
            self.assertIn("pid %d" % self.server.proc.pid, err)

            # the short commands work beside the running server
            listed = self.server.cli("apps", "list").stdout
            self.assertIn(self.app.uid, listed)
            self.server.cli("apps", "create", "beside-the-server")

        # the first server goes on delivering, and sent nothing twice
        second = self.app.ok("POST", "agents", {"agentName": "b", "externalTenantId": "t"})
        got = rx.wait_count(2, "/held")
        time.sleep(1.0)  # room for a duplicate to show up, were one sent
        ids = sorted(req["headers"]["webhook-id"] for req in rx.requests)
        self.assertEqual(len(ids), 2, ids)
        uids = {b"\"uid\":\"%s\"" % u["uid"].encode() for u in (first, second)}
        self.assertEqual({u for u in uids if any(u in r["body"] for r in got)}, uids)

        # stopped, the file can be served again
        self.assertEqual(self.server.stop(), 0)
        self.server.start()
        third = self.app.ok("POST", "agents", {"agentName": "c", "externalTenantId": "t"})
        wait_for(lambda: any(third["uid"].encode() in r["body"] for r in rx.requests),
                 what="delivery after the restart")


if __name__ == "__main__":
    main()
