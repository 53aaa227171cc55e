"""The OpenAPI document as hookline serves it, and the reference page rendered from it.

- GET /api/v1/openapi.json (no key) is openapi/hookline.yaml, the same data, and @redocly/cli
  (pinned in package-lock.json; scripts/deps.sh test installs it into node_modules here) lints
  it with no error and no warning under openapi/redocly.yaml. A document with a mistake planted
  in it fails the same lint, so the check can fail.
- /docs and its script and style are served by hookline with a policy that lets the browser load
  nothing from anywhere else, and in headless Chromium the page renders every operation and
  every webhook of the document, asks this server only, and logs no error.
"""
import json
import os
import shutil
import subprocess
import sys
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "e2e"))
from harness import SOURCE_DIR, Server, main, need, wait_for  # noqa: E402

try:
    import yaml
except ImportError:  # need() below says what is missing
    yaml = None

REDOCLY = os.path.join(HERE, "node_modules", "@redocly", "cli", "bin", "cli.js")
CONFIG = os.path.join(SOURCE_DIR, "openapi", "redocly.yaml")
METHODS = ("get", "put", "post", "patch", "delete")
# Quiet and offline: no telemetry, no update check, no colour in what the test reads.
REDOCLY_ENV = {"REDOCLY_TELEMETRY": "off", "REDOCLY_SUPPRESS_UPDATE_NOTICE": "true",
               "NO_COLOR": "1", "CI": "true"}


def lint(path):
    """Runs redocly lint on the document at path; returns its totals and problems."""
    need(shutil.which("node"), "node")
    need(os.path.exists(REDOCLY), "@redocly/cli in tests/openapi/node_modules "
         "(scripts/deps.sh test installs it)")
    env = dict(os.environ, **REDOCLY_ENV)
    r = subprocess.run(["node", REDOCLY, "lint", "--config", CONFIG, "--format", "json", path],
                       capture_output=True, text=True, env=env, timeout=300)
    try:
        out = json.loads(r.stdout)
    except ValueError:
        raise AssertionError("redocly lint printed no report (exit %d):\n%s\n%s"
                             % (r.returncode, r.stdout[-2000:], r.stderr[-2000:]))
    return r.returncode, out["totals"], out["problems"]


def stop(server):
    """Stops a suite's server; fails when it did not exit cleanly or a sanitizer spoke."""
    if server is None:
        return
    rc = server.stop()
    log = server.log()
    server.cleanup()
    if rc not in (None, 0):
        raise AssertionError("server exited with %s: %s" % (rc, log[-3000:]))
    for bad in ("AddressSanitizer", "runtime error:", "LeakSanitizer"):
        if bad in log:
            raise AssertionError("sanitizer report in server log:\n" + log[-6000:])


def describe(problems):
    return "\n".join("%s %s: %s" % (p.get("severity"), p.get("ruleId"), p.get("message"))
                     for p in problems[:20])


