"""The first hour and the operator's view (issue 13): a failing endpoint shows as failing, with
its next attempt, in lists and stats, and recover retries it now; every earlier secret whose
overlap has not ended keeps signing after several rotations; a date alone is a time; a deleted
webhook's deliveries stay viewable; production mode refuses literal non-public addresses at
registration; a context file registered by JSON metadata awaits its bytes and takes them by PUT.

Runs on SQLite, and on PostgreSQL under HOOKLINE_TEST_BACKEND=postgres (scripts/with-postgres.sh).
"""
import hashlib
import json
import os
import subprocess
import sys
import time
import uuid
from datetime import datetime, timezone

sys.path.insert(0, os.path.dirname(__file__))
from harness import BIN, ServerTest, free_port, main, sign_hex, sign_std, wait_for  # noqa: E402


def parse_iso(s):
    return datetime.fromisoformat(s.replace("Z", "+00:00")).timestamp()


def today():
    return time.strftime("%Y-%m-%d", time.gmtime())


def day(offset_days):
    return time.strftime("%Y-%m-%d", time.gmtime(time.time() + offset_days * 86400))


class FailingView(ServerTest):
    # The first attempt at once, then one hour later: a failing delivery stays failing for the
    # whole test, as one on the default schedule does for ~28 hours.
    server_env = {"HOOKLINE_TIMEOUT": "1s", "HOOKLINE_RETRY_SCHEDULE": "0,1h,1h"}

    def deliveries(self, w, query=""):
        return self.app.ok("GET", "webhooks/%s/deliveries%s" % (w["uid"], query))["data"]

    def first_failure(self, w):
        def tried():
            ds = self.deliveries(w)
            return ds if ds and all(d["attempts"] >= 1 for d in ds) else None
        return wait_for(tried, timeout=15, what="a first attempt")

    def test_closed_port_shows_as_failing_with_next_attempt(self):
        w = self.app.webhook("http://127.0.0.1:%d/hook" % free_port(), entities=["agent"])
        self.app.ok("POST", "agents", {"agentName": "x", "externalTenantId": "t"})
        d = self.first_failure(w)[0]
        self.assertEqual(d["status"], "failing")
        self.assertEqual(d["attempts"], 1)
        self.assertIn("connection refused", d["lastError"])
        self.assertIsNone(d["lastStatusCode"])
        # the next attempt is the schedule's second step: 1 h +-20% after the first
        nxt = parse_iso(d["nextAttemptAt"])
        self.assertGreater(nxt, time.time() + 40 * 60)
        self.assertLess(nxt, time.time() + 80 * 60)
        full = self.app.ok("GET", "deliveries/" + d["id"])
        self.assertEqual(full["status"], "failing")
        self.assertEqual(full["nextAttemptAt"], d["nextAttemptAt"])
        # the view an operator starts from
        self.assertEqual([x["id"] for x in self.deliveries(w, "?status=failing")], [d["id"]])
        self.assertEqual(self.deliveries(w, "?status=pending"), [])
        self.assertEqual(self.deliveries(w, "?status=failed"), [])
        st = self.app.ok("GET", "webhooks/%s/stats" % w["uid"])
        self.assertEqual((st["pending"], st["failing"], st["succeeded"], st["failed"]),
                         (0, 1, 0, 0))
        ev = self.app.ok("GET", "events/" + d["eventId"])
        self.assertEqual([x["status"] for x in ev["deliveries"]], ["failing"])

    def test_recover_retries_failing_now_and_requeues_failed(self):
        state = {"fail": True}
        rx = self.receiver(lambda n, req: (500 if state["fail"] else 200, b"", {}, 0))
        w = self.app.webhook(rx.url(), entities=["agent"])
        self.app.ok("POST", "agents", {"agentName": "a", "externalTenantId": "t"})
        d = self.first_failure(w)[0]
        self.assertEqual(d["status"], "failing")
        self.assertEqual(d["lastStatusCode"], 500)
        self.assertEqual(len(rx.requests), 1)
        # the endpoint is fixed: recover sends the failing delivery now, not in an hour
        state["fail"] = False
        r = self.app.ok("POST", "webhooks/%s/recover" % w["uid"], {"since": today()}, status=202)
        self.assertEqual((r["queued"], r["failing"], r["failed"]), (1, 1, 0))
        rx.wait_count(2)
        got = wait_for(lambda: (lambda x: x if x["status"] == "succeeded" else None)(
            self.app.ok("GET", "deliveries/" + d["id"])), what="recovered delivery")
        self.assertEqual(got["attempts"], 2)
        self.assertIsNone(got["nextAttemptAt"])
        self.assertEqual(json.loads(rx.requests[1]["body"])["eventId"], d["eventId"])
        st = self.app.ok("GET", "webhooks/%s/stats" % w["uid"])
        self.assertEqual((st["pending"], st["failing"], st["succeeded"], st["failed"]),
                         (0, 0, 1, 0))
        # a window that holds nothing queues nothing
        r = self.app.ok("POST", "webhooks/%s/recover" % w["uid"], {"since": day(1)}, status=202)
        self.assertEqual(r["queued"], 0)

    def test_resent_success_is_pending_not_failing(self):
        rx = self.receiver()
        w = self.app.webhook(rx.url(), entities=["agent"])
        self.app.ok("PATCH", "webhooks/" + w["uid"], {"active": False})
        self.app.ok("POST", "agents", {"agentName": "a", "externalTenantId": "t"})
        self.assertEqual(self.deliveries(w), [])  # paused webhooks get nothing new
        self.app.ok("PATCH", "webhooks/" + w["uid"], {"active": True})
        self.app.ok("POST", "agents", {"agentName": "b", "externalTenantId": "t"})
        d = wait_for(lambda: (lambda ds: ds[0] if ds and ds[0]["status"] == "succeeded"
                              else None)(self.deliveries(w)), what="delivered")
        # resent while the webhook is paused, so that it stays queued: its last attempt succeeded
        self.app.ok("PATCH", "webhooks/" + w["uid"], {"active": False})
        r = self.app.ok("POST", "deliveries/%s/resend" % d["id"], status=202)
        self.assertEqual((r["status"], r["attempts"], r["lastStatusCode"]), ("pending", 1, 200))
        self.assertIsNotNone(r["nextAttemptAt"])
        self.assertEqual([x["id"] for x in self.deliveries(w, "?status=pending")], [d["id"]])
        self.assertEqual(self.deliveries(w, "?status=failing"), [])
        st = self.app.ok("GET", "webhooks/%s/stats" % w["uid"])
        self.assertEqual((st["pending"], st["failing"], st["succeeded"]), (1, 0, 0))


