"""Fair shares of the in-flight slots: one tenant's dead endpoints do not stall the others.

A noisy app points webhooks at TCP blackholes (sockets that accept and never answer) and has
thousands of deliveries pending to them, so its attempts hang until --timeout. A healthy app's,
or a healthy webhook's, deliveries must still go out meanwhile. Nothing here measures time: the
proof is order. One log, in the order things happened, holds every arrival at the healthy
receiver and every moment a blackhole saw hookline give up a connection (an attempt timing out);
every healthy arrival must come before the first of those, i.e. while the noisy app's first
attempts were still hanging. Before the fix all in-flight slots went to the noisy app, first in
first out, and the healthy deliveries waited for its timeouts.
"""
import os
import selectors
import socket
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(__file__))
from harness import App, ServerTest, main, wait_for  # noqa: E402

# Long enough that the noisy app's first attempts are still hanging when the healthy changes
# are made, however loaded the machine; the blackholes close their connections at the end of
# each test, so that the server stops without waiting for them.
TIMEOUT_S = 30


class Order:
    """What happened, in one order: ("arrival", path) and ("gave_up", port) entries."""

    def __init__(self):
        self.lock = threading.Lock()
        self.log = []

    def add(self, what, detail):
        with self.lock:
            self.log.append((what, detail, time.monotonic()))

    def snapshot(self):
        with self.lock:
            return list(self.log)


class Blackholes:
    """n listening sockets on 127.0.0.1 that accept every connection, read what comes, and never
    answer. A connection that the peer closes (hookline giving up an attempt) goes into order as
    ("gave_up", port)."""

    def __init__(self, n, order):
        self.order = order
        self.sel = selectors.DefaultSelector()
        self.lock = threading.Lock()
        self.accepted = 0
        self.listeners = []
        self.conns = []
        for _ in range(n):
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            s.listen(1024)
            s.setblocking(False)
            self.sel.register(s, selectors.EVENT_READ, ("listen", s.getsockname()[1]))
            self.listeners.append(s)
        self.ports = [s.getsockname()[1] for s in self.listeners]
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self):
        while not self.stop.is_set():
            for key, _ in self.sel.select(0.05):
                kind, port = key.data
                if kind == "listen":
                    try:
                        c, _ = key.fileobj.accept()
                    except OSError:
                        continue
                    c.setblocking(False)
                    self.sel.register(c, selectors.EVENT_READ, ("conn", port))
                    with self.lock:
                        self.accepted += 1
                        self.conns.append(c)
                    continue
                try:
                    data = key.fileobj.recv(65536)
                except BlockingIOError:
                    continue
                except OSError:
                    data = b""
                if not data:
                    self.order.add("gave_up", port)
                    self.sel.unregister(key.fileobj)
                    key.fileobj.close()

    def count(self):
        with self.lock:
            return self.accepted

    def close(self):
        self.stop.set()
        self.thread.join(5)
        for s in self.listeners + self.conns:
            try:
                s.close()
            except OSError:
                pass
        self.sel.close()


