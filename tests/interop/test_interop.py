"""Receivers nobody at hookline wrote accept every delivery, and hookline's receiving side
accepts what other people's code signs.

hookline serve delivers the nine events and webhook.test, with awkward payloads, before and
during a secret rotation, to four Node receivers (node/*.mjs): the guide's Express example on the
raw body, the guide's Express example on JSON.stringify(req.body), and the Standard Webhooks
headers checked by the npm `standardwebhooks` and `svix` packages. In the other direction,
`hookline verify` and `hookline listen` check signatures made by Node's crypto, standardwebhooks
and svix.

The npm packages are installed into tests/interop/node_modules (from package-lock.json) on first
run. When node or npm is missing or the registry cannot be reached nothing runs and the suite
exits 77 (skipped, never passed); under HL_REQUIRE_ALL=1 (make test) that is a failure.
"""
import base64
import fcntl
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "e2e"))
from harness import BIN, App, Server, free_port, main, need, wait_for  # noqa: E402
from test_listen import SANITIZER, Listener  # noqa: E402

NODE_DIR = os.path.join(HERE, "node")
PACKAGES = ("express", "standardwebhooks", "svix")
NETWORK_ERRORS = ("ENOTFOUND", "EAI_AGAIN", "ECONNREFUSED", "ECONNRESET", "ETIMEDOUT",
                  "ENETUNREACH", "EHOSTUNREACH", "network", "socket hang up")
ALL_NINE = sorted("%s.%s" % (e, op) for e in ("agent", "context", "contextfile")
                  for op in ("created", "updated", "deleted"))