class Rotations(ServerTest):

    def rotate(self, w, body=None):
        r = self.app.call("POST", "webhooks/%s/rotate-secret" % w["uid"], body)
        self.assertEqual(r.status, 200, r)
        return r.json()

    def one_delivery(self, rx, n):
        self.app.ok("POST", "agents", {"agentName": "r%d" % n, "externalTenantId": "t"})
        req = rx.wait_count(n)[n - 1]
        h = req["headers"]
        return h, req["body"], h["webhook-signature"].split(" ")

    def verifies(self, secret, h, body, sigs):
        return sign_std(secret, h["webhook-id"], h["webhook-timestamp"], body) in sigs

    def test_three_rotations_every_secret_verifies(self):
        rx = self.receiver()
        w = self.app.webhook(rx.url(), entities=["agent"])
        secrets = [w["secret"]]
        for i in range(3):  # bodyless: the default overlap of 24 h
            r = self.rotate(w)
            secrets.append(r["secret"])
            self.assertEqual(len(r["previousSecretsExpireAt"]), i + 1)
        h, body, sigs = self.one_delivery(rx, 1)
        self.assertEqual(len(sigs), 4)
        for s in secrets:  # a receiver holding any one of them verifies
            self.assertTrue(self.verifies(s, h, body, sigs), s)
        # the guide's header: one value, the current secret's; -Previous: one value, the
        # secret the latest rotation replaced
        self.assertEqual(h["x-webhook-signature"], "sha256=" + sign_hex(secrets[3], body))
        self.assertEqual(h["x-webhook-signature-previous"], "sha256=" + sign_hex(secrets[2], body))
        # hookline's own verifier agrees: each secret verifies the header as sent
        for s in secrets:
            r = subprocess.run([BIN, "verify", "--secret", s, "--id", h["webhook-id"],
                                "--timestamp", h["webhook-timestamp"], "--standard-signature",
                                h["webhook-signature"]], input=body, capture_output=True,
                               timeout=30)
            self.assertEqual(r.returncode, 0, r.stderr)

    def test_sixth_oldest_drops_first(self):
        rx = self.receiver()
        w = self.app.webhook(rx.url(), entities=["agent"])
        secrets = [w["secret"]]
        for _ in range(6):
            secrets.append(self.rotate(w)["secret"])
        h, body, sigs = self.one_delivery(rx, 1)
        self.assertEqual(len(sigs), 6)  # the current one and five previous
        self.assertFalse(self.verifies(secrets[0], h, body, sigs))
        for s in secrets[1:]:
            self.assertTrue(self.verifies(s, h, body, sigs), s)

    def test_expired_secrets_stop_signing(self):
        rx = self.receiver()
        w = self.app.webhook(rx.url(), entities=["agent"])
        s0 = w["secret"]
        s1 = self.rotate(w, {"overlapSeconds": 86400})["secret"]  # s0 signs for a day
        r = self.rotate(w, {"overlapSeconds": 1})  # s1 for a second
        s2 = r["secret"]
        self.assertEqual(len(r["previousSecretsExpireAt"]), 2)
        h, body, sigs = self.one_delivery(rx, 1)
        self.assertEqual(len(sigs), 3)
        self.assertEqual(h["x-webhook-signature-previous"], "sha256=" + sign_hex(s1, body))
        time.sleep(1.5)  # past s1's overlap: waiting for an expiry, not measuring a speed
        h, body, sigs = self.one_delivery(rx, 2)
        self.assertEqual(len(sigs), 2)
        self.assertTrue(self.verifies(s2, h, body, sigs))
        self.assertTrue(self.verifies(s0, h, body, sigs))
        self.assertFalse(self.verifies(s1, h, body, sigs))
        # -Previous carries the newest previous secret that still signs
        self.assertEqual(h["x-webhook-signature-previous"], "sha256=" + sign_hex(s0, body))
        # a rotation without overlap is a clean cut: only the new secret signs
        s3 = self.rotate(w, {"overlapSeconds": 0})["secret"]
        h, body, sigs = self.one_delivery(rx, 3)
        self.assertEqual(sigs, [sign_std(s3, h["webhook-id"], h["webhook-timestamp"], body)])
        self.assertNotIn("x-webhook-signature-previous", h)