class Document(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        need(yaml is not None, "python3-yaml")
        cls.server = Server().start()
        cls.tmp = tempfile.mkdtemp(prefix="hookline-openapi-")

    @classmethod
    def tearDownClass(cls):
        stop(getattr(cls, "server", None))
        if getattr(cls, "tmp", None):
            shutil.rmtree(cls.tmp, ignore_errors=True)

    def served(self):
        r = self.server.request("GET", "/api/v1/openapi.json")
        self.assertEqual(r.status, 200)
        self.assertEqual(r.headers["content-type"].split(";")[0], "application/json")
        return r.body

    def test_served_document_is_the_yaml(self):
        with open(os.path.join(SOURCE_DIR, "openapi", "hookline.yaml"), encoding="utf-8") as f:
            source = yaml.safe_load(f)
        self.assertEqual(json.loads(self.served()), source)

    def test_served_document_is_lint_clean(self):
        path = os.path.join(self.tmp, "served.json")
        with open(path, "wb") as f:
            f.write(self.served())
        rc, totals, problems = lint(path)
        self.assertEqual((totals["errors"], totals["warnings"]), (0, 0), describe(problems))
        self.assertEqual(rc, 0)

    def test_lint_finds_a_planted_mistake(self):
        doc = json.loads(self.served())
        op = doc["paths"]["/api/v1/appuid/{appUid}/webhooks"]["get"]
        op["responses"]["200"] = {"content": {}}  # a response must have a description
        planted = len(op["parameters"])
        op["parameters"].append({"$ref": "#/components/parameters/NoSuchParameter"})
        path = os.path.join(self.tmp, "broken.json")
        with open(path, "w") as f:
            json.dump(doc, f)
        rc, totals, problems = lint(path)
        self.assertNotEqual(rc, 0)
        self.assertGreaterEqual(totals["errors"], 2, describe(problems))
        found = {(p["ruleId"], p["location"][0]["pointer"]) for p in problems
                 if p["severity"] == "error"}
        where = "#/paths/~1api~1v1~1appuid~1{appUid}~1webhooks/get/"
        self.assertEqual(found, {("struct", where + "responses/200"),
                                 ("no-unresolved-refs", where + "parameters/%d" % planted)},
                         describe(problems))


class ReferencePage(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        need(yaml is not None, "python3-yaml")
        cls.server = Server().start()
        with open(os.path.join(SOURCE_DIR, "openapi", "hookline.yaml"), encoding="utf-8") as f:
            cls.doc = yaml.safe_load(f)

    @classmethod
    def tearDownClass(cls):
        stop(getattr(cls, "server", None))

    def test_assets_are_served_with_a_self_only_policy(self):
        for path, ctype in (("/docs", "text/html"), ("/docs/reference.js", "text/javascript"),
                            ("/docs/reference.css", "text/css")):
            with self.subTest(path=path):
                r = self.server.request("GET", path)
                self.assertEqual(r.status, 200)
                self.assertEqual(r.headers["content-type"], ctype + "; charset=utf-8")
                csp = r.headers["content-security-policy"]
                self.assertIn("default-src 'none'", csp)
                self.assertIn("script-src 'self';", csp)
                self.assertEqual(r.headers["x-content-type-options"], "nosniff")
                # Nothing on the page names another origin to load from.
                text = r.body.decode()
                self.assertNotIn("//cdn", text)
                for scheme in ("http://", "https://"):
                    self.assertNotIn(scheme, text)
        r = self.server.request("POST", "/docs", body={})
        self.assertEqual((r.status, r.headers["allow"]), (405, "GET"))

    def test_page_renders_the_document_in_a_browser(self):
        driver = self.browser()
        base = "http://127.0.0.1:%d" % self.server.port
        driver.get(base + "/docs")
        wait_for(lambda: "ready" in driver.execute_script("return document.body.className"),
                 timeout=60, interval=0.1, what="the page to render the document")
        ops = [(m, p) for p, item in self.doc["paths"].items() for m in METHODS if m in item]
        hooks = [(m, n) for n, item in self.doc["webhooks"].items() for m in METHODS if m in item]
        shown = driver.execute_script(
            "return [...document.querySelectorAll('section.op h3')].map(h => h.textContent)")
        for m, p in ops + hooks:
            self.assertIn("%s %s" % (m.upper(), p), shown)
        for name in self.doc["components"]["schemas"]:
            self.assertIn(name, shown)
        self.assertEqual(len(shown), len(ops) + len(hooks) + len(self.doc["components"]
                                                                 ["schemas"]))
        self.assertEqual(driver.title, self.doc["info"]["title"] + " reference")
        # A field's limits are read from its schema: maxLength of the webhook URL.
        url_max = self.doc["components"]["schemas"]["WebhookUrl"]["maxLength"]
        text = driver.execute_script("return document.getElementById('content').innerText")
        self.assertIn("at most %d bytes" % url_max, text)
        # The filter hides the operations it does not match.
        box = driver.find_element("id", "filter")
        box.send_keys("rotate")
        visible = driver.execute_script(
            "return [...document.querySelectorAll('section.op[data-filter]')]"
            ".filter(s => !s.hidden).map(s => s.querySelector('h3').textContent)")
        self.assertEqual(visible, ["POST /api/v1/appuid/{appUid}/webhooks/{webhookUid}"
                                   "/rotate-secret",
                                   "POST /api/v1/appuid/{appUid}/operational-webhooks/"
                                   "{webhookUid}/rotate-secret"])
        # Every resource came from this server, and the browser reported nothing wrong (a load
        # the policy refused, a script error).
        urls = driver.execute_script(
            "return performance.getEntriesByType('resource').map(e => e.name)")
        self.assertTrue(urls)
        for u in urls:
            self.assertTrue(u.startswith(base + "/"), u)
        self.assertEqual([e for e in driver.get_log("browser") if e["level"] == "SEVERE"], [])

    def browser(self):
        try:
            from selenium import webdriver
            from selenium.webdriver.chrome.options import Options
            from selenium.webdriver.chrome.service import Service
        except ImportError:
            webdriver = None
        need(webdriver is not None, "python3-selenium")
        chromium = shutil.which("chromium")
        driver_bin = shutil.which("chromedriver")
        need(chromium and driver_bin, "chromium and chromium-driver")
        opts = Options()
        opts.binary_location = chromium
        for a in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                  "--window-size=1280,900", "--no-first-run", "--disable-extensions"):
            opts.add_argument(a)
        profile = tempfile.mkdtemp(prefix="hookline-chromium-")
        self.addCleanup(shutil.rmtree, profile, True)
        opts.add_argument("--user-data-dir=" + profile)
        opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
        driver = webdriver.Chrome(service=Service(driver_bin), options=opts)
        self.addCleanup(driver.quit)
        return driver


if __name__ == "__main__":
    main()
