"""Events and delivery: every change becomes a signed delivery to every matching webhook, retried
until it lands, and nothing acknowledged is lost across a kill -9."""
import json
import os
import shutil
import subprocess
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(__file__))
from harness import (App, Receiver, Server, ServerTest, check_signed, main,  # noqa: E402
                     need, wait_for)

ALL = ("agent", "context", "contextfile")
ENVELOPE_KEYS = ["eventId", "event", "timestamp", "appUid", "version", "data"]

TRICKY = {
    "agentName": "Süpport \"bot\" \\ 🤖 \u0001\u001f\n\t end",
    "externalTenantId": "tenant-ß-1",
    "instructions": "Réponds en français. Quotes: \" ' ` and </script> and \u2028 line sep",
    "model": "gpt-4o",
    "temperature": 0.7,
    "maxTokens": 4096,
    "metadata": {"b": 1, "10": [0.1, 1e21, 1.5e-7, -0.0, 1.0, 123456789.125],
                 "2": {"nested": "日本語", "z": None, "a": True}, "": "empty key"},
}


class Delivery(ServerTest):

    def make_all_nine(self, tenant="tenant-1"):
        """Creates, updates and deletes an agent, a context and a context file."""
        a = self.app.ok("POST", "agents", {"agentName": "Support", "externalTenantId": tenant,
                                           "live": True, "temperature": 0.2})
        self.app.ok("PATCH", "agents/" + a["uid"], {"agentName": "Support v2"})
        c = self.app.ok("POST", "contexts", {"name": "KB", "externalTenantId": tenant})
        self.app.ok("PATCH", "contexts/" + c["uid"], {"description": "docs"})
        f = self.app.ok("POST", "contexts/%s/files" % c["uid"],
                        {"fileName": "guide.pdf", "contentType": "application/pdf",
                         "sizeBytes": 1234})
        self.assertEqual(f["processingStatus"], "awaiting_upload")  # registered, no bytes yet
        self.assertEqual(f["externalTenantId"], tenant)
        self.app.ok("PATCH", "contexts/%s/files/%s" % (c["uid"], f["uid"]),
                    {"fileName": "guide-v2.pdf"})
        self.app.ok("DELETE", "contexts/%s/files/%s" % (c["uid"], f["uid"]))
        self.app.ok("DELETE", "contexts/" + c["uid"])
        self.app.ok("DELETE", "agents/" + a["uid"])
        return a, c, f

    def test_every_event_reaches_the_receiver_signed(self):
        rx = self.receiver()
        w = self.app.webhook(rx.url())
        a, c, f = self.make_all_nine()
        reqs = rx.wait_count(9)
        time.sleep(0.2)
        self.assertEqual(len(rx.requests), 9)
        by_event = {}
        for req in reqs:
            check_signed(self, req, w["secret"])
            env = json.loads(req["body"])
            self.assertEqual(list(env), ENVELOPE_KEYS)
            self.assertEqual(env["version"], 1)
            self.assertEqual(env["appUid"], self.app.uid)
            self.assertEqual(env["data"]["externalTenantId"], "tenant-1")
            self.assertRegex(env["eventId"], r"^evt_[A-Za-z0-9_-]+$")
            self.assertRegex(env["timestamp"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
            by_event[env["event"]] = env
        self.assertEqual(sorted(by_event), sorted(
            "%s.%s" % (e, op) for e in ALL for op in ("created", "updated", "deleted")))
        self.assertEqual(by_event["agent.created"]["data"]["uid"], a["uid"])
        self.assertEqual(by_event["agent.created"]["data"]["agentName"], "Support")
        self.assertEqual(by_event["agent.updated"]["data"]["agentName"], "Support v2")
        self.assertEqual(by_event["agent.deleted"]["data"]["agentName"], "Support v2")
        for e in ALL:
            d = by_event[e + ".deleted"]["data"]
            self.assertIn("deletedAt", d)
            self.assertEqual(list(d)[-1], "deletedAt")
        self.assertEqual(by_event["contextfile.created"]["data"]["contextUid"], c["uid"])
        self.assertEqual(len({e["eventId"] for e in by_event.values()}), 9)
        # lastTriggeredAt and lastSuccessAt are kept up to date
        got = wait_for(lambda: (lambda g: g if g["lastSuccessAt"] else None)(
            self.app.ok("GET", "webhooks/" + w["uid"])), what="lastSuccessAt")
        self.assertIsNotNone(got["lastTriggeredAt"])
        self.assertIsNone(got["lastFailureAt"])
        # one log line per attempt, without the secret
        log = self.server.log()
        self.assertGreaterEqual(log.count(" attempt=1 "), 9)
        self.assertNotIn(w["secret"], log)

    def test_data_is_the_complete_resource(self):
        rx = self.receiver()
        self.app.webhook(rx.url(), entities=["agent"])
        a = self.app.ok("POST", "agents", TRICKY)
        body = rx.wait_count(1)[0]["body"]
        env = json.loads(body)
        self.assertEqual(env["data"], a)
        self.assertEqual(self.app.ok("GET", "agents/" + a["uid"]), a)
        for k, v in TRICKY.items():
            if k != "metadata":
                self.assertEqual(a[k], v, k)

    def test_body_survives_javascript_reserialization(self):
        need(shutil.which("node"), "node")
        rx = self.receiver()
        w = self.app.webhook(rx.url())
        self.app.ok("POST", "agents", TRICKY)
        c = self.app.ok("POST", "contexts", {"name": "名前 \"q\" \\", "externalTenantId": "t",
                                             "metadata": {"x": 5e-324, "y": 1.7976931348623157e308,
                                                          "1": 9007199254740993}})
        self.app.ok("POST", "events", {"event": "context.updated",
                                       "data": {"uid": c["uid"], "externalTenantId": "t",
                                                "n": [0.30000000000000004, 100, 1e-7, 2.5e-3],
                                                "s": "\u007f\u0000"[:1]}}, status=202)
        reqs = rx.wait_count(3)
        script = (
            "const crypto=require('crypto');let bad=0;"
            "for(const l of require('fs').readFileSync(0,'utf8').split('\\n')){if(!l)continue;"
            "const [b64,sig]=l.split(' ');const body=Buffer.from(b64,'base64').toString('utf8');"
            "const again=JSON.stringify(JSON.parse(body));"
            "const mac=crypto.createHmac('sha256',process.argv[1]).update(again,'utf8')"
            ".digest('hex');"
            "if(again!==body||'sha256='+mac!==sig){bad++;console.log('MISMATCH',body,again)}}"
            "process.exit(bad?1:0)")
        import base64
        lines = "".join("%s %s\n" % (base64.b64encode(r["body"]).decode(),
                                     r["headers"]["x-webhook-signature"]) for r in reqs)
        p = subprocess.run(["node", "-e", script, w["secret"]], input=lines, text=True,
                           capture_output=True, timeout=60)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)

    def test_fanout_matches_entities_and_event_types(self):
        rx = self.receiver()
        self.app.webhook(rx.url("/all"))
        self.app.webhook(rx.url("/agents"), entities=["agent"])
        self.app.webhook(rx.url("/ctx-created"), entities=["context", "contextfile"],
                         eventTypes=["context.created", "contextfile.deleted"])
        paused = self.app.webhook(rx.url("/paused"))
        self.app.ok("PATCH", "webhooks/" + paused["uid"], {"active": False})
        other = App(self.server, self.server.create_app("other"))
        other.webhook(rx.url("/other-app"))
        self.make_all_nine()
        rx.wait_count(9, "/all")
        rx.wait_count(3, "/agents")
        rx.wait_count(2, "/ctx-created")
        time.sleep(0.5)
        self.assertEqual(len(rx.bodies("/all")), 9)
        self.assertEqual(sorted(b["event"] for b in rx.bodies("/agents")),
                         ["agent.created", "agent.deleted", "agent.updated"])
        self.assertEqual(sorted(b["event"] for b in rx.bodies("/ctx-created")),
                         ["context.created", "contextfile.deleted"])
        self.assertEqual(rx.bodies("/paused"), [])
        self.assertEqual(rx.bodies("/other-app"), [])
        # the same event goes to every webhook with the same eventId
        ids = {b["eventId"] for b in rx.bodies("/agents")}
        self.assertTrue(ids <= {b["eventId"] for b in rx.bodies("/all")})

    def test_pause_gets_nothing_and_resume_does_not_replay(self):
        rx = self.receiver()
        w = self.app.webhook(rx.url(), entities=["agent"])
        self.app.ok("PATCH", "webhooks/" + w["uid"], {"active": False})
        self.app.ok("POST", "agents", {"agentName": "while paused", "externalTenantId": "t"})
        self.app.ok("PATCH", "webhooks/" + w["uid"], {"active": True})
        self.app.ok("POST", "agents", {"agentName": "after resume", "externalTenantId": "t"})
        rx.wait_count(1)
        time.sleep(0.5)
        self.assertEqual([b["data"]["agentName"] for b in rx.bodies()], ["after resume"])

    def test_retry_500_then_200_same_event_id(self):
        rx = self.receiver(lambda n, req: (500 if n == 0 else 200, b"oops" if n == 0 else b"ok",
                                           {}, 0))
        w = self.app.webhook(rx.url(), entities=["agent"])
        self.app.ok("POST", "agents", {"agentName": "x", "externalTenantId": "t"})
        reqs = rx.wait_count(2)
        self.assertEqual(reqs[0]["body"], reqs[1]["body"])
        self.assertEqual(reqs[0]["headers"]["x-webhook-event-id"],
                         reqs[1]["headers"]["x-webhook-event-id"])
        check_signed(self, reqs[1], w["secret"])
        got = wait_for(lambda: (lambda g: g if g["lastSuccessAt"] else None)(
            self.app.ok("GET", "webhooks/" + w["uid"])), what="success recorded")
        self.assertIsNotNone(got["lastFailureAt"])
        self.assertGreaterEqual(got["lastSuccessAt"], got["lastFailureAt"])
        time.sleep(0.6)
        self.assertEqual(len(rx.requests), 2)

    def test_gives_up_after_the_schedule(self):
        rx = self.receiver(lambda n, req: (503, b"down", {}, 0))
        self.app.webhook(rx.url(), entities=["agent"])
        self.app.ok("POST", "agents", {"agentName": "x", "externalTenantId": "t"})
        rx.wait_count(4)  # schedule 0,100ms,200ms,400ms: four attempts in all
        time.sleep(1.2)
        self.assertEqual(len(rx.requests), 4)
        self.assertIn("will retry", self.server.log())
        self.assertIn("failed", self.server.log())

    def test_retry_after_is_honoured(self):
        rx = self.receiver(lambda n, req: (429, b"slow down", {"Retry-After": "1"}, 0)
                           if n == 0 else (200, b"ok", {}, 0))
        self.app.webhook(rx.url(), entities=["agent"])
        self.app.ok("POST", "agents", {"agentName": "x", "externalTenantId": "t"})
        reqs = rx.wait_count(2, timeout=10)
        self.assertGreaterEqual(reqs[1]["time"] - reqs[0]["time"], 0.9)

    def test_410_disables_the_webhook(self):
        rx = self.receiver(lambda n, req: (410, b"gone", {}, 0))
        w = self.app.webhook(rx.url(), entities=["agent"])
        self.app.ok("POST", "agents", {"agentName": "x", "externalTenantId": "t"})
        rx.wait_count(1)
        got = wait_for(lambda: (lambda g: g if not g["active"] else None)(
            self.app.ok("GET", "webhooks/" + w["uid"])), what="webhook disabled")
        self.assertIn("410", got["disabledReason"])
        self.assertIsNotNone(got["disabledAt"])
        self.app.ok("POST", "agents", {"agentName": "y", "externalTenantId": "t"})
        time.sleep(0.5)
        self.assertEqual(len(rx.requests), 1)
        # enabling it again clears the reason
        got = self.app.ok("PATCH", "webhooks/" + w["uid"], {"active": True})
        self.assertIsNone(got["disabledReason"])
        self.assertIsNone(got["disabledAt"])

    def test_delete_cancels_pending_deliveries(self):
        rx = self.receiver(lambda n, req: (500, b"no", {}, 0))
        env = {"HOOKLINE_RETRY_SCHEDULE": "0,1s,1s,1s"}
        self.server.stop()
        self.server.env.update(env)
        self.server.start()
        w = self.app.webhook(rx.url(), entities=["agent"])
        self.app.ok("POST", "agents", {"agentName": "x", "externalTenantId": "t"})
        rx.wait_count(1)
        self.app.ok("DELETE", "webhooks/" + w["uid"])
        time.sleep(2.5)
        self.assertEqual(len(rx.requests), 1)


class SlowReceiver(ServerTest):
    # The attempt timeout stays below the lease the PostgreSQL runs use (3 s), so that a hanging
    # attempt times out rather than being claimed again.
    server_env = {"HOOKLINE_TIMEOUT": "2s", "HOOKLINE_RETRY_SCHEDULE": "0,300ms,300ms"}

    def test_hanging_receiver_times_out_and_others_stay_prompt(self):
        """Proved by order, not by a clock: every change reaches the prompt receiver while each
        of the hanging receiver's first attempts is still open (none has timed out, so none has
        been tried again), and afterwards the hanging attempts time out and are retried."""
        release = threading.Event()

        def hang(n, req):
            release.wait(20)
            return 200, b"late", {}, 0
        slow = self.receiver(hang)
        fast = self.receiver()
        self.app.webhook(slow.url(), entities=["agent"])
        self.app.webhook(fast.url(), entities=["agent"])
        try:
            for i in range(10):
                self.app.ok("POST", "agents", {"agentName": "a%d" % i, "externalTenantId": "t"})
            fast.wait_count(10)
            self.assertNotIn("timeout", self.server.log())
            with slow.lock:
                seen = [json.loads(r["body"])["eventId"] for r in slow.requests]
            # no event went to the hanging receiver twice: no attempt of it had timed out yet
            self.assertEqual(len(seen), len(set(seen)), seen)
            slow.wait_count(20, timeout=30)  # 10 events, each timed out and retried
        finally:
            release.set()
        self.assertIn("timeout", self.server.log())


class HostCap(ServerTest):
    """--per-host bounds the attempts in flight to one host, whatever the number of webhooks on
    it; the excess waits inside hookline, in order, and every delivery still lands."""
    server_env = {"HOOKLINE_PER_HOST": "2", "HOOKLINE_RETRY_SCHEDULE": "0,300ms,300ms"}

    def concurrency_receiver(self, status=200, delay=0.15):
        state = {"now": 0, "max": 0}
        lock = threading.Lock()

        def behave(n, req):
            with lock:
                state["now"] += 1
                state["max"] = max(state["max"], state["now"])
            time.sleep(delay)
            with lock:
                state["now"] -= 1
            return (status, b"ok", {}, 0)
        return self.receiver(behave), state

    def test_webhooks_on_one_host_share_its_cap(self):
        rx, state = self.concurrency_receiver()
        for i in range(4):
            self.app.webhook(rx.url("/w%d" % i), entities=["agent"])
        for i in range(6):
            self.app.ok("POST", "agents", {"agentName": "a%d" % i, "externalTenantId": "t"})
        rx.wait_count(24, timeout=20)
        time.sleep(0.3)
        self.assertEqual(len(rx.requests), 24)
        self.assertLessEqual(state["max"], 2)
        self.assertEqual(state["max"], 2)  # and the cap is used, not just respected
        for i in range(4):  # each webhook got each of its changes once
            names = sorted(b["data"]["agentName"] for b in rx.bodies("/w%d" % i))
            self.assertEqual(names, ["a%d" % k for k in range(6)])

    def test_nothing_more_is_sent_after_410(self):
        # No answer until all eight changes are acknowledged, so that all eight are queued (a
        # delivery each) before the 410 disables the webhook, however slow the machine is.
        gate = threading.Event()

        def gone(n, req):
            gate.wait(20)
            return 410, b"gone", {}, 0
        rx = self.receiver(gone)
        w = self.app.webhook(rx.url(), entities=["agent"])
        for i in range(8):
            self.app.ok("POST", "agents", {"agentName": "a%d" % i, "externalTenantId": "t"})
        gate.set()
        wait_for(lambda: not self.app.ok("GET", "webhooks/" + w["uid"])["active"],
                 what="webhook disabled")
        time.sleep(1.0)
        # the attempts in flight when the 410 came (at most the cap) and nothing after
        self.assertLessEqual(len(rx.requests), 2)
        ds = self.app.ok("GET", "webhooks/%s/deliveries?limit=100" % w["uid"])["data"]
        self.assertEqual(len(ds), 8)  # kept, waiting for the webhook to be enabled again


class CrashSafety(unittest.TestCase):

    def test_kill_9_loses_no_acknowledged_change(self):
        """What it proves: a kill -9 with a backlog loses no acknowledged change and no attempt
        in flight. The receiver holds every request (never answers) while writers go on, so each
        run kills the server with acknowledged changes still undelivered (checked, at least
        BACKLOG of them) and attempts in flight. After the restart every acknowledged change
        arrives, the backlog among them arriving for the first time, every attempt held at the
        kill goes again, and nothing is delivered twice after the restart."""
        BACKLOG = 20
        hold = threading.Event()
        held = []

        def behave(n, req):
            held.append(1)
            deadline = time.monotonic() + 30
            while hold.is_set() and time.monotonic() < deadline:
                time.sleep(0.01)
            return 200, b"", {}, 0

        # The attempt timeout outlasts the hold, so held attempts are in flight at the kill. Once
        # HELD of them are (the host's cap), no attempt can start before the kill: the backlog
        # counted then is the backlog at the kill.
        HELD = 4
        srv = Server(env={"HOOKLINE_RETRY_SCHEDULE": "0,200ms,200ms,200ms,200ms,1s,1s",
                          "HOOKLINE_TIMEOUT": "10s", "HOOKLINE_PER_HOST": str(HELD)})
        rx = Receiver(behave)
        hold.set()
        try:
            app = App(srv, srv.create_app())
            srv.start()
            app.webhook(rx.url(), entities=["agent"])
            acked, stop = [], threading.Event()

            def writer():
                i = 0
                while not stop.is_set():
                    try:
                        r = app.call("POST", "agents",
                                     {"agentName": "n%d" % i, "externalTenantId": "t"},
                                     timeout=5)
                    except OSError:
                        return
                    if r.status == 201:
                        acked.append(r.json()["uid"])
                    i += 1

            def received(until=None):
                with rx.lock:
                    return [json.loads(r["body"]) for r in rx.requests
                            if until is None or r["time"] < until]

            threads = [threading.Thread(target=writer) for _ in range(4)]
            for t in threads:
                t.start()
            wait_for(lambda: len(held) >= HELD
                     and len(set(acked) - {b["data"]["uid"] for b in received()}) >= BACKLOG,
                     timeout=30, what="a backlog of acknowledged changes")
            srv.kill()
            stop.set()
            for t in threads:
                t.join()
            hold.clear()
            restart_at = time.time()
            srv.start()
            before = received(until=restart_at)
            backlog = set(acked) - {b["data"]["uid"] for b in before}
            self.assertGreaterEqual(len(backlog), BACKLOG)
            self.assertGreaterEqual(len(before), 1)  # attempts were in flight at the kill

            # Nothing was ever answered before the kill: everything goes (again) after it.
            def since_restart():
                with rx.lock:
                    return [json.loads(r["body"]) for r in rx.requests if r["time"] >= restart_at]
            want_uids = set(acked)
            want_ids = {b["eventId"] for b in before}
            # every acknowledged change, the backlog that never reached the receiver among them
            wait_for(lambda: want_uids <= {b["data"]["uid"] for b in since_restart()}, timeout=60,
                     what="every acknowledged change delivered after the restart")
            # every attempt held (never answered) at the kill goes again
            wait_for(lambda: want_ids <= {b["eventId"] for b in since_restart()}, timeout=30,
                     what="every attempt in flight at the kill delivered again")
            time.sleep(0.5)
            # after the restart the receiver answers at once: each delivery lands once
            ids = [b["eventId"] for b in since_restart()]
            self.assertEqual(len(ids), len(set(ids)))
        finally:
            hold.clear()
            srv.stop()
            rx.close()
            srv.cleanup()

    def test_pending_retries_resume_after_restart(self):
        srv = Server(env={"HOOKLINE_RETRY_SCHEDULE": "0,1s,1s"})
        rx = Receiver(lambda n, req: (500, b"", {}, 0) if n == 0 else (200, b"", {}, 0))
        try:
            app = App(srv, srv.create_app())
            srv.start()
            app.webhook(rx.url(), entities=["agent"])
            app.ok("POST", "agents", {"agentName": "x", "externalTenantId": "t"})
            rx.wait_count(1)
            srv.kill()
            srv.start()
            reqs = rx.wait_count(2, timeout=10)
            self.assertEqual(reqs[0]["body"], reqs[1]["body"])
        finally:
            srv.stop()
            rx.close()
            srv.cleanup()


class PublishAndLog(ServerTest):

    def test_publish_with_idempotency_key(self):
        rx = self.receiver()
        self.app.webhook(rx.url(), entities=["context"])
        body = {"event": "context.updated",
                "data": {"uid": "context-ext-1", "externalTenantId": "t9", "name": "from svc"}}
        h = {"Idempotency-Key": "abc-123"}
        r1 = self.app.ok("POST", "events", body, status=202, headers=h)
        r2 = self.app.ok("POST", "events", body, status=202, headers=h)
        self.assertEqual(r1, r2)
        r3 = self.app.ok("POST", "events", body, status=202)
        self.assertNotEqual(r3["eventId"], r1["eventId"])
        rx.wait_count(2)
        time.sleep(0.3)
        self.assertEqual(len(rx.requests), 2)
        got = rx.bodies()[0]
        self.assertEqual(got["data"], body["data"])
        self.assertEqual(got["event"], "context.updated")
        # the same key with another body is refused
        r = self.app.call("POST", "events", dict(body, event="context.created"), headers=h)
        self.assertEqual(r.status, 422)
        self.assertEqual(r.json()["error"]["code"], "idempotency_key_reused")
        # another app may use the same key
        other = App(self.server, self.server.create_app("other"))
        self.assertNotEqual(other.ok("POST", "events", body, status=202, headers=h)["eventId"],
                            r1["eventId"])

    def test_publish_validation(self):
        cases = [({"data": {"uid": "u", "externalTenantId": "t"}}, "event_required"),
                 ({"event": "agent.exploded", "data": {"uid": "u", "externalTenantId": "t"}},
                  "event_unknown"),
                 ({"event": "webhook.test", "data": {"uid": "u", "externalTenantId": "t"}},
                  "event_unknown"),
                 ({"event": "agent.created"}, "data_required"),
                 ({"event": "agent.created", "data": [1]}, "data_not_object"),
                 ({"event": "agent.created", "data": {"uid": "u"}}, "data_field_required"),
                 ({"event": "agent.created", "data": {"externalTenantId": "t", "uid": 5}},
                  "data_field_required"),
                 ({"event": "agent.created", "data": {"uid": "u", "externalTenantId": "t"},
                   "extra": 1}, "unknown_field")]
        for body, code in cases:
            with self.subTest(code=code):
                r = self.app.call("POST", "events", body)
                self.assertEqual(r.status, 422, r)
                self.assertEqual(r.json()["error"]["code"], code)
        self.assertEqual(self.app.ok("GET", "events")["data"], [])

    def test_resource_validation_stores_nothing(self):
        cases = [("agents", {"externalTenantId": "t"}, "field_required", "agentName"),
                 ("agents", {"agentName": "a"}, "field_required", "externalTenantId"),
                 ("agents", {"agentName": "", "externalTenantId": "t"}, "field_empty",
                  "agentName"),
                 ("agents", {"agentName": 1, "externalTenantId": "t"}, "field_not_string",
                  "agentName"),
                 ("agents", {"agentName": "a", "externalTenantId": "t", "live": "yes"},
                  "field_not_boolean", "live"),
                 ("agents", {"agentName": "a", "externalTenantId": "t", "temperature": 5},
                  "field_out_of_range", "temperature"),
                 ("agents", {"agentName": "a", "externalTenantId": "t", "metadata": [1]},
                  "field_not_object", "metadata"),
                 ("agents", {"agentName": "a", "externalTenantId": "t", "colour": 1},
                  "unknown_field", "colour"),
                 ("contexts", {"externalTenantId": "t"}, "field_required", "name")]
        for path, body, code, field in cases:
            with self.subTest(code=code, field=field):
                r = self.app.call("POST", path, body)
                self.assertEqual(r.status, 422, r)
                self.assertEqual(r.json()["error"]["code"], code)
                self.assertIn(field, r.json()["error"]["message"])
        self.assertEqual(self.app.ok("GET", "agents")["data"], [])
        self.assertEqual(self.app.ok("GET", "events")["data"], [])
        a = self.app.ok("POST", "agents", {"agentName": "a", "externalTenantId": "t"})
        r = self.app.call("PATCH", "agents/" + a["uid"], {"externalTenantId": "u"})
        self.assertEqual(r.json()["error"]["code"], "field_immutable")
        self.assertEqual(self.app.call("GET", "agents/agent-nope").status, 404)
        self.assertEqual(self.app.call("POST", "contexts/context-nope/files",
                                       {"fileName": "x"}).status, 404)

    def test_event_log_filters(self):
        self.app.ok("POST", "agents", {"agentName": "a", "externalTenantId": "t1"})
        time.sleep(0.01)
        now = time.time()  # one reading: seconds and milliseconds must agree
        mid = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now)) + ".%03dZ" % (
            int(now * 1000) % 1000)
        time.sleep(0.01)
        c = self.app.ok("POST", "contexts", {"name": "c", "externalTenantId": "t2"})
        self.app.ok("PATCH", "contexts/" + c["uid"], {"name": "c2"})
        log = self.app.ok("GET", "events")["data"]
        self.assertEqual([e["event"] for e in log],
                         ["context.updated", "context.created", "agent.created"])
        self.assertEqual(list(log[0]), ["eventId", "event", "timestamp", "appUid", "version",
                                        "data"])
        self.assertEqual([e["event"] for e in self.app.ok("GET", "events?event=agent.created")
                          ["data"]], ["agent.created"])
        self.assertEqual(len(self.app.ok("GET", "events?externalTenantId=t2")["data"]), 2)
        self.assertEqual(len(self.app.ok("GET", "events?since=" + mid)["data"]), 2)
        self.assertEqual(len(self.app.ok("GET", "events?until=" + mid)["data"]), 1)
        page = self.app.ok("GET", "events?limit=2")
        self.assertEqual(len(page["data"]), 2)
        rest = self.app.ok("GET", "events?limit=2&cursor=" + page["nextCursor"])
        self.assertEqual([e["event"] for e in rest["data"]], ["agent.created"])
        self.assertEqual(self.app.call("GET", "events?since=yesterday").status, 422)
        self.assertEqual(self.app.call("GET", "events?event=nope").status, 422)

    def test_deleting_a_context_deletes_its_files_first(self):
        rx = self.receiver()
        self.app.webhook(rx.url())
        c = self.app.ok("POST", "contexts", {"name": "c", "externalTenantId": "t"})
        files = [self.app.ok("POST", "contexts/%s/files" % c["uid"], {"fileName": "f%d" % i})
                 for i in range(3)]
        self.app.ok("DELETE", "contexts/" + c["uid"])
        log = self.app.ok("GET", "events")["data"]
        self.assertEqual([e["event"] for e in log[:4]],
                         ["context.deleted"] + ["contextfile.deleted"] * 3)
        self.assertEqual({e["data"]["uid"] for e in log[1:4]}, {f["uid"] for f in files})
        self.assertEqual(self.app.call("GET", "contexts/%s/files/%s" % (
            c["uid"], files[0]["uid"])).status, 404)
        rx.wait_count(8)


if __name__ == "__main__":
    main()
