"""The console in a real browser: Debian's headless Chromium driven by Selenium, against the real
hookline on loopback (the e2e harness), with real receivers.

Run by tests/browser/run.sh on /usr/bin/python3 (Debian's python3-selenium lives there, not in a
python3 found first on another PATH). A missing browser, driver or module skips the suite (exit
77), and fails it under HL_REQUIRE_ALL=1 (make test installs them).

Every test fails on any error in the browser's console (a JavaScript exception, a refused
Content-Security-Policy, an unhandled promise), except the HTTP refusals the test itself
provokes (an expired link's 401, a read-only session's 403), which it names. Each page is saved
as a screenshot under the build folder (HL_BUILD_DIR/browser-screenshots).
"""
import json
import os
import re
import shutil
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "e2e"))
import harness  # noqa: E402
from console_pages import (HOSTILE, LAPTOP, MADE_ELEMENTS_JS, OVERFLOW_JS, PHONE, PWNED_JS, SHOTS,  # noqa: E402
                           phone_pages, wait_expired)

try:
    from selenium import webdriver
    from selenium.common.exceptions import TimeoutException
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as EC
    from selenium.webdriver.support.ui import Select, WebDriverWait
    HAVE_SELENIUM = True
except ImportError:
    HAVE_SELENIUM = False

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
DRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"

def setUpModule():
    harness.need(HAVE_SELENIUM, "python3-selenium (for /usr/bin/python3)")
    harness.need(os.path.exists(CHROMIUM), "chromium")
    harness.need(os.path.exists(DRIVER), "chromium-driver")
    os.makedirs(SHOTS, exist_ok=True)


