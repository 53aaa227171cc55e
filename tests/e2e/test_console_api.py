"""The console's server side over plain HTTP: portal links, the sessions they open (cookie,
read-only, the console's header against CSRF, once-only links, expiry, throttling), the pages'
headers (CSP), and what the pages read (the app's deliveries, the failing filter, a recover's
count, a webhook's series). The browser suite (tests/browser) drives the pages themselves."""
import calendar
import json
import os
import re
import sqlite3
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(__file__))
from harness import BIN, PG_URL, App, Server, ServerTest, main, pg_admin, wait_for  # noqa: E402

CONSOLE = {"X-Hookline-Console": "1"}


def token_of(url):
    return url.split("#token=", 1)[1]


class ConsoleApi(ServerTest):

    def link(self, **body):
        return self.app.ok("POST", "portal", body, status=201)

    def sign_in(self, body, headers=None):
        h = dict(CONSOLE)
        h.update(headers or {})
        return self.server.request("POST", "/console/session", body, headers=h)

    def session(self, **link_body):
        """A session cookie ("hookline_console=…") opened from a fresh link."""
        r = self.sign_in({"token": token_of(self.link(**link_body)["url"])})
        self.assertEqual(r.status, 200, r)
        return r.headers["set-cookie"].split(";", 1)[0]

    def as_session(self, cookie, method, rest, body=None, header=True, app=None):
        h = {"Cookie": cookie}
        if header:
            h.update(CONSOLE)
        return self.server.request(method, (app or self.app).path(rest), body, headers=h)

    # ---- portal links ----

    def test_portal_link_defaults_and_limits(self):
        before = time.time()
        link = self.link()
        self.assertRegex(link["url"], r"^http://127\.0\.0\.1:%d/console/#token=[A-Za-z0-9_.-]+$"
                         % self.server.port)
        self.assertIs(link["readOnly"], False)
        at = calendar.timegm(time.strptime(link["expiresAt"][:19], "%Y-%m-%dT%H:%M:%S"))
        self.assertTrue(before + 3600 - 2 <= at <= time.time() + 3600 + 1, link)
        self.assertIs(self.link(expiresIn=86400, readOnly=True)["readOnly"], True)
        # any client can send X-Forwarded-Proto: it is not trusted (--public-url says https)
        behind = self.app.ok("POST", "portal", {}, status=201,
                             headers={"X-Forwarded-Proto": "https"})
        self.assertTrue(behind["url"].startswith("http://127.0.0.1:"), behind)
        for body, field in (({"expiresIn": 86401}, "expiresIn"), ({"expiresIn": 0}, "expiresIn"),
                            ({"expiresIn": "1h"}, "expiresIn"), ({"readOnly": "yes"}, "readOnly"),
                            ({"scope": "all"}, "scope")):
            r = self.app.call("POST", "portal", body)
            self.assertEqual(r.status, 422, (body, r))
            self.assertIn(field, r.json()["error"]["message"], r)
        r = self.server.request("POST", self.app.path("portal"), {})
        self.assertEqual(r.status, 401)
        self.assertEqual(self.app.call("GET", "portal").status, 405)

    def test_link_opens_one_session_with_a_strict_cookie(self):
        token = token_of(self.link()["url"])
        # without the console's header nothing signs in (a cross-site form cannot send it)
        r = self.server.request("POST", "/console/session", {"token": token})
        self.assertEqual(r.status, 403, r)
        r = self.sign_in({"token": token})
        self.assertEqual(r.status, 200, r)
        s = r.json()
        self.assertEqual((s["signedIn"], s["appUid"], s["readOnly"]), (True, self.app.uid, False))
        cookie = r.headers["set-cookie"]
        self.assertRegex(cookie, r"^hookline_console=[A-Za-z0-9_.-]+; ")
        for attr in ("Path=/", "HttpOnly", "SameSite=Strict"):
            self.assertIn(attr, cookie.split("; "))
        self.assertNotIn("Secure", cookie)
        self.assertNotIn(token, cookie)
        # once only
        again = self.sign_in({"token": token})
        self.assertEqual((again.status, again.json()["error"]["code"]), (401, "link_used"))
        # the cookie stands in for a key, on this app only
        jar = cookie.split(";", 1)[0]
        r = self.server.request("GET", "/console/session", headers={"Cookie": jar})
        self.assertEqual(r.json()["appUid"], self.app.uid)
        self.assertEqual(self.as_session(jar, "GET", "webhooks").status, 200)
        other = App(self.server, self.server.create_app("other"))
        self.assertEqual(self.as_session(jar, "GET", "webhooks", app=other).status, 404)
        # a change needs the header; a link is made with a key, never from a session
        body = {"url": "https://example.com/h", "entities": ["agent"]}
        r = self.as_session(jar, "POST", "webhooks", body, header=False)
        self.assertEqual((r.status, r.json()["error"]["code"]), (403, "console_header_required"))
        self.assertEqual(self.app.ok("GET", "webhooks")["data"], [])
        self.assertEqual(self.as_session(jar, "POST", "webhooks", body).status, 201)
        r = self.as_session(jar, "POST", "portal", {})
        self.assertEqual((r.status, r.json()["error"]["code"]), (403, "api_key_required"))
        # signing out replaces the cookie with an expired, empty one
        r = self.server.request("DELETE", "/console/session", headers=dict(CONSOLE, Cookie=jar))
        self.assertEqual(r.status, 204)
        self.assertRegex(r.headers["set-cookie"], r"^hookline_console=; .*Max-Age=0")

    def test_concurrent_exchanges_of_a_link_open_one_session(self):
        token = token_of(self.link()["url"])
        results = []

        def exchange():
            results.append(self.sign_in({"token": token}))
        threads = [threading.Thread(target=exchange) for _ in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        codes = sorted((r.status, r.json().get("error", {}).get("code")) for r in results)
        self.assertEqual(codes, [(200, None)] + [(401, "link_used")] * 7, codes)

    def test_sign_out_ends_the_session_everywhere(self):
        """Signing out revokes the session on the server: a copy of the cookie (another tab, a
        leaked header) opens nothing any more, on this node or (PostgreSQL) another one."""
        jar = self.session()
        copy = jar
        self.assertEqual(self.as_session(copy, "GET", "webhooks").status, 200)
        r = self.server.request("DELETE", "/console/session", headers=dict(CONSOLE, Cookie=jar))
        self.assertEqual(r.status, 204, r)
        r = self.as_session(copy, "GET", "webhooks")
        self.assertEqual((r.status, r.json()["error"]["code"]), (401, "session_revoked"), r)
        self.assertIn("signed out", r.json()["error"]["message"])
        r = self.server.request("GET", "/console/session", headers={"Cookie": copy})
        self.assertEqual((r.status, r.json()["error"]["code"]), (401, "session_revoked"), r)
        # signing out again, or without a session, just clears the cookie
        for h in (dict(CONSOLE, Cookie=copy), CONSOLE):
            self.assertEqual(self.server.request("DELETE", "/console/session", headers=h).status,
                             204)
        # other sessions of the app go on
        self.assertEqual(self.as_session(self.session(), "GET", "webhooks").status, 200)
        if PG_URL:  # a second node of the cluster refuses it too
            other = Server(db=self.server.db)
            try:
                other.start()
                r = other.request("GET", self.app.path("webhooks"), headers={"Cookie": copy})
                self.assertEqual((r.status, r.json()["error"]["code"]), (401, "session_revoked"))
            finally:
                other.stop()
                other.cleanup()

    def refuse_session_ends(self, on):
        """Makes the store fail (on) or take again every ended session, from outside: a trigger
        that makes the insert recording one fail with an error (a table that does not exist; a
        constraint failure would read as "ended already")."""
        if PG_URL:
            pg_admin("CREATE OR REPLACE FUNCTION hl_test_refuse() RETURNS trigger AS $$BEGIN "
                     "INSERT INTO hl_test_missing VALUES(1); RETURN NEW; END$$ LANGUAGE plpgsql;"
                     "CREATE TRIGGER hl_test_refuse BEFORE INSERT ON portal_used "
                     "FOR EACH ROW EXECUTE FUNCTION hl_test_refuse()" if on else
                     "DROP TRIGGER hl_test_refuse ON portal_used", url=self.server.db)
            return
        db = sqlite3.connect(self.server.db, timeout=30)
        try:
            db.execute("CREATE TRIGGER hl_test_refuse BEFORE INSERT ON portal_used BEGIN "
                       "INSERT INTO hl_test_missing VALUES(1); END" if on else
                       "DROP TRIGGER hl_test_refuse")
            db.commit()
        finally:
            db.close()

    def test_sign_out_the_store_refuses_keeps_the_cookie(self):
        """When the store cannot record the sign-out, the answer is an error and the cookie is
        not cleared: the session is still valid, and the browser must not believe otherwise."""
        jar = self.session()
        self.refuse_session_ends(True)
        try:
            r = self.server.request("DELETE", "/console/session",
                                    headers=dict(CONSOLE, Cookie=jar))
        finally:
            self.refuse_session_ends(False)
        self.assertGreaterEqual(r.status, 500, r)
        self.assertNotIn("set-cookie", r.headers, r)
        self.assertEqual(self.as_session(jar, "GET", "webhooks").status, 200)
        # once the store takes it again, signing out works
        r = self.server.request("DELETE", "/console/session", headers=dict(CONSOLE, Cookie=jar))
        self.assertEqual(r.status, 204, r)
        self.assertRegex(r.headers["set-cookie"], r"^hookline_console=; .*Max-Age=0")
        r = self.as_session(jar, "GET", "webhooks")
        self.assertEqual((r.status, r.json()["error"]["code"]), (401, "session_revoked"), r)

    def test_forwarded_proto_is_not_trusted(self):
        """Without --public-url the cookie is not Secure whatever X-Forwarded-Proto says: any
        client can send that header."""
        r = self.sign_in({"token": token_of(self.link()["url"])},
                         headers={"X-Forwarded-Proto": "https"})
        self.assertEqual(r.status, 200, r)
        self.assertNotIn("Secure", r.headers["set-cookie"].split("; "))

    def test_read_only_session_changes_nothing(self):
        w = self.app.webhook("https://example.com/h")
        jar = self.session(readOnly=True)
        self.assertEqual(self.as_session(jar, "GET", "webhooks/" + w["uid"]).status, 200)
        for method, rest, body in (("POST", "webhooks", {"url": "https://example.com/x",
                                                         "entities": ["agent"]}),
                                   ("PATCH", "webhooks/" + w["uid"], {"active": False}),
                                   ("DELETE", "webhooks/" + w["uid"], None),
                                   ("POST", "webhooks/%s/rotate-secret" % w["uid"], {}),
                                   ("POST", "agents", {"agentName": "a",
                                                       "externalTenantId": "t"})):
            r = self.as_session(jar, method, rest, body)
            self.assertEqual((r.status, r.json()["error"]["code"]), (403, "read_only"),
                             (method, rest, r))
        hooks = self.app.ok("GET", "webhooks")["data"]
        self.assertEqual([(h["uid"], h["active"]) for h in hooks], [(w["uid"], True)])
        self.assertEqual(self.app.ok("GET", "events")["data"], [])

    def test_read_only_session_sees_header_names_not_values(self):
        """A webhook's static headers may carry the receiver's token: a read-only session (a
        portal link handed to a customer) sees their names, never their values."""
        headers = {"Authorization": "Bearer s3cret-token", "X-Region": "eu-west-1"}
        w = self.app.webhook("https://example.com/h", headers=headers)
        hidden = {k: "(hidden)" for k in headers}
        ro = self.session(readOnly=True)
        one = self.as_session(ro, "GET", "webhooks/" + w["uid"])
        self.assertEqual((one.status, one.json()["headers"]), (200, hidden), one)
        listed = self.as_session(ro, "GET", "webhooks")
        self.assertEqual([x["headers"] for x in listed.json()["data"]], [hidden])
        self.assertNotIn(b"s3cret", one.body + listed.body)
        # who may change the webhook sees what it sends
        rw = self.session()
        self.assertEqual(self.as_session(rw, "GET", "webhooks/" + w["uid"]).json()["headers"],
                         headers)
        self.assertEqual(self.app.ok("GET", "webhooks/" + w["uid"])["headers"], headers)
        # an operational webhook has no static headers: the read-only answer gains none
        op = self.app.ok("POST", "operational-webhooks", {"url": "https://example.com/ops",
                                                          "events": ["endpoint.disabled"]})
        one = self.as_session(ro, "GET", "operational-webhooks/" + op["uid"])
        listed = self.as_session(ro, "GET", "operational-webhooks")
        self.assertEqual(one.status, 200, one)
        self.assertEqual([x["uid"] for x in listed.json()["data"]], [op["uid"]])
        for x in [one.json()] + listed.json()["data"]:
            self.assertNotIn("headers", x)
            self.assertNotIn("secret", x)

    def test_expired_forged_and_unknown_credentials(self):
        short = self.link(expiresIn=1)
        at = calendar.timegm(time.strptime(short["expiresAt"][:19], "%Y-%m-%dT%H:%M:%S"))
        wait_for(lambda: time.time() > at + 1.2, timeout=10, what="the link to expire")
        r = self.sign_in({"token": token_of(short["url"])})
        self.assertEqual((r.status, r.json()["error"]["code"]), (401, "link_expired"), r)
        self.assertNotIn("set-cookie", r.headers)
        token = token_of(self.link()["url"])
        payload, mac = token.split(".")
        forged = payload + "." + ("A" if mac[0] != "A" else "B") + mac[1:]
        r = self.sign_in({"token": forged})
        self.assertEqual((r.status, r.json()["error"]["code"]), (401, "link_invalid"), r)
        r = self.sign_in({"apiKey": "hlk_not_a_key"})
        self.assertEqual((r.status, r.json()["error"]["code"]), (401, "key_invalid"), r)
        r = self.server.request("GET", self.app.path("webhooks"),
                                headers={"Cookie": "hookline_console=" + forged})
        self.assertEqual((r.status, r.json()["error"]["code"]), (401, "session_invalid"), r)
        # a link is no session cookie, and a session cookie is no link
        r = self.server.request("GET", self.app.path("webhooks"),
                                headers={"Cookie": "hookline_console=" + token})
        self.assertEqual(r.status, 401, r)
        for body, field in (({}, "token"), ({"token": 5}, "token"),
                            ({"token": token, "apiKey": self.app.key}, "token"),
                            ({"token": token, "readOnly": True}, "readOnly")):
            r = self.sign_in(body)
            self.assertEqual(r.status, 422, (body, r))
            self.assertTrue(r.json()["error"]["message"].startswith(field), r)

    def test_bad_tries_are_throttled(self):
        """Failures are throttled per address, and only failures: behind a reverse proxy every
        client has the proxy's address, so valid sessions, links and keys from it must go on
        working while someone there tries bad ones."""
        jar = self.session()
        good = token_of(self.link()["url"])
        forged = "hookline_console=x" + jar.split("=", 1)[1]
        codes = [self.sign_in({"token": "x" + good}).status for _ in range(10)]
        self.assertEqual(codes, [401] * 10)
        r = self.sign_in({"token": "x" + good})
        self.assertEqual((r.status, r.json()["error"]["code"]), (429, "too_many_failures"), r)
        self.assertGreaterEqual(int(r.headers["retry-after"]), 1)
        r = self.server.request("GET", self.app.path("webhooks"), headers={"Cookie": forged})
        self.assertEqual((r.status, r.json()["error"]["code"]), (429, "too_many_failures"), r)
        r = self.sign_in({"apiKey": "hlk_not_a_key"})
        self.assertEqual((r.status, r.json()["error"]["code"]), (429, "too_many_failures"), r)
        # what is valid is never throttled: the session, a fresh link, a key
        self.assertEqual(self.as_session(jar, "GET", "webhooks").status, 200)
        r = self.server.request("GET", "/console/session", headers={"Cookie": jar})
        self.assertEqual((r.status, r.json()["signedIn"]), (200, True), r)
        self.assertEqual(self.sign_in({"token": good}).status, 200)
        self.assertEqual(self.sign_in({"apiKey": self.app.key}).status, 200)

    def test_api_key_session_ends_when_the_key_is_revoked(self):
        k = json.loads(self.server.cli("keys", "create", self.app.uid, "--json").stdout)
        r = self.sign_in({"apiKey": k["apiKey"], "readOnly": True})
        self.assertEqual(r.status, 200, r)
        self.assertIs(r.json()["readOnly"], True)
        jar = r.headers["set-cookie"].split(";", 1)[0]
        self.assertEqual(self.as_session(jar, "GET", "webhooks").status, 200)
        self.server.cli("keys", "revoke", k["keyId"])
        r = self.as_session(jar, "GET", "webhooks")
        self.assertEqual((r.status, r.json()["error"]["code"]), (401, "session_revoked"), r)

    def test_portal_links_and_their_sessions_end_when_their_key_is_revoked(self):
        k = json.loads(self.server.cli("keys", "create", self.app.uid, "--json").stdout)
        bearer = {"Authorization": "Bearer " + k["apiKey"]}

        def link():
            r = self.server.request("POST", self.app.path("portal"), {}, headers=bearer)
            self.assertEqual(r.status, 201, r)
            return token_of(r.json()["url"])

        opened, unused = link(), link()
        r = self.sign_in({"token": opened})
        self.assertEqual(r.status, 200, r)
        jar = r.headers["set-cookie"].split(";", 1)[0]
        self.assertEqual(self.as_session(jar, "GET", "webhooks").status, 200)
        self.server.cli("keys", "revoke", k["keyId"])
        # the session the link opened ends with the key, and so does the link not yet used
        r = self.as_session(jar, "GET", "webhooks")
        self.assertEqual((r.status, r.json()["error"]["code"]), (401, "session_revoked"), r)
        r = self.sign_in({"token": unused})
        self.assertEqual((r.status, r.json()["error"]["code"]), (401, "link_invalid"), r)
        self.assertIn("revoked", r.json()["error"]["message"])
        # links made with another key of the app are not affected
        self.assertEqual(self.sign_in({"token": token_of(self.link()["url"])}).status, 200)

    def test_link_survives_a_restart(self):
        """The signing key lives in the database, not in the process: a link made before a
        restart opens a session after it (and so on any node of a cluster)."""
        token = token_of(self.link()["url"])
        self.assertEqual(self.server.stop(), 0)
        self.server.start()
        self.assertEqual(self.sign_in({"token": token}).status, 200)

    # ---- the pages ----

    def test_pages_are_served_with_a_strict_policy(self):
        r = self.server.request("GET", "/console")
        self.assertEqual((r.status, r.headers["location"]), (302, "/console/"))
        r = self.server.request("GET", "/console/")
        self.assertEqual(r.status, 200)
        self.assertTrue(r.headers["content-type"].startswith("text/html"))
        csp = {d.strip().split(" ", 1)[0]: d.strip() for d in
               r.headers["content-security-policy"].split(";")}
        self.assertEqual(csp["script-src"], "script-src 'self'")
        self.assertEqual(csp["style-src"], "style-src 'self'")
        self.assertEqual(csp["default-src"], "default-src 'none'")
        self.assertEqual(csp["frame-ancestors"], "frame-ancestors 'none'")
        self.assertEqual(r.headers["x-frame-options"], "DENY")
        self.assertEqual(r.headers["x-content-type-options"], "nosniff")
        html = r.body.decode()
        # no inline script or style in the page: every script is a module from this origin
        self.assertEqual(re.findall(r"<script(?![^>]*\bsrc=)", html), [])
        self.assertNotIn("style=", html)
        for src in re.findall(r'<script[^>]*src="([^"]+)"', html):
            self.assertEqual(self.server.request("GET", "/console/" + src).status, 200)
        r = self.server.request("GET", "/console/js/app.js")
        self.assertTrue(r.headers["content-type"].startswith("text/javascript"))
        self.assertIn("content-security-policy", r.headers)
        self.assertEqual(self.server.request("GET", "/console/js/nope.js").status, 404)
        self.assertEqual(self.server.request("POST", "/console/js/app.js").status, 405)
        r = self.server.request("GET", "/console/session")
        self.assertEqual(r.json()["signedIn"], False)

    def test_no_script_builds_html_from_text(self):
        """The pages' only defence is not their only one (the CSP is the other), but it must
        hold: no script turns a string into markup or code."""
        src = os.path.join(os.path.dirname(__file__), "..", "..", "src", "console", "assets")
        scripts = []
        for root, _, files in os.walk(src):
            scripts += [os.path.join(root, f) for f in files if f.endswith(".js")]
        self.assertGreater(len(scripts), 3)
        for path in scripts:
            rel = os.path.relpath(path, src)
            served = self.server.request("GET", "/console/" + rel)
            self.assertEqual(served.status, 200, rel)
            # the code, without its comments (which name these sinks to say they are not used)
            text = re.sub(r"//[^\n]*|/\*.*?\*/", "", served.body.decode(), flags=re.S)
            for sink in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write",
                         "eval(", "new Function", "setTimeout('", 'setTimeout("'):
                self.assertFalse(sink in text, "%s uses %s" % (rel, sink))

    # ---- what the pages read ----

    def test_recover_counts_before_it_queues(self):
        bad = self.receiver(lambda n, req: (500, b"down", {}, 0))
        w = self.app.webhook(bad.url())
        self.app.ok("POST", "agents", {"agentName": "a", "externalTenantId": "t"})
        wait_for(lambda: self.app.ok("GET", "deliveries?status=failed")["data"], timeout=20,
                 what="a failed delivery")
        attempts = len(bad.wait_count(1))
        body = {"since": "2000-01-01T00:00:00Z", "dryRun": True}
        r = self.app.ok("POST", "webhooks/%s/recover" % w["uid"], body, status=200)
        self.assertEqual(r, {"wouldQueue": 1, "failed": 1, "failing": 0})
        self.assertEqual(len(self.app.ok("GET", "deliveries?status=failed")["data"]), 1)
        self.assertEqual(len(bad.requests), attempts)
        r = self.app.call("POST", "webhooks/%s/recover" % w["uid"], dict(body, dryRun="yes"))
        self.assertEqual(r.status, 422)
        self.assertTrue(r.json()["error"]["message"].startswith("dryRun"), r)
        del body["dryRun"]
        r = self.app.call("POST", "webhooks/%s/recover" % w["uid"], body)
        self.assertEqual(r.json()["queued"], 1, r)
        bad.wait_count(attempts + 1)

    def test_series_aggregates_attempts(self):
        rcv = self.receiver(lambda n, req: (500 if n % 3 == 2 else 200, b"{}", {}, 0))
        w = self.app.webhook(rcv.url())
        for i in range(6):
            self.app.ok("POST", "agents", {"agentName": "s%d" % i, "externalTenantId": "t"})
        # six events; every third answer a 500, retried at once (HOOKLINE_RETRY_SCHEDULE)
        wait_for(lambda: len(self.app.ok(
            "GET", "webhooks/%s/deliveries?status=succeeded" % w["uid"])["data"]) == 6,
            timeout=20, what="six deliveries to succeed")
        attempts = len(rcv.requests)
        failures = len([n for n in range(attempts) if n % 3 == 2])
        s = self.app.ok("GET", "webhooks/%s/stats/series" % w["uid"])
        self.assertEqual((s["window"], s["step"], s["stepSeconds"]), ("1h", "1m", 60))
        self.assertEqual(len(s["buckets"]), 60)
        self.assertEqual(s["totals"]["attempts"], attempts)
        self.assertEqual(s["totals"]["failures"], failures)
        self.assertEqual(s["totals"]["successes"], attempts - failures)
        self.assertAlmostEqual(s["totals"]["successRate"], (attempts - failures) / attempts)
        self.assertEqual(sum(b["attempts"] for b in s["buckets"]), attempts)
        busy = [b for b in s["buckets"] if b["attempts"]]
        self.assertTrue(busy)
        for b in busy:
            self.assertIsNotNone(b["p50Ms"])
            self.assertGreaterEqual(b["p95Ms"], b["p50Ms"])
        idle = [b for b in s["buckets"] if not b["attempts"]]
        self.assertTrue(all(b["successRate"] is None and b["p50Ms"] is None for b in idle))
        starts = [b["start"] for b in s["buckets"]]
        self.assertEqual(starts, sorted(starts))
        day = self.app.ok("GET", "webhooks/%s/stats/series?window=24h" % w["uid"])
        self.assertEqual((day["step"], len(day["buckets"])), ("1h", 24))
        self.assertEqual(day["totals"]["attempts"], attempts)
        five = self.app.ok("GET", "webhooks/%s/stats/series?window=1h&step=5m" % w["uid"])
        self.assertEqual(len(five["buckets"]), 12)
        for q, field in (("window=2h", "window"), ("step=1h", "step"), ("step=2m", "step")):
            r = self.app.call("GET", "webhooks/%s/stats/series?%s" % (w["uid"], q))
            self.assertEqual(r.status, 422, (q, r))
            self.assertTrue(r.json()["error"]["message"].startswith(field), r)
        other = self.app.webhook(rcv.url("/other"))
        empty = self.app.ok("GET", "webhooks/%s/stats/series" % other["uid"])
        self.assertEqual(empty["totals"]["attempts"], 0)
        self.assertIsNone(empty["totals"]["successRate"])


