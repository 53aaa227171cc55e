"""A webhook's delivery policy (issue 19): `filter` (which events it gets deliveries of) and
`headers` (static request headers on every attempt).

Deliveries are made in the event's transaction, so a webhook's delivery list right after the
change's answer says exactly which events its filter let through: no waiting is asserted. The
headers are checked at a real receiver on the first attempt, a retry, a resend and a test event.
"""
import json
import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(__file__))
from harness import BIN, ServerTest, main, wait_for  # noqa: E402


def publish(app, data, event="agent.updated", raw=None):
    """Publishes an event (raw: the body's exact bytes) and returns its eventId."""
    if raw is not None:
        r = app.call("POST", "events", raw=raw.encode(),
                     headers={"Content-Type": "application/json"})
        assert r.status == 202, r.body
        return r.json()["eventId"]
    return app.ok("POST", "events", {"event": event, "data": data}, status=202)["eventId"]


def delivered(app, w):
    """The eventIds of a webhook's deliveries."""
    got = app.ok("GET", "webhooks/%s/deliveries?limit=100" % w["uid"])["data"]
    return {d["eventId"] for d in got}


class Filter(ServerTest):

    def test_and_across_paths_or_within_a_list_by_json_value(self):
        rx = self.receiver()
        both = self.app.webhook(rx.url("/both"), filter={
            "data.externalTenantId": ["tenant-a", "tenant-b"], "data.live": [True]})
        every = self.app.webhook(rx.url("/every"))
        one = self.app.webhook(rx.url("/one"), filter={"data.n": [1]})
        # 1.0 as the client wrote it: the same number as 1
        r = self.app.call("POST", "webhooks", raw=(
            '{"url":"%s","entities":["agent"],"filter":{"data.n":[1.0, 7.5]}}'
            % rx.url("/one-point-zero")).encode(), headers={"Content-Type": "application/json"})
        self.assertEqual(r.status, 201, r.body)
        one_f = r.json()
        nul = self.app.webhook(rx.url("/null"), filter={"data.x": [None]})
        tag = self.app.webhook(rx.url("/tag"), filter={"data.tags.1": ["b"], "event":
                                                        ["agent.updated"]})
        # "\u00e9" escaped in the filter, raw in the event: both are é
        r = self.app.call("POST", "webhooks", raw=(
            '{"url":"%s","entities":["agent"],"filter":{"data.s":["caf\\u00e9"]}}'
            % rx.url("/uni")).encode(), headers={"Content-Type": "application/json"})
        self.assertEqual(r.status, 201, r.body)
        uni = r.json()
        self.assertEqual(uni["filter"], {"data.s": ["café"]})
        self.assertEqual(one_f["filter"], {"data.n": [1, 7.5]})

        e1 = publish(self.app, None, raw=(
            '{"event":"agent.updated","data":{"uid":"agent-1","externalTenantId":"tenant-a",'
            '"live":true,"n":1e0,"x":null,"tags":["a","b"],"s":"café"}}'))
        e2 = publish(self.app, {"uid": "agent-2", "externalTenantId": "tenant-b", "live": False,
                                "n": 2, "x": 0, "tags": ["b"]})
        e3 = publish(self.app, {"uid": "agent-3", "externalTenantId": "tenant-c", "live": True,
                                "n": 7.5, "x": "null", "s": "cafe"})
        e4 = publish(self.app, {"uid": "agent-4", "externalTenantId": "tenant-a",
                                "live": "true"})
        e5 = publish(self.app, {"uid": "agent-5", "externalTenantId": "tenant-b", "live": True,
                                "n": "1"})
        e6 = publish(self.app, {"uid": "agent-6", "externalTenantId": "tenant-a", "live": 1,
                                "tags": {"1": "b"}})
        e7 = publish(self.app, {"uid": "agent-7", "externalTenantId": "tenant-a", "live": True,
                                "tags": ["a", "b"]}, event="agent.created")

        self.assertEqual(delivered(self.app, both), {e1, e5, e7})
        self.assertEqual(delivered(self.app, every), {e1, e2, e3, e4, e5, e6, e7})
        self.assertEqual(delivered(self.app, one), {e1})
        self.assertEqual(delivered(self.app, one_f), {e1, e3})
        self.assertEqual(delivered(self.app, nul), {e1})  # missing x, 0, "null": no
        # tags.1: index 1 of a list or key "1" of an object; e7 has it but is agent.created
        self.assertEqual(delivered(self.app, tag), {e1, e6})
        self.assertEqual(delivered(self.app, uni), {e1})

        # filtered-out events are still in the event log
        log = {e["eventId"] for e in self.app.ok("GET", "events?limit=100")["data"]}
        self.assertTrue({e1, e2, e3, e4, e5, e6, e7} <= log)
        # and what was let through arrives
        got = rx.wait_count(3, "/both")
        self.assertEqual({json.loads(q["body"])["eventId"] for q in got}, {e1, e5, e7})

    def test_filter_is_shown_changed_and_removed(self):
        w = self.app.webhook("http://127.0.0.1:9/x", entities=["agent"])
        self.assertIsNone(w["filter"])
        self.assertIsNone(self.app.ok("GET", "webhooks/" + w["uid"])["filter"])
        t1 = publish(self.app, {"uid": "agent-1", "externalTenantId": "t1"})
        f = {"data.externalTenantId": ["t2"]}
        got = self.app.ok("PATCH", "webhooks/" + w["uid"], {"filter": f})
        self.assertEqual(got["filter"], f)
        self.assertEqual(self.app.ok("GET", "webhooks/" + w["uid"])["filter"], f)
        listed = [x for x in self.app.ok("GET", "webhooks")["data"] if x["uid"] == w["uid"]]
        self.assertEqual(listed[0]["filter"], f)
        # a PATCH of another field keeps the filter
        self.assertEqual(self.app.ok("PATCH", "webhooks/" + w["uid"],
                                     {"description": "d"})["filter"], f)
        # the change decides for events committed after it, not before
        t1b = publish(self.app, {"uid": "agent-1", "externalTenantId": "t1"})
        t2 = publish(self.app, {"uid": "agent-2", "externalTenantId": "t2"})
        self.assertEqual(delivered(self.app, w), {t1, t2})
        self.assertIsNone(self.app.ok("PATCH", "webhooks/" + w["uid"],
                                      {"filter": None})["filter"])
        t1c = publish(self.app, {"uid": "agent-1", "externalTenantId": "t1"})
        self.assertEqual(delivered(self.app, w), {t1, t2, t1c})
        self.assertNotIn(t1b, delivered(self.app, w))
        # resources' own events pass through the filter too
        self.app.ok("PATCH", "webhooks/" + w["uid"], {"filter": {"data.agentName": ["yes"]}})
        self.app.ok("POST", "agents", {"agentName": "no", "externalTenantId": "t"})
        a = self.app.ok("POST", "agents", {"agentName": "yes", "externalTenantId": "t"})
        events = self.app.ok("GET", "events?limit=2")["data"]
        yes = [e["eventId"] for e in events if e["data"]["uid"] == a["uid"]]
        self.assertEqual(delivered(self.app, w) - {t1, t2, t1c}, set(yes))

    def test_every_bad_filter_is_a_422_naming_the_path_and_stores_nothing(self):
        w = self.app.webhook("http://127.0.0.1:9/x", entities=["agent"],
                             filter={"data.k": ["v"]})
        many_paths = {"data.p%d" % i: [i] for i in range(21)}
        twenty = {"data.p%d" % i: [i] for i in range(20)}
        hundred_one = {"data.a": list(range(51)), "data.b": list(range(50))}
        cases = [
            ([1], "filter_not_object", "filter must be an object"),
            ("data.x", "filter_not_object", "filter must be an object"),
            ({}, "filter_empty", "filter must name"),
            (many_paths, "filter_too_many_paths", "filter must name at most 20 paths"),
            (hundred_one, "filter_too_many_values", 'filter["data.b"] goes past 100'),
            ({"data.x": []}, "filter_values_invalid", 'filter["data.x"] must be a non-empty'),
            ({"data.x": "v"}, "filter_values_invalid", 'filter["data.x"] must be a non-empty'),
            ({"data.x": [{"a": 1}]}, "filter_values_invalid", 'filter["data.x"] accepts'),
            ({"data.x": [[1]]}, "filter_values_invalid", 'filter["data.x"] accepts'),
            ({"data.x": ["v" * 1025]}, "filter_values_invalid", 'filter["data.x"] accepts'),
            ({"externalTenantId": ["t"]}, "filter_path_invalid",
             'filter["externalTenantId"] must start with a key of the envelope'),
            ({"data..x": [1]}, "filter_path_invalid", 'filter["data..x"] is not a dotted path'),
            ({"data.": [1]}, "filter_path_invalid", 'filter["data."] is not a dotted path'),
            ({".data": [1]}, "filter_path_invalid", 'filter[".data"] is not a dotted path'),
            ({"": [1]}, "filter_path_invalid", 'filter[""] is not a dotted path'),
            ({"data." + "x" * 300: [1]}, "filter_path_too_long", 'filter["data.xxx'),
        ]
        before = self.app.ok("GET", "webhooks/" + w["uid"])
        count = len(self.app.ok("GET", "webhooks")["data"])
        for f, code, msg in cases:
            with self.subTest(filter=str(f)[:60]):
                for method, path, body in (
                        ("POST", "webhooks", {"url": "http://127.0.0.1:9/y",
                                              "entities": ["agent"], "filter": f}),
                        ("PATCH", "webhooks/" + w["uid"], {"filter": f, "url":
                                                           "http://127.0.0.1:9/z"})):
                    r = self.app.call(method, path, body)
                    self.assertEqual(r.status, 422, r.body)
                    err = r.json()["error"]
                    self.assertEqual(err["code"], code)
                    self.assertTrue(err["message"].startswith(msg), err["message"])
        self.assertEqual(self.app.ok("GET", "webhooks/" + w["uid"]), before)
        self.assertEqual(len(self.app.ok("GET", "webhooks")["data"]), count)
        # the limits themselves are fine: 20 paths, 100 values on one path
        self.app.ok("PATCH", "webhooks/" + w["uid"], {"filter": twenty})
        self.app.ok("PATCH", "webhooks/" + w["uid"], {"filter": {"data.a": list(range(100))}})


