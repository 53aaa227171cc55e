"""Operating deliveries: attempt logs, resend, recover, test events, secret rotation,
auto-disable, counters, and the production-mode address guard."""
import json
import os
import socket
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(__file__))
from harness import (App, Receiver, Server, ServerTest, check_signed, free_port,  # noqa: E402
                     main, sign_hex, sign_std, wait_for)


def iso(t):
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + ".%03dZ" % (int(t * 1000) % 1000)


class Operations(ServerTest):
    server_env = {"HOOKLINE_TIMEOUT": "1s", "HOOKLINE_RETRY_SCHEDULE": "0,100ms,100ms"}

    def deliveries(self, w, query=""):
        return self.app.ok("GET", "webhooks/%s/deliveries%s" % (w["uid"], query))["data"]

    def settled(self, w, n, status=None):
        def ok():
            ds = self.deliveries(w)
            if len(ds) >= n and all(d["status"] not in ("pending", "failing") for d in ds):
                if status is None or all(d["status"] == status for d in ds):
                    return ds
            return None
        return wait_for(ok, timeout=15, what="%d settled deliveries" % n)

    def test_attempt_log_success(self):
        rx = self.receiver(lambda n, req: (200, b'{"received":true}', {}, 0))
        w = self.app.webhook(rx.url(), entities=["agent"])
        a = self.app.ok("POST", "agents", {"agentName": "x", "externalTenantId": "t"})
        d = self.settled(w, 1, "succeeded")[0]
        self.assertEqual(d["event"], "agent.created")
        self.assertRegex(d["id"], r"^dlv_\d+$")
        self.assertEqual(d["attempts"], 1)
        self.assertEqual(d["lastStatusCode"], 200)
        self.assertIsNone(d["lastError"])
        self.assertIsNone(d["nextAttemptAt"])
        self.assertIsNotNone(d["deliveredAt"])
        full = self.app.ok("GET", "deliveries/" + d["id"])
        self.assertEqual(len(full["attemptLog"]), 1)
        att = full["attemptLog"][0]
        self.assertEqual(att["statusCode"], 200)
        self.assertEqual(att["response"], '{"received":true}')
        self.assertIsNone(att["error"])
        self.assertGreaterEqual(att["durationMs"], 0)
        ev = self.app.ok("GET", "events/" + d["eventId"])
        self.assertEqual(ev["data"]["uid"], a["uid"])
        self.assertEqual([x["id"] for x in ev["deliveries"]], [d["id"]])
        self.assertEqual(self.app.call("GET", "events/evt_nope").status, 404)

    def test_attempt_log_500_timeout_refused(self):
        big = b"E" * 10000
        rx500 = self.receiver(lambda n, req: (500, big, {}, 0))
        slow = self.receiver(lambda n, req: (200, b"late", {}, 2))
        closed = free_port()
        w500 = self.app.webhook(rx500.url(), entities=["agent"])
        wslow = self.app.webhook(slow.url(), entities=["agent"])
        wdead = self.app.webhook("http://127.0.0.1:%d/hook" % closed, entities=["agent"])
        self.app.ok("POST", "agents", {"agentName": "x", "externalTenantId": "t"})
        for w, err in ((w500, "HTTP 500"), (wslow, "timeout"), (wdead, "connection refused")):
            d = self.settled(w, 1, "failed")[0]
            self.assertEqual(d["attempts"], 3)
            self.assertIn(err, d["lastError"])
            full = self.app.ok("GET", "deliveries/" + d["id"])
            self.assertEqual(len(full["attemptLog"]), 3)
            for att in full["attemptLog"]:
                self.assertIn(err, att["error"])
            if w is w500:
                self.assertEqual(full["attemptLog"][0]["statusCode"], 500)
                self.assertEqual(len(full["attemptLog"][0]["response"]), 4096)
        st = self.app.ok("GET", "webhooks/%s/stats" % w500["uid"])
        self.assertEqual((st["pending"], st["succeeded"], st["failed"]), (0, 0, 1))

    def test_filters_and_paging(self):
        rx = self.receiver(lambda n, req: (500 if b"bad" in req["body"] else 200, b"", {}, 0))
        w = self.app.webhook(rx.url(), entities=["agent", "context"])
        for i in range(3):
            self.app.ok("POST", "agents", {"agentName": "good%d" % i, "externalTenantId": "t"})
        self.app.ok("POST", "contexts", {"name": "bad", "externalTenantId": "t"})
        self.settled(w, 4)
        self.assertEqual(len(self.deliveries(w, "?status=succeeded")), 3)
        self.assertEqual(len(self.deliveries(w, "?status=failed")), 1)
        self.assertEqual(len(self.deliveries(w, "?event=context.created")), 1)
        self.assertEqual(len(self.deliveries(w, "?since=" + iso(time.time() + 60))), 0)
        self.assertEqual(len(self.deliveries(w, "?until=" + iso(time.time() + 60))), 4)
        page = self.app.ok("GET", "webhooks/%s/deliveries?limit=3" % w["uid"])
        rest = self.app.ok("GET", "webhooks/%s/deliveries?limit=3&cursor=%s"
                           % (w["uid"], page["nextCursor"]))
        self.assertEqual(len(page["data"]) + len(rest["data"]), 4)
        self.assertIsNone(rest["nextCursor"])
        for bad in ("status=weird", "event=x", "since=soon"):
            self.assertEqual(self.app.call("GET", "webhooks/%s/deliveries?%s"
                                           % (w["uid"], bad)).status, 422)

    def test_app_wide_list(self):
        """GET /deliveries: every webhook's deliveries of the app (and no other app's), newest
        first, with the webhook's filters, paged without a gap or a repeat."""
        good = self.receiver()
        bad = self.receiver(lambda n, req: (500, b"", {}, 0))
        wg = self.app.webhook(good.url(), entities=["agent"])
        wb = self.app.webhook(bad.url(), entities=["agent", "context"])
        other = App(self.server, self.server.create_app("other"))
        other.webhook(good.url("/other"), entities=["agent"])
        other.ok("POST", "agents", {"agentName": "theirs", "externalTenantId": "t"})
        for i in range(3):
            self.app.ok("POST", "agents", {"agentName": "a%d" % i, "externalTenantId": "t"})
        self.app.ok("POST", "contexts", {"name": "c", "externalTenantId": "t"})
        self.settled(wg, 3)
        self.settled(wb, 4)
        all_ = self.app.ok("GET", "deliveries?limit=100")
        self.assertIsNone(all_["nextCursor"])
        ids = [int(d["id"][4:]) for d in all_["data"]]
        self.assertEqual(len(ids), 7)
        self.assertEqual(ids, sorted(ids, reverse=True))
        self.assertEqual(sorted(set(d["webhookUid"] for d in all_["data"])),
                         sorted([wg["uid"], wb["uid"]]))
        # the same rows as the two webhooks' own lists
        own = self.deliveries(wg, "?limit=100") + self.deliveries(wb, "?limit=100")
        self.assertEqual(sorted(d["id"] for d in own), sorted(d["id"] for d in all_["data"]))

        def listed(query):
            return [d["id"] for d in self.app.ok("GET", "deliveries" + query)["data"]]
        self.assertEqual(len(listed("?status=succeeded")), 3)
        self.assertEqual(len(listed("?status=failed")), 4)
        self.assertEqual(listed("?status=pending"), [])
        self.assertEqual(len(listed("?event=context.created")), 1)
        self.assertEqual(len(listed("?event=agent.created&status=failed")), 3)
        self.assertEqual(listed("?since=" + iso(time.time() + 60)), [])
        self.assertEqual(len(listed("?until=" + iso(time.time() + 60))), 7)
        seen, cursor = [], ""
        while True:
            page = self.app.ok("GET", "deliveries?limit=2" + cursor)
            seen += [d["id"] for d in page["data"]]
            if page["nextCursor"] is None:
                break
            cursor = "&cursor=" + page["nextCursor"]
        self.assertEqual(seen, [d["id"] for d in all_["data"]])
        for q, code in (("status=weird", "invalid_status"), ("event=x", "invalid_event"),
                        ("since=soon", "invalid_time"), ("limit=0", "invalid_limit")):
            r = self.app.call("GET", "deliveries?" + q)
            self.assertEqual((r.status, r.json()["error"]["code"]), (422, code))
        r = self.app.call("POST", "deliveries")
        self.assertEqual((r.status, r.headers.get("allow")), (405, "GET"))

    def test_resend_and_recover_deliver_again_with_same_event_id(self):
        state = {"fail": True}
        rx = self.receiver(lambda n, req: (500 if state["fail"] else 200, b"", {}, 0))
        w = self.app.webhook(rx.url(), entities=["agent"])
        t0 = time.time() - 1
        for i in range(3):
            self.app.ok("POST", "agents", {"agentName": "a%d" % i, "externalTenantId": "t"})
        ds = self.settled(w, 3, "failed")
        state["fail"] = False
        before = len(rx.requests)
        r = self.app.ok("POST", "deliveries/%s/resend" % ds[0]["id"], status=202)
        self.assertEqual(r["id"], ds[0]["id"])
        rx.wait_count(before + 1)
        got = wait_for(lambda: (lambda d: d if d["status"] == "succeeded" else None)(
            self.app.ok("GET", "deliveries/" + ds[0]["id"])), what="resend succeeded")
        self.assertEqual(got["attempts"], 4)
        self.assertEqual(json.loads(rx.requests[-1]["body"])["eventId"], ds[0]["eventId"])
        # recover the other two
        r = self.app.ok("POST", "webhooks/%s/recover" % w["uid"], {"since": iso(t0)},
                        status=202)
        self.assertEqual(r["queued"], 2)
        rx.wait_count(before + 3)
        self.settled(w, 3, "succeeded")
        ids = [json.loads(q["body"])["eventId"] for q in rx.requests[before:]]
        self.assertEqual(sorted(ids), sorted(d["eventId"] for d in ds))
        # nothing failed is left to recover
        self.assertEqual(self.app.ok("POST", "webhooks/%s/recover" % w["uid"],
                                     {"since": iso(t0)}, status=202)["queued"], 0)
        for body, code in (({}, "since_required"), ({"since": "x"}, "invalid_time"),
                           ({"since": iso(t0), "until": iso(t0 - 5)}, "invalid_window"),
                           ({"since": iso(t0), "x": 1}, "unknown_field")):
            r = self.app.call("POST", "webhooks/%s/recover" % w["uid"], body)
            self.assertEqual(r.status, 422)
            self.assertEqual(r.json()["error"]["code"], code)
        other = App(self.server, self.server.create_app("other"))
        self.assertEqual(other.call("GET", "deliveries/" + ds[0]["id"]).status, 404)
        self.assertEqual(other.call("POST", "deliveries/%s/resend" % ds[0]["id"]).status, 404)
        self.assertEqual(self.app.call("GET", "deliveries/dlv_999999").status, 404)
        self.assertEqual(self.app.call("GET", "deliveries/nope").status, 404)

    def test_test_event_verified_by_receiver(self):
        rx = self.receiver()
        w = self.app.webhook(rx.url(), entities=["agent"])
        d = self.app.ok("POST", "webhooks/%s/test" % w["uid"], status=200)
        self.assertEqual(d["status"], "succeeded")
        self.assertEqual(d["event"], "webhook.test")
        self.assertEqual(d["attemptLog"][0]["statusCode"], 200)
        req = rx.wait_count(1)[0]
        check_signed(self, req, w["secret"])
        body = json.loads(req["body"])
        self.assertEqual(body["event"], "webhook.test")
        self.assertEqual(body["data"]["uid"], w["uid"])
        self.assertIn("externalTenantId", body["data"])
        # a failing endpoint: the answer says so
        bad = self.app.webhook("http://127.0.0.1:%d/x" % free_port(), entities=["agent"])
        d = self.app.ok("POST", "webhooks/%s/test" % bad["uid"], status=200)
        # the delivery as it stands when the answer is written: on a loaded machine the retry
        # (100 ms later here) may have been recorded too
        self.assertGreaterEqual(d["attempts"], 1)
        self.assertIn("connection refused", d["attemptLog"][0]["error"])
        self.app.ok("PATCH", "webhooks/" + w["uid"], {"active": False})
        self.assertEqual(self.app.call("POST", "webhooks/%s/test" % w["uid"]).status, 409)