def ensure_node_modules():
    """Installs the npm packages once (under a lock: two test runs may share the tree)."""
    need(shutil.which("node") and shutil.which("npm"), "node and npm")
    modules = os.path.join(HERE, "node_modules")
    with open(os.path.join(tempfile.gettempdir(), "hookline-interop-npm.lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if all(os.path.isfile(os.path.join(modules, p, "package.json")) for p in PACKAGES):
            return
        have_lock = os.path.exists(os.path.join(HERE, "package-lock.json"))
        cmd = ["npm", "ci" if have_lock else "install", "--no-audit", "--no-fund"]
        try:
            p = subprocess.run(cmd, cwd=HERE, capture_output=True, text=True, timeout=600)
        except subprocess.TimeoutExpired:
            need(False, "the npm registry (npm install timed out)")
        if p.returncode != 0:
            out = p.stdout + p.stderr
            if any(s in out for s in NETWORK_ERRORS):
                need(False, "the npm registry: " + out[-500:])
            raise RuntimeError("%s failed:\n%s" % (" ".join(cmd), out[-3000:]))


def setUpModule():
    ensure_node_modules()


class NodeReceiver:
    """One of node/*.mjs on 127.0.0.1, holding one secret; its verdicts are JSON lines."""

    def __init__(self, tmp, script, port, secret, name):
        self.script, self.port, self.secret, self.name = script, port, secret, name
        self.out_path = os.path.join(tmp, name + ".out")
        self.proc = None

    def start(self, secret=None):
        self.secret = secret or self.secret
        self.out = open(self.out_path, "ab")
        before = len(self.lines())
        self.proc = subprocess.Popen(
            ["node", os.path.join(NODE_DIR, self.script)], cwd=NODE_DIR, stdout=self.out,
            stderr=subprocess.STDOUT,
            env=dict(os.environ, PORT=str(self.port), MINDSET_WEBHOOK_SECRET=self.secret))

        def up():
            if self.proc.poll() is not None:
                raise AssertionError("%s exited: %s" % (self.name, self.text()))
            return any("listening" in x for x in self.lines()[before:])
        wait_for(up, 30, what=self.name + " to start")
        return self

    def text(self):
        with open(self.out_path, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def lines(self):
        try:
            out = []
            for line in self.text().split("\n"):
                if line.startswith("{"):
                    out.append(json.loads(line))
            return out
        except OSError:
            return []

    def verdicts(self):
        return [x for x in self.lines() if "ok" in x]

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
            self.out.close()


# Names and configuration hold non-ASCII text, emoji, quotes, backslashes, control characters
# and fractional numbers; the guide's JSON.stringify receiver needs every one to round-trip.
TENANT = "tenant-Ünïcødé-日本-\"q\"-\\"
AGENT = {
    "agentName": "Support «bot» 🤖🚀 \"quoted\" \\back\\slash \u0001\u001f\u007f tab\tnl\n",
    "externalTenantId": TENANT,
    "live": True,
    "description": "</script> \u2028\u2029 'single' `tick` ẞ ﬁ e\u0301",
    "instructions": "Réponds en français, 日本語で答えて, по-русски, بالعربية.",
    "model": "gpt-4o",
    "temperature": 0.7,
    "maxTokens": 4096,
    "metadata": {"ratio": 0.1, "tiny": 1.5e-7, "huge": 1e21, "neg": -2.75, "exact": 123456.125,
                 "third": 0.30000000000000004, "emoji": "👩‍💻", "nested": {"z": None, "a": [1.0]},
                 "": "empty key", "10": "numeric key", "2": "order"},
}


class Interop(unittest.TestCase):

    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="hookline-interop-")
        # Every delivery must be accepted at its first attempt: give a receiver on a loaded
        # machine the product's own answer window (harness servers use 2 s), not a race.
        self.server = Server(env={"HOOKLINE_RETRY_SCHEDULE": "0,200ms,400ms",
                                  "HOOKLINE_TIMEOUT": "10s"})
        self.app = App(self.server, self.server.create_app("interop"))
        self.server.start()
        self.procs = []

    def tearDown(self):
        for p in self.procs:
            p.stop()
        rc = self.server.stop()
        log = self.server.log()
        self.server.cleanup()
        shutil.rmtree(self.tmp, ignore_errors=True)
        self.assertIn(rc, (None, 0), log[-3000:])
        for bad in SANITIZER:
            self.assertNotIn(bad, log)

    def make_all_nine(self, tag):
        a = self.app.ok("POST", "agents", dict(AGENT, agentName=AGENT["agentName"] + tag))
        self.app.ok("PATCH", "agents/" + a["uid"],
                    {"agentName": "v2 ✓ " + tag, "temperature": 1.25,
                     "metadata": {"weights": [0.25, 0.5, 1e-3, 2.5e-10]}})
        c = self.app.ok("POST", "contexts", {"name": "KB «docs» \"" + tag + "\" \\ 📚",
                                             "externalTenantId": TENANT,
                                             "metadata": {"score": 99.5, "bell": "\u0007"}})
        self.app.ok("PATCH", "contexts/" + c["uid"], {"description": "Übersicht\r\n\t✓"})
        f = self.app.ok("POST", "contexts/%s/files" % c["uid"],
                        {"fileName": "résumé \"final\" \\ 📄.pdf", "contentType":
                         "application/pdf", "sizeBytes": 1234, "metadata": {"pages": 12.5}})
        self.app.ok("PATCH", "contexts/%s/files/%s" % (c["uid"], f["uid"]),
                    {"fileName": "résumé-v2 ✓.pdf"})
        self.app.ok("DELETE", "contexts/%s/files/%s" % (c["uid"], f["uid"]))
        self.app.ok("DELETE", "contexts/" + c["uid"])
        self.app.ok("DELETE", "agents/" + a["uid"])

    def deliveries(self, w):
        out, cursor = [], None
        while True:
            q = "?limit=100" + ("&cursor=" + cursor if cursor else "")
            page = self.app.ok("GET", "webhooks/%s/deliveries%s" % (w["uid"], q))
            out += page["data"]
            cursor = page["nextCursor"]
            if not cursor:
                return out

    def settled(self, w, n):
        def done():
            ds = self.deliveries(w)
            return ds if len(ds) >= n and all(d["status"] not in ("pending", "failing")
                                              for d in ds) else None
        return wait_for(done, 60, 0.05, "%d settled deliveries to %s" % (n, w["url"]))

    def deliver_round(self, hooks, tag):
        """The nine events to every webhook and a webhook.test to each; returns the eventIds
        each webhook got in this round."""
        before = {name: {d["eventId"] for d in self.deliveries(w)} for name, (w, _) in
                  hooks.items()}
        self.make_all_nine(tag)
        for name, (w, _) in hooks.items():
            r = self.app.ok("POST", "webhooks/%s/test" % w["uid"], status=200)
            self.assertEqual(r["event"], "webhook.test")
            self.assertEqual((r["status"], r["lastStatusCode"]), ("succeeded", 200),
                             "%s rejected webhook.test: %s" % (name, r))
        got = {}
        for name, (w, _) in hooks.items():
            ds = self.settled(w, len(before[name]) + 10)
            bad = [d for d in ds if d["status"] != "succeeded" or d["attempts"] != 1
                   or d["lastStatusCode"] != 200]
            self.assertEqual(bad, [], "%s: deliveries not accepted at once" % name)
            new = [d for d in ds if d["eventId"] not in before[name]]
            self.assertEqual(sorted(d["event"] for d in new), sorted(ALL_NINE + ["webhook.test"]))
            got[name] = {d["eventId"] for d in new}
        return got

    def check_verdicts(self, rx, want_ids):
        v = rx.verdicts()
        rejected = [x for x in v if not x["ok"]]
        self.assertEqual(rejected, [], "%s rejected deliveries" % rx.name)
        self.assertEqual({x["eventId"] for x in v} & want_ids, want_ids, rx.name)

    def test_every_receiver_accepts_every_delivery_before_and_during_rotations(self):
        kinds = [("guide-raw", "guide-raw.mjs"), ("guide-json", "guide-json.mjs"),
                 ("standardwebhooks", "standardwebhooks.mjs"), ("svix", "svix.mjs"),
                 ("standardwebhooks-new", "standardwebhooks.mjs"), ("svix-new", "svix.mjs")]
        hooks = {}
        for name, script in kinds:
            port = free_port()
            w = self.app.webhook("http://127.0.0.1:%d/webhooks/mindset" % port)
            rx = NodeReceiver(self.tmp, script, port, w["secret"], name).start()
            self.procs.append(rx)
            hooks[name] = (w, rx)

        first = self.deliver_round(hooks, "round 1")
        for name, (w, rx) in hooks.items():
            self.check_verdicts(rx, first[name])

        # Rotation. The receivers on the guide's scheme and the "-new" ones are redeployed with
        # the new secret; "standardwebhooks" and "svix" keep only the old one, and must still
        # verify during the overlap (webhook-signature carries both signatures).
        for name, (w, rx) in hooks.items():
            r = self.app.ok("POST", "webhooks/%s/rotate-secret" % w["uid"],
                            {"overlapSeconds": 3600}, status=200)
            self.assertNotEqual(r["secret"], w["secret"])
            if name not in ("standardwebhooks", "svix"):
                rx.stop()
                rx.start(r["secret"])
        self.assertEqual(hooks["svix"][1].secret, hooks["svix"][0]["secret"])

        second = self.deliver_round(hooks, "round 2 (rotation)")
        for name, (w, rx) in hooks.items():
            self.check_verdicts(rx, second[name])
            self.assertEqual(len([x for x in rx.verdicts() if x["ok"]]), 20, name)

        # A second rotation inside the overlap (bodyless: the default 24 h). "standardwebhooks"
        # and "svix" still hold the first secret, two rotations behind, and must still verify:
        # webhook-signature carries every secret whose overlap has not ended.
        for name, (w, rx) in hooks.items():
            r = self.app.ok("POST", "webhooks/%s/rotate-secret" % w["uid"], status=200)
            self.assertEqual(len(r["previousSecretsExpireAt"]), 2)
            if name not in ("standardwebhooks", "svix"):
                rx.stop()
                rx.start(r["secret"])
        self.assertEqual(hooks["svix"][1].secret, hooks["svix"][0]["secret"])
        third = self.deliver_round(hooks, "round 3 (second rotation)")
        for name, (w, rx) in hooks.items():
            self.check_verdicts(rx, third[name])
            self.assertEqual(len([x for x in rx.verdicts() if x["ok"]]), 30, name)

    def test_node_signatures_against_libhookline(self):
        secret = "whsec_" + base64.b64encode(os.urandom(24)).decode()
        other = "whsec_" + base64.b64encode(os.urandom(24)).decode()
        p = subprocess.run(["node", os.path.join(NODE_DIR, "sign.mjs"), secret, other],
                           cwd=NODE_DIR, capture_output=True, text=True, timeout=60)
        self.assertEqual(p.returncode, 0, p.stderr)
        cases = json.loads(p.stdout)
        self.assertEqual(len(cases), 3)
        env = dict(os.environ)
        env.pop("HOOKLINE_WEBHOOK_SECRET", None)

        def verify(args, body):
            r = subprocess.run([BIN, "verify", "--secret", secret] + args, input=body,
                               capture_output=True, env=env, timeout=30)
            for bad in SANITIZER:
                self.assertNotIn(bad, r.stderr.decode("utf-8", "replace"))
            return r.returncode

        lst = Listener(self.tmp, [secret])
        self.procs.append(lst)
        lst.start()
        for c in cases:
            body = c["body"].encode()
            tampered = body.replace(b'"version":1', b'"version":2')
            self.assertNotEqual(tampered, body)

            def std(sig, ts=None):
                return ["--id", c["eventId"], "--timestamp", str(ts or c["timestamp"]),
                        "--standard-signature", sig]
            for name, args, b, want in [
                ("crypto", ["--signature", c["signature"]], body, 0),
                ("crypto tampered", ["--signature", c["signature"]], tampered, 1),
                ("crypto wrong secret", ["--signature", c["wrongSignature"]], body, 1),
                ("standardwebhooks", std(c["standard"]), body, 0),
                ("svix", std(c["svix"]), body, 0),
                ("standardwebhooks tampered", std(c["standard"]), tampered, 1),
                ("svix tampered", std(c["svix"]), body + b" ", 1),
                ("standardwebhooks wrong secret", std(c["wrongStandard"]), body, 1),
                ("stale", std(c["staleStandard"], c["staleTimestamp"]), body, 1),
                ("future", std(c["futureStandard"], c["futureTimestamp"]), body, 1),
                ("stale, other timestamp", std(c["staleStandard"]), body, 1),
            ]:
                self.assertEqual(verify(args, b), want, "%s: %s" % (c["eventId"], name))

            def headers(sig, ts=None):
                return {"webhook-id": c["eventId"], "webhook-timestamp": str(ts or c["timestamp"]),
                        "webhook-signature": sig}
            for name, b, h in [
                ("crypto tampered", tampered, {"X-Webhook-Signature": c["signature"]}),
                ("crypto wrong secret", body, {"X-Webhook-Signature": c["wrongSignature"]}),
                ("standard tampered", tampered, headers(c["standard"])),
                ("standard wrong secret", body, headers(c["wrongStandard"])),
                ("stale", body, headers(c["staleStandard"], c["staleTimestamp"])),
                ("future", body, headers(c["futureStandard"], c["futureTimestamp"])),
            ]:
                self.assertEqual(lst.post(b, h), (401, {"error": "invalid signature"}), name)
            self.assertEqual(lst.post(body, headers(c["svix"])), (200, {"received": True}))
            self.assertEqual(lst.post(body, headers(c["standard"])),
                             (200, {"received": True, "duplicate": True}))
            self.assertEqual(lst.post(body, {"X-Webhook-Signature": c["signature"]}),
                             (200, {"received": True, "duplicate": True}))
        lines = lst.wait_lines(3)
        self.assertEqual([x.split("\t")[3] for x in lines], [c["eventId"] for c in cases])
        self.assertEqual(lines[0].split("\t")[2], "tenant-Ωmega")
        self.assertEqual(lst.stop(), 0)
        lst.check_clean()


if __name__ == "__main__":
    main()