class Dates(ServerTest):
    server_env = {"HOOKLINE_TIMEOUT": "1s", "HOOKLINE_RETRY_SCHEDULE": "0"}

    def test_a_date_alone_is_midnight_utc(self):
        rx = self.receiver(lambda n, req: (500, b"", {}, 0))
        w = self.app.webhook(rx.url(), entities=["agent"])
        self.app.ok("POST", "agents", {"agentName": "x", "externalTenantId": "t"})
        wait_for(lambda: [d for d in self.app.ok("GET", "webhooks/%s/deliveries" % w["uid"])
                          ["data"] if d["status"] == "failed"], what="a failed delivery")
        r = self.app.ok("POST", "webhooks/%s/recover" % w["uid"], {"since": today()}, status=202)
        self.assertEqual(r["queued"], 1)
        r = self.app.ok("POST", "webhooks/%s/recover" % w["uid"],
                        {"since": day(1), "until": day(2)}, status=202)
        self.assertEqual(r["queued"], 0)
        for path in ("events", "webhooks/%s/deliveries" % w["uid"]):
            with self.subTest(path=path):
                self.assertEqual(len(self.app.ok("GET", path + "?since=" + today())["data"]), 1)
                self.assertEqual(len(self.app.ok("GET", path + "?until=" + today())["data"]), 0)
                self.assertEqual(len(self.app.ok("GET", path + "?since=%s&until=%s"
                                                 % (day(-1), day(1)))["data"]), 1)
        for bad in ("2026-11-31", "2026-13-01", "2026-11", "2026-11-27T", "2026-11-27Z"):
            with self.subTest(bad=bad):
                r = self.app.call("POST", "webhooks/%s/recover" % w["uid"], {"since": bad})
                self.assertEqual(r.status, 422)
                self.assertEqual(r.json()["error"]["code"], "invalid_time")
                self.assertEqual(self.app.call("GET", "events?since=" + bad).status, 422)


