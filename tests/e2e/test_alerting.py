"""Alerting (issue 21): operational webhooks get endpoint.failing, endpoint.recovered,
endpoint.disabled, delivery.exhausted and endpoint.silent about an app's ordinary webhooks,
exactly when those happen, never about themselves and never at the endpoint they describe.

Counts are read from the event log: an operational event commits in the same transaction as the
attempt record (or silence claim) that causes it, so once a delivery's final state is visible
through the API, every operational event it caused is in the log. "Exactly one" is then a count,
not a wait for something not to happen."""
import json
import os
import sys
import unittest

sys.path.insert(0, os.path.dirname(__file__))
from harness import ServerTest, check_signed, main, wait_for  # noqa: E402

OP_EVENTS = ["endpoint.failing", "endpoint.recovered", "endpoint.disabled", "endpoint.silent",
             "delivery.exhausted"]


def fail_first(n, status=500):
    """A receiver behaviour: the first n requests answer status, then 200."""
    return lambda i, req: ((status, b'{"no":1}', {}, 0) if i < n else
                           (200, b'{"received":true}', {}, 0))


def always(status):
    return lambda i, req: (status, b'{"no":1}', {}, 0)


class Base(ServerTest):
    # Retries 200 ms apart, as many as the failing receivers need; the silence floor made short
    # with the test-only flag (the API's least silenceAlertSeconds becomes 1).
    server_args = ("--retry-schedule", "0,200ms,200ms,200ms,200ms,200ms,200ms,200ms",
                   "--test-silence-floor", "1s")

    def op_webhook(self, url, events=OP_EVENTS):
        return self.app.ok("POST", "operational-webhooks", {"url": url, "events": list(events)})

    def agent(self):
        return self.app.ok("POST", "agents", {"agentName": "A", "externalTenantId": "t-1"})

    def op_log(self):
        """The operational events in the app's event log: (name, data), oldest first."""
        out, cursor = [], None
        while True:
            q = "events?limit=100" + ("&cursor=" + cursor if cursor else "")
            page = self.app.ok("GET", q)
            out += [(e["event"], e["data"]) for e in page["data"] if e["event"] in OP_EVENTS]
            cursor = page["nextCursor"]
            if not cursor:
                return list(reversed(out))

    def named(self, name, about=None):
        return [d for n, d in self.op_log() if n == name and (about is None or d["uid"] == about)]

    def delivery_done(self, webhook_uid, status):
        """Waits until every delivery of the webhook has the status; returns them."""
        def done():
            d = self.app.ok("GET", "webhooks/%s/deliveries" % webhook_uid)["data"]
            return d if d and all(x["status"] == status for x in d) else None
        return wait_for(done, 30, what="deliveries of %s %s" % (webhook_uid, status))

    def received(self, rec, name, path="/ops", n=1):
        def got():
            b = [x for x in rec.bodies(path) if x["event"] == name]
            return b if len(b) >= n else None
        return wait_for(got, 30, what="%d %s at %s" % (n, name, path))