class ConsoleBehindHttps(ServerTest):
    """--public-url https://…: where clients reach the server through a proxy that ends TLS."""

    server_env = {"HOOKLINE_PUBLIC_URL": "https://hooks.example.com/"}

    def test_links_point_there_and_cookies_are_secure(self):
        link = self.app.ok("POST", "portal", {}, status=201)
        self.assertRegex(link["url"], r"^https://hooks\.example\.com/console/#token=[A-Za-z0-9_.-]+$")
        for proto in ({}, {"X-Forwarded-Proto": "http"}):
            h = dict(CONSOLE, **proto)
            r = self.server.request("POST", "/console/session", {"apiKey": self.app.key},
                                    headers=h)
            self.assertEqual(r.status, 200, r)
            self.assertIn("Secure", r.headers["set-cookie"].split("; "))
        r = self.server.request("POST", "/console/session", {"token": token_of(link["url"])},
                                headers=CONSOLE)
        self.assertEqual(r.status, 200, r)
        jar = r.headers["set-cookie"].split(";", 1)[0]
        r = self.server.request("DELETE", "/console/session", headers=dict(CONSOLE, Cookie=jar))
        self.assertIn("Secure", r.headers["set-cookie"].split("; "))

    def test_a_public_url_is_checked(self):
        for bad in ("ftp://hooks.example.com", "https://", "https://user@hooks.example.com",
                    "https://hooks.example.com/?a=1", "hooks.example.com"):
            r = subprocess.run([BIN, "serve", "--public-url", bad, "--database",
                                self.server.db], capture_output=True, text=True, timeout=60)
            self.assertEqual(r.returncode, 2, (bad, r.stderr))
            self.assertIn("--public-url", r.stderr)