class DeletedWebhook(ServerTest):
    server_env = {"HOOKLINE_TIMEOUT": "1s", "HOOKLINE_RETRY_SCHEDULE": "0,1h"}

    def test_deliveries_stay_viewable(self):
        rx = self.receiver()
        ok = self.app.webhook(rx.url(), entities=["agent"])
        dead = self.app.webhook("http://127.0.0.1:%d/x" % free_port(), entities=["agent"])
        self.app.ok("POST", "agents", {"agentName": "x", "externalTenantId": "t"})

        def settled():
            a = self.app.ok("GET", "webhooks/%s/deliveries" % ok["uid"])["data"]
            b = self.app.ok("GET", "webhooks/%s/deliveries" % dead["uid"])["data"]
            if a and b and a[0]["status"] == "succeeded" and b[0]["attempts"] >= 1:
                return a[0], b[0]
            return None
        d_ok, d_dead = wait_for(settled, what="both delivered or tried")
        for w in (ok, dead):
            self.app.ok("DELETE", "webhooks/" + w["uid"])
        # the webhook itself is gone ...
        self.assertEqual(self.app.call("GET", "webhooks/" + ok["uid"]).status, 404)
        self.assertEqual(self.app.call("GET", "webhooks/%s/stats" % ok["uid"]).status, 404)
        self.assertEqual(self.app.call("POST", "webhooks/%s/recover" % dead["uid"],
                                       {"since": today()}).status, 404)
        # ... its deliveries are not: by id, by event and by the webhook's uid
        got = self.app.ok("GET", "deliveries/" + d_ok["id"])
        self.assertEqual(got["status"], "succeeded")
        self.assertEqual(len(got["attemptLog"]), 1)
        got = self.app.ok("GET", "deliveries/" + d_dead["id"])
        self.assertEqual(got["status"], "cancelled")
        self.assertIn("connection refused", got["attemptLog"][0]["error"])
        ev = self.app.ok("GET", "events/" + d_ok["eventId"])
        self.assertEqual(sorted(x["id"] for x in ev["deliveries"]),
                         sorted([d_ok["id"], d_dead["id"]]))
        lst = self.app.ok("GET", "webhooks/%s/deliveries?status=cancelled" % dead["uid"])["data"]
        self.assertEqual([x["id"] for x in lst], [d_dead["id"]])
        # nothing is sent to a deleted webhook again
        r = self.app.call("POST", "deliveries/%s/resend" % d_ok["id"])
        self.assertEqual(r.status, 409, r)
        self.assertEqual(r.json()["error"]["code"], "webhook_deleted")
        # another app sees none of it
        from harness import App
        other = App(self.server, self.server.create_app("other"))
        self.assertEqual(other.call("GET", "webhooks/%s/deliveries" % ok["uid"]).status, 404)
        self.assertEqual(other.call("GET", "deliveries/" + d_ok["id"]).status, 404)
        self.assertEqual(self.app.call("GET", "webhooks/webhook-nope/deliveries").status, 404)