class Rotation(ServerTest):

    def test_both_secrets_during_overlap_only_new_after(self):
        rx = self.receiver()
        w = self.app.webhook(rx.url(), entities=["agent"])
        old = w["secret"]
        r = self.app.ok("POST", "webhooks/%s/rotate-secret" % w["uid"], {"overlapSeconds": 2},
                        status=200)
        new = r["secret"]
        self.assertNotEqual(new, old)
        self.assertTrue(new.startswith("whsec_"))
        self.assertIsNotNone(r["previousSecretExpiresAt"])
        self.assertNotIn("secret", self.app.ok("GET", "webhooks/" + w["uid"]))
        self.app.ok("POST", "agents", {"agentName": "during", "externalTenantId": "t"})
        req = rx.wait_count(1)[0]
        h, body = req["headers"], req["body"]
        sigs = h["webhook-signature"].split(" ")
        self.assertEqual(len(sigs), 2)
        # a receiver holding either secret verifies (Standard Webhooks)
        self.assertIn(sign_std(new, h["webhook-id"], h["webhook-timestamp"], body), sigs)
        self.assertIn(sign_std(old, h["webhook-id"], h["webhook-timestamp"], body), sigs)
        # X-Webhook-Signature carries one value: the new secret's (see README)
        self.assertEqual(h["x-webhook-signature"], "sha256=" + sign_hex(new, body))
        self.assertEqual(h["x-webhook-signature-previous"], "sha256=" + sign_hex(old, body))
        time.sleep(2.2)
        self.app.ok("POST", "agents", {"agentName": "after", "externalTenantId": "t"})
        req = rx.wait_count(2)[1]
        h, body = req["headers"], req["body"]
        sigs = h["webhook-signature"].split(" ")
        self.assertEqual(sigs, [sign_std(new, h["webhook-id"], h["webhook-timestamp"], body)])
        self.assertNotIn(sign_std(old, h["webhook-id"], h["webhook-timestamp"], body), sigs)
        self.assertNotIn("x-webhook-signature-previous", h)

    def test_zero_overlap_and_validation(self):
        rx = self.receiver()
        w = self.app.webhook(rx.url(), entities=["agent"])
        r = self.app.ok("POST", "webhooks/%s/rotate-secret" % w["uid"], {"overlapSeconds": 0},
                        status=200)
        self.assertIsNone(r["previousSecretExpiresAt"])
        self.app.ok("POST", "agents", {"agentName": "x", "externalTenantId": "t"})
        req = rx.wait_count(1)[0]
        check_signed(self, req, r["secret"])
        self.assertEqual(len(req["headers"]["webhook-signature"].split(" ")), 1)
        for body in ({"overlapSeconds": -1}, {"overlapSeconds": "1"}, {"overlapSeconds": 1.5},
                     {"other": 1}):
            self.assertEqual(self.app.call("POST", "webhooks/%s/rotate-secret" % w["uid"],
                                           body).status, 422)
        # default overlap is 24 h
        r = self.app.call("POST", "webhooks/%s/rotate-secret" % w["uid"])
        self.assertEqual(r.status, 200)
        exp = r.json()["previousSecretExpiresAt"]
        self.assertTrue(exp.startswith(iso(time.time() + 86400)[:13]), exp)