class ConsoleRateLimit(ServerTest):
    """Signing in to the console and making portal links count against the app's --api-rate like
    every other request of the app."""

    server_env = {"HOOKLINE_API_RATE": "1", "HOOKLINE_API_BURST": "3"}

    def test_sign_in_and_portal_are_rate_limited(self):
        refused = None
        for _ in range(60):  # at 1/s after a burst of 3, a 429 comes well before the 60th
            r = self.server.request("POST", "/console/session", {"apiKey": self.app.key},
                                    headers=CONSOLE)
            if r.status == 429:
                refused = r
                break
            self.assertEqual(r.status, 200, r)
        self.assertIsNotNone(refused, "no 429 in 60 sign-ins at --api-rate 1")
        self.assertEqual(refused.json()["error"]["code"], "rate_limited", refused)
        self.assertNotIn("set-cookie", refused.headers)  # no session was opened
        retry = refused.headers.get("retry-after")
        self.assertTrue(retry and retry.isdigit() and int(retry) >= 1, retry)
        statuses = set()
        for _ in range(60):
            r = self.app.call("POST", "portal", {})
            statuses.add(r.status)
            if r.status == 429:
                self.assertEqual(r.json()["error"]["code"], "rate_limited", r)
                break
        self.assertIn(429, statuses)