class ProductionLiterals(ServerTest):
    mode = "production"

    def create(self, url):
        return self.app.call("POST", "webhooks", {"url": url, "entities": ["agent"],
                                                  "active": True})

    def test_literal_non_public_addresses_refused_at_registration(self):
        refused = [("https://127.0.0.1/h", "loopback"), ("https://127.0.0.1:8443/h", "loopback"),
                   ("https://10.1.2.3/h", "private"), ("https://192.168.0.10/h", "private"),
                   ("https://172.16.5.4/h", "private"), ("https://169.254.169.254/x", "metadata"),
                   ("https://169.254.10.1/h", "link-local"), ("https://100.64.0.1/h", "cgnat"),
                   ("https://0.0.0.0/h", "unspecified"), ("https://[::1]/h", "loopback"),
                   ("https://[::ffff:127.0.0.1]/h", "loopback"), ("https://[fd00::1]/h", "private"),
                   ("https://[fe80::1]/h", "link-local"), ("https://[::]/h", "unspecified")]
        for url, why in refused:
            with self.subTest(url=url):
                r = self.create(url)
                self.assertEqual(r.status, 422, r)
                err = r.json()["error"]
                self.assertEqual(err["code"], "url_address_not_public")
                self.assertTrue(err["message"].startswith("url "), err)
                self.assertIn(why, err["message"])
        self.assertEqual(self.app.ok("GET", "webhooks")["data"], [])
        # public literals and names pass (names are checked at connect time, after DNS)
        for url in ("https://93.184.216.34/h", "https://[2606:4700::1111]/h",
                    "https://localhost/h", "https://hooks.example.com/h"):
            with self.subTest(url=url):
                self.assertEqual(self.create(url).status, 201)
        w = self.app.ok("GET", "webhooks")["data"][0]
        r = self.app.call("PATCH", "webhooks/" + w["uid"], {"url": "https://[::1]:9/h"})
        self.assertEqual(r.status, 422)
        self.assertEqual(r.json()["error"]["code"], "url_address_not_public")
        self.assertEqual(self.app.ok("GET", "webhooks/" + w["uid"])["url"], w["url"])


class ProductionLiteralsAllowed(ServerTest):
    mode = "production"
    server_args = ("--allow-network", "127.0.0.0/8", "--allow-network", "fd00::/8")

    def test_allow_network_covers_literals(self):
        for url, status in (("https://127.0.0.1/h", 201), ("https://[fd00::5]/h", 201),
                            ("https://[::ffff:127.0.0.2]/h", 201), ("https://10.0.0.1/h", 422),
                            ("https://[::1]/h", 422)):
            with self.subTest(url=url):
                r = self.app.call("POST", "webhooks", {"url": url, "entities": ["agent"],
                                                       "active": True})
                self.assertEqual(r.status, status, r)


class DevelopmentLiterals(ServerTest):

    def test_development_mode_takes_loopback(self):
        self.assertEqual(self.app.call("POST", "webhooks", {
            "url": "http://127.0.0.1:9/h", "entities": ["agent"], "active": True}).status, 201)


