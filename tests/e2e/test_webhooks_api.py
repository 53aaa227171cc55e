"""The foundation: apps and keys, the webhooks API, every error, isolation, pagination,
persistence across a restart, clean shutdown."""
import base64
import json
import os
import re
import socket
import stat
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
from harness import App, BIN, Server, ServerTest, main, sqlite_only  # noqa: E402

# Refused before the store on either backend; the webhooks' store code on PostgreSQL is this
# suite's other cases' (and unit-pg/store_test's).
BEFORE_THE_STORE = "refused before the store; the CRUD cases cover PostgreSQL"

GUIDE_BODY = {"url": "https://your-platform.com/webhooks/mindset",
              "entities": ["agent", "context", "contextfile"], "active": True}


class WebhooksApi(ServerTest):

    def count_webhooks(self, app=None):
        app = app or self.app
        return len(app.ok("GET", "webhooks?limit=100")["data"])

    @sqlite_only(BEFORE_THE_STORE)
    def test_healthz(self):
        r = self.server.request("GET", "/healthz")
        self.assertEqual(r.status, 200)
        self.assertEqual(r.json(), {"status": "ok"})

    def test_guide_step2_create(self):
        w = self.app.ok("POST", "webhooks", GUIDE_BODY)
        self.assertRegex(w["uid"], r"^webhook-[A-Za-z0-9_-]{16}$")
        self.assertEqual(w["url"], GUIDE_BODY["url"])
        self.assertEqual(w["entities"], GUIDE_BODY["entities"])
        self.assertIs(w["active"], True)
        self.assertRegex(w["createdAt"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
        self.assertEqual(w["updatedAt"], w["createdAt"])
        self.assertIsNone(w["lastTriggeredAt"])
        self.assertIsNone(w["description"])
        self.assertIsNone(w["eventTypes"])
        # whsec_ + base64 of 24 random bytes
        self.assertTrue(w["secret"].startswith("whsec_"))
        self.assertEqual(len(base64.b64decode(w["secret"][6:], validate=True)), 24)
        # the guide's key order comes first
        self.assertEqual(list(w)[:6], ["uid", "url", "secret", "entities", "active", "createdAt"])

    def test_secret_shown_on_create_only_and_unique(self):
        a = self.app.ok("POST", "webhooks", GUIDE_BODY)
        b = self.app.ok("POST", "webhooks", GUIDE_BODY)
        self.assertNotEqual(a["secret"], b["secret"])
        self.assertNotEqual(a["uid"], b["uid"])
        got = self.app.ok("GET", "webhooks/" + a["uid"])
        self.assertNotIn("secret", got)
        for w in self.app.ok("GET", "webhooks")["data"]:
            self.assertNotIn("secret", w)
        self.assertNotIn(a["secret"], self.server.log())

    def test_get_patch_delete(self):
        w = self.app.ok("POST", "webhooks", dict(GUIDE_BODY, description="main",
                                                 eventTypes=["agent.created"]))
        self.assertEqual(w["description"], "main")
        self.assertEqual(w["eventTypes"], ["agent.created"])
        uid = w["uid"]
        time.sleep(0.005)
        p = self.app.ok("PATCH", "webhooks/" + uid, {
            "url": "https://your-platform.com/webhooks/mindset-v2",
            "entities": ["agent", "context"], "active": True})
        self.assertEqual(p["url"], "https://your-platform.com/webhooks/mindset-v2")
        self.assertEqual(p["entities"], ["agent", "context"])
        self.assertEqual(p["eventTypes"], ["agent.created"])
        self.assertGreater(p["updatedAt"], p["createdAt"])
        self.assertEqual(self.app.ok("PATCH", "webhooks/" + uid, {"active": False})["active"],
                         False)
        p = self.app.ok("PATCH", "webhooks/" + uid, {"description": None, "eventTypes": None})
        self.assertIsNone(p["description"])
        self.assertIsNone(p["eventTypes"])
        self.assertEqual(self.app.ok("GET", "webhooks/" + uid), p)
        r = self.app.call("DELETE", "webhooks/" + uid)
        self.assertEqual(r.status, 204)
        self.assertEqual(r.body, b"")
        self.assertEqual(self.app.call("GET", "webhooks/" + uid).status, 404)
        self.assertEqual(self.app.call("DELETE", "webhooks/" + uid).status, 404)
        self.assertEqual(self.app.call("PATCH", "webhooks/" + uid, {"active": True}).status, 404)

    def test_pagination(self):
        made = [self.app.ok("POST", "webhooks", GUIDE_BODY)["uid"] for _ in range(7)]
        seen, cursor, pages = [], None, 0
        while True:
            q = "webhooks?limit=3" + ("&cursor=" + cursor if cursor else "")
            page = self.app.ok("GET", q)
            self.assertLessEqual(len(page["data"]), 3)
            seen += [w["uid"] for w in page["data"]]
            pages += 1
            cursor = page["nextCursor"]
            if cursor is None:
                break
        self.assertEqual(seen, made)
        self.assertEqual(pages, 3)
        for bad in ("limit=0", "limit=101", "limit=x", "cursor=abc", "cursor=-4"):
            r = self.app.call("GET", "webhooks?" + bad)
            self.assertEqual(r.status, 422, bad)
            self.assertIn("error", r.json())

    def assert_error(self, r, status, code=None, mentions=None):
        self.assertEqual(r.status, status, r)
        self.assertEqual(r.headers.get("content-type"), "application/json")
        err = r.json()["error"]
        self.assertEqual(set(err), {"code", "message"})
        if code:
            self.assertEqual(err["code"], code, err)
        if mentions:
            self.assertIn(mentions, err["message"])

    @sqlite_only(BEFORE_THE_STORE)
    def test_validation_422_each_case_stores_nothing(self):
        cases = [
            ({"entities": ["agent"]}, "url_required", "url"),
            (dict(GUIDE_BODY, url=42), "url_not_string", "url"),
            (dict(GUIDE_BODY, url="/relative/path"), "url_not_absolute", "url"),
            (dict(GUIDE_BODY, url="ftp://example.com/x"), "url_scheme", "url"),
            (dict(GUIDE_BODY, url="https://user:pw@example.com/x"), "url_credentials", "url"),
            (dict(GUIDE_BODY, url="https://example.com/" + "a" * 2100), "url_too_long", "url"),
            ({"url": GUIDE_BODY["url"]}, "entities_required", "entities"),
            (dict(GUIDE_BODY, entities=[]), "entities_empty", "entities"),
            (dict(GUIDE_BODY, entities="agent"), "entities_not_list", "entities"),
            (dict(GUIDE_BODY, entities=["agent", "robot"]), "entities_unknown", "entities"),
            (dict(GUIDE_BODY, entities=["agent", "agent"]), "entities_repeated", "entities"),
            (dict(GUIDE_BODY, eventTypes=["agent.exploded"]), "event_types_unknown",
             "eventTypes"),
            (dict(GUIDE_BODY, entities=["agent"], eventTypes=["context.created"]),
             "event_types_outside_entities", "eventTypes"),
            (dict(GUIDE_BODY, eventTypes="agent.created"), "event_types_not_list",
             "eventTypes"),
            (dict(GUIDE_BODY, active="yes"), "active_not_boolean", "active"),
            (dict(GUIDE_BODY, active=1), "active_not_boolean", "active"),
            (dict(GUIDE_BODY, colour="blue"), "unknown_field", "colour"),
            (dict(GUIDE_BODY, description=5), "description_not_string", "description"),
        ]
        for body, code, field in cases:
            with self.subTest(code=code):
                self.assert_error(self.app.call("POST", "webhooks", body), 422, code, field)
        self.assertEqual(self.count_webhooks(), 0)
        # PATCH refuses the same way and changes nothing
        w = self.app.ok("POST", "webhooks", GUIDE_BODY)
        for body, code, field in cases[1:6] + cases[7:]:
            with self.subTest(patch=code):
                self.assert_error(self.app.call("PATCH", "webhooks/" + w["uid"], body), 422,
                                  code, field)
        got = self.app.ok("GET", "webhooks/" + w["uid"])
        self.assertEqual(got["url"], GUIDE_BODY["url"])
        self.assertEqual(got["updatedAt"], w["updatedAt"])

    @sqlite_only(BEFORE_THE_STORE)
    def test_bad_requests(self):
        self.assert_error(self.app.call("POST", "webhooks", raw=b'{"url": ',
                                        headers={"Content-Type": "application/json"}),
                          400, "invalid_json")
        self.assert_error(self.app.call("POST", "webhooks", raw=b'[1,2]',
                                        headers={"Content-Type": "application/json"}),
                          400, "invalid_json")
        self.assert_error(self.app.call("POST", "webhooks", raw=b'{"a":1,"a":2}',
                                        headers={"Content-Type": "application/json"}),
                          400, "invalid_json")
        self.assert_error(self.app.call("POST", "webhooks", raw=json.dumps(GUIDE_BODY).encode(),
                                        headers={"Content-Type": "text/plain"}),
                          415, "unsupported_media_type")
        self.assert_error(self.app.call("PUT", "webhooks", GUIDE_BODY), 405,
                          "method_not_allowed")
        r = self.app.call("DELETE", "webhooks")
        self.assert_error(r, 405)
        self.assertIn("POST", r.headers.get("allow", ""))
        self.assert_error(self.app.call("GET", "nothing-here"), 404, "not_found")
        self.assertEqual(self.count_webhooks(), 0)

    @sqlite_only(BEFORE_THE_STORE)
    def test_413_refused_before_reading_it_all(self):
        # Announce 2 MiB and wait for 100 Continue: the answer must come without the body.
        s = socket.create_connection(("127.0.0.1", self.server.port), timeout=10)
        s.sendall(("POST %s HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\n"
                   "Content-Type: application/json\r\nContent-Length: %d\r\n"
                   "Expect: 100-continue\r\n\r\n"
                   % (self.app.path("webhooks"), self.app.key, 2 << 20)).encode())
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = s.recv(4096)
            if not chunk:
                break
            data += chunk
        s.close()
        self.assertTrue(data.startswith(b"HTTP/1.1 413"), data[:100])
        # and a real oversized body, sent whole: the client reads the 413 (test_hardening.py
        # OversizedBodies sends many)
        big = json.dumps(dict(GUIDE_BODY, description="x" * (1 << 20))).encode()
        r = self.app.call("POST", "webhooks", raw=big, headers={"Content-Type": "application/json"})
        self.assert_error(r, 413, "payload_too_large")
        self.assertEqual(self.count_webhooks(), 0)

    def test_auth(self):
        path = self.app.path("webhooks")
        r = self.server.request("GET", path)
        self.assert_error(r, 401, "unauthorized")
        self.assert_error(self.server.request("GET", path, key="hlk_nope"), 401, "unauthorized")
        self.assert_error(self.server.request("GET", path, headers={"Authorization": "Basic x"}),
                          401)
        # a second key works; revoking it makes it 401 while the first still works
        k = json.loads(self.server.cli("keys", "create", self.app.uid, "--json").stdout)
        self.assertEqual(self.server.request("GET", path, key=k["apiKey"]).status, 200)
        self.server.cli("keys", "revoke", k["keyId"])
        self.assert_error(self.server.request("GET", path, key=k["apiKey"]), 401)
        self.assertEqual(self.server.request("GET", path, key=self.app.key).status, 200)
        self.assertEqual(self.server.cli("keys", "revoke", k["keyId"], check=False).returncode, 1)

    def test_cross_app_isolation(self):
        other = App(self.server, self.server.create_app("other"))
        w = self.app.ok("POST", "webhooks", GUIDE_BODY)
        # my key on the other app's path: 404, no existence leak
        for method, rest in (("GET", "webhooks"), ("POST", "webhooks"),
                             ("GET", "webhooks/" + w["uid"])):
            r = self.server.request(method, other.path(rest), body=GUIDE_BODY,
                                    key=self.app.key)
            self.assert_error(r, 404)
        # the other app cannot see or touch my webhook through its own path
        for method in ("GET", "PATCH", "DELETE"):
            r = other.call(method, "webhooks/" + w["uid"], {"active": False})
            self.assert_error(r, 404)
        self.assertEqual(self.count_webhooks(other), 0)
        self.assertTrue(self.app.ok("GET", "webhooks/" + w["uid"])["active"])

    def test_persistence_across_restart(self):
        w = self.app.ok("POST", "webhooks", dict(GUIDE_BODY, description="survives"))
        self.assertEqual(self.server.stop(), 0)
        self.server.start()
        got = self.app.ok("GET", "webhooks/" + w["uid"])
        self.assertEqual(got["description"], "survives")
        self.assertEqual(got["createdAt"], w["createdAt"])

    def test_cli_apps_list_and_help(self):
        apps = json.loads(self.server.cli("apps", "list", "--json").stdout)
        self.assertIn(self.app.uid, [a["appUid"] for a in apps])
        for sub in (["serve"], ["apps"], ["keys"]):
            r = subprocess.run([BIN] + sub + ["--help"], capture_output=True, text=True)
            self.assertEqual(r.returncode, 0, sub)
            self.assertIn("usage", r.stdout)
        r = subprocess.run([BIN, "serve", "--mode", "staging"], capture_output=True, text=True)
        self.assertEqual(r.returncode, 2)


class ProductionMode(ServerTest):
    mode = "production"

    @sqlite_only(BEFORE_THE_STORE)
    def test_http_refused(self):
        r = self.app.call("POST", "webhooks", dict(GUIDE_BODY, url="http://example.com/hook"))
        self.assertEqual(r.status, 422)
        self.assertEqual(r.json()["error"]["code"], "url_https_required")
        self.assertEqual(self.app.ok("POST", "webhooks", GUIDE_BODY)["url"], GUIDE_BODY["url"])


class DevBootstrap(ServerTest):

    def test_first_start_creates_dev_app(self):
        srv = Server()
        try:
            srv.start()
            key_path = os.path.join(srv.data_dir, "dev-api-key")
            uid_path = os.path.join(srv.data_dir, "dev-app-uid")
            self.assertEqual(stat.S_IMODE(os.stat(key_path).st_mode), 0o600)
            app = App(srv, {"appUid": open(uid_path).read(), "apiKey": open(key_path).read()})
            self.assertEqual(app.ok("POST", "webhooks", GUIDE_BODY)["entities"],
                             GUIDE_BODY["entities"])
            self.assertIn(app.key, srv.log())  # printed once, on the first start
            srv.stop()
            before = open(key_path).read()
            srv.start()
            self.assertEqual(open(key_path).read(), before)
            self.assertEqual(srv.log().count(app.key), 1)
        finally:
            self.assertEqual(srv.stop(), 0)
            srv.cleanup()


if __name__ == "__main__":
    main()