class NoisyTenant(ServerTest):
    server_env = {"HOOKLINE_TIMEOUT": "%ds" % TIMEOUT_S,
                  "HOOKLINE_RETRY_SCHEDULE": "0,1h"}

    def setUp(self):
        super().setUp()
        self.started = time.monotonic()
        self.order = Order()
        self.holes = Blackholes(16, self.order)
        self.healthy = self.receiver(
            lambda n, req: (self.order.add("arrival", req["path"]) or 200, b"ok", {}, 0))

    def tearDown(self):
        self.holes.close()  # every hanging attempt ends now: the server stops at once
        super().tearDown()

    def metric(self, name):
        r = self.server.request("GET", "/metrics")
        self.assertEqual(r.status, 200)
        for line in r.body.decode().splitlines():
            if line.startswith(name + " "):
                return float(line.split()[1])
        raise AssertionError("no %s in /metrics" % name)

    def backlog(self, app, changes, event="agent.updated"):
        """changes POST /events of event on app from four threads; returns once all are
        acknowledged."""
        errors = []

        def post(part):
            for i in range(part, changes, 4):
                r = app.call("POST", "events", {
                    "event": event,
                    "data": {"uid": "noisy-%d" % i, "externalTenantId": "t"}})
                if r.status // 100 != 2:
                    errors.append(r)
        threads = [threading.Thread(target=post, args=(k,)) for k in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        self.assertEqual(errors, [])

    def prove_order(self, path, n):
        """Waits for n arrivals at path, then asserts that they all came before any blackhole saw
        an attempt given up, and that the noisy attempts were hanging (in flight) meanwhile."""
        # The order log, not the receiver's count: a request is counted before its handler
        # (after the contract check) records the arrival.
        def arrived():
            return len([1 for what, p, _ in self.order.snapshot()
                        if what == "arrival" and p == path]) >= n
        wait_for(arrived, timeout=TIMEOUT_S + 30, what="%d arrivals at %s" % (n, path))
        log = self.order.snapshot()
        arrivals = [i for i, (what, p, _) in enumerate(log) if what == "arrival" and p == path]
        gave_up = [i for i, (what, _, _) in enumerate(log) if what == "gave_up"]
        self.assertEqual(len(arrivals), n)
        if gave_up and gave_up[0] < arrivals[-1]:
            t0 = self.started
            self.fail("a noisy attempt was given up (%.1f s into the test) before the healthy "
                      "deliveries were all made (%d of %d before it; the last %.1f s in)" % (
                          log[gave_up[0]][2] - t0, len([i for i in arrivals if i < gave_up[0]]),
                          n, log[arrivals[-1]][2] - t0))

    def test_healthy_app_is_delivered_while_noisy_app_hangs(self):
        noisy = App(self.server, self.server.create_app("noisy"))
        for port in self.holes.ports:
            noisy.webhook("http://127.0.0.1:%d/hole" % port, entities=["agent"])
        self.app.webhook(self.healthy.url("/b"), entities=["agent"])
        self.backlog(noisy, 160)  # 2,560 deliveries to the blackholes
        # The noisy app holds connections to every blackhole: as many of the slots as it may.
        wait_for(lambda: self.holes.count() >= 160, timeout=TIMEOUT_S / 2,
                 what="attempts hanging at the blackholes")
        self.assertGreaterEqual(self.metric("hookline_inflight"), 160)
        self.assertGreater(self.metric("hookline_queue_depth"), 2000)
        for i in range(20):
            self.app.ok("POST", "agents", {"agentName": "b%d" % i, "externalTenantId": "t"})
        self.prove_order("/b", 20)
        names = sorted(b["data"]["agentName"] for b in self.healthy.bodies("/b"))
        self.assertEqual(names, sorted("b%d" % i for i in range(20)))

    def test_healthy_webhook_is_delivered_while_its_apps_others_hang(self):
        # Eight blackholes can hold 8 x --per-host = 256 attempts: every slot, before the fix.
        for port in self.holes.ports[:8]:
            self.app.webhook("http://127.0.0.1:%d/hole" % port, entities=["context"])
        self.app.webhook(self.healthy.url("/w"), entities=["agent"])
        self.backlog(self.app, 200, "context.updated")  # 1,600 deliveries to the blackholes
        wait_for(lambda: self.holes.count() >= 100, timeout=TIMEOUT_S / 2,
                 what="attempts hanging at the blackholes")
        for i in range(20):
            self.app.ok("POST", "agents", {"agentName": "w%d" % i, "externalTenantId": "t"})
        self.prove_order("/w", 20)

    def test_healthy_webhook_is_delivered_beside_a_backlog_found_at_start(self):
        # A restart finds eight blackholes' backlog pending, all of it new to the first claims:
        # those must leave part of the app's share (an eighth) to its webhooks that come later,
        # or the blackholes take all of it and the healthy webhook waits for their timeouts.
        for port in self.holes.ports[:8]:
            self.app.webhook("http://127.0.0.1:%d/hole" % port, entities=["context"])
        self.app.webhook(self.healthy.url("/r"), entities=["agent"])
        self.backlog(self.app, 200, "context.updated")  # 1,600 deliveries to the blackholes
        wait_for(lambda: self.holes.count() >= 100, timeout=TIMEOUT_S / 2,
                 what="attempts hanging at the blackholes")
        self.server.kill()  # the attempts in flight are abandoned: their deliveries are pending
        held = self.holes.count()
        self.server.start()
        wait_for(lambda: self.holes.count() >= held + 150, timeout=TIMEOUT_S / 2,
                 what="the backlog's attempts hanging again")
        # The killed server's connections have all closed by now (a new attempt cannot time out
        # before TIMEOUT_S): only what is given up from here counts.
        self.order = self.holes.order = Order()
        for i in range(20):
            self.app.ok("POST", "agents", {"agentName": "r%d" % i, "externalTenantId": "t"})
        self.prove_order("/r", 20)


if __name__ == "__main__":
    main()