class AutoDisable(ServerTest):
    server_env = {"HOOKLINE_DISABLE_AFTER": "1s",
                  "HOOKLINE_RETRY_SCHEDULE": "0,400ms,400ms,400ms,400ms,400ms,400ms"}

    def test_failing_webhook_is_disabled_and_recovering_one_is_not(self):
        dead = self.receiver(lambda n, req: (500, b"", {}, 0))
        flaky = self.receiver(lambda n, req: (500 if n % 2 == 0 else 200, b"", {}, 0))
        wd = self.app.webhook(dead.url(), entities=["agent"])
        wf = self.app.webhook(flaky.url(), entities=["agent"])
        self.app.ok("POST", "agents", {"agentName": "x", "externalTenantId": "t"})
        got = wait_for(lambda: (lambda g: g if not g["active"] else None)(
            self.app.ok("GET", "webhooks/" + wd["uid"])), timeout=10, what="auto-disable")
        self.assertIn("failing", got["disabledReason"])
        self.assertIsNotNone(got["disabledAt"])
        for i in range(4):
            self.app.ok("POST", "agents", {"agentName": "y%d" % i, "externalTenantId": "t"})
            time.sleep(0.4)
        self.assertTrue(self.app.ok("GET", "webhooks/" + wf["uid"])["active"])
        n = len(dead.requests)
        time.sleep(0.8)
        self.assertEqual(len(dead.requests), n)
        got = self.app.ok("PATCH", "webhooks/" + wd["uid"], {"active": True})
        self.assertTrue(got["active"])
        self.assertIsNone(got["disabledReason"])
        self.assertIsNone(got["disabledAt"])


