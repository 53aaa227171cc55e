"""The receiving side: the real `hookline serve` delivering to a real `hookline listen` and to
examples/receiver.c, and `hookline verify` from a shell. Loopback only; nothing is mocked."""
import base64
import http.client
import json
import os
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.dirname(__file__))
from harness import (BIN, ServerTest, check_signed, free_port, main, need,  # noqa: E402
                     sign_hex, sign_std, wait_for)

ALL_NINE = sorted("%s.%s" % (e, op) for e in ("agent", "context", "contextfile")
                  for op in ("created", "updated", "deleted"))
SANITIZER = ("AddressSanitizer", "runtime error:", "LeakSanitizer")
BUILD_DIR = os.environ.get("HL_BUILD_DIR") or os.path.join(os.path.dirname(BIN))


def post(port, path, body, headers=None, method="POST", timeout=10):
    """One HTTP request to 127.0.0.1:port; returns (status, parsed JSON or raw bytes)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    h = {"Content-Type": "application/json"}
    h.update(headers or {})
    conn.request(method, path, body=body, headers=h)
    r = conn.getresponse()
    data = r.read()
    conn.close()
    try:
        return r.status, json.loads(data)
    except ValueError:
        return r.status, data


def guide_headers(secret, body):
    return {"X-Webhook-Signature": "sha256=" + sign_hex(secret, body)}


def std_headers(secret, msg_id, body, ts=None):
    ts = str(int(time.time()) if ts is None else ts)
    return {"webhook-id": msg_id, "webhook-timestamp": ts,
            "webhook-signature": sign_std(secret, msg_id, ts, body)}


def iso(t):
    """Unix seconds as the envelope's ISO 8601 timestamp, with milliseconds."""
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + ".%03dZ" % (int(t * 1000) % 1000)


def envelope(event_id, event="agent.created", tenant="tenant-1", at=None, **data):
    """An event body; its timestamp is now unless `at` (Unix seconds) says otherwise."""
    d = {"uid": "agent-x", "externalTenantId": tenant}
    d.update(data)
    return json.dumps({"eventId": event_id, "event": event,
                       "timestamp": iso(time.time() if at is None else at), "appUid": "app-1",
                       "version": 1, "data": d}, separators=(",", ":"),
                      ensure_ascii=False).encode()


