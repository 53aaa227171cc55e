"""Takes docs/console.png: the console's webhook list with some traffic, in headless Chromium.
Run on /usr/bin/python3 (Debian's python3-selenium) from the repository's root:
    HOOKLINE_BIN=build/hookline /usr/bin/python3 scripts/console-screenshot.py [OUT.png]"""
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "e2e"))
import harness  # noqa: E402
from selenium import webdriver  # noqa: E402
from selenium.webdriver.chrome.service import Service  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402

out = sys.argv[1] if len(sys.argv) > 1 else os.path.join("docs", "console.png")
server = harness.Server(env={"HOOKLINE_RETRY_SCHEDULE": "0,1h"})
app = harness.App(server, server.create_app("Acme Support"))
server.start()
ok = harness.Receiver()
flaky = harness.Receiver(lambda n, req: (503 if n % 4 == 3 else 200, b"{}", {}, 0))
down = harness.Receiver(lambda n, req: (500, b'{"error":"db down"}', {}, 0))
try:
    app.webhook(ok.url("/crm"), description="CRM sync")
    app.webhook(flaky.url("/search"), description="Search indexer", entities=["context",
                                                                              "contextfile"])
    app.webhook(down.url("/billing"), description="Billing (staging)", entities=["agent"])
    for i in range(12):
        app.ok("POST", "agents", {"agentName": "Agent %d" % i, "externalTenantId": "tenant-%d" % (i % 3)})
        app.ok("POST", "contexts", {"name": "Docs %d" % i, "externalTenantId": "tenant-%d" % (i % 3)})
    ok.wait_count(24)
    time.sleep(1)
    link = app.ok("POST", "portal", {}, status=201)["url"]
    opts = webdriver.ChromeOptions()
    for a in ("--headless", "--no-sandbox", "--disable-gpu", "--window-size=1280,760"):
        opts.add_argument(a)
    b = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=opts)
    try:
        b.get(link)
        WebDriverWait(b, 20).until(lambda d: len(d.find_elements(By.CSS_SELECTOR, "svg.spark")) == 3)
        b.save_screenshot(out)
    finally:
        b.quit()
finally:
    for r in (ok, flaky, down):
        r.close()
    server.stop()
    server.cleanup()
print("wrote", out)