class TestOperationalWebhooks(Base):
    def test_crud_kinds_apart(self):
        ops = self.receiver()
        op = self.op_webhook(ops.url("/ops"), ["endpoint.failing"])
        self.assertTrue(op["secret"].startswith("whsec_"))
        self.assertEqual(op["events"], ["endpoint.failing"])
        self.assertNotIn("entities", op)
        hook = self.app.webhook(ops.url("/hook"))
        self.assertIsNone(hook["silenceAlertSeconds"])
        self.assertFalse(hook["expectEvents"])
        # Each family lists and shows its own kind only.
        self.assertEqual([w["uid"] for w in self.app.ok("GET", "webhooks")["data"]],
                         [hook["uid"]])
        self.assertEqual([w["uid"] for w in self.app.ok("GET", "operational-webhooks")["data"]],
                         [op["uid"]])
        self.assertEqual(self.app.call("GET", "webhooks/" + op["uid"]).status, 404)
        self.assertEqual(self.app.call("GET", "operational-webhooks/" + hook["uid"]).status, 404)
        self.assertEqual(self.app.call("DELETE", "webhooks/" + op["uid"]).status, 404)
        got = self.app.ok("PATCH", "operational-webhooks/" + op["uid"],
                          {"events": ["endpoint.disabled", "delivery.exhausted"]})
        self.assertEqual(got["events"], ["endpoint.disabled", "delivery.exhausted"])
        rot = self.app.ok("POST", "operational-webhooks/%s/rotate-secret" % op["uid"], {},
                          status=200)
        self.assertNotEqual(rot["secret"], op["secret"])
        # Bad input names the field and stores nothing.
        for body, field in (({"url": ops.url()}, "events"),
                            ({"url": ops.url(), "events": []}, "events"),
                            ({"url": ops.url(), "events": ["agent.created"]}, "events"),
                            ({"url": ops.url(), "events": OP_EVENTS, "entities": ["agent"]},
                             "unknown field \"entities\"")):
            r = self.app.call("POST", "operational-webhooks", body)
            self.assertEqual(r.status, 422, body)
            self.assertTrue(r.json()["error"]["message"].startswith(field), r.body)
        for bad in (0, 0.5, "60", 30 * 24 * 3600 + 1):
            r = self.app.call("PATCH", "webhooks/" + hook["uid"], {"silenceAlertSeconds": bad})
            self.assertEqual(r.status, 422, bad)
            self.assertTrue(r.json()["error"]["message"].startswith("silenceAlertSeconds"))
        r = self.app.call("POST", "webhooks", {"url": ops.url(), "entities": ["agent"],
                                               "expectEvents": "yes"})
        self.assertEqual(r.status, 422)
        self.assertTrue(r.json()["error"]["message"].startswith("expectEvents"))
        self.assertEqual(len(self.app.ok("GET", "webhooks")["data"]), 1)
        got = self.app.ok("PATCH", "webhooks/" + hook["uid"],
                          {"silenceAlertSeconds": 3600, "expectEvents": True})
        self.assertEqual((got["silenceAlertSeconds"], got["expectEvents"]), (3600, True))
        got = self.app.ok("PATCH", "webhooks/" + hook["uid"], {"silenceAlertSeconds": None})
        self.assertIsNone(got["silenceAlertSeconds"])
        self.app.ok("DELETE", "operational-webhooks/" + op["uid"])
        self.assertEqual(self.app.ok("GET", "operational-webhooks")["data"], [])

    def test_failing_then_recovered_once(self):
        ops = self.receiver()
        op = self.op_webhook(ops.url("/ops"))
        bad = self.receiver(fail_first(3))
        hook = self.app.webhook(bad.url("/hook"))
        ev = self.agent()
        self.delivery_done(hook["uid"], "succeeded")
        self.assertEqual(len(bad.requests), 4)
        failing = self.named("endpoint.failing")
        recovered = self.named("endpoint.recovered")
        self.assertEqual(len(failing), 1, failing)
        self.assertEqual(len(recovered), 1, recovered)
        f, r = failing[0], recovered[0]
        self.assertEqual((f["uid"], f["url"]), (hook["uid"], hook["url"]))
        self.assertEqual(f["statusCode"], 500)
        self.assertEqual(f["waiting"], 1)
        self.assertEqual((r["uid"], r["url"]), (hook["uid"], hook["url"]))
        self.assertEqual(r["failingSince"], f["failingSince"])
        self.assertGreaterEqual(r["failedForMs"], 0)
        self.assertEqual(r["recoveredDeliveries"], 1)
        self.assertEqual(r["waiting"], 0)
        # Delivered to the operational webhook, signed with its own secret (both schemes).
        self.received(ops, "endpoint.failing")
        got = self.received(ops, "endpoint.recovered")
        req = [q for q in ops.requests if json.loads(q["body"])["event"] == "endpoint.recovered"]
        check_signed(self, req[0], op["secret"])
        self.assertEqual(got[0]["data"], r)
        # A healthy endpoint's next success says nothing.
        self.agent()
        wait_for(lambda: len(bad.requests) == 5, 30, what="the second delivery")
        self.delivery_done(hook["uid"], "succeeded")
        self.assertEqual(len(self.named("endpoint.failing")), 1)
        self.assertEqual(len(self.named("endpoint.recovered")), 1)
        del ev

    def test_gone_disables(self):
        ops = self.receiver()
        self.op_webhook(ops.url("/ops"))
        gone = self.receiver(always(410))
        hook = self.app.webhook(gone.url("/gone"))
        self.agent()
        self.delivery_done(hook["uid"], "failed")
        disabled = self.named("endpoint.disabled")
        self.assertEqual(len(disabled), 1, disabled)
        self.assertEqual((disabled[0]["uid"], disabled[0]["url"]), (hook["uid"], hook["url"]))
        self.assertEqual(disabled[0]["reason"], "endpoint answered 410 Gone")
        self.assertEqual(self.named("endpoint.failing"), [])  # a 410 is a disable, not a spell
        self.assertEqual(self.received(ops, "endpoint.disabled")[0]["data"], disabled[0])

    def test_no_loops_and_not_to_the_endpoint_described(self):
        # The operational webhook at /same fails too, and sits at the URL of the ordinary
        # webhook described: it gets nothing about it, and its own failures make no events.
        shared = self.receiver(always(500))
        ops = self.receiver()
        same = self.op_webhook(shared.url("/same"))
        other = self.op_webhook(ops.url("/ops"))
        hook = self.app.webhook(shared.url("/same"))
        self.agent()
        self.received(ops, "endpoint.failing")
        failing = self.named("endpoint.failing")
        self.assertEqual(len(failing), 1)
        self.assertEqual(failing[0]["uid"], hook["uid"])
        # The event went to the other operational webhook only.
        for e in self.app.ok("GET", "events?limit=100")["data"]:
            if e["event"] in OP_EVENTS:
                got = self.app.ok("GET", "events/" + e["eventId"])
                self.assertEqual({d["webhookUid"] for d in got["deliveries"]}, {other["uid"]})
        self.assertEqual(self.app.ok("GET", "operational-webhooks/%s/deliveries"
                                     % same["uid"])["data"], [])
        # Now make the failing operational webhook fail on its own: a test event to it.
        self.app.call("POST", "operational-webhooks/%s/test" % same["uid"], {})
        self.delivery_done_op(same["uid"])
        for name, data in self.op_log():
            self.assertEqual(data["uid"], hook["uid"], (name, data))

    def delivery_done_op(self, uid):
        def failed_once():
            d = self.app.ok("GET", "operational-webhooks/%s/deliveries" % uid)["data"]
            return d and all(x["attempts"] >= 2 for x in d)
        wait_for(failed_once, 30, what="failed attempts of the operational webhook")


