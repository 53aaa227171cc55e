"""Per-app limits of the API: webhooks per app (--max-webhooks), requests per second per app on a
node (--api-rate, --api-burst), bytes of context files per app (--max-app-storage). Each is
refused with a clear 4xx that names the limit, and a refused request stores nothing. Another
app is never held back by one that reached its limit."""
import os
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(__file__))
from harness import App, ServerTest, main, wait_for  # noqa: E402
from test_ingest import multipart  # noqa: E402


def error_of(test, r, status, code, flag):
    test.assertEqual(r.status, status, r)
    err = r.json()["error"]
    test.assertEqual(err["code"], code)
    test.assertIn(flag, err["message"])


class WebhookLimit(ServerTest):
    server_env = {"HOOKLINE_MAX_WEBHOOKS": "3"}

    def test_the_fourth_webhook_is_refused_until_one_goes(self):
        made = [self.app.webhook("http://localhost:9/w%d" % i)["uid"] for i in range(3)]
        r = self.app.call("POST", "webhooks", {"url": "http://localhost:9/w3",
                                               "entities": ["agent"], "active": True})
        error_of(self, r, 409, "webhook_limit_reached", "--max-webhooks")
        self.assertIn("3 webhooks", r.json()["error"]["message"])
        self.assertEqual(sorted(w["uid"] for w in self.app.ok("GET", "webhooks")["data"]),
                         sorted(made))
        # another app has its own count
        other = App(self.server, self.server.create_app("other"))
        other.webhook("http://localhost:9/o")
        # a deleted webhook no longer counts
        self.app.ok("DELETE", "webhooks/" + made[0])
        self.app.webhook("http://localhost:9/w4")
        r = self.app.call("POST", "webhooks", {"url": "http://localhost:9/w5",
                                               "entities": ["agent"], "active": True})
        self.assertEqual(r.status, 409)

    def test_concurrent_creates_do_not_pass_the_limit_together(self):
        statuses = []
        lock = threading.Lock()

        def create(i):
            r = self.app.call("POST", "webhooks", {"url": "http://localhost:9/c%d" % i,
                                                   "entities": ["agent"], "active": True})
            with lock:
                statuses.append(r.status)
        threads = [threading.Thread(target=create, args=(i,)) for i in range(12)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        self.assertEqual(sorted(statuses), [201] * 3 + [409] * 9)
        self.assertEqual(len(self.app.ok("GET", "webhooks")["data"]), 3)


class RateLimit(ServerTest):
    server_env = {"HOOKLINE_API_RATE": "1", "HOOKLINE_API_BURST": "3"}

    def test_over_the_rate_is_429_with_retry_after_and_stores_nothing(self):
        created = 0
        refused = None
        for i in range(60):  # at 1/s after a burst of 3, a 429 comes well before the 60th
            r = self.app.call("POST", "agents", {"agentName": "a%d" % i,
                                                 "externalTenantId": "t"})
            if r.status == 429:
                refused = r
                break
            self.assertEqual(r.status, 201, r)
            created += 1
        self.assertIsNotNone(refused, "no 429 in 60 requests at --api-rate 1")
        self.assertGreaterEqual(created, 3)  # the burst
        error_of(self, refused, 429, "rate_limited", "--api-rate")
        retry = refused.headers.get("retry-after")
        self.assertTrue(retry and retry.isdigit() and int(retry) >= 1, retry)
        # another app's bucket is its own
        other = App(self.server, self.server.create_app("other"))
        self.assertEqual(other.call("GET", "webhooks").status, 200)
        # after the time it said, the app is served again; the refused changes were not made
        time.sleep(int(retry))
        agents = self.app.ok("GET", "agents?limit=100")["data"]
        self.assertEqual(len(agents), created)
        # uploads count too, and are refused before their body is read (until then: no such
        # context)
        statuses = set()
        for _ in range(60):
            r = self.app.call("POST", "contexts/context-x/files?fileName=a.txt", raw=b"x",
                              headers={"Content-Type": "text/plain"})
            statuses.add(r.status)
            if r.status == 429:
                break
        self.assertEqual(statuses, {404, 429} if 404 in statuses else {429})


class RateLimitOff(ServerTest):
    server_env = {"HOOKLINE_API_RATE": "0", "HOOKLINE_API_BURST": "1"}

    def test_rate_zero_is_no_limit(self):
        for _ in range(30):
            self.assertEqual(self.app.call("GET", "webhooks").status, 200)


class StorageLimit(ServerTest):
    server_env = {"HOOKLINE_MAX_APP_STORAGE": "1000"}

    def setUp(self):
        super().setUp()
        self.ctx = self.app.ok("POST", "contexts", {"name": "kb", "externalTenantId": "t"})

    def upload(self, app, ctx, data, name="a.txt"):
        return app.call("POST", "contexts/%s/files?fileName=%s" % (ctx, name), raw=data,
                        headers={"Content-Type": "text/plain"})

    def stored(self):
        files = os.path.join(self.server.data_dir, "files")
        return sorted(os.listdir(files)) if os.path.isdir(files) else []

    def test_files_beyond_the_apps_storage_are_refused_and_not_kept(self):
        uid = self.ctx["uid"]
        first = self.upload(self.app, uid, b"a" * 600)
        self.assertEqual(first.status, 202, first)
        r = self.upload(self.app, uid, b"b" * 600)
        error_of(self, r, 413, "app_storage_full", "--max-app-storage")
        self.assertIn("1000", r.json()["error"]["message"])
        body, ctype = multipart({}, "m.txt", b"c" * 500, "text/plain")
        r = self.app.call("POST", "contexts/%s/files" % uid, raw=body,
                          headers={"Content-Type": ctype})
        error_of(self, r, 413, "app_storage_full", "--max-app-storage")
        # more than the whole limit: refused from its Content-Length, before the body
        r = self.upload(self.app, uid, b"d" * 1500)
        error_of(self, r, 413, "app_storage_full", "--max-app-storage")
        self.assertEqual(self.stored(), [first.json()["uid"]])
        # A refused upload's temporary file goes when its request completes, just after the answer.
        uploads = os.path.join(self.server.data_dir, "uploads")
        wait_for(lambda: os.listdir(uploads) == [], timeout=10, what="uploads/ to be empty")
        files = self.app.ok("GET", "contexts/%s/files" % uid)["data"]
        self.assertEqual([f["uid"] for f in files], [first.json()["uid"]])
        # what is left still fits; another app has its own storage
        self.assertEqual(self.upload(self.app, uid, b"e" * 400).status, 202)
        other = App(self.server, self.server.create_app("other"))
        octx = other.ok("POST", "contexts", {"name": "kb", "externalTenantId": "t"})
        self.assertEqual(self.upload(other, octx["uid"], b"f" * 900).status, 202)
        # deleting a file makes room
        self.app.ok("DELETE", "contexts/%s/files/%s" % (uid, first.json()["uid"]))
        self.assertEqual(self.upload(self.app, uid, b"g" * 600).status, 202)


if __name__ == "__main__":
    main()