FORBIDDEN = ["Content-Type", "content-length", "Content-Encoding", "Host", "Connection",
             "Transfer-Encoding", "TE", "Upgrade", "Keep-Alive", "Proxy-Authorization",
             "proxy-connection", "Trailer", "HTTP2-Settings", "User-Agent", "Expect",
             "webhook-id", "Webhook-Signature", "webhook-timestamp", "X-Webhook-Signature",
             "x-webhook-event-id", "X-Webhook-Timestamp", "X-Webhook-Signature-Previous",
             "svix-id", "Svix-Signature", "X-Hookline-Anything"]


class Headers(ServerTest):

    HEADERS = {"Authorization": "Bearer 9f2c1e", "X-Tenant-Region": "eu-west-1",
               "X-Empty": "", "X-Quoted": "a \"b\"\tc; d=é"}

    def check_headers(self, req):
        h = req["headers"]
        for k, v in self.HEADERS.items():
            self.assertIn(k.lower(), h)
            self.assertEqual(h[k.lower()].encode("latin-1").decode("utf-8"), v)
        self.assertEqual(h["content-type"], "application/json")

    def test_sent_on_first_attempt_retry_resend_and_test(self):
        rx = self.receiver(lambda n, req: (500 if n == 0 else 200, b"", {}, 0))
        w = self.app.webhook(rx.url(), entities=["agent"], headers=self.HEADERS)
        self.assertEqual(w["headers"], self.HEADERS)
        self.assertEqual(self.app.ok("GET", "webhooks/" + w["uid"])["headers"], self.HEADERS)
        self.app.ok("POST", "agents", {"agentName": "x", "externalTenantId": "t"})
        reqs = rx.wait_count(2)  # the first attempt fails, the retry succeeds
        self.assertEqual(reqs[0]["body"], reqs[1]["body"])
        for q in reqs:
            self.check_headers(q)
        ds = self.app.ok("GET", "webhooks/%s/deliveries" % w["uid"])["data"]
        wait_for(lambda: self.app.ok("GET", "deliveries/" + ds[0]["id"])["status"]
                 == "succeeded", what="delivery succeeded")
        self.app.ok("POST", "deliveries/%s/resend" % ds[0]["id"], status=202)
        self.check_headers(rx.wait_count(3)[2])
        self.app.ok("POST", "webhooks/%s/test" % w["uid"], status=200)
        self.check_headers(rx.wait_count(4)[3])

    def test_changed_and_cleared(self):
        rx = self.receiver()
        w = self.app.webhook(rx.url(), entities=["agent"])
        self.assertIsNone(w["headers"])
        got = self.app.ok("PATCH", "webhooks/" + w["uid"], {"headers": {"X-One": "1"}})
        self.assertEqual(got["headers"], {"X-One": "1"})
        self.app.ok("POST", "agents", {"agentName": "x", "externalTenantId": "t"})
        self.assertEqual(rx.wait_count(1)[0]["headers"].get("x-one"), "1")
        # {} and null both mean none
        self.assertIsNone(self.app.ok("PATCH", "webhooks/" + w["uid"], {"headers": {}})
                          ["headers"])
        self.app.ok("PATCH", "webhooks/" + w["uid"], {"headers": {"X-Two": "2"}})
        self.assertIsNone(self.app.ok("PATCH", "webhooks/" + w["uid"], {"headers": None})
                          ["headers"])
        self.app.ok("POST", "agents", {"agentName": "y", "externalTenantId": "t"})
        second = rx.wait_count(2)[1]["headers"]
        self.assertNotIn("x-one", second)
        self.assertNotIn("x-two", second)

    def test_every_bad_header_is_a_422_naming_it_and_stores_nothing(self):
        w = self.app.webhook("http://127.0.0.1:9/x", entities=["agent"],
                             headers={"X-Keep": "k"})
        cases = [(name, {name: "v"}, "header_reserved") for name in FORBIDDEN]
        cases += [
            ("Bad Name", {"Bad Name": "v"}, "header_name_invalid"),
            ("a:b", {"a:b": "v"}, "header_name_invalid"),
            ("", {"": "v"}, "header_name_invalid"),
            ("caf??", {"café": "v"}, "header_name_invalid"),
            ("x(y)", {"x(y)": "v"}, "header_name_invalid"),
            ("X" * 129, {"X" * 129: "v"}, "header_name_invalid"),
            ("X-CR", {"X-CR": "a\rb"}, "header_value_invalid"),
            ("X-LF", {"X-LF": "a\nInjected: 1"}, "header_value_invalid"),
            ("X-Ctl", {"X-Ctl": "a\x01b"}, "header_value_invalid"),
            ("X-Del", {"X-Del": "a\x7fb"}, "header_value_invalid"),
            ("X-Lead", {"X-Lead": " v"}, "header_value_invalid"),
            ("X-Trail", {"X-Trail": "v\t"}, "header_value_invalid"),
            ("X-Long", {"X-Long": "v" * 1025}, "header_value_invalid"),
            ("X-Num", {"X-Num": 5}, "header_value_invalid"),
            ("X-Null", {"X-Null": None}, "header_value_invalid"),
            ("x-dup", {"X-Dup": "1", "x-dup": "2"}, "header_duplicate"),
        ]
        before = self.app.ok("GET", "webhooks/" + w["uid"])
        count = len(self.app.ok("GET", "webhooks")["data"])
        for name, headers, code in cases:
            with self.subTest(header=name[:40]):
                for method, path, body in (
                        ("POST", "webhooks", {"url": "http://127.0.0.1:9/y",
                                              "entities": ["agent"], "headers": headers}),
                        ("PATCH", "webhooks/" + w["uid"], {"headers": headers})):
                    r = self.app.call(method, path, body)
                    self.assertEqual(r.status, 422, r.body)
                    err = r.json()["error"]
                    self.assertEqual(err["code"], code)
                    self.assertTrue(err["message"].startswith('headers["%s"] ' % name[:79]),
                                    err["message"])
        for headers, code in (([], "headers_not_object"), ("X-A: 1", "headers_not_object"),
                              ({"X-H%d" % i: "v" for i in range(21)}, "headers_too_many")):
            r = self.app.call("PATCH", "webhooks/" + w["uid"], {"headers": headers})
            self.assertEqual((r.status, r.json()["error"]["code"]), (422, code))
            self.assertTrue(r.json()["error"]["message"].startswith("headers "))
        # a NUL cannot even be read
        r = self.app.call("PATCH", "webhooks/" + w["uid"], raw=b'{"headers":{"X-N":"a\\u0000"}}',
                          headers={"Content-Type": "application/json"})
        self.assertIn(r.status, (400, 422))
        self.assertEqual(self.app.ok("GET", "webhooks/" + w["uid"]), before)
        self.assertEqual(len(self.app.ok("GET", "webhooks")["data"]), count)
        # twenty is the most, and fine
        twenty = {"X-H%d" % i: "v" for i in range(20)}
        self.assertEqual(self.app.ok("PATCH", "webhooks/" + w["uid"], {"headers": twenty})
                         ["headers"], twenty)