class TestExhausted(Base):
    server_args = ("--retry-schedule", "0,100ms,100ms")

    def test_two_short_retries_exhaust(self):
        ops = self.receiver()
        self.op_webhook(ops.url("/ops"))
        bad = self.receiver(always(503))
        hook = self.app.webhook(bad.url("/hook"))
        self.agent()
        dl = self.delivery_done(hook["uid"], "failed")
        self.assertEqual(len(bad.requests), 3)
        ex = self.named("delivery.exhausted")
        self.assertEqual(len(ex), 1, ex)
        self.assertEqual((ex[0]["uid"], ex[0]["url"]), (hook["uid"], hook["url"]))
        self.assertEqual(ex[0]["deliveryId"], dl[0]["id"])
        self.assertEqual(ex[0]["eventId"], dl[0]["eventId"])
        self.assertEqual(ex[0]["event"], "agent.created")
        self.assertEqual(ex[0]["attempts"], 3)
        self.assertEqual(ex[0]["statusCode"], 503)
        self.assertEqual(len(self.named("endpoint.failing")), 1)
        self.assertEqual(self.received(ops, "delivery.exhausted")[0]["data"], ex[0])


class TestSilence(Base):
    def test_silent_once_then_again_after_recovery(self):
        ops = self.receiver()
        self.op_webhook(ops.url("/ops"), ["endpoint.silent"])
        rec = self.receiver()
        quiet = self.app.webhook(rec.url("/quiet"), silenceAlertSeconds=1, expectEvents=True)
        # No events and not expecting any: never silent.
        idle = self.app.webhook(rec.url("/idle"), silenceAlertSeconds=1)
        first = self.received(ops, "endpoint.silent")
        self.assertEqual(first[0]["data"]["uid"], quiet["uid"])
        self.assertEqual(first[0]["data"]["silenceAlertSeconds"], 1)
        self.assertIs(first[0]["data"]["expectEvents"], True)
        self.assertIsNone(first[0]["data"]["lastSuccessAt"])
        # A webhook made now goes silent a second later: sweeps ran meanwhile, and the first
        # one, still silent, was not alerted again; the idle one never was.
        later = self.app.webhook(rec.url("/later"), silenceAlertSeconds=1, expectEvents=True)
        wait_for(lambda: self.named("endpoint.silent", later["uid"]), 30, what="later silent")
        self.assertEqual(len(self.named("endpoint.silent", quiet["uid"])), 1)
        self.assertEqual(self.named("endpoint.silent", idle["uid"]), [])
        # A delivery succeeds (recovery): after another silence, a second alert.
        self.app.ok("PATCH", "webhooks/" + later["uid"], {"active": False})
        self.app.ok("PATCH", "webhooks/" + idle["uid"], {"active": False})
        self.agent()
        self.delivery_done(quiet["uid"], "succeeded")
        wait_for(lambda: len(self.named("endpoint.silent", quiet["uid"])) == 2, 30,
                 what="the second silent alert")
        second = self.named("endpoint.silent", quiet["uid"])[1]
        self.assertIsNotNone(second["lastSuccessAt"])

    def test_owed_delivery_makes_silence(self):
        ops = self.receiver()
        self.op_webhook(ops.url("/ops"), ["endpoint.silent"])
        down = self.receiver(always(500))
        hook = self.app.webhook(down.url("/down"), silenceAlertSeconds=1)
        self.agent()
        got = self.received(ops, "endpoint.silent")
        self.assertEqual(got[0]["data"]["uid"], hook["uid"])
        self.assertIs(got[0]["data"]["expectEvents"], False)


if __name__ == "__main__":
    main()
