"""The console in Firefox: Debian's firefox-esr, headless, driven over its own Marionette
protocol (tests/browser/marionette.py; Debian has no geckodriver), against the real hookline on
loopback (the e2e harness), with real receivers.

One Firefox serves the whole suite (it takes tens of seconds to start on a busy machine); each
case has its own hookline. A missing firefox-esr skips the suite (exit 77), and fails it under
HL_REQUIRE_ALL=1 (make test installs it).

JavaScript errors: Firefox writes every uncaught error and unhandled rejection of a page to its
stderr ("JavaScript error: URL, line N: ..."; the profile sets browser.dom.window.dump.enabled).
Each case fails on any such line for the console's own origin; test_a_page_error_is_caught
proves that a page module's error does show there. Screenshots go to
HL_BUILD_DIR/browser-screenshots, named firefox-*.
"""
import json
import os
import re
import shutil
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "e2e"))
import harness  # noqa: E402
from console_pages import (HOSTILE, LAPTOP, MADE_ELEMENTS_JS, OVERFLOW_JS, PHONE, PWNED_JS, SHOTS,  # noqa: E402
                           phone_pages, wait_expired)
from marionette import Firefox, MarionetteError  # noqa: E402

FIREFOX = shutil.which("firefox-esr") or shutil.which("firefox") or "/usr/bin/firefox-esr"
BROWSER = None


def setUpModule():
    global BROWSER
    harness.need(os.path.exists(FIREFOX), "firefox-esr")
    os.makedirs(SHOTS, exist_ok=True)
    BROWSER = Firefox(FIREFOX, timeout=120, size=LAPTOP)


def tearDownModule():
    if BROWSER:
        BROWSER.quit()