class Cli(ServerTest):
    """hookline webhooks create/update take --filter and --headers, and get shows them."""

    def hl(self, *args, status=0):
        env = {k: v for k, v in os.environ.items() if not k.startswith("HOOKLINE_")}
        env.update(HOOKLINE_SERVER="http://127.0.0.1:%d" % self.server.port,
                   HOOKLINE_APP=self.app.uid, HOOKLINE_API_KEY=self.app.key)
        r = subprocess.run([BIN] + list(args), capture_output=True, text=True, env=env,
                           timeout=120, stdin=subprocess.DEVNULL)
        self.assertEqual(r.returncode, status, r.stdout + r.stderr)
        return r

    def test_create_update_and_show(self):
        f = {"data.externalTenantId": ["tenant-a"], "data.live": [True]}
        out = self.hl("webhooks", "create", "--url", "http://127.0.0.1:9/x", "--filter",
                      json.dumps(f), "--headers", '{"Authorization":"Bearer x"}', "--json")
        w = json.loads(out.stdout)
        self.assertEqual((w["filter"], w["headers"]), (f, {"Authorization": "Bearer x"}))
        out = self.hl("webhooks", "get", w["uid"]).stdout
        self.assertIn('{"data.externalTenantId":["tenant-a"],"data.live":[true]}', out)
        self.assertIn('{"Authorization":"Bearer x"}', out)
        got = json.loads(self.hl("webhooks", "update", w["uid"], "--filter", "none",
                                 "--headers", '{"X-A":"1"}', "--json").stdout)
        self.assertEqual((got["filter"], got["headers"]), (None, {"X-A": "1"}))
        self.assertIn("filter:", self.hl("webhooks", "get", w["uid"]).stdout)
        # not JSON, or not an object: a usage error before any request
        for bad in ("{", "[1]", "null"):
            r = self.hl("webhooks", "update", w["uid"], "--headers", bad, status=2)
            self.assertIn("--headers", r.stderr)
        # what the server refuses comes back as its 422
        r = self.hl("webhooks", "update", w["uid"], "--headers", '{"Host":"x"}', status=1)
        self.assertIn('headers["Host"]', r.stdout + r.stderr)
        self.assertEqual(self.app.ok("GET", "webhooks/" + w["uid"])["headers"], {"X-A": "1"})


if __name__ == "__main__":
    main()