class ConsoleLinkRateLimit(ServerTest):
    """A portal link refused for the app's rate is not spent: the user's one-time link still
    opens its session once the wait is over."""

    server_env = {"HOOKLINE_API_RATE": "1", "HOOKLINE_API_BURST": "2"}

    def until_admitted(self, call):
        """call() again after each 429's Retry-After until it is not refused for the rate."""
        for _ in range(60):
            r = call()
            if r.status != 429:
                return r
            time.sleep(int(r.headers["retry-after"]) + 0.1)
        self.fail("still rate limited")

    def test_rate_limited_exchange_keeps_the_link(self):
        def exchange():
            return self.server.request("POST", "/console/session", {"token": token}, headers=CONSOLE)

        refused = None
        for _ in range(10):  # a bucket refilled between the last key and the link: once more
            link = self.until_admitted(lambda: self.app.call("POST", "portal", {}))
            self.assertEqual(link.status, 201, link)
            token = token_of(link.json()["url"])
            for _ in range(60):  # the app's bucket spent by key sign-ins
                r = self.server.request("POST", "/console/session", {"apiKey": self.app.key},
                                        headers=CONSOLE)
                if r.status == 429:
                    break
            r = exchange()
            if r.status == 429:
                refused = r
                break
            self.assertEqual(r.status, 200, r)
        self.assertIsNotNone(refused, "the link's exchange was never rate limited")
        self.assertEqual(refused.json()["error"]["code"], "rate_limited", refused)
        self.assertNotIn("set-cookie", refused.headers)
        r = self.until_admitted(exchange)
        self.assertEqual(r.status, 200, r)
        self.assertIn("set-cookie", r.headers)