class AwaitingUpload(ServerTest):

    def setUp(self):
        super().setUp()
        self.rx = self.receiver()
        self.app.webhook(self.rx.url(), entities=["contextfile"])
        self.ctx = self.app.ok("POST", "contexts", {"name": "kb", "externalTenantId": "t-1"})

    def files(self, rest=""):
        return "contexts/%s/files%s" % (self.ctx["uid"], rest)

    def register(self, name="notes.md", size=9999):
        f = self.app.ok("POST", self.files(), {"fileName": name, "contentType": "text/markdown",
                                               "sizeBytes": size})
        self.assertEqual(f["processingStatus"], "awaiting_upload")
        return f

    def put(self, uid, data, headers=None):
        return self.app.call("PUT", self.files("/%s/content" % uid), raw=data,
                             headers=headers or {"Content-Type": "application/octet-stream"})

    def final(self, uid):
        def done():
            f = self.app.ok("GET", self.files("/" + uid))
            return f if f["processingStatus"] in ("completed", "failed") else None
        return wait_for(done, timeout=20, what="file %s processed" % uid)

    def test_register_then_upload_the_bytes(self):
        f = self.register()
        data = b"# Notes\n\nThe bytes arrive after the metadata.\n"
        r = self.put(f["uid"], data)
        self.assertEqual(r.status, 202, r)
        up = r.json()
        self.assertEqual(up["uid"], f["uid"])
        self.assertEqual(up["processingStatus"], "pending")
        self.assertEqual(up["sizeBytes"], len(data))  # the real size, not the one announced
        self.assertEqual(up["sha256"], hashlib.sha256(data).hexdigest())
        self.assertEqual(up["fileName"], "notes.md")
        self.assertEqual(up["contentType"], "text/markdown")
        done = self.final(f["uid"])
        self.assertEqual(done["processingStatus"], "completed", done)
        chunks = self.app.ok("GET", self.files("/%s/chunks" % f["uid"]))["data"]
        self.assertIn("bytes arrive", "".join(c["text"] for c in chunks))

        def events():
            evs = [b for b in self.rx.bodies() if b["data"]["uid"] == f["uid"]]
            return evs if len(evs) >= 4 else None
        evs = sorted(wait_for(events, timeout=20, what="4 events"), key=lambda e: e["timestamp"])
        self.assertEqual([(e["event"], e["data"]["processingStatus"]) for e in evs],
                         [("contextfile.created", "awaiting_upload"),
                          ("contextfile.updated", "pending"),
                          ("contextfile.updated", "processing"),
                          ("contextfile.updated", "completed")])
        # a second upload is refused, and changes nothing
        r = self.put(f["uid"], b"other bytes")
        self.assertEqual(r.status, 409, r)
        self.assertEqual(r.json()["error"]["code"], "file_already_uploaded")
        self.assertEqual(self.app.ok("GET", self.files("/" + f["uid"]))["sha256"],
                         hashlib.sha256(data).hexdigest())

    def test_upload_by_form_and_refusals(self):
        f = self.register("page.html")
        boundary = "----hl" + uuid.uuid4().hex
        data = b"<p>Fish &amp; chips</p>"
        body = ("--%s\r\nContent-Disposition: form-data; name=\"file\"; filename=\"x.html\"\r\n"
                "Content-Type: text/html\r\n\r\n" % boundary).encode() + data + \
            ("\r\n--%s--\r\n" % boundary).encode()
        r = self.put(f["uid"], body, {"Content-Type": "multipart/form-data; boundary=" + boundary})
        self.assertEqual(r.status, 202, r)
        self.assertEqual(r.json()["sizeBytes"], len(data))
        self.assertEqual(r.json()["fileName"], "page.html")  # the registered name stays
        self.assertEqual(self.final(f["uid"])["processingStatus"], "completed")
        files_dir = os.path.join(self.server.data_dir, "files")
        self.assertEqual(len([n for n in os.listdir(files_dir) if n.startswith(f["uid"])]), 1)
        self.app.ok("DELETE", self.files("/" + f["uid"]))  # its bytes go with it
        self.assertEqual([n for n in os.listdir(files_dir) if n.startswith(f["uid"])], [])
        # a file uploaded with its create already has its bytes
        up = self.app.call("POST", self.files("?fileName=a.txt"), raw=b"hello",
                           headers={"Content-Type": "text/plain"}).json()
        r = self.put(up["uid"], b"again")
        self.assertEqual(r.status, 409)
        self.assertEqual(r.json()["error"]["code"], "file_already_uploaded")
        # unknown file, unknown context, wrong method, no key
        self.assertEqual(self.put("file-nope", b"x").status, 404)
        self.assertEqual(self.app.call("PUT", "contexts/context-nope/files/%s/content"
                                       % f["uid"], raw=b"x").status, 404)
        g = self.register("b.txt")
        self.assertEqual(self.app.call("GET", self.files("/%s/content" % g["uid"])).status, 405)
        r = self.server.request("PUT", self.app.path(self.files("/%s/content" % g["uid"])),
                                raw=b"x")
        self.assertEqual(r.status, 401)
        self.assertEqual(self.app.ok("GET", self.files("/" + g["uid"]))["processingStatus"],
                         "awaiting_upload")
        # the file may be deleted while it waits
        self.app.ok("DELETE", self.files("/" + g["uid"]))
        self.assertEqual(self.put(g["uid"], b"late").status, 404)
        # nothing refused is left behind (a request's temporary file goes when it ends, which
        # may be just after its answer)
        wait_for(lambda: os.listdir(os.path.join(self.server.data_dir, "uploads")) == [],
                 what="no temporary upload left")


if __name__ == "__main__":
    main()