class ConsoleTest(harness.ServerTest):
    # HTTP statuses this test provokes on purpose; the browser logs them as errors.
    expected_http = ()

    def setUp(self):
        super().setUp()
        self.profile = tempfile.mkdtemp(prefix="hookline-chromium-")
        opts = webdriver.ChromeOptions()
        opts.binary_location = CHROMIUM
        for a in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--disable-dev-shm-usage", "--user-data-dir=" + self.profile,
                  "--window-size=%d,%d" % LAPTOP):
            opts.add_argument(a)
        opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
        self.browser = webdriver.Chrome(service=Service(DRIVER), options=opts)
        self.browser.set_window_size(*LAPTOP)
        self.base = "http://127.0.0.1:%d" % self.server.port
        self.log_seen = []

    def tearDown(self):
        try:
            self.check_browser_log()
        finally:
            self.browser.quit()
            shutil.rmtree(self.profile, ignore_errors=True)
            super().tearDown()

    # ---- helpers ----

    def check_browser_log(self):
        """Fails on every error the browser logged, but the HTTP refusals this test provoked."""
        bad = []
        for e in self.log_seen + self.browser.get_log("browser"):
            if e["level"] not in ("SEVERE", "ERROR"):
                continue
            m = re.search(r"Failed to load resource: the server responded with a status of (\d+)",
                          e["message"])
            if m and int(m.group(1)) in self.expected_http:
                continue
            bad.append(e["message"])
        self.log_seen = []
        if bad:
            self.fail("errors in the browser's console:\n  " + "\n  ".join(bad))

    def wait(self, cond, timeout=20, what="the page"):
        try:
            return WebDriverWait(self.browser, timeout, poll_frequency=0.1).until(cond)
        except TimeoutException:
            self.shot("timeout-" + self.id().rsplit(".", 1)[1])
            raise AssertionError("timed out waiting for %s; the page says: %s" % (
                what, self.browser.execute_script("return document.body.innerText")[:1500]))

    def css(self, sel, timeout=20):
        return self.wait(EC.presence_of_element_located((By.CSS_SELECTOR, sel)), timeout, sel)

    def click(self, sel):
        self.wait(EC.element_to_be_clickable((By.CSS_SELECTOR, sel)), what=sel).click()

    def text_in(self, sel, text, timeout=20):
        self.wait(EC.text_to_be_present_in_element((By.CSS_SELECTOR, sel), text), timeout,
                  "%r in %s" % (text, sel))

    def main_text(self):
        return self.browser.find_element(By.ID, "main").text

    def shot(self, name):
        self.browser.save_screenshot(os.path.join(SHOTS, name + ".png"))

    def portal(self, **body):
        return self.app.ok("POST", "portal", body, status=201)

    def open_link(self, url):
        """Opens url as a new page (not a jump within the page already open)."""
        self.browser.get("about:blank")
        self.browser.get(url)

    def signed_in(self):
        self.css("#who .app")
        self.css("#nav a[data-route=webhooks]")

    def fetch(self, method, path, body=None):
        """A request from inside the page, with its cookie and the console's header; returns
        [status, body]."""
        return self.browser.execute_async_script("""
            const [method, path, body, done] = arguments;
            const init = {method, headers: {'X-Hookline-Console': '1'}, credentials: 'same-origin'};
            if (body !== null) { init.headers['Content-Type'] = 'application/json';
                                 init.body = JSON.stringify(body); }
            fetch(path, init).then(async (r) => done([r.status, await r.text()]),
                                   (e) => done([0, String(e)]));
        """, method, path, body)

    def no_script_ran(self):
        self.assertIsNone(self.browser.execute_script(PWNED_JS))

    # ---- the cases ----

    def test_portal_link_webhook_delivery_resend(self):
        """A portal link signs in (once, leaving the address bar, as an HttpOnly SameSite=Strict
        cookie); a webhook made on the page receives a change made through the API; the page
        shows the delivery and its attempt, and resends it."""
        rcv = self.receiver()
        link = self.portal(expiresIn=600)
        self.assertTrue(link["url"].startswith(self.base + "/console/#token="))
        self.open_link(link["url"])
        self.signed_in()
        self.assertNotIn("token=", self.browser.current_url)
        cookies = {c["name"]: c for c in self.browser.get_cookies()}
        self.assertTrue(cookies["hookline_console"]["httpOnly"])
        self.assertEqual(cookies["hookline_console"]["sameSite"], "Strict")
        self.assertNotIn("hookline_console", self.browser.execute_script("return document.cookie"))
        self.css("main h2")
        self.shot("webhooks-empty")

        # create a webhook on the page: its secret is shown once
        self.click("a[href='#/webhooks/new']")
        self.css("form input[name=url]").send_keys(rcv.url())
        self.css("form input[name=description]").send_keys("made in the browser")
        self.click("form button[type=submit]")
        secret = self.css(".secret-value").text
        self.assertRegex(secret, r"^whsec_[A-Za-z0-9+/=]+$")
        self.shot("webhook-created")
        hooks = self.app.ok("GET", "webhooks")["data"]
        self.assertEqual(len(hooks), 1)
        uid = hooks[0]["uid"]
        self.assertEqual(hooks[0]["description"], "made in the browser")

        # a change through the API reaches the receiver, signed with that secret
        self.app.ok("POST", "agents", {"agentName": "Support", "externalTenantId": "tenant-1"})
        req = rcv.wait_count(1)[0]
        harness.check_signed(self, req, secret)
        event_id = json.loads(req["body"])["eventId"]

        # the webhook page: health, three charts from the aggregation endpoint
        self.browser.get(self.base + "/console/#/webhooks/" + uid)
        self.wait(lambda d: len(d.find_elements(By.CSS_SELECTOR, "svg.chart")) == 3,
                  what="three charts")
        self.shot("webhook")

        # the list of deliveries shows it; it opens to its attempt and payload
        self.browser.get(self.base + "/console/#/deliveries?webhook=" + uid)
        self.text_in("main table", "agent.created")
        self.shot("deliveries")
        self.click("main table tbody tr td a[href^='#/deliveries/dlv_']")
        self.text_in("main", "HTTP 200")
        self.text_in("pre.json", event_id)
        self.assertIn('"agentName": "Support"', self.css("pre.json").text)
        self.click("details summary")
        self.text_in("table.headers", "X-Webhook-Event-Id")
        headers = self.css("table.headers").text
        self.assertIn(event_id, headers)
        self.assertIn("sha256=…(hidden)", headers)
        self.assertNotIn(secret, self.browser.page_source)
        self.shot("delivery")

        # resend: the receiver gets the same event again, and the page a second attempt
        self.click("button[data-action=resend]")
        again = rcv.wait_count(2)[1]
        self.assertEqual(json.loads(again["body"])["eventId"], event_id)
        self.wait(lambda d: "Attempt 2" in d.find_element(By.ID, "main").text, what="attempt 2")
        self.shot("delivery-resent")

        # the app-wide list has it too, filtered by status
        self.browser.get(self.base + "/console/#/deliveries?status=succeeded")
        self.text_in("main table", "agent.created")

    def test_webhook_operations(self):
        """Pause, resume, test, rotate (the new secret shown once) and delete with a
        confirmation, each on the page and checked through the API."""
        rcv = self.receiver()
        w = self.app.webhook(rcv.url())
        self.open_link(self.portal()["url"])
        self.signed_in()
        self.browser.get(self.base + "/console/#/webhooks/" + w["uid"])
        self.click("button[data-action=pause]")
        self.css("button[data-action=resume]")
        self.assertFalse(self.app.ok("GET", "webhooks/" + w["uid"])["active"])
        self.click("button[data-action=resume]")
        self.css("button[data-action=pause]")
        self.assertTrue(self.app.ok("GET", "webhooks/" + w["uid"])["active"])

        # edit: the form holds the webhook as it is; saving changes it
        self.click("main a[href$='/edit']")
        desc = self.css("form input[name=description]")
        desc.clear()
        desc.send_keys("edited in the browser")
        self.click("form button[type=submit]")
        self.text_in("#banner", "Saved.")
        self.assertEqual(self.app.ok("GET", "webhooks/" + w["uid"])["description"],
                         "edited in the browser")

        self.click("button[data-action=test]")
        self.text_in(".test-outcome", "HTTP 200")
        self.assertEqual(json.loads(rcv.wait_count(1)[0]["body"])["event"], "webhook.test")

        self.click("button[data-action=rotate]")
        self.click("dialog[open] button[data-role=confirm]")
        new_secret = self.css(".secret-value").text
        self.assertNotEqual(new_secret, w["secret"])
        self.shot("webhook-rotated")
        # the next delivery is signed with it
        self.app.ok("POST", "agents", {"agentName": "A", "externalTenantId": "t"})
        harness.check_signed(self, rcv.wait_count(2)[1], new_secret)

        # delete asks first; cancelling keeps it
        self.click("button[data-action=delete]")
        self.css("dialog[open]")
        self.shot("webhook-delete-confirm")
        self.click("dialog[open] button[data-role=cancel]")
        self.app.ok("GET", "webhooks/" + w["uid"])
        self.click("button[data-action=delete]")
        self.click("dialog[open] button[data-role=confirm]")
        self.wait(lambda d: d.current_url.endswith("#/webhooks"), what="the list again")
        self.text_in("#banner", "Webhook deleted.")
        self.assertEqual(self.app.call("GET", "webhooks/" + w["uid"]).status, 404)

    def test_failed_deliveries_page_and_recover(self):
        """More failed deliveries than a page: the list pages through nextCursor, each once;
        recovering them says how many it will queue before it queues them."""
        bad = self.receiver(lambda n, req: (500, b"down", {}, 0))
        w = self.app.webhook(bad.url())
        for i in range(27):
            self.app.ok("POST", "agents", {"agentName": "a%d" % i, "externalTenantId": "t"})
        harness.wait_for(lambda: len(self.app.ok(
            "GET", "deliveries?status=failed&limit=100")["data"]) == 27, timeout=60,
            what="27 failed deliveries")
        self.open_link(self.portal()["url"])
        self.signed_in()
        self.browser.get(self.base + "/console/#/deliveries?status=failed")
        rows = "main tbody tr td a[href^='#/deliveries/dlv_']"
        self.wait(lambda d: len(d.find_elements(By.CSS_SELECTOR, rows)) == 25, what="25 rows")
        first = [a.text for a in self.browser.find_elements(By.CSS_SELECTOR, rows)]
        self.shot("deliveries-failed")
        self.click("nav.pager a[data-role=next]")
        self.wait(lambda d: len(d.find_elements(By.CSS_SELECTOR, rows)) == 2, what="2 rows")
        second = [a.text for a in self.browser.find_elements(By.CSS_SELECTOR, rows)]
        self.assertEqual(len(set(first + second)), 27)
        self.assertEqual(self.browser.find_elements(By.CSS_SELECTOR, "a[data-role=next]"), [])
        # recover: first the count, then the queueing
        before = len(bad.requests)
        self.browser.get(self.base + "/console/#/webhooks/" + w["uid"])
        self.click("form.recover button[type=submit]")
        self.text_in(".recover-out",
                     "27 deliveries will be attempted again now (27 failed, 0 failing).")
        self.assertEqual(len(bad.requests), before)  # counting queued nothing
        self.shot("recover-count")
        self.click("button[data-action=recover]")
        self.text_in(".recover-out", "27 deliveries queued again.")
        # The receiver failed every attempt, so the webhook's circuit breaker is open: the 27 go
        # one probe at a time at the retry schedule's pace (its last wait, 400 ms here), ~11 s.
        bad.wait_count(before + 27, timeout=120)

    def test_event_log_filters(self):
        """The event log filtered by tenant and by event; an event opens to its payload and the
        deliveries it fanned out to."""
        rcv = self.receiver()
        self.app.webhook(rcv.url())
        for i in range(3):
            self.app.ok("POST", "agents", {"agentName": "a%d" % i, "externalTenantId": "tenant-a"})
        ctx = self.app.ok("POST", "contexts", {"name": "docs", "externalTenantId": "tenant-b"})
        self.open_link(self.portal()["url"])
        self.signed_in()
        self.browser.get(self.base + "/console/#/events")
        self.wait(lambda d: len(d.find_elements(By.CSS_SELECTOR, "main tbody tr")) == 4,
                  what="four events")
        self.css("form.filters input[name=tenant]").send_keys("tenant-b")
        self.click("form.filters button[type=submit]")
        self.wait(lambda d: len(d.find_elements(By.CSS_SELECTOR, "main tbody tr")) == 1,
                  what="one event of tenant-b")
        self.assertIn("context.created", self.css("main tbody").text)
        self.shot("events-filtered")
        self.browser.get(self.base + "/console/#/events")
        self.wait(lambda d: len(d.find_elements(By.CSS_SELECTOR, "main tbody tr")) == 4,
                  what="four events again")
        Select(self.css("form.filters select[name=event]")).select_by_value("agent.created")
        self.click("form.filters button[type=submit]")
        self.wait(lambda d: len(d.find_elements(By.CSS_SELECTOR, "main tbody tr")) == 3,
                  what="three agent.created")
        self.assertNotIn("context.created", self.css("main tbody").text)
        # an event with its deliveries
        self.click("main tbody tr td a[href^='#/events/evt_']")
        self.text_in("main", "Deliveries (1)")
        self.css("main a[href^='#/deliveries/dlv_']")
        self.shot("event")
        # the context's files page
        self.app.ok("POST", "contexts/%s/files" % ctx["uid"],
                    {"fileName": "guide.pdf", "contentType": "application/pdf", "sizeBytes": 10})
        self.browser.get(self.base + "/console/#/files/" + ctx["uid"])
        self.text_in("main", "guide.pdf")
        self.shot("files")

    def test_hostile_values_render_as_text(self):
        """Every field a user or a receiver controls holds <script> and <img onerror>: the app's
        name, a webhook's description, an agent's name and tenant (the payload), a context's
        name and tenant, a file's name, a receiver's answer (the attempt's response excerpt)
        and the page's own address. Every page that shows them shows those characters, no
        element is made from them and nothing runs."""
        # the receiver answers its first request with markup, then accepts
        rcv = self.receiver(lambda n, req: (500, HOSTILE.encode(), {"Content-Type": "text/html"},
                                            0) if n == 0 else (200, b"{}", {}, 0))
        app = harness.App(self.server, self.server.create_app(HOSTILE))
        w = app.webhook(rcv.url(), description=HOSTILE)
        app.ok("POST", "agents", {"agentName": HOSTILE, "externalTenantId": HOSTILE})
        ctx = app.ok("POST", "contexts", {"name": HOSTILE, "externalTenantId": HOSTILE})
        app.ok("POST", "contexts/%s/files" % ctx["uid"],
               {"fileName": HOSTILE, "contentType": "application/pdf", "sizeBytes": 10})
        rcv.wait_count(2)
        self.open_link(app.ok("POST", "portal", {}, status=201)["url"])
        self.signed_in()
        pages = 0

        def clean(name):
            nonlocal pages
            self.no_script_ran()
            made = self.browser.execute_script(MADE_ELEMENTS_JS)
            self.assertEqual(made, [], "elements made from data on " + name)
            self.shot("hostile-" + name)
            pages += 1

        self.text_in("#who .app", HOSTILE)  # the app's name
        self.text_in("main table", HOSTILE)  # the webhook's description
        clean("webhooks")
        self.browser.get(self.base + "/console/#/webhooks/" + w["uid"])
        self.text_in("main", HOSTILE)
        self.wait(lambda d: len(d.find_elements(By.CSS_SELECTOR, "svg.chart")) == 3,
                  what="three charts")
        clean("webhook")
        self.browser.get(self.base + "/console/#/events")
        self.css("form.filters input[name=tenant]")
        self.text_in("main table", HOSTILE)  # the tenant column
        clean("events")
        self.click("main tbody tr:last-child td a[href^='#/events/evt_']")
        self.text_in("pre.json", '"agentName": "%s"' % HOSTILE.replace('"', '\\"'))
        clean("event")
        self.browser.get(self.base + "/console/#/deliveries")
        self.text_in("main table", "agent.created")
        clean("deliveries")
        self.click("main table tbody tr:last-child td a[href^='#/deliveries/dlv_']")
        self.text_in("pre.json", "<script>window.__pwned=1</script>")
        self.text_in("pre.response", HOSTILE)  # the receiver's answer to attempt 1
        clean("delivery")
        self.browser.get(self.base + "/console/#/files/" + ctx["uid"])
        self.text_in("main", HOSTILE)
        self.assertGreaterEqual(self.main_text().count(HOSTILE), 3)  # name, tenant, file
        clean("files")
        # markup in the address: a filter's value and a path part
        self.browser.get(self.base + "/console/#/events?tenant=" + HOSTILE)
        self.wait(lambda d: d.find_element(By.CSS_SELECTOR, "form.filters input[name=tenant]")
                  .get_attribute("value") == HOSTILE, what="the tenant filter")
        clean("address-filter")
        self.expected_http = (404,)
        self.browser.get(self.base + "/console/#/webhooks/" + HOSTILE)
        self.text_in("main h2", "Not found")
        clean("address-path")
        self.assertEqual(pages, 9)

    def test_csp_stops_what_escaping_would_miss(self):
        """The second wall: were markup ever to reach the page, the Content-Security-Policy
        runs no inline script, no inline event handler and no string as code (a string timer,
        which is eval)."""
        self.open_link(self.portal()["url"])
        self.signed_in()
        self.browser.execute_script("""
            const s = document.createElement('script');
            s.textContent = 'window.__pwned = "inline"';
            document.body.appendChild(s);
            const i = document.createElement('img');
            i.setAttribute('onerror', 'window.__pwned = "handler"');
            i.src = 'data:,not-an-image';
            document.body.appendChild(i);
            setTimeout('window.__pwned = "timer"', 0);""")
        refused = []

        def all_refused(d):
            refused.extend(e["message"] for e in d.get_log("browser")
                           if "Content Security Policy" in e["message"])
            return len(refused) >= 3
        self.wait(all_refused, what="three refusals by the policy")
        self.no_script_ran()
        for what in ("inline script", "inline event handler", "a string as JavaScript"):
            self.assertTrue(any(what in m for m in refused), (what, refused))

    def test_read_only_link(self):
        """A read-only link shows and cannot change: no buttons that change anything, and the
        server refuses a DELETE sent from the page with the cookie and the header (403)."""
        self.expected_http = (403,)
        rcv = self.receiver()
        w = self.app.webhook(rcv.url())
        self.open_link(self.portal(readOnly=True)["url"])
        self.signed_in()
        self.text_in("#who", "read-only")
        self.text_in("main table", rcv.url())
        self.assertEqual(self.browser.find_elements(By.CSS_SELECTOR, "a[href='#/webhooks/new']"), [])
        self.browser.get(self.base + "/console/#/webhooks/" + w["uid"])
        self.text_in("main", w["uid"])
        self.assertEqual(self.browser.find_elements(By.CSS_SELECTOR, "main [data-action]"), [])
        self.shot("read-only")
        status, body = self.fetch("DELETE", "/api/v1/appuid/%s/webhooks/%s" % (self.app.uid,
                                                                               w["uid"]))
        self.assertEqual(status, 403, body)
        self.assertEqual(json.loads(body)["error"]["code"], "read_only")
        self.app.ok("GET", "webhooks/" + w["uid"])  # still there
        status, _ = self.fetch("GET", "/api/v1/appuid/%s/webhooks/%s" % (self.app.uid, w["uid"]))
        self.assertEqual(status, 200)

    def test_expired_used_and_wrong_links(self):
        """An expired link, a link used already and a link that was tampered with each get a
        page that says so; none signs in."""
        self.expected_http = (401,)
        short = self.portal(expiresIn=1)
        wait_expired(short)
        self.open_link(short["url"])
        self.text_in(".link-error", "This link has expired.")
        self.assertEqual(self.browser.find_elements(By.CSS_SELECTOR, "#who .app"), [])
        self.shot("link-expired")

        good = self.portal()["url"]
        self.open_link(good)
        self.signed_in()
        self.browser.delete_all_cookies()
        self.open_link(self.base + "/console/")  # a fresh page
        self.css("form.signin")
        self.open_link(good)
        self.text_in(".link-error", "This link was used already.")

        token = good.split("#token=")[1]
        self.open_link(self.base + "/console/#token=" + token[:-3] + ("AAA" if token[-3:] != "AAA"
                                                                       else "BBB"))
        self.text_in(".link-error", "This link is not valid.")
        self.shot("link-invalid")

    def test_api_key_sign_in_and_phone_width(self):
        """Signing in with an API key and out again; the pages fit a phone-width screen."""
        rcv = self.receiver()
        w = self.app.webhook(rcv.url())
        self.app.ok("POST", "agents", {"agentName": "x", "externalTenantId": "t"})
        rcv.wait_count(1)
        self.browser.get(self.base + "/console")
        self.css("form.signin input[name=apiKey]").send_keys(self.app.key)
        self.shot("sign-in")
        self.click("form.signin button[type=submit]")
        self.signed_in()
        self.text_in("main table", rcv.url())
        self.browser.set_window_size(*PHONE)
        self.assertEqual(self.browser.execute_script("return window.innerWidth"), PHONE[0])
        for name, hash_ in phone_pages(w["uid"]):
            self.browser.get(self.base + "/console/" + hash_)
            self.css("main h2")
            self.wait(lambda d: not d.find_elements(By.CSS_SELECTOR, "main .loading"),
                      what="the page to load")
            # nothing sticks out sideways: wide tables scroll inside their own box
            wide, window = self.browser.execute_script(OVERFLOW_JS)
            self.assertLessEqual(wide, window, "%s is wider than the phone" % name)
            self.shot("phone-" + name)
        self.browser.set_window_size(*LAPTOP)
        self.click("button[data-action=signout]")
        self.css("form.signin")
        self.assertNotIn("hookline_console", {c["name"] for c in self.browser.get_cookies()})
        self.browser.get(self.base + "/console/#/webhooks")
        self.css("form.signin")


if __name__ == "__main__":
    harness.main()