class FirefoxConsoleTest(harness.ServerTest):
    def setUp(self):
        super().setUp()
        self.ff = BROWSER
        self.ff.set_window_size(*LAPTOP)
        self.ff.get("about:blank")
        self.base = "http://127.0.0.1:%d" % self.server.port
        self.stderr_from = len(self.ff.stderr_text())

    def tearDown(self):
        try:
            self.ff.get("about:blank")
            bad = self.page_errors()
            if bad:
                self.fail("JavaScript errors in Firefox:\n  " + "\n  ".join(bad))
        finally:
            super().tearDown()

    # ---- helpers ----

    def page_errors(self):
        """The "JavaScript error" lines Firefox wrote for this case's console since setUp."""
        text = self.ff.stderr_text()[self.stderr_from:]
        mine = re.escape(self.base + "/")
        return re.findall(r"^JavaScript error: %s.*$" % mine, text, re.M)

    def wait(self, cond, timeout=30, what="the page"):
        deadline = time.monotonic() + timeout
        while True:
            try:
                got = cond()
            except MarionetteError as e:
                if e.name not in ("no such element", "stale element reference"):
                    raise
                got = None
            if got:
                return got
            if time.monotonic() > deadline:
                self.shot("timeout-" + self.id().rsplit(".", 1)[1])
                raise AssertionError("timed out waiting for %s; the page says: %s" % (
                    what, self.ff.execute("return document.body.innerText")[:1500]))
            time.sleep(0.1)

    def css(self, sel):
        return self.wait(lambda: (self.ff.find(sel) or [None])[0], what=sel)

    def count(self, sel, n):
        self.wait(lambda: len(self.ff.find(sel)) == n, what="%d of %s" % (n, sel))

    def click(self, sel):
        self.ff.click(self.css(sel))

    def text_of(self, sel):
        return self.ff.text(self.css(sel))

    def text_in(self, sel, text):
        self.wait(lambda: any(text in self.ff.text(e) for e in self.ff.find(sel)),
                  what="%r in %s" % (text, sel))

    def shot(self, name):
        self.ff.screenshot(os.path.join(SHOTS, "firefox-" + name + ".png"))

    def open_link(self, url):
        """Opens url as a new page (not a jump within the page already open)."""
        self.ff.get("about:blank")
        self.ff.get(url)

    def go(self, hash_):
        self.ff.get(self.base + "/console/" + hash_)

    def signed_in(self):
        self.css("#who .app")
        self.css("#nav a[data-route=webhooks]")

    def loaded(self):
        self.css("main h2")
        self.wait(lambda: not self.ff.find("main .loading"), what="the page to load")

    def sign_in(self, **body):
        self.open_link(self.app.ok("POST", "portal", body, status=201)["url"])
        self.signed_in()

    # ---- the cases ----

    def test_a_page_error_is_caught(self):
        """The negative check: an error thrown by the console's own module (a rejected route()
        after a hash change, here made to fail by taking a method its code calls) shows in
        Firefox's stderr, where every case looks for one."""
        self.sign_in()
        self.loaded()
        self.assertEqual(self.page_errors(), [])
        self.ff.execute("document.getElementById('nav').querySelectorAll = 5;"
                        "location.hash = '#/events';")
        self.wait(lambda: self.page_errors(), what="the error on Firefox's stderr")
        errors = self.page_errors()
        self.assertIn("/console/js/app.js", errors[0])
        self.assertIn("querySelectorAll is not a function", errors[0])
        self.stderr_from = len(self.ff.stderr_text())  # caught on purpose: not this case's failure

    def test_portal_link_webhook_delivery_event_log(self):
        """A portal link signs in (the token leaves the address bar, the cookie is HttpOnly
        and SameSite=Strict); the webhooks page lists a webhook made through the API; a
        delivery and its attempt show on the deliveries page; the event log filters."""
        rcv = self.receiver()
        w = self.app.webhook(rcv.url(), description="made through the API")
        link = self.app.ok("POST", "portal", {"expiresIn": 600}, status=201)
        self.open_link(link["url"])
        self.signed_in()
        self.assertNotIn("token=", self.ff.current_url())
        cookie = {c["name"]: c for c in self.ff.cookies()}["hookline_console"]
        self.assertTrue(cookie["httpOnly"])
        self.assertEqual(cookie["sameSite"], "Strict")
        self.assertNotIn("hookline_console", self.ff.execute("return document.cookie"))
        self.text_in("main table", rcv.url())
        self.text_in("main table", "made through the API")
        self.shot("webhooks")

        self.app.ok("POST", "agents", {"agentName": "Support", "externalTenantId": "tenant-a"})
        ctx = self.app.ok("POST", "contexts", {"name": "docs", "externalTenantId": "tenant-b"})
        event_id = json.loads(rcv.wait_count(1)[0]["body"])["eventId"]
        rcv.wait_count(2)
        self.go("#/deliveries?webhook=" + w["uid"])
        self.text_in("main table", "agent.created")
        self.shot("deliveries")
        dlv = [e for e in self.ff.find("main table tbody tr td a[href^='#/deliveries/dlv_']")]
        self.assertEqual(len(dlv), 2)
        self.go("#/deliveries?webhook=%s&event=agent.created" % w["uid"])
        self.count("main table tbody tr td a[href^='#/deliveries/dlv_']", 1)
        self.click("main table tbody tr td a[href^='#/deliveries/dlv_']")
        self.text_in("main", "HTTP 200")
        self.text_in("main", "Attempt 1")
        self.text_in("pre.json", event_id)
        self.assertIn('"agentName": "Support"', self.text_of("pre.json"))
        self.shot("delivery")

        self.go("#/events")
        self.count("main tbody tr", 2)
        self.ff.send_keys(self.css("form.filters input[name=tenant]"), "tenant-b")
        self.click("form.filters button[type=submit]")
        self.count("main tbody tr", 1)
        self.assertIn("context.created", self.text_of("main tbody"))
        self.shot("events-filtered")
        self.click("main tbody tr td a[href^='#/events/evt_']")
        self.text_in("main", "Deliveries (1)")
        self.text_in("pre.json", ctx["uid"])
        self.shot("event")

    def test_hostile_agent_name_renders_as_text(self):
        """An agentName holding <script> and <img onerror> shows those characters on the event
        and delivery pages; no element is made from it and nothing runs."""
        rcv = self.receiver()
        self.app.webhook(rcv.url())
        self.app.ok("POST", "agents", {"agentName": HOSTILE, "externalTenantId": HOSTILE})
        rcv.wait_count(1)
        self.sign_in()
        for name, hash_, sel, link in (
                ("events", "#/events", "main table", "main tbody tr td a[href^='#/events/evt_']"),
                ("deliveries", "#/deliveries", "main table",
                 "main tbody tr td a[href^='#/deliveries/dlv_']")):
            self.go(hash_)
            self.text_in(sel, "agent.created")
            if name == "events":
                self.text_in(sel, HOSTILE)  # the tenant column
            self.click(link)
            self.text_in("pre.json", '"agentName": "%s"' % HOSTILE.replace('"', '\\"'))
            self.assertIsNone(self.ff.execute(PWNED_JS))
            self.assertEqual(self.ff.execute(MADE_ELEMENTS_JS), [], "elements made on " + name)
            self.shot("hostile-" + name)

    def test_expired_link_is_refused(self):
        """An expired link gets a page that says so, and does not sign in."""
        short = self.app.ok("POST", "portal", {"expiresIn": 1}, status=201)
        wait_expired(short)
        self.open_link(short["url"])
        self.text_in(".link-error", "This link has expired.")
        self.assertEqual(self.ff.find("#who .app"), [])
        self.assertNotIn("token=", self.ff.current_url())
        self.shot("link-expired")

    def test_phone_width(self):
        """At 390x844 every page fits: nothing sticks out sideways."""
        rcv = self.receiver()
        w = self.app.webhook(rcv.url(), description="a description long enough to wrap " * 3)
        self.app.ok("POST", "agents", {"agentName": "x", "externalTenantId": "t"})
        rcv.wait_count(1)
        self.sign_in()
        self.ff.set_window_size(*PHONE)
        self.assertEqual(self.ff.execute("return window.innerWidth"), PHONE[0])
        for name, hash_ in phone_pages(w["uid"]):
            self.go(hash_)
            self.loaded()
            wide, window = self.ff.execute(OVERFLOW_JS)
            self.assertLessEqual(wide, window, "%s is wider than the phone" % name)
            self.shot("phone-" + name)
        # the measure sees what sticks out: a block wider than the phone
        self.ff.execute("const d = document.createElement('div'); d.style.width = '600px';"
                        "d.style.height = '1px'; document.body.append(d);")
        wide, window = self.ff.execute(OVERFLOW_JS)
        self.assertGreater(wide, window)


if __name__ == "__main__":
    harness.main()