class Listener:
    """One `hookline listen` process on a loopback port; its stdout and stderr go to files."""

    def __init__(self, tmp, secrets=(), args=(), port=None, state=None, env=None, name="listen"):
        self.tmp = tmp
        self.port = port or free_port()
        self.state = state or os.path.join(tmp, name + ".db")
        self.secrets = list(secrets)
        self.args = list(args)
        self.env = dict(os.environ)
        self.env.update(env or {})
        self.out_path = os.path.join(tmp, name + ".out")
        self.err_path = os.path.join(tmp, name + ".err")
        self.proc = None

    def url(self, path="/hook"):
        return "http://127.0.0.1:%d%s" % (self.port, path)

    def start(self):
        cmd = [BIN, "listen", "--port", str(self.port), "--state", self.state]
        for s in self.secrets:
            cmd += ["--secret", s]
        self.out = open(self.out_path, "ab")
        self.err = open(self.err_path, "ab")
        self.proc = subprocess.Popen(cmd + self.args, stdout=self.out, stderr=self.err,
                                     env=self.env)
        start_count = self.stderr().count("receiving on")

        def up():
            if self.proc.poll() is not None:
                raise AssertionError("listen exited %s: %s" % (self.proc.returncode,
                                                               self.stderr()))
            return self.stderr().count("receiving on") > start_count
        wait_for(up, 20, what="hookline listen to start")
        return self

    def stdout(self):
        with open(self.out_path, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def stderr(self):
        try:
            with open(self.err_path, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def lines(self):
        return [line for line in self.stdout().split("\n") if line]

    def wait_lines(self, n, timeout=20):
        wait_for(lambda: len(self.lines()) >= n, timeout, what="%d lines from listen" % n)
        return self.lines()

    def post(self, body, headers=None, path="/hook", method="POST"):
        return post(self.port, path, body, headers, method)

    def stop(self, sig=signal.SIGTERM, timeout=20):
        """Stops the process, expecting a clean exit; returns its status."""
        if not self.proc or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else None
        self.proc.send_signal(sig)
        try:
            rc = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise AssertionError("listen did not stop on signal %d: %s" % (sig, self.stderr()))
        finally:
            self.out.close()
            self.err.close()
        return rc

    def check_clean(self):
        err = self.stderr()
        for bad in SANITIZER:
            if bad in err:
                raise AssertionError("sanitizer report from listen:\n" + err[-6000:])


class ListenTest(ServerTest):
    """A hookline server with one app, plus helpers to run listeners against it."""

    def setUp(self):
        super().setUp()
        self.tmp = tempfile.mkdtemp(prefix="hookline-listen-")
        self.listeners = []

    def tearDown(self):
        try:
            for lst in self.listeners:
                rc = lst.stop()
                lst.check_clean()
                if rc not in (None, 0):
                    raise AssertionError("listen exited %s: %s" % (rc, lst.stderr()[-3000:]))
        finally:
            shutil.rmtree(self.tmp, ignore_errors=True)
            super().tearDown()

    def listener(self, secrets=(), args=(), **kw):
        lst = Listener(self.tmp, secrets, args, **kw)
        self.listeners.append(lst)
        return lst

    def hook_and_listener(self, args=(), entities=("agent", "context", "contextfile"), **kw):
        """A webhook pointing at a listener started with that webhook's secret."""
        port = free_port()
        w = self.app.webhook("http://127.0.0.1:%d/hook" % port, entities=entities)
        return w, self.listener([w["secret"]], args, port=port, **kw).start()

    def make_all_nine(self, tenant="tenant-ß \"1\""):
        a = self.app.ok("POST", "agents", {"agentName": "Support 🤖", "externalTenantId": tenant,
                                           "temperature": 0.25})
        self.app.ok("PATCH", "agents/" + a["uid"], {"agentName": "Support \\ v2"})
        c = self.app.ok("POST", "contexts", {"name": "KB\u0001", "externalTenantId": tenant})
        self.app.ok("PATCH", "contexts/" + c["uid"], {"description": "docs"})
        f = self.app.ok("POST", "contexts/%s/files" % c["uid"],
                        {"fileName": "guide.pdf", "contentType": "application/pdf",
                         "sizeBytes": 1234})
        self.app.ok("PATCH", "contexts/%s/files/%s" % (c["uid"], f["uid"]),
                    {"fileName": "guide-v2.pdf"})
        self.app.ok("DELETE", "contexts/%s/files/%s" % (c["uid"], f["uid"]))
        self.app.ok("DELETE", "contexts/" + c["uid"])
        self.app.ok("DELETE", "agents/" + a["uid"])

    def deliveries(self, w):
        return self.app.ok("GET", "webhooks/%s/deliveries?limit=100" % w["uid"])["data"]

    def all_succeeded(self, w, n):
        def done():
            ds = self.deliveries(w)
            return ds if len(ds) >= n and all(d["status"] == "succeeded" for d in ds) else None
        ds = wait_for(done, 20, 0.05, "%d deliveries to succeed" % n)
        self.assertEqual(len(ds), n)
        for d in ds:
            self.assertEqual(d["lastStatusCode"], 200, d)
        return ds

    def settled_attempts(self, dlv_id, n):
        def done():
            d = self.app.ok("GET", "deliveries/" + dlv_id)
            return d if d["attempts"] >= n and d["status"] not in ("pending", "failing") else None
        return wait_for(done, 20, 0.05, "delivery %s attempt %d" % (dlv_id, n))

    def direct_bodies(self, rx, n):
        """eventId -> raw body, as a plain receiver got them."""
        return {json.loads(r["body"])["eventId"]: r["body"] for r in rx.wait_count(n)}


class Listen(ListenTest):

    def test_every_event_printed_once_and_duplicates_answered_200(self):
        w, lst = self.hook_and_listener()
        self.make_all_nine()
        lines = lst.wait_lines(9)
        ds = self.all_succeeded(w, 9)
        for d in ds:
            self.assertEqual(d["attempts"], 1, d)
        rows = [line.split("\t") for line in lines]
        for row in rows:
            self.assertEqual(len(row), 5, row)
            self.assertRegex(row[0], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
            self.assertEqual(row[2], "tenant-ß \"1\"")
            # the fifth column is a context file's processingStatus, "-" for other events
            if row[1].startswith("contextfile."):
                self.assertIn(row[4], ("awaiting_upload", "pending", "processing", "completed",
                                       "failed"), row)
            else:
                self.assertEqual(row[4], "-", row)
        self.assertEqual(sorted(r[1] for r in rows), ALL_NINE)
        self.assertEqual(sorted(r[3] for r in rows), sorted(d["eventId"] for d in ds))
        # hookline resends one delivery: answered 200, not printed again
        d = ds[0]
        self.assertEqual(self.app.call("POST", "deliveries/%s/resend" % d["id"]).status, 202)
        again = self.settled_attempts(d["id"], 2)
        self.assertEqual(again["status"], "succeeded")
        self.assertEqual(again["attemptLog"][-1]["statusCode"], 200)
        self.assertEqual(json.loads(again["attemptLog"][-1]["response"]),
                         {"received": True, "duplicate": True})
        self.assertEqual(json.loads(again["attemptLog"][0]["response"]), {"received": True})
        wait_for(lambda: "duplicate" in lst.stderr(), what="the duplicate to be logged")
        time.sleep(0.3)
        self.assertEqual(len(lst.lines()), 9)
        self.assertNotIn(w["secret"], lst.stderr())

    def test_burst_each_event_once(self):
        w, lst = self.hook_and_listener(entities=["agent"])
        n = 60
        for i in range(n):
            self.app.ok("POST", "agents", {"agentName": "a%d" % i, "externalTenantId": "t%d" % i})
        lines = lst.wait_lines(n, timeout=60)
        ds = self.all_succeeded(w, n)
        time.sleep(0.3)
        lines = lst.lines()
        self.assertEqual(len(lines), n)
        self.assertEqual(sorted(x.split("\t")[3] for x in lines), sorted(d["eventId"] for d in ds))
        self.assertEqual({x.split("\t")[2] for x in lines}, {"t%d" % i for i in range(n)})

    def test_json_prints_bodies_and_replays_are_duplicates(self):
        rx = self.receiver()
        self.app.webhook(rx.url())
        w, lst = self.hook_and_listener(["--json"])
        self.make_all_nine()
        lines = lst.wait_lines(9)
        self.all_succeeded(w, 9)
        direct = self.direct_bodies(rx, 9)
        printed = {json.loads(line)["eventId"]: line.encode() for line in lines}
        self.assertEqual(printed, direct)  # byte for byte, one line each
        # replaying the same signed request, by either scheme, changes nothing
        eid, body = sorted(direct.items())[0]
        for h in (guide_headers(w["secret"], body), std_headers(w["secret"], eid, body)):
            self.assertEqual(lst.post(body, h), (200, {"received": True, "duplicate": True}))
        time.sleep(0.3)
        self.assertEqual(len(lst.lines()), 9)

    def test_restart_keeps_deduplication(self):
        w, lst = self.hook_and_listener(entities=["agent"])
        self.app.ok("POST", "agents", {"agentName": "a", "externalTenantId": "t"})
        first = lst.wait_lines(1)[0].split("\t")[3]
        d = self.all_succeeded(w, 1)[0]
        self.assertEqual(lst.stop(signal.SIGINT), 0)
        lst.check_clean()
        again = self.listener([w["secret"]], port=lst.port, state=lst.state, name="again").start()
        self.app.ok("POST", "deliveries/%s/resend" % d["id"], status=202)
        got = self.settled_attempts(d["id"], 2)
        self.assertEqual(json.loads(got["attemptLog"][-1]["response"])["duplicate"], True)
        self.app.ok("POST", "agents", {"agentName": "b", "externalTenantId": "t"})
        lines = again.wait_lines(1)
        time.sleep(0.3)
        lines = again.lines()
        self.assertEqual(len(lines), 1)
        self.assertNotEqual(lines[0].split("\t")[3], first)
        self.assertEqual(lines[0].split("\t")[1], "agent.created")

    def test_webhook_test_event(self):
        w, lst = self.hook_and_listener()
        r = self.app.ok("POST", "webhooks/%s/test" % w["uid"], status=200)
        self.assertEqual(r["status"], "succeeded", r)
        line = lst.wait_lines(1)[0].split("\t")
        self.assertEqual(line[1:], ["webhook.test", "-", r["eventId"], "-"])

    def test_bad_or_missing_signature_is_401(self):
        secret = "whsec_" + base64.b64encode(b"k" * 24).decode()
        other = "whsec_" + base64.b64encode(b"o" * 24).decode()
        lst = self.listener([secret], ["--max-body", "2000", "--path", "/hook"]).start()
        body = envelope("evt_one")
        unsigned = (401, {"error": "invalid signature"})
        now = int(time.time())
        for name, b, h in [
            ("no signature", body, {}),
            ("wrong secret", body, guide_headers(other, body)),
            ("tampered body", body.replace(b"tenant-1", b"tenant-2"), guide_headers(secret, body)),
            ("not hex", body, {"X-Webhook-Signature": "sha256=" + "zz" * 32}),
            ("short", body, {"X-Webhook-Signature": "sha256=abcd"}),
            ("empty", body, {"X-Webhook-Signature": ""}),
            ("std wrong secret", body, std_headers(other, "evt_one", body)),
            ("std stale", body, std_headers(secret, "evt_one", body, now - 600)),
            ("std future", body, std_headers(secret, "evt_one", body, now + 600)),
            ("std other id", body, dict(std_headers(secret, "evt_one", body),
                                        **{"webhook-id": "evt_two"})),
            ("std tampered", body + b" ", std_headers(secret, "evt_one", body)),
            ("std partial", body, {"webhook-id": "evt_one", "webhook-timestamp": str(now)}),
        ]:
            self.assertEqual(lst.post(b, h), unsigned, name)
        self.assertEqual(lst.post(body, {}, method="GET")[0], 405)
        self.assertEqual(lst.post(body, guide_headers(secret, body), path="/other")[0], 404)
        big = envelope("evt_big", agentName="x" * 3000)
        self.assertEqual(lst.post(big, guide_headers(secret, big))[0], 413)
        conn = http.client.HTTPConnection("127.0.0.1", lst.port, timeout=10)
        h = dict(guide_headers(secret, big), **{"Content-Type": "application/json"})
        conn.request("POST", "/hook", body=iter([big[:1500], big[1500:]]), headers=h,
                     encode_chunked=True)  # no Content-Length: found too large while reading
        r = conn.getresponse()
        self.assertEqual((r.status, json.loads(r.read())), (413, {"error": "body too large"}))
        conn.close()
        junk = b'{"not":"an event"}'
        self.assertEqual(lst.post(junk, guide_headers(secret, junk)),
                         (400, {"error": "invalid event body"}))
        time.sleep(0.3)
        self.assertEqual(lst.lines(), [])
        self.assertIn("timestamp outside tolerance", lst.stderr())
        # the right signature, by either scheme, is accepted
        self.assertEqual(lst.post(body, std_headers(secret, "evt_one", body)),
                         (200, {"received": True}))
        body2 = envelope("evt_two")
        self.assertEqual(lst.post(body2, guide_headers(secret, body2)), (200, {"received": True}))
        self.assertEqual([x.split("\t")[3] for x in lst.wait_lines(2)], ["evt_one", "evt_two"])

    def test_several_secrets_and_previous_signature(self):
        old = "whsec_" + base64.b64encode(b"1" * 24).decode()
        new = "whsec_" + base64.b64encode(b"2" * 24).decode()
        stranger = "whsec_" + base64.b64encode(b"3" * 24).decode()
        both = self.listener([old, new], name="both").start()
        only_old = self.listener([old], name="old").start()
        for i, s in enumerate((old, new)):
            b = envelope("evt_k%d" % i)
            self.assertEqual(both.post(b, guide_headers(s, b))[0], 200)
        b = envelope("evt_x")
        self.assertEqual(both.post(b, guide_headers(stranger, b))[0], 401)
        # during a rotation: X-Webhook-Signature is the new secret's, -Previous the old one's
        b = envelope("evt_rot")
        h = guide_headers(new, b)
        self.assertEqual(only_old.post(b, h)[0], 401)
        h["X-Webhook-Signature-Previous"] = "sha256=" + sign_hex(old, b)
        self.assertEqual(only_old.post(b, h)[0], 200)
        self.assertEqual(len(both.wait_lines(2)), 2)
        self.assertEqual(only_old.wait_lines(1)[0].split("\t")[3], "evt_rot")

    def test_rotation_with_hookline(self):
        w, lst = self.hook_and_listener(entities=["agent"])  # holds only the old secret
        self.app.ok("POST", "webhooks/%s/rotate-secret" % w["uid"], {"overlapSeconds": 3600},
                    status=200)
        self.app.ok("POST", "agents", {"agentName": "during", "externalTenantId": "t"})
        self.assertEqual(self.all_succeeded(w, 1)[0]["attempts"], 1)
        self.assertEqual(len(lst.wait_lines(1)), 1)


class Exec(ListenTest):

    def test_exec_gets_body_and_environment(self):
        rx = self.receiver()
        self.app.webhook(rx.url())
        out = os.path.join(self.tmp, "exec")
        os.mkdir(out)
        cmd = ('cat > "$OUT/$HOOKLINE_EVENT_ID.body" && printf "%s\\n" "$HOOKLINE_EVENT" '
               '"$HOOKLINE_EVENT_ID" "$HOOKLINE_TENANT" "$HOOKLINE_ATTEMPT" '
               '"${HOOKLINE_WEBHOOK_SECRET-unset}" > "$OUT/$HOOKLINE_EVENT_ID.env"')
        port = free_port()
        w = self.app.webhook("http://127.0.0.1:%d/hook" % port)
        self.listener([], ["--exec", cmd], port=port,
                      env={"HOOKLINE_WEBHOOK_SECRET": w["secret"], "OUT": out}).start()
        self.make_all_nine()
        direct = self.direct_bodies(rx, 9)
        wait_for(lambda: len([f for f in os.listdir(out) if f.endswith(".env")]) == 9, 20,
                 what="nine commands")
        self.all_succeeded(w, 9)
        events = []
        for eid, body in direct.items():
            with open(os.path.join(out, eid + ".body"), "rb") as f:
                self.assertEqual(f.read(), body)
            with open(os.path.join(out, eid + ".env"), encoding="utf-8") as f:
                env = f.read().split("\n")
            self.assertEqual(env[1:], [eid, "tenant-ß \"1\"", "1", "unset", ""])
            self.assertEqual(env[0], json.loads(body)["event"])
            events.append(env[0])
        self.assertEqual(sorted(events), ALL_NINE)

    def test_failing_command_is_retried_with_backoff_then_given_up(self):
        runs = os.path.join(self.tmp, "runs")
        flaky = ('echo "$HOOKLINE_ATTEMPT $(date +%s.%N)" >> "' + runs + '.$HOOKLINE_EVENT_ID"; '
                 'cat >/dev/null; [ "$HOOKLINE_ATTEMPT" -ge 3 ]')
        w, lst = self.hook_and_listener(["--exec", flaky, "--backoff", "200ms",
                                         "--attempts", "5"], entities=["agent"])
        self.app.ok("POST", "agents", {"agentName": "a", "externalTenantId": "t"})
        # the sender got its 200 at once, whatever the command does
        eid = self.all_succeeded(w, 1)[0]["eventId"]
        wait_for(lambda: "handed on (attempt 3)" in lst.stderr(), 20, what="third attempt")
        time.sleep(0.5)
        with open(runs + "." + eid) as f:
            rows = [line.split() for line in f.read().split("\n") if line]
        self.assertEqual([r[0] for r in rows], ["1", "2", "3"])
        t = [float(r[1]) for r in rows]
        self.assertGreaterEqual(t[1] - t[0], 0.19)
        self.assertGreaterEqual(t[2] - t[1], 0.39)  # the delay doubles
        err = lst.stderr()
        self.assertIn("attempt 1 of 5 failed: exited with status 1; retrying in 200 ms", err)
        self.assertIn("attempt 2 of 5 failed: exited with status 1; retrying in 400 ms", err)

        dead_runs = os.path.join(self.tmp, "dead")
        dead = self.listener([w["secret"]], ["--exec", 'echo x >> "%s"; exit 7' % dead_runs,
                                             "--backoff", "50ms", "--attempts", "3"],
                             name="dead").start()
        b = envelope("evt_dead")
        self.assertEqual(dead.post(b, guide_headers(w["secret"], b)), (200, {"received": True}))
        wait_for(lambda: "giving up" in dead.stderr(), 20, what="giving up")
        time.sleep(0.5)
        with open(dead_runs) as f:
            self.assertEqual(f.read(), "x\nx\nx\n")
        self.assertIn("evt_dead agent.created: attempt 3 of 3 failed: exited with status 7; "
                      "giving up", dead.stderr())
        # a hung command is killed at the timeout, and that counts as a failure
        slow = self.listener([w["secret"]], ["--exec", "sleep 20", "--timeout", "300ms",
                                             "--attempts", "1"], name="slow").start()
        self.assertEqual(slow.post(b, guide_headers(w["secret"], b))[0], 200)
        wait_for(lambda: "timed out after 300 ms" in slow.stderr(), 20, what="the timeout")

    def test_restart_resumes_unfinished_handoffs(self):
        done = os.path.join(self.tmp, "done")
        os.mkdir(done)
        w, lst = self.hook_and_listener(["--exec", "cat >/dev/null; exit 1", "--backoff", "60s",
                                         "--attempts", "100"], entities=["agent"])
        for name in ("a", "b"):
            self.app.ok("POST", "agents", {"agentName": name, "externalTenantId": "t"})
        ds = self.all_succeeded(w, 2)
        wait_for(lambda: lst.stderr().count("attempt 1 of 100 failed") == 2, 20,
                 what="two failed attempts")
        self.assertEqual(lst.stop(), 0)
        fixed = self.listener([w["secret"]], ["--exec", 'cat > "%s/$HOOKLINE_EVENT_ID"' % done],
                              port=lst.port, state=lst.state, name="fixed").start()
        # due again at once, not after the 60 s backoff
        wait_for(lambda: len(os.listdir(done)) == 2, 10, what="resumed hand-offs")
        self.assertEqual(sorted(os.listdir(done)), sorted(d["eventId"] for d in ds))
        self.assertIn("2 event(s) from before the restart", fixed.stderr())
        self.assertIn("handed on (attempt 2)", fixed.stderr())

    def test_stop_during_a_command_and_resume(self):
        started = os.path.join(self.tmp, "started")
        w, lst = self.hook_and_listener(["--exec", 'touch "%s"; exec sleep 60' % started],
                                        entities=["agent"])
        self.app.ok("POST", "agents", {"agentName": "a", "externalTenantId": "t"})
        wait_for(lambda: os.path.exists(started), 20, what="the command to start")
        t0 = time.monotonic()
        self.assertEqual(lst.stop(signal.SIGINT), 0)
        self.assertLess(time.monotonic() - t0, 12)
        self.assertIn("interrupted by the stop", lst.stderr())
        out = os.path.join(self.tmp, "out")
        self.listener([w["secret"]], ["--exec", 'cat > "%s"' % out], port=lst.port,
                      state=lst.state, name="next").start()
        wait_for(lambda: os.path.exists(out) and os.path.getsize(out) > 0, 10, what="resume")
        with open(out, "rb") as f:
            self.assertEqual(json.loads(f.read())["data"]["agentName"], "a")


class Forward(ListenTest):

    def test_forward_reposts_body_and_headers_with_retries(self):
        downstream = self.receiver(lambda n, req: (500 if n == 0 else 200, b"ok", {}, 0))
        w, lst = self.hook_and_listener(["--forward", downstream.url("/down"), "--backoff",
                                         "100ms"], entities=["agent", "context"])
        self.app.ok("POST", "agents", {"agentName": "fwd ✓", "externalTenantId": "t",
                                       "temperature": 0.5})
        reqs = downstream.wait_count(2, "/down")
        self.assertEqual(reqs[0]["body"], reqs[1]["body"])
        for req in reqs:
            check_signed(self, req, w["secret"])  # body and signature headers unchanged
            self.assertTrue(req["headers"]["user-agent"].startswith("hookline/"))
            self.assertEqual(req["headers"]["host"], "127.0.0.1:%d" % downstream.port)
        self.assertEqual(json.loads(reqs[0]["body"])["data"]["agentName"], "fwd ✓")
        wait_for(lambda: "handed on (attempt 2)" in lst.stderr(), what="forward success")
        self.assertIn("attempt 1 of 8 failed: answered HTTP 500", lst.stderr())
        # a duplicate is not forwarded again
        d = self.all_succeeded(w, 1)[0]
        self.app.ok("POST", "deliveries/%s/resend" % d["id"], status=202)
        self.settled_attempts(d["id"], 2)
        self.app.ok("POST", "contexts", {"name": "c", "externalTenantId": "t"})
        reqs = downstream.wait_count(3, "/down")
        time.sleep(0.3)
        self.assertEqual(len(downstream.requests), 3)
        self.assertEqual(json.loads(reqs[2]["body"])["event"], "context.created")


class ReplayProtection(ListenTest):
    """Issue 16.7: a request that verifies only through X-Webhook-Signature gets the same replay
    check as the Standard Webhooks path. The guide's header signs the body alone, so the signed
    time there is the body's timestamp (the event's); X-Webhook-Timestamp is not signed."""

    def test_guide_signature_with_old_timestamp_is_refused(self):
        secret = "whsec_" + base64.b64encode(b"r" * 24).decode()
        lst = self.listener([secret]).start()
        unsigned = (401, {"error": "invalid signature"})
        month_ago = time.time() - 30 * 86400
        old = envelope("evt_old", at=month_ago)
        # the replay of a month-old delivery, with or without a forged fresh X-Webhook-Timestamp
        self.assertEqual(lst.post(old, guide_headers(secret, old)), unsigned)
        for ts in (iso(month_ago), iso(time.time())):
            h = dict(guide_headers(secret, old), **{"X-Webhook-Timestamp": ts})
            self.assertEqual(lst.post(old, h), unsigned, ts)
        # the old secret's signature during a rotation gets the same check
        self.assertEqual(lst.post(old, {"X-Webhook-Signature": "sha256=" + "0" * 64,
                                        "X-Webhook-Signature-Previous":
                                            "sha256=" + sign_hex(secret, old)}), unsigned)
        # a captured request with both schemes, replayed after the tolerance
        stale = dict(guide_headers(secret, old), **std_headers(secret, "evt_old", old,
                                                              int(time.time()) - 600))
        self.assertEqual(lst.post(old, stale), unsigned)
        # an event from the future is refused too, both ways
        future = envelope("evt_future", at=time.time() + 600)
        self.assertEqual(lst.post(future, guide_headers(secret, future)), unsigned)
        self.assertIn("401 (timestamp outside tolerance)", lst.stderr())
        # a signed body without a timestamp to check is not an event
        bare = b'{"eventId":"evt_bare","event":"agent.created","data":{}}'
        self.assertEqual(lst.post(bare, guide_headers(secret, bare)),
                         (400, {"error": "invalid event body"}))
        # hookline's retry of an old event carries a fresh webhook-timestamp: accepted
        retry = dict(guide_headers(secret, old), **std_headers(secret, "evt_old", old))
        self.assertEqual(lst.post(old, retry), (200, {"received": True}))
        # a fresh event through the guide's header alone is accepted
        fresh = envelope("evt_fresh")
        self.assertEqual(lst.post(fresh, guide_headers(secret, fresh)), (200, {"received": True}))
        self.assertEqual([x.split("\t")[3] for x in lst.wait_lines(2)], ["evt_old", "evt_fresh"])
        # --tolerance widens both paths alike
        hour_old = envelope("evt_hour", at=time.time() - 3600)
        self.assertEqual(lst.post(hour_old, guide_headers(secret, hour_old)), unsigned)
        wide = self.listener([secret], ["--tolerance", "7200", "--dedupe-window", "4h"],
                             name="wide").start()
        self.assertEqual(wide.post(hour_old, guide_headers(secret, hour_old)),
                         (200, {"received": True}))
        self.assertEqual(wide.post(old, guide_headers(secret, old)), unsigned)

    def test_verify_command_checks_the_event_time(self):
        secret = "whsec_" + base64.b64encode(b"v" * 24).decode()
        env = dict(os.environ)
        env.pop("HOOKLINE_WEBHOOK_SECRET", None)

        def verify(args, body):
            p = subprocess.run([BIN, "verify", "--secret", secret] + args, input=body,
                               capture_output=True, env=env, timeout=30)
            return p.returncode, p.stderr.decode()
        old = envelope("evt_v", at=time.time() - 3600)
        sig = ["--signature", "sha256=" + sign_hex(secret, old)]
        self.assertEqual(verify(sig, old), (1, "invalid: timestamp outside tolerance\n"))
        self.assertEqual(verify(sig + ["--tolerance", "7200"], old)[0], 0)
        fresh = envelope("evt_v")
        self.assertEqual(verify(["--signature", "sha256=" + sign_hex(secret, fresh)], fresh)[0], 0)


class QuietLogs(ListenTest):
    """Issue 16.10: a flood of refused requests gives a bounded number of log lines, and says
    how many it left out."""

    FIRST = re.compile(r"^\S+ warn listen: POST /hook: 401 \((.*)\)$")
    SUMMARY = re.compile(r"^\S+ warn (\d+) more like this not shown \(one line per 10 s at "
                         r"most\): listen: POST /hook: 401 \((.*)\)$")

    def test_flood_of_unsigned_requests(self):
        secret = "whsec_" + base64.b64encode(b"f" * 24).decode()
        other = "whsec_" + base64.b64encode(b"g" * 24).decode()
        lst = self.listener([secret]).start()
        body = envelope("evt_flood")
        sent = {"missing or malformed signature header": 0, "signature mismatch": 0}
        t0 = time.monotonic()
        conn = http.client.HTTPConnection("127.0.0.1", lst.port, timeout=10)
        for i in range(1500):
            wrong = i % 3 == 0
            h = guide_headers(other, body) if wrong else {}
            h["Content-Type"] = "application/json"
            conn.request("POST", "/hook", body=body, headers=h)
            r = conn.getresponse()
            r.read()
            self.assertEqual(r.status, 401)
            sent["signature mismatch" if wrong else "missing or malformed signature header"] += 1
        conn.close()
        # the first of another kind is written at once
        self.assertEqual(lst.post(body, std_headers(secret, "evt_flood", body,
                                                    int(time.time()) - 600))[0], 401)
        wait_for(lambda: "401 (timestamp outside tolerance)" in lst.stderr(), 10,
                 what="the first line of a new kind")
        # a signed event still goes through
        self.assertEqual(lst.post(body, guide_headers(secret, body)), (200, {"received": True}))
        self.assertEqual(lst.stop(), 0)  # writes what is still counted
        elapsed = time.monotonic() - t0
        shown = {k: 0 for k in sent}
        lines = 0
        for line in lst.stderr().split("\n"):
            summary, first = self.SUMMARY.match(line), self.FIRST.match(line)
            if summary and summary.group(2) in sent:
                shown[summary.group(2)] += int(summary.group(1))
            elif first and first.group(1) in sent:
                shown[first.group(1)] += 1
            else:
                continue
            lines += 1
        self.assertEqual(shown, sent)  # every request is accounted for ...
        # ... in a few lines per kind: the first, then at most one count per 10 s
        self.assertLessEqual(lines, 2 * (3 + int(elapsed // 10)), lst.stderr()[-3000:])


class DedupeWindow(ListenTest):
    """Issue 16.7: eventIds handed on are forgotten after --dedupe-window, in batches; inside the
    window they are duplicates, and events not yet handed on are never forgotten."""

    def count(self, lst, event_id):
        db = sqlite3.connect(lst.state, timeout=30)
        try:
            return db.execute("SELECT count(*) FROM events WHERE event_id = ?",
                              (event_id,)).fetchone()[0]
        finally:
            db.close()

    def test_pruned_after_the_window(self):
        secret = "whsec_" + base64.b64encode(b"d" * 24).decode()
        runs = os.path.join(self.tmp, "runs")
        # agent.deleted events fail their hand-off and give up: they must stay remembered
        lst = self.listener([secret], [
            "--tolerance", "2", "--dedupe-window", "5s", "--attempts", "1",
            "--exec", 'echo "$HOOKLINE_EVENT_ID" >> "%s"; [ "$HOOKLINE_EVENT" != agent.deleted ]'
            % runs]).start()
        ids = ["evt_w%d" % i for i in range(3)]
        bodies = {i: envelope(i) for i in ids}
        for i in ids:
            self.assertEqual(lst.post(bodies[i], std_headers(secret, i, bodies[i])),
                             (200, {"received": True}))
        failed = envelope("evt_gives_up", event="agent.deleted")
        self.assertEqual(lst.post(failed, std_headers(secret, "evt_gives_up", failed))[0], 200)
        # inside the window: a duplicate
        self.assertEqual(lst.post(bodies[ids[0]], std_headers(secret, ids[0], bodies[ids[0]])),
                         (200, {"received": True, "duplicate": True}))
        wait_for(lambda: "giving up" in lst.stderr(), 20, what="the failed hand-off")
        # after it: forgotten, so hookline's resend of it is handed on again
        wait_for(lambda: sum(self.count(lst, i) for i in ids) == 0, 30,
                 what="the old eventIds to be pruned")
        self.assertEqual(self.count(lst, "evt_gives_up"), 1)
        self.assertEqual(lst.post(bodies[ids[0]], std_headers(secret, ids[0], bodies[ids[0]])),
                         (200, {"received": True}))
        self.assertEqual(lst.post(failed, std_headers(secret, "evt_gives_up", failed)),
                         (200, {"received": True, "duplicate": True}))

        def runs_of(event_id):
            if not os.path.exists(runs):
                return 0
            with open(runs) as f:
                return f.read().split("\n").count(event_id)
        wait_for(lambda: runs_of(ids[0]) == 2, 20, what="the second hand-off")
        self.assertEqual(runs_of("evt_gives_up"), 1)

    def test_window_shorter_than_twice_the_tolerance_is_refused(self):
        e = dict(os.environ, HOOKLINE_WEBHOOK_SECRET="s")
        for args in (["--dedupe-window", "1s"], ["--dedupe-window", "9m"],
                     ["--dedupe-window", "2m", "--tolerance", "61"]):
            p = subprocess.run([BIN, "listen"] + args, capture_output=True, env=e, timeout=30)
            self.assertEqual(p.returncode, 2, args)
            self.assertIn(b"--dedupe-window must be at least twice --tolerance", p.stderr)


class SilenceAlert(ListenTest):
    """Issue 21: --alert-after DURATION --alert-exec CMD runs CMD once when no verified event has
    arrived for that long, once more when they come back, and never holds up receiving."""

    def alerts(self, path):
        if not os.path.exists(path):
            return []
        with open(path) as f:
            return [line.split(" ") for line in f.read().split("\n") if line]

    def test_once_on_silence_once_on_recovery(self):
        secret = "whsec_" + base64.b64encode(b"a" * 24).decode()
        out = os.path.join(self.tmp, "alerts")
        cmd = ('echo "$HOOKLINE_ALERT $HOOKLINE_SILENCE_SECONDS $HOOKLINE_LAST_EVENT_AT" >> "%s"'
               % out)
        lst = self.listener([secret], ["--alert-after", "2s", "--alert-exec", cmd]).start()
        # the timer starts with listen: silent, with no event yet
        wait_for(lambda: len(self.alerts(out)) >= 1, 20, what="the silence alert")
        first = self.alerts(out)[0]
        self.assertEqual(first[0], "silent")
        self.assertGreaterEqual(int(first[1]), 2)
        self.assertEqual(first[2], "")
        # not again while it stays silent; a refused request does not end the silence
        self.assertEqual(lst.post(b"{}", {})[0], 401)
        time.sleep(4)
        self.assertEqual(len(self.alerts(out)), 1, self.alerts(out))
        # a verified event ends it, once
        body = envelope("evt_back")
        self.assertEqual(lst.post(body, guide_headers(secret, body))[0], 200)
        self.assertEqual(lst.post(body, guide_headers(secret, body))[1]["duplicate"], True)
        wait_for(lambda: len(self.alerts(out)) >= 2, 20, what="the recovery")
        back = self.alerts(out)[1]
        self.assertEqual(back[0], "recovered")
        self.assertGreaterEqual(int(back[1]), 6)  # from the start to the event
        # then the timer starts again from that event
        wait_for(lambda: len(self.alerts(out)) >= 3, 20, what="the next silence")
        again = self.alerts(out)[2]
        self.assertEqual(again[0], "silent")
        self.assertRegex(again[2], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
        self.assertEqual(len(self.alerts(out)), 3)
        err = lst.stderr()
        self.assertIn("no verified event for", err)
        self.assertIn("events arrive again after", err)

    def test_slow_command_does_not_hold_up_receiving(self):
        secret = "whsec_" + base64.b64encode(b"b" * 24).decode()
        runs = os.path.join(self.tmp, "runs")
        lst = self.listener([secret], ["--alert-after", "1s", "--timeout", "60s",
                                       "--alert-exec", 'echo x >> "%s"; exec sleep 60' % runs]
                            ).start()
        wait_for(lambda: os.path.exists(runs), 20, what="the alert command to start")
        for i in range(20):
            body = envelope("evt_slow%d" % i)
            self.assertEqual(lst.post(body, guide_headers(secret, body)),
                             (200, {"received": True}))
        self.assertEqual(len(lst.wait_lines(20)), 20)
        with open(runs) as f:
            self.assertEqual(f.read(), "x\n")  # one command at a time
        self.assertEqual(lst.stop(), 0)  # the running one is killed after a short grace

    def test_usage(self):
        e = dict(os.environ, HOOKLINE_WEBHOOK_SECRET="s")
        for args, why in ((["--alert-exec", "true"], b"--alert-exec runs after --alert-after"),
                          (["--alert-after", "0"], b"--alert-after 0: want a duration"),
                          (["--alert-after", "x"], b"--alert-after x: want a duration")):
            p = subprocess.run([BIN, "listen"] + args, capture_output=True, env=e, timeout=30)
            self.assertEqual(p.returncode, 2, args)
            self.assertIn(why, p.stderr)


class Replay(ListenTest):
    """Issue 13.9: `hookline listen replay` hands events that gave up to --exec again."""

    def replay(self, lst, *args):
        p = subprocess.run([BIN, "listen", "replay", "--state", lst.state] + list(args),
                           capture_output=True, timeout=30)
        for bad in SANITIZER:
            self.assertNotIn(bad, p.stderr.decode("utf-8", "replace"))
        return p.returncode, p.stdout.decode(), p.stderr.decode()

    def test_replay_after_giving_up(self):
        secret = "whsec_" + base64.b64encode(b"p" * 24).decode()
        done = os.path.join(self.tmp, "done")
        broken = os.path.join(self.tmp, "broken")
        os.mkdir(done)
        open(broken, "w").close()
        args = ["--attempts", "2", "--backoff", "50ms", "--exec",
                '[ ! -e "%s" ] && cat > "%s/$HOOKLINE_EVENT_ID.$HOOKLINE_ATTEMPT"' % (broken, done)]
        lst = self.listener([secret], args).start()
        for i in ("evt_a", "evt_b"):
            b = envelope(i)
            self.assertEqual(lst.post(b, guide_headers(secret, b)), (200, {"received": True}))
        wait_for(lambda: lst.stderr().count("giving up") == 2, 20, what="both to give up")
        self.assertIn("`hookline listen replay --state %s evt_a` hands it on again" % lst.state,
                      lst.stderr())
        os.unlink(broken)  # the command is fixed
        # one event, while the listener runs: it hands it on, with a fresh count of attempts
        self.assertEqual(self.replay(lst, "evt_a"), (0, "evt_a: queued again\n", ""))
        wait_for(lambda: "evt_a agent.created: handed on (attempt 1)" in lst.stderr(), 20,
                 what="evt_a handed on")
        self.assertEqual(os.listdir(done), ["evt_a.1"])
        with open(os.path.join(done, "evt_a.1"), "rb") as f:
            self.assertEqual(json.loads(f.read())["eventId"], "evt_a")
        # handed on already, unknown, or nothing named
        rc, _, err = self.replay(lst, "evt_a")
        self.assertEqual(rc, 1)
        self.assertIn("evt_a: handed on already", err)
        rc, _, err = self.replay(lst, "evt_nope")
        self.assertEqual(rc, 1)
        self.assertIn("evt_nope: no such event", err)
        self.assertEqual(self.replay(lst)[0], 2)
        self.assertEqual(self.replay(lst, "--failed", "evt_b")[0], 2)
        p = subprocess.run([BIN, "listen", "replay", "--state",
                            os.path.join(self.tmp, "missing.db"), "--failed"],
                           capture_output=True, timeout=30)
        self.assertEqual(p.returncode, 2)
        self.assertFalse(os.path.exists(os.path.join(self.tmp, "missing.db")))
        # every event that gave up, while no listener runs: the next one hands them on
        self.assertEqual(lst.stop(), 0)
        self.assertEqual(self.replay(lst, "--failed"), (0, "1 event(s) queued again\n", ""))
        self.assertEqual(self.replay(lst, "--failed"), (0, "0 event(s) queued again\n", ""))
        nxt = self.listener([secret], args, port=lst.port, state=lst.state, name="next").start()
        wait_for(lambda: "evt_b agent.created: handed on (attempt 1)" in nxt.stderr(), 20,
                 what="evt_b handed on")
        self.assertEqual(sorted(os.listdir(done)), ["evt_a.1", "evt_b.1"])


class SummaryLine(ListenTest):
    """Issue 13.9: the summary line shows a context file's processingStatus."""

    def test_processing_status_column(self):
        w, lst = self.hook_and_listener(entities=["contextfile"])
        ctx = self.app.ok("POST", "contexts", {"name": "kb", "externalTenantId": "t-9"})
        r = self.app.call("POST", "contexts/%s/files?fileName=notes.md" % ctx["uid"],
                          raw=b"# Notes\n\nSome text to index.\n",
                          headers={"Content-Type": "text/markdown"})
        self.assertEqual(r.status, 202, r)
        rows = [line.split("\t") for line in lst.wait_lines(3)]
        # Deliveries of one webhook are not ordered (that is the "ordering" option's job): the
        # three may arrive in any order, each with its own status column.
        self.assertEqual(sorted((x[1], x[2], x[4]) for x in rows),
                         sorted([("contextfile.created", "t-9", "pending"),
                                 ("contextfile.updated", "t-9", "processing"),
                                 ("contextfile.updated", "t-9", "completed")]))


class Verify(unittest.TestCase):
    secret = "whsec_" + base64.b64encode(bytes(range(24))).decode()

    def run_verify(self, args, body, env=None):
        e = dict(os.environ)
        e.pop("HOOKLINE_WEBHOOK_SECRET", None)
        e.update(env or {})
        p = subprocess.run([BIN, "verify"] + args, input=body, capture_output=True, env=e,
                           timeout=30)
        for bad in SANITIZER:
            self.assertNotIn(bad, p.stderr.decode("utf-8", "replace"))
        return p.returncode

    def test_exit_codes(self):
        body = envelope("evt_v", agentName="Zoë \"q\" \\ 🙂")
        s = self.secret
        other = "whsec_" + base64.b64encode(b"z" * 24).decode()
        sig = "sha256=" + sign_hex(s, body)
        now = int(time.time())
        std = std_headers(s, "evt_v", body, now)
        stale = std_headers(s, "evt_v", body, now - 301)
        std_args = ["--id", "evt_v", "--timestamp", std["webhook-timestamp"],
                    "--standard-signature", std["webhook-signature"]]
        stale_args = ["--id", "evt_v", "--timestamp", stale["webhook-timestamp"],
                      "--standard-signature", stale["webhook-signature"]]
        cases = [
            ("valid", ["--secret", s, "--signature", sig], body, 0),
            ("bare hex", ["--secret", s, "--signature", sig[7:]], body, 0),
            ("tampered", ["--secret", s, "--signature", sig], body + b" ", 1),
            ("one byte", ["--secret", s, "--signature", sig], body.replace(b"Zo", b"Zp"), 1),
            ("wrong secret", ["--secret", other, "--signature", sig], body, 1),
            ("malformed", ["--secret", s, "--signature", "sha256=xyz"], body, 1),
            ("either secret", ["--secret", other, "--secret", s, "--signature", sig], body, 0),
            ("standard", ["--secret", s] + std_args, body, 0),
            ("standard tampered", ["--secret", s] + std_args, body[:-1], 1),
            ("standard wrong secret", ["--secret", other] + std_args, body, 1),
            ("standard stale", ["--secret", s] + stale_args, body, 1),
            ("stale within tolerance", ["--secret", s, "--tolerance", "400"] + stale_args,
             body, 0),
            ("no secret", ["--signature", sig], body, 2),
            ("no signature", ["--secret", s], body, 2),
            ("partial standard", ["--secret", s, "--id", "evt_v"], body, 2),
            ("extra argument", ["--secret", s, "--signature", sig, "file"], body, 2),
            ("unknown option", ["--secret", s, "--nope"], body, 2),
        ]
        for name, args, b, want in cases:
            self.assertEqual(self.run_verify(args, b), want, name)
        self.assertEqual(self.run_verify(["--signature", sig], body,
                                         {"HOOKLINE_WEBHOOK_SECRET": s}), 0)
        self.assertEqual(self.run_verify(["--help"], b""), 0)

    def test_listen_usage(self):
        for args in ([], ["--secret", "s", "--port", "70000"],
                     ["--secret", "s", "--exec", "true", "--forward", "http://x/"],
                     ["--secret", "s", "--forward", "ftp://x/"], ["--secret", "s", "--json",
                                                                  "--exec", "cat"],
                     ["--secret", "s", "--listen", "not-an-address"], ["--secret", "s", "x"]):
            e = dict(os.environ)
            e.pop("HOOKLINE_WEBHOOK_SECRET", None)
            p = subprocess.run([BIN, "listen"] + args, capture_output=True, env=e, timeout=30)
            self.assertEqual(p.returncode, 2, args)
        p = subprocess.run([BIN, "listen", "--help"], capture_output=True, timeout=30)
        self.assertEqual(p.returncode, 0)
        self.assertIn(b"--exec", p.stdout)


NODE_SIGNER = r"""
const crypto = require('crypto');
const [secret, other] = process.argv.slice(1);
const now = Math.floor(Date.now() / 1000);
const out = [];
const bodies = [
  {eventId: 'evt_node1', event: 'agent.created', timestamp: new Date().toISOString(),
   appUid: 'app', version: 1, data: {uid: 'agent-1', externalTenantId: 'tenant-日本',
   agentName: 'Ünïcødé "quotes" \\ 🤖 \u0001', temperature: 0.1}},
  {eventId: 'evt_node2', event: 'context.deleted', timestamp: new Date().toISOString(),
   appUid: 'app', version: 1, data: {uid: 'ctx-1', externalTenantId: 't', n: [1e21, 1.5e-7]}},
];
function hex(key, s) { return crypto.createHmac('sha256', key).update(s, 'utf8').digest('hex'); }
function std(sec, id, ts, s) {
  const key = Buffer.from(sec.slice(6), 'base64');
  return 'v1,' + crypto.createHmac('sha256', key).update(`${id}.${ts}.${s}`).digest('base64');
}
for (const b of bodies) {
  const s = JSON.stringify(b);
  out.push({body: s, id: b.eventId, ts: now, sig: 'sha256=' + hex(secret, s),
            wrong: 'sha256=' + hex(other, s), std: std(secret, b.eventId, now, s),
            stdWrong: std(other, b.eventId, now, s),
            staleTs: now - 600, stale: std(secret, b.eventId, now - 600, s)});
}
console.log(JSON.stringify(out));
"""


class NodeSigned(ListenTest):
    """Signatures made by Node's crypto, as an integrator's sender or test would make them."""

    @classmethod
    def setUpClass(cls):
        need(shutil.which("node"), "node")

    def test_node_signatures(self):
        secret = "whsec_" + base64.b64encode(os.urandom(24)).decode()
        other = "whsec_" + base64.b64encode(os.urandom(24)).decode()
        p = subprocess.run(["node", "-e", NODE_SIGNER, secret, other], capture_output=True,
                           text=True, timeout=60)
        self.assertEqual(p.returncode, 0, p.stderr)
        cases = json.loads(p.stdout)
        lst = self.listener([secret]).start()
        env = dict(os.environ)
        env.pop("HOOKLINE_WEBHOOK_SECRET", None)

        def verify(args, body):
            return subprocess.run([BIN, "verify", "--secret", secret] + args, input=body,
                                  capture_output=True, env=env, timeout=30).returncode

        for c in cases:
            body = c["body"].encode()
            std = ["--id", c["id"], "--timestamp", str(c["ts"]), "--standard-signature"]
            self.assertEqual(verify(["--signature", c["sig"]], body), 0)
            self.assertEqual(verify(["--signature", c["sig"]], body + b"\n"), 1)
            self.assertEqual(verify(["--signature", c["wrong"]], body), 1)
            self.assertEqual(verify(std + [c["std"]], body), 0)
            self.assertEqual(verify(std + [c["stdWrong"]], body), 1)
            self.assertEqual(verify(["--id", c["id"], "--timestamp", str(c["staleTs"]),
                                     "--standard-signature", c["stale"]], body), 1)
            tampered = body.replace(b'"version":1', b'"version":2')
            self.assertNotEqual(tampered, body)
            self.assertEqual(verify(["--signature", c["sig"]], tampered), 1)
            # and through hookline listen
            h = {"webhook-id": c["id"], "webhook-timestamp": str(c["ts"])}
            self.assertEqual(lst.post(tampered, {"X-Webhook-Signature": c["sig"]})[0], 401)
            self.assertEqual(lst.post(body, {"X-Webhook-Signature": c["wrong"]})[0], 401)
            self.assertEqual(lst.post(body, dict(h, **{"webhook-signature": c["stdWrong"]}))[0],
                             401)
            self.assertEqual(lst.post(body, {"webhook-id": c["id"],
                                             "webhook-timestamp": str(c["staleTs"]),
                                             "webhook-signature": c["stale"]})[0], 401)
            self.assertEqual(lst.post(body, dict(h, **{"webhook-signature": c["std"]})),
                             (200, {"received": True}))
            self.assertEqual(lst.post(body, {"X-Webhook-Signature": c["sig"]}),
                             (200, {"received": True, "duplicate": True}))
        lines = lst.wait_lines(2)
        self.assertEqual([x.split("\t")[3] for x in lines], ["evt_node1", "evt_node2"])
        self.assertEqual(lines[0].split("\t")[2], "tenant-日本")


class ExampleReceiver(ListenTest):
    """examples/receiver.c, the guide's complete example in C, against the real sender."""

    def test_example_receiver(self):
        exe = os.path.join(BUILD_DIR, "example_receiver")
        self.assertTrue(os.path.exists(exe), "example_receiver is not built in " + BUILD_DIR)
        port = free_port()
        w = self.app.webhook("http://127.0.0.1:%d/webhooks/mindset" % port)
        log = os.path.join(self.tmp, "example.out")
        with open(log, "wb") as out:
            proc = subprocess.Popen([exe, str(port)], stdout=out, stderr=subprocess.STDOUT,
                                    env=dict(os.environ, MINDSET_WEBHOOK_SECRET=w["secret"]))

        def text():
            with open(log, "rb") as f:
                return f.read().decode("utf-8", "replace")
        try:
            wait_for(lambda: "running on port" in text() or proc.poll() is not None, 20,
                     what="the example to start")
            self.make_all_nine()
            wait_for(lambda: text().count("Processing ") >= 9, 20, what="nine events processed")
            ds = self.all_succeeded(w, 9)
            self.app.ok("POST", "deliveries/%s/resend" % ds[0]["id"], status=202)
            self.settled_attempts(ds[0]["id"], 2)
            wait_for(lambda: "already processed" in text(), 10, what="the duplicate")
            body = envelope("evt_forged")
            self.assertEqual(post(port, "/webhooks/mindset", body,
                                  guide_headers("whsec_d3Jvbmc=", body)),
                             (401, {"error": "Invalid signature"}))
            self.assertEqual(post(port, "/webhooks/mindset", body)[0], 401)
            # a replay of a day-old event signed by the guide's header alone
            old = envelope("evt_replayed", at=time.time() - 86400)
            self.assertEqual(post(port, "/webhooks/mindset", old, guide_headers(w["secret"], old)),
                             (401, {"error": "Invalid signature"}))
            # webhook.test has no tenant (externalTenantId null)
            test = self.app.ok("POST", "webhooks/%s/test" % w["uid"], status=200)
            self.assertEqual(test["status"], "succeeded", test)
            wait_for(lambda: "Test event" in text(), 10, what="the test event")
        finally:
            proc.send_signal(signal.SIGTERM)
            rc = proc.wait(timeout=20)
        out = text()
        for bad in SANITIZER:
            self.assertNotIn(bad, out)
        self.assertEqual(rc, 0, out)
        processed = [line for line in out.split("\n") if line.startswith("Processing ")]
        self.assertEqual(len(processed), 9, out)
        ids = {line.rsplit("(", 1)[1].rstrip(")") for line in processed}
        self.assertEqual(ids, {d["eventId"] for d in ds})
        self.assertEqual(out.count("Event %s already processed" % ds[0]["eventId"]), 1)
        self.assertIn("for tenant tenant-ß \"1\": agent agent-", out)
        self.assertIn("Test event %s received: this endpoint works\n" % test["eventId"], out)
        self.assertNotIn("for tenant  ", out)
        self.assertIn("Rejected a request: timestamp outside tolerance", out)
        self.assertNotIn("evt_replayed", out)


if __name__ == "__main__":
    main()