class ProductionGuard(ServerTest):
    mode = "production"
    server_env = {"HOOKLINE_RETRY_SCHEDULE": "0", "HOOKLINE_TIMEOUT": "2s"}

    def test_private_addresses_refused_at_connect_time(self):
        # Literal addresses are refused at registration already (test_first_hour.py); a name is
        # judged by what it resolves to, when the attempt connects.
        rx = self.receiver()
        port = rx.port
        cases = [("https://localhost:%d/h" % port, "loopback")]
        for url, why in cases:
            with self.subTest(url=url):
                w = self.app.webhook(url, entities=["agent"])
                d = self.app.ok("POST", "webhooks/%s/test" % w["uid"], status=200)
                self.assertEqual(d["status"], "failed")
                err = d["attemptLog"][0]["error"]
                self.assertIn("refused address", err)
                self.assertIn(why, err)
                self.app.ok("DELETE", "webhooks/" + w["uid"])
        self.assertEqual(rx.requests, [])


class ProductionAllowNetwork(ServerTest):
    mode = "production"
    server_args = ("--allow-network", "127.0.0.0/8")
    server_env = {"HOOKLINE_RETRY_SCHEDULE": "0", "HOOKLINE_TIMEOUT": "2s"}

    def test_allowed_range_gets_through_the_guard(self):
        # A plain-HTTP listener: the connection is allowed, then TLS fails on it.
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        s.listen(5)
        try:
            w = self.app.webhook("https://127.0.0.1:%d/h" % s.getsockname()[1],
                                 entities=["agent"])
            import threading

            def serve():
                try:
                    c, _ = s.accept()
                    c.recv(1024)
                    c.sendall(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")
                    c.close()
                except OSError:
                    pass
            t = threading.Thread(target=serve, daemon=True)
            t.start()
            d = self.app.ok("POST", "webhooks/%s/test" % w["uid"], status=200)
            # the answer may come before the attempt is recorded (--timeout + 2 s on a loaded
            # machine): the delivery shows it then
            d = wait_for(lambda: (lambda x: x if x.get("attemptLog") else None)(
                self.app.ok("GET", "deliveries/" + d["id"])), what="the test's attempt")
            err = d["attemptLog"][0]["error"]
            self.assertNotIn("refused address", err)
            self.assertIn("TLS", err)
        finally:
            s.close()


if __name__ == "__main__":
    main()
