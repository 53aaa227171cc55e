"""The API client (hookline webhooks|deliveries|events) against a real server, every command in
both output modes: tables and fields for people, and with --json exactly the API's JSON, which is
checked against the OpenAPI document like any other answer. Exit statuses: 0 done, 1 refused,
2 usage, 3 unreachable."""
import json
import os
import pty
import re
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(__file__))
from harness import (BIN, ServerTest, check_response, free_port, main, sign_hex,  # noqa: E402
                     wait_for)

SANITIZER = ("AddressSanitizer", "runtime error:", "LeakSanitizer")
JSON_HEADERS = {"content-type": "application/json"}


def iso(t):
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))


class Client(ServerTest):
    server_env = {"HOOKLINE_RETRY_SCHEDULE": "0,100ms", "HOOKLINE_TIMEOUT": "1s"}

    def setUp(self):
        super().setUp()
        self.cwd = tempfile.mkdtemp(prefix="hookline-client-")
        self.addCleanup(shutil.rmtree, self.cwd, True)
        self.base = "http://127.0.0.1:%d" % self.server.port

    def env(self, **extra):
        env = {k: v for k, v in os.environ.items() if not k.startswith("HOOKLINE_")}
        env.update(HOOKLINE_SERVER=self.base, HOOKLINE_APP=self.app.uid,
                   HOOKLINE_API_KEY=self.app.key, TZ="UTC")
        env.update(extra)
        return {k: v for k, v in env.items() if v is not None}

    def hl(self, *args, status=0, env=None, cwd=None):
        """Runs hookline with args; asserts its exit status; returns the completed process."""
        r = subprocess.run([BIN] + list(args), capture_output=True, text=True,
                           env=env or self.env(), cwd=cwd or self.cwd, timeout=120,
                           stdin=subprocess.DEVNULL)
        for bad in SANITIZER:
            self.assertNotIn(bad, r.stderr)
        self.assertEqual(r.returncode, status, "hookline %s -> %d\nstdout: %s\nstderr: %s"
                         % (" ".join(args), r.returncode, r.stdout[-2000:], r.stderr[-2000:]))
        return r

    def api_json(self, method, rest, *args, code=200):
        """Runs a command with --json; its output must be the API's JSON for method rest (with
        status code), as the document describes it. Returns it parsed."""
        out = self.hl(*(list(args) + ["--json"])).stdout
        self.assertTrue(out.endswith("\n"))
        check_response(method, self.app.path(rest), code, JSON_HEADERS, out[:-1].encode())
        return json.loads(out)

    def column(self, out, header):
        """The cells of a table's column, found by where its header starts."""
        lines = out.rstrip("\n").split("\n")
        m = re.search(r"(?:^|  )(%s)(?:  |$)" % re.escape(header), lines[0])
        self.assertIsNotNone(m, "no column %s in %r" % (header, lines[0]))
        at = m.start(1)
        cells = []
        for line in lines[1:]:
            if not line.strip() or line.startswith("("):
                continue
            self.assertIn(line[at - 2:at], ("  ",) if at else ("",), "misaligned: %r" % line)
            cells.append(line[at:].split("  ")[0])
        return cells

    def settled(self, uid, n):
        def ok():
            ds = self.app.ok("GET", "webhooks/%s/deliveries?limit=100" % uid)["data"]
            return ds if len(ds) >= n and all(d["status"] not in ("pending", "failing") for d in ds) else None
        return wait_for(ok, timeout=20, what="%d settled deliveries" % n)

    # ---- webhooks ----

    def test_webhooks(self):
        rx = self.receiver()
        # create: the secret, once
        out = self.hl("webhooks", "create", "--url", rx.url(), "--entities", "agent, context",
                      "--description", "main").stdout
        self.assertRegex(out, r"secret:\s+whsec_")
        self.assertIn("shown only now", out)
        uid = re.search(r"uid:\s+(webhook-\S+)", out).group(1)
        made = self.api_json("POST", "webhooks", "webhooks", "create", "--url", rx.url(),
                             code=201)
        self.assertEqual(made["entities"], ["agent", "context", "contextfile"])
        self.assertTrue(made["secret"].startswith("whsec_"))
        # list: a table, and the API's JSON as it came
        out = self.hl("webhooks", "list").stdout
        self.assertEqual(sorted(self.column(out, "UID")), sorted([uid, made["uid"]]))
        self.assertEqual(self.column(out, "STATE"), ["active", "active"])
        self.assertIn("agent,context", out)
        raw = self.hl("webhooks", "list", "--json").stdout
        self.assertEqual(raw, self.app.call("GET", "webhooks?limit=20").body.decode() + "\n")
        # get
        out = self.hl("webhooks", "get", uid).stdout
        self.assertRegex(out, r"description:\s+main")
        self.assertNotIn("secret", out)
        self.assertEqual(self.api_json("GET", "webhooks/" + uid, "webhooks", "get", uid)["uid"],
                         uid)
        # update, pause, resume
        out = self.hl("webhooks", "update", uid, "--event-types", "agent.created").stdout
        self.assertRegex(out, r"events:\s+agent.created")
        got = self.api_json("PATCH", "webhooks/" + uid, "webhooks", "update", uid,
                            "--url", rx.url("/v2"), "--event-types", "all")
        self.assertEqual((got["url"], got["eventTypes"]), (rx.url("/v2"), None))
        self.assertRegex(self.hl("webhooks", "pause", uid).stdout, r"state:\s+paused")
        self.assertFalse(self.api_json("PATCH", "webhooks/" + uid, "webhooks", "pause",
                                       uid)["active"])
        self.assertRegex(self.hl("webhooks", "resume", uid).stdout, r"state:\s+active")
        self.assertTrue(self.api_json("PATCH", "webhooks/" + uid, "webhooks", "resume",
                                      uid)["active"])
        self.hl("webhooks", "update", uid, status=2)  # nothing to change
        # test: the attempt, readable
        out = self.hl("webhooks", "test", uid).stdout
        self.assertRegex(out, r"status:\s+succeeded")
        self.assertRegex(out, r"#1  \d{4}-\d\d-\d\d \d\d:\d\d:\d\d \(\d+s ago\)  [\d.]+ ms  200")
        self.assertIn('{"received":true}', out)
        d = self.api_json("POST", "webhooks/%s/test" % uid, "webhooks", "test", uid)
        self.assertEqual((d["event"], d["status"]), ("webhook.test", "succeeded"))
        # rotate-secret: the new secret signs what follows
        out = self.hl("webhooks", "rotate-secret", uid).stdout
        self.assertRegex(out, r"new secret:\s+whsec_")
        self.assertRegex(out, r"old one until:\s+\S+ \S+ \(in (23h|24h|1d)\)")
        r = self.api_json("POST", "webhooks/%s/rotate-secret" % uid, "webhooks",
                          "rotate-secret", uid, "--overlap", "0")
        self.assertIsNone(r["previousSecretExpiresAt"])
        self.hl("webhooks", "test", uid)
        req = rx.requests[-1]
        self.assertEqual(req["headers"]["x-webhook-signature"],
                         "sha256=" + sign_hex(r["secret"], req["body"]))
        # delete: a line for people, nothing for scripts; then it is gone (the API refuses)
        self.assertIn("deleted " + uid, self.hl("webhooks", "delete", uid).stdout)
        self.assertEqual(self.hl("webhooks", "delete", made["uid"], "--json").stdout, "")
        r = self.hl("webhooks", "get", uid, status=1)
        self.assertIn("404 not_found: no webhook " + uid, r.stderr)
        r = self.hl("webhooks", "get", uid, "--json", status=1)
        self.assertEqual(json.loads(r.stdout)["error"]["code"], "not_found")
        r = self.hl("webhooks", "create", "--url", rx.url(), "--entities", "agent,robot",
                    status=1)
        self.assertIn("422 entities_unknown", r.stderr)
        self.assertIn("entities[1] is not one of", r.stderr)
        self.assertEqual(self.app.ok("GET", "webhooks")["data"], [])  # nothing stored

    # ---- deliveries ----

    def test_deliveries(self):
        good = self.receiver()
        bad = self.receiver(lambda n, req: (500, b"<h1>down\x1b[2J</h1>\nline 2", {}, 0))
        wg = self.app.webhook(good.url(), entities=["agent"])
        wb = self.app.webhook(bad.url(), entities=["agent", "context"])
        for i in range(3):
            self.app.ok("POST", "agents", {"agentName": "a%d" % i, "externalTenantId": "t"})
        self.app.ok("POST", "contexts", {"name": "c", "externalTenantId": "t"})
        self.settled(wg["uid"], 3)
        self.settled(wb["uid"], 4)
        # the app's list: every webhook's, newest first, whose it is
        out = self.hl("deliveries", "list").stdout
        ids = self.column(out, "ID")
        self.assertEqual(len(ids), 7)
        self.assertEqual(ids, sorted(ids, key=lambda x: -int(x[4:])))
        self.assertEqual(sorted(set(self.column(out, "WEBHOOK"))), sorted([wg["uid"], wb["uid"]]))
        self.assertEqual(sorted(self.column(out, "STATUS")), ["failed"] * 4 + ["succeeded"] * 3)
        self.assertIn("HTTP 500", out)
        self.assertRegex(out, r"\(\d+s ago\)")
        all_ = self.api_json("GET", "deliveries", "deliveries", "list")
        self.assertEqual([d["id"] for d in all_["data"]], ids)
        # filters, and one webhook's
        out = self.hl("deliveries", "list", "--status", "failed", "--event", "agent.created",
                      "--since", "1h").stdout
        self.assertEqual(len(self.column(out, "ID")), 3)
        out = self.hl("deliveries", "list", "--webhook", wg["uid"]).stdout
        self.assertNotIn("WEBHOOK", out)
        self.assertEqual(self.column(out, "STATUS"), ["succeeded"] * 3)
        mine = self.api_json("GET", "webhooks/%s/deliveries" % wg["uid"], "deliveries", "list",
                             "--webhook", wg["uid"])
        self.assertEqual(len(mine["data"]), 3)
        self.assertEqual(self.hl("deliveries", "list", "--until", "1h").stdout, "none\n")
        # pages: one page says there is more; --all follows nextCursor
        out = self.hl("deliveries", "list", "--limit", "2").stdout
        self.assertEqual(len(self.column(out, "ID")), 2)
        self.assertIn("--all", out)
        self.assertEqual(self.column(self.hl("deliveries", "list", "--limit", "2",
                                             "--all").stdout, "ID"), ids)
        merged = self.api_json("GET", "deliveries", "deliveries", "list", "--limit", "2", "--all")
        self.assertEqual(merged, {"data": all_["data"], "nextCursor": None})
        # show: the attempt log, readable, and nothing of the response reaches the terminal raw
        failed = [d for d in all_["data"] if d["webhookUid"] == wb["uid"]][0]["id"]
        out = self.hl("deliveries", "show", failed).stdout
        self.assertRegex(out, r"status:\s+failed")
        self.assertRegex(out, r"#1  .* ms  500  HTTP 500")
        self.assertRegex(out, r"#2  .* ms  500  HTTP 500")
        self.assertIn("<h1>down?[2J</h1>", out)
        self.assertIn("line 2", out)
        self.assertNotIn("\x1b", out)
        full = self.api_json("GET", "deliveries/" + failed, "deliveries", "show", failed)
        self.assertEqual(len(full["attemptLog"]), 2)
        # resend and recover
        out = self.hl("deliveries", "resend", failed).stdout
        self.assertIn("queued %s again" % failed, out)
        wait_for(lambda: self.app.ok("GET", "deliveries/" + failed)["status"] == "failed"
                 and self.app.ok("GET", "deliveries/" + failed)["attempts"] == 3,
                 what="the resend")
        again = self.api_json("POST", "deliveries/%s/resend" % failed, "deliveries", "resend",
                              failed, code=202)
        self.assertEqual(again["id"], failed)
        self.settled(wb["uid"], 4)
        out = self.hl("deliveries", "recover", wb["uid"], "--since", "1h").stdout
        self.assertRegex(out, r"queued 4 deliveries of %s again \(4 failed, 0 failing\)" % wb["uid"])
        self.settled(wb["uid"], 4)
        got = self.api_json("POST", "webhooks/%s/recover" % wb["uid"], "deliveries", "recover",
                            wb["uid"], "--since", iso(time.time() - 3600), "--until",
                            iso(time.time() + 60), code=202)
        self.assertEqual(got, {"queued": 4, "failed": 4, "failing": 0})
        self.hl("deliveries", "recover", wb["uid"], status=2)  # --since is required
        r = self.hl("deliveries", "show", "dlv_0", status=1)
        self.assertIn("404 not_found", r.stderr)

    def test_failing(self):
        # failing: its last attempt failed and another is scheduled (503 asks for an hour's wait)
        later = self.receiver(lambda n, req: (503, b"busy", {"Retry-After": "3600"}, 0))
        good = self.receiver()
        wl = self.app.webhook(later.url(), entities=["agent"])
        wg = self.app.webhook(good.url(), entities=["agent"])
        self.app.ok("POST", "agents", {"agentName": "a", "externalTenantId": "t"})
        self.settled(wg["uid"], 1)
        mine = "webhooks/%s/deliveries" % wl["uid"]
        d = wait_for(lambda: [x for x in self.app.ok("GET", mine)["data"] if x["attempts"] == 1],
                     what="the first failed attempt")[0]
        self.assertEqual(d["status"], "failing")
        out = self.hl("deliveries", "list", "--status", "failing").stdout
        self.assertEqual(self.column(out, "ID"), [d["id"]])
        self.assertEqual(self.column(out, "STATUS"), ["failing"])
        got = self.api_json("GET", "deliveries", "deliveries", "list", "--status", "failing")
        self.assertEqual([x["id"] for x in got["data"]], [d["id"]])
        got = self.api_json("GET", mine, "deliveries", "list", "--webhook", wl["uid"],
                            "--status", "failing")
        self.assertEqual([x["id"] for x in got["data"]], [d["id"]])
        self.assertEqual(len(self.column(self.hl("deliveries", "list", "--status",
                                                 "succeeded").stdout, "ID")), 1)
        r = self.hl("deliveries", "list", "--status", "stuck", status=1)
        self.assertIn("422 invalid_status: status must be pending, failing,", r.stderr)

    # ---- events ----

    def test_events(self):
        rx = self.receiver()
        w = self.app.webhook(rx.url(), entities=["agent"])
        a = self.app.ok("POST", "agents", {"agentName": "Support", "externalTenantId": "t-1"})
        self.app.ok("POST", "contexts", {"name": "kb", "externalTenantId": "t-2"})
        # publish, once per idempotency key
        data = json.dumps({"uid": "agent-x", "externalTenantId": "t-3", "note": "from elsewhere"})
        out = self.hl("events", "publish", "agent.updated", "--data", data,
                      "--idempotency-key", "k-1").stdout
        self.assertRegex(out, r"published evt_\S+ \(agent.updated\) at .*ago\)")
        first = re.search(r"(evt_\S+)", out).group(1)
        pub = self.api_json("POST", "events", "events", "publish", "agent.updated", "--data",
                            data, "--idempotency-key", "k-1", code=202)
        self.assertEqual(pub["eventId"], first)
        self.hl("events", "publish", "agent.updated", "--data", "[1]", status=2)
        self.hl("events", "publish", "agent.updated", "--data", "{", status=2)
        r = self.hl("events", "publish", "agent.nope", "--data", data, status=1)
        self.assertIn("422 event_unknown", r.stderr)
        rx.wait_count(2)
        # list: newest first, with tenant and resource
        out = self.hl("events", "list").stdout
        self.assertEqual(self.column(out, "EVENT"),
                         ["agent.updated", "context.created", "agent.created"])
        self.assertEqual(self.column(out, "TENANT"), ["t-3", "t-2", "t-1"])
        self.assertEqual(self.column(out, "RESOURCE")[2], a["uid"])
        out = self.hl("events", "list", "--event", "agent.created").stdout
        self.assertEqual(self.column(out, "EVENT"), ["agent.created"])
        out = self.hl("events", "list", "--tenant", "t-2", "--since", "1h").stdout
        self.assertEqual(self.column(out, "TENANT"), ["t-2"])
        log = self.api_json("GET", "events", "events", "list", "--limit", "1", "--all")
        self.assertEqual([e["eventId"] for e in log["data"]][0], first)
        self.assertEqual(len(log["data"]), 3)
        # show: the data as sent and the deliveries it made
        created = log["data"][2]["eventId"]
        out = self.hl("events", "show", created).stdout
        self.assertRegex(out, r"tenant:\s+t-1")
        self.assertIn('"agentName": "Support"', out)
        self.assertIn(w["uid"], out)
        ev = self.api_json("GET", "events/" + created, "events", "show", created)
        self.assertEqual(ev["data"]["uid"], a["uid"])
        self.assertEqual(len(ev["deliveries"]), 1)

    # ---- for people: local times, colour on a terminal, control characters ----

    def test_people(self):
        self.app.webhook("http://127.0.0.1:9/x", description="evil\x1b]0;title\x07 name")
        utc = self.hl("webhooks", "list").stdout
        self.assertEqual(self.column(utc, "LAST ATTEMPT"), ["-"])
        # local time: the same instant, nine hours on in UTC+9
        w = json.loads(self.hl("webhooks", "list", "--json").stdout)["data"][0]
        h = int(w["createdAt"][11:13])
        self.assertRegex(self.hl("webhooks", "get", w["uid"]).stdout,
                         r"created:\s+\S+ %02d:\d\d:\d\d \(\d+s ago\)" % h)
        out = self.hl("webhooks", "get", w["uid"], env=self.env(TZ="XYZ-9")).stdout
        self.assertRegex(out, r"created:\s+\S+ %02d:\d\d:\d\d \(\d+s ago\)" % ((h + 9) % 24))
        # the description's control characters never reach the terminal
        self.assertIn("description:    evil?]0;title? name", out)
        self.assertNotIn("\x1b", out)
        self.assertNotIn("\x07", out)
        # colour only on a terminal, and not with NO_COLOR
        self.assertNotIn("\x1b[", utc)
        self.assertIn("\x1b[32mactive", self.on_terminal(["webhooks", "list"], self.env()))
        self.assertNotIn("\x1b[", self.on_terminal(["webhooks", "list"], self.env(NO_COLOR="1")))
        self.assertNotIn("\x1b[", self.on_terminal(["webhooks", "list", "--json"], self.env()))

    def on_terminal(self, args, env):
        """Runs hookline with stdout on a pseudo-terminal; returns what it printed there."""
        master, slave = pty.openpty()
        try:
            p = subprocess.Popen([BIN] + args, stdout=slave, stderr=subprocess.PIPE, env=env,
                                 cwd=self.cwd, stdin=subprocess.DEVNULL)
            os.close(slave)
            slave = None
            out = b""
            while True:
                try:
                    chunk = os.read(master, 65536)
                except OSError:  # EIO: the child closed its end
                    break
                if not chunk:
                    break
                out += chunk
            self.assertEqual(p.wait(timeout=60), 0, p.stderr.read())
            p.stderr.close()
            return out.decode("utf-8", "replace")
        finally:
            os.close(master)
            if slave is not None:
                os.close(slave)

    # ---- where it connects, and what its exit status says ----

    def test_configuration_and_exit_statuses(self):
        # beside a `make run` server: data/dev-app-uid and data/dev-api-key
        os.makedirs(os.path.join(self.cwd, "data"))
        for name, value in (("dev-app-uid", self.app.uid), ("dev-api-key", self.app.key + "\n")):
            with open(os.path.join(self.cwd, "data", name), "w") as f:
                f.write(value)
        bare = self.env(HOOKLINE_APP=None, HOOKLINE_API_KEY=None)
        self.assertEqual(self.hl("webhooks", "list", env=bare).stdout, "none\n")
        # flags beat the variables; a wrong key is the API's refusal
        r = self.hl("webhooks", "list", "--key", "hlk_wrong", status=1)
        self.assertIn("401 unauthorized", r.stderr)
        r = self.hl("webhooks", "list", env=self.env(HOOKLINE_API_KEY="hlk_wrong"), status=1)
        self.assertIn("401 unauthorized", r.stderr)
        self.hl("webhooks", "list", "--key", self.app.key,
                env=self.env(HOOKLINE_API_KEY="hlk_wrong"))
        # no app anywhere: usage, saying where it looked
        elsewhere = tempfile.mkdtemp(prefix="hookline-client-")
        self.addCleanup(shutil.rmtree, elsewhere, True)
        r = self.hl("events", "list", env=bare, cwd=elsewhere, status=2)
        self.assertIn("--app", r.stderr)
        self.assertIn("data/dev-app-uid", r.stderr)
        # a server nobody answers at: 3, naming it
        port = free_port()
        r = self.hl("webhooks", "list", "--server", "http://127.0.0.1:%d" % port, status=3)
        self.assertIn("cannot reach the server at http://127.0.0.1:%d" % port, r.stderr)
        r = self.hl("deliveries", "list", env=self.env(HOOKLINE_SERVER="http://127.0.0.1:%d"
                                                        % port), status=3)
        self.assertIn("127.0.0.1:%d" % port, r.stderr)
        # usage errors: 2, and the message names what is wrong; nothing reached the server
        before = self.app.ok("GET", "webhooks")
        for args, said in (
                (["webhooks"], "usage: hookline webhooks COMMAND"),
                (["webhooks", "frob"], "unknown command 'frob'"),
                (["webhooks", "get"], "want one operand: a webhook UID"),
                (["deliveries", "show"], "want one operand: a delivery ID"),
                (["events", "show"], "want one operand: an event ID"),
                (["events", "publish", "--data", "{}"], "want one operand: an event name"),
                (["webhooks", "list", "extra"], "unexpected argument 'extra'"),
                (["webhooks", "get", "a", "b"], "unexpected argument 'b'"),
                (["webhooks", "list", "--bogus"], "unknown option --bogus"),
                (["webhooks", "list", "--limit"], "--limit needs a value"),
                (["deliveries", "list", "--since", "yesterday"],
                 "--since yesterday: want an ISO 8601 time"),
                (["webhooks", "create", "--url", "ftp://x"],
                 "--url ftp://x: want an http:// or https:// URL"),
                (["webhooks", "create"], "--url is required"),
                (["webhooks", "update", "w"], "nothing to change"),
                (["webhooks", "rotate-secret", "w", "--overlap", "31d"],
                 "--overlap 31d: want a duration"),
                (["events", "list", "--limit", "101"], "--limit 101: want a whole number"),
                (["events", "publish", "agent.updated", "--data", "[1]"],
                 "--data: want a JSON object, not an array"),
                (["events", "publish", "agent.updated", "--data", "{"], "--data: not JSON"),
                (["events", "publish", "agent.updated"], "--data is required"),
                (["deliveries", "recover", "w"], "--since is required"),
                (["webhooks", "list", "--server", "localhost:8080"],
                 "--server localhost:8080: want an http:// or https:// URL")):
            with self.subTest(args=args):
                r = self.hl(*args, status=2)
                self.assertIn(said, r.stderr)
                self.assertEqual(r.stdout, "")
        self.assertEqual(self.app.ok("GET", "webhooks"), before)
        self.assertEqual(self.app.ok("GET", "events")["data"], [])
        # every command's help, with an example
        for group, names in (("webhooks", ("list", "get", "create", "update", "pause", "resume",
                                           "delete", "test", "rotate-secret")),
                             ("deliveries", ("list", "show", "resend", "recover")),
                             ("events", ("list", "show", "publish"))):
            self.assertIn(names[-1], self.hl(group, "--help").stdout)
            for name in names:
                with self.subTest(command=(group, name)):
                    out = self.hl(group, name, "--help").stdout
                    self.assertIn("usage: hookline %s %s" % (group, name), out)
                    self.assertIn("example: hookline %s %s" % (group, name), out)
                    self.assertIn("--server URL", out)
                    self.assertIn("Exit status", out)
        self.assertIn("deliveries", self.hl("--help").stdout)


if __name__ == "__main__":
    main()