class FailingStaysPending(ServerTest):
    """A delivery whose attempt failed waits an hour for its next one: it is failing."""

    server_env = {"HOOKLINE_RETRY_SCHEDULE": "0,1h"}

    def test_app_deliveries_and_the_failing_filter(self):
        ok = self.receiver()
        bad = self.receiver(lambda n, req: (500, b"down", {}, 0))
        w_ok = self.app.webhook(ok.url())
        w_bad = self.app.webhook(bad.url())
        self.app.ok("POST", "agents", {"agentName": "a", "externalTenantId": "t"})
        ok.wait_count(1)
        bad.wait_count(1)
        wait_for(lambda: self.app.ok("GET", "deliveries?status=failing")["data"], timeout=15,
                 what="a failing delivery")
        both = self.app.ok("GET", "deliveries")["data"]
        self.assertEqual(sorted(d["webhookUid"] for d in both), sorted([w_ok["uid"], w_bad["uid"]]))
        failing = self.app.ok("GET", "deliveries?status=failing")["data"]
        self.assertEqual([(d["webhookUid"], d["status"]) for d in failing],
                         [(w_bad["uid"], "failing")])
        self.assertIsNotNone(failing[0]["lastError"] or failing[0]["lastStatusCode"])
        self.assertEqual(
            [d["webhookUid"] for d in self.app.ok("GET", "deliveries?status=succeeded")["data"]],
            [w_ok["uid"]])
        mine = self.app.ok("GET", "webhooks/%s/deliveries?status=failing" % w_ok["uid"])["data"]
        self.assertEqual(mine, [])
        # paging the app-wide list: newest first, every delivery once
        for i in range(4):
            self.app.ok("POST", "agents", {"agentName": "p%d" % i, "externalTenantId": "t"})
        wait_for(lambda: len(self.app.ok("GET", "deliveries?limit=100")["data"]) == 10,
                 what="ten deliveries")
        seen, cursor = [], None
        while True:
            page = self.app.ok("GET", "deliveries?limit=3" + ("&cursor=" + cursor if cursor
                                                              else ""))
            seen += [d["id"] for d in page["data"]]
            cursor = page["nextCursor"]
            if not cursor:
                break
        self.assertEqual(len(seen), 10)
        self.assertEqual(len(set(seen)), 10)
        every = [d["id"] for d in self.app.ok("GET", "deliveries?limit=100")["data"]]
        self.assertEqual(seen, every)
        for q, field in (("status=late", "status"), ("event=agent.made", "event"),
                         ("since=yesterday", "since")):
            r = self.app.call("GET", "deliveries?" + q)
            self.assertEqual(r.status, 422, (q, r))
            self.assertTrue(r.json()["error"]["message"].startswith(field), r)
        self.assertEqual(self.app.call("POST", "deliveries").status, 405)


if __name__ == "__main__":
    main()
