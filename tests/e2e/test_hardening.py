"""A hostile tenant with its own API key: malformed uploads, oversized input, floods. Every case
gets a 4xx JSON error and leaves nothing behind; the server keeps serving everyone."""
import hashlib
import http.client
import json
import os
import sys
import unittest
import urllib.parse

sys.path.insert(0, os.path.dirname(__file__))
from harness import ServerTest, main, sqlite_only, wait_for  # noqa: E402

# What these refuse is refused before the store on either backend; a context file stored on
# PostgreSQL, by multipart and by a raw body, is e2e-pg/test_ingest's (and unit-pg/store_test's).
BEFORE_THE_STORE = ("refused or parsed before the store; e2e-pg/test_ingest stores uploads on "
                    "PostgreSQL")


def part(headers, data):
    """One multipart part (without its boundary line): header lines, a blank line, the data."""
    out = b"".join(h + b"\r\n" for h in headers)
    return out + b"\r\n" + data


def form(parts, boundary=b"XyZ", close=True):
    """A multipart/form-data body of parts; without its closing boundary unless close."""
    body = b"".join(b"--" + boundary + b"\r\n" + p + b"\r\n" for p in parts)
    if close:
        body += b"--" + boundary + b"--\r\n"
    return body


def file_part(data, filename=b"a.txt", ctype=b"text/plain"):
    headers = [b'Content-Disposition: form-data; name="file"; filename="' + filename + b'"']
    if ctype is not None:
        headers.append(b"Content-Type: " + ctype)
    return part(headers, data)


def field_part(name, value):
    return part([b'Content-Disposition: form-data; name="' + name + b'"'], value)


class UploadTest(ServerTest):
    def setUp(self):
        super().setUp()
        self.ctx = self.app.ok("POST", "contexts", {"name": "kb", "externalTenantId": "t-1"})

    def files(self, rest=""):
        return "contexts/%s/files%s" % (self.ctx["uid"], rest)

    def post_form(self, body, boundary="XyZ"):
        return self.app.call("POST", self.files(), raw=body,
                             headers={"Content-Type": "multipart/form-data; boundary=" + boundary})

    def post_raw(self, query, data=b"hello", ctype="text/plain"):
        headers = {"Content-Type": ctype} if ctype is not None else {}
        return self.app.call("POST", self.files("?" + query), raw=data, headers=headers)

    def post_json(self, body):
        return self.app.call("POST", self.files(), body)

    def assert_nothing_stored(self):
        self.assertEqual(self.server.request("GET", "/healthz").status, 200)
        self.assertEqual(self.app.ok("GET", self.files())["data"], [])
        where = os.path.join(self.server.data_dir, "files")
        self.assertEqual(os.listdir(where) if os.path.isdir(where) else [], [], "files")
        # A refused upload's temporary file goes when its request completes, just after the
        # answer (as in test_limits.py).
        where = os.path.join(self.server.data_dir, "uploads")
        wait_for(lambda: not os.path.isdir(where) or os.listdir(where) == [], timeout=10,
                 what="uploads/ to be empty")

    def assert_refused(self, r, status=400, code=None, field=None):
        self.assertEqual(r.status, status, r)
        err = r.json()["error"]
        self.assertTrue(err["code"] and err["message"], err)
        if code:
            self.assertEqual(err["code"], code, err)
        if field:
            self.assertIn(field, err["message"], err)
        # The server is still up, and nothing was stored.
        self.assert_nothing_stored()

    def assert_stored(self, r, data, **fields):
        self.assertEqual(r.status, 202 if r.status != 201 else 201, r)
        f = r.json()
        for k, v in fields.items():
            self.assertEqual(f[k], v, k)
        if data is not None:
            self.assertEqual(f["sizeBytes"], len(data))
            self.assertEqual(f["sha256"], hashlib.sha256(data).hexdigest())
            with open(os.path.join(self.server.data_dir, "files", f["uid"]), "rb") as fh:
                self.assertEqual(fh.read(), data)
        return f


@sqlite_only(BEFORE_THE_STORE)
class MalformedForms(UploadTest):
    def test_part_without_name(self):
        # Crashed the whole server (strcmp on a NULL part name).
        body = b"--XyZ\r\nContent-Disposition: form-data\r\n\r\nhello\r\n--XyZ--\r\n"
        self.assert_refused(self.post_form(body))

    def test_part_without_name_after_file(self):
        body = (b"--XyZ\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.txt\"\r\n"
                b"\r\nhello\r\n--XyZ\r\nContent-Disposition: form-data\r\n\r\nx\r\n--XyZ--\r\n")
        self.assert_refused(self.post_form(body))

    def test_truncated_forms_are_refused(self):
        # Each was a 202 with a silently shortened (or merged) file before.
        data = b"the whole file, every byte of it\n" * 50
        whole = form([field_part(b"externalTenantId", b"t-9"), file_part(data)])
        cases = {
            "no closing boundary": form([file_part(data)], close=False),
            "cut mid-part": whole[:len(whole) // 2],
            "cut in the closing boundary": whole[:-6],
            "cut in a part's headers": whole[:whole.index(b"filename=") + 5],
            "cut right after a boundary line": whole[:whole.index(b"--XyZ\r\nContent-Disposition: "
                                                                  b"form-data; name=\"file\"")
                                                      + 7],
            "two file parts": form([file_part(data[:100]), file_part(data[100:], b"b.txt")]),
            "two externalTenantId parts": form([field_part(b"externalTenantId", b"t-2"),
                                                field_part(b"externalTenantId", b"t-3"),
                                                file_part(data)]),
            "no boundary at all": data,
            "boundary line followed by junk": whole.replace(b"--XyZ\r\nContent-Disposition: "
                                                            b"form-data; name=\"file\"",
                                                            b"--XyZjunk\r\nContent-Disposition: "
                                                            b"form-data; name=\"file\"", 1),
            "bare LF in a part's headers": whole.replace(b'filename="a.txt"\r\n',
                                                         b'filename="a.txt"\n', 1),
        }
        for what, body in cases.items():
            with self.subTest(what):
                self.assert_refused(self.post_form(body), 400, "invalid_form")
        # Still serving: the whole form goes through, unchanged.
        self.assert_stored(self.post_form(whole), data, fileName="a.txt", externalTenantId="t-9",
                           contentType="text/plain")

    def test_bad_boundary_parameter(self):
        body = form([file_part(b"x")])
        for ctype in ("multipart/form-data", "multipart/form-data; boundary=",
                      "multipart/form-data; boundary=" + "b" * 71,
                      'multipart/form-data; boundary="XyZ'):
            with self.subTest(ctype):
                r = self.app.call("POST", self.files(), raw=body, headers={"Content-Type": ctype})
                self.assert_refused(r, 400, "invalid_form")

    def test_quoted_boundary_and_preamble(self):
        body = b"preamble to ignore\r\n" + form([file_part(b"hi")]) + b"epilogue"
        r = self.app.call("POST", self.files(), raw=body,
                          headers={"Content-Type": 'multipart/form-data; boundary="XyZ"'})
        self.assert_stored(r, b"hi", fileName="a.txt")

    def test_file_that_holds_boundary_lookalikes(self):
        # Prefixes of the delimiter, cut at every length, and a CR right before the real one.
        data = b"\r\n--Xy\r\r\n-\r\n--XY\r\n--X\r\n\r\n--\r\n\r"
        r = self.post_form(form([file_part(data)]))
        self.assert_stored(r, data)


# One rule per field on every path: the same maximum, UTF-8, no NUL, no control characters.
# (field, bad value, error code) in the form the raw bytes take.
BAD = [
    ("fileName", b"n" * 1025, "field_too_long"),
    ("fileName", "\u00e9".encode() * 600, "field_too_long"),
    ("fileName", b"a\x00b.txt", "field_has_nul"),
    ("fileName", b"a\x1bb.txt", "field_has_control"),
    ("fileName", b"a\x7fb.txt", "field_has_control"),
    ("fileName", b"a\tb.txt", "field_has_control"),
    ("fileName", b"a\xc3(.txt", "field_not_utf8"),
    ("fileName", b"a\xed\xa0\x80.txt", "field_not_utf8"),
    ("externalTenantId", b"t" * 257, "field_too_long"),
    ("externalTenantId", b"t\x00u", "field_has_nul"),
    ("externalTenantId", b"t\x1bu", "field_has_control"),
    ("externalTenantId", b"t\xffu", "field_not_utf8"),
    ("contentType", b"text/" + b"p" * 252, "field_too_long"),
    ("contentType", b"text/plain\x1b", "field_has_control"),
    ("contentType", b"text/\xc3(", "field_not_utf8"),
]
# Values only some paths can carry: CR and LF are not header bytes, invalid UTF-8 not JSON.
CRLF = [
    ("fileName", b"a\rb.txt", "field_has_control"),
    ("fileName", b"a\nb.txt", "field_has_control"),
    ("externalTenantId", b"t\r\nu", "field_has_control"),
]
GOOD = {
    "fileName": [b"n" * 1024, "\u00e9".encode() * 200, "\u65e5\u672c \U0001f600.pdf".encode()],
    "externalTenantId": [b"t" * 256, "t\u00e9-\u4e2d".encode()],
    "contentType": [b"text/" + b"p" * 251, b"text/plain; charset=utf-8"],
}


class FieldRules(UploadTest):
    def send(self, path, field, value):
        """Sends one file upload with field set to value (raw bytes) on path."""
        vals = {"fileName": b"a.txt", "externalTenantId": None, "contentType": b"text/plain"}
        vals[field] = value
        if path == "json":
            body = {k: v.decode("utf-8", "surrogateescape") for k, v in vals.items() if v}
            return self.post_json(body)
        if path == "raw":
            q = "fileName=" + urllib.parse.quote(vals["fileName"], safe="")
            if vals["externalTenantId"] is not None:
                q += "&externalTenantId=" + urllib.parse.quote(vals["externalTenantId"], safe="")
            return self.app.call("POST", self.files("?" + q), raw=b"hello",
                                 headers={"Content-Type": vals["contentType"]})
        parts = []
        if vals["externalTenantId"] is not None:
            parts.append(field_part(b"externalTenantId", vals["externalTenantId"]))
        parts.append(file_part(b"hello", vals["fileName"], vals["contentType"]))
        return self.post_form(form(parts))

    @sqlite_only(BEFORE_THE_STORE)
    def test_refusals_name_the_field_and_rule_on_every_path(self):
        for path in ("json", "raw", "multipart"):
            for field, value, code in BAD + CRLF:
                want = (422, code, field)
                if path == "json" and code in ("field_not_utf8", "field_has_nul"):
                    # JSON text is UTF-8 and jansson refuses \u0000: a 400 before any field.
                    want = (400, "invalid_json", None)
                if path == "multipart" and field == "fileName" and (b"\r" in value or
                                                                    b"\n" in value):
                    # A bare CR or LF breaks the part's header line: the form is malformed.
                    want = (400, "invalid_form", None)
                with self.subTest(path=path, field=field, value=value[:20]):
                    self.assert_refused(self.send(path, field, value), *want)

    def test_limits_are_the_same_on_every_path(self):
        for path in ("json", "raw", "multipart"):
            for field, values in GOOD.items():
                for value in values:
                    with self.subTest(path=path, field=field, value=value[:20]):
                        r = self.send(path, field, value)
                        self.assertIn(r.status, (201, 202), r)
                        f = r.json()
                        self.assertEqual(f[field], value.decode())
                        self.assertEqual(self.app.ok("GET", self.files("/" + f["uid"]))[field],
                                         value.decode())

    @sqlite_only(BEFORE_THE_STORE)
    def test_json_path_refuses_invalid_utf8_as_bad_json(self):
        raw = b'{"fileName": "a\xc3(.txt"}'
        r = self.app.call("POST", self.files(), raw=raw,
                          headers={"Content-Type": "application/json"})
        self.assert_refused(r, 400)

    @sqlite_only(BEFORE_THE_STORE)
    def test_empty_file_name(self):
        for r in (self.send("json", "fileName", b""), self.post_raw("fileName="),
                  self.send("multipart", "fileName", b"")):
            with self.subTest(r=r):
                self.assertEqual(r.status, 422, r)
                self.assertIn("fileName", r.json()["error"]["message"])
        self.assert_nothing_stored()


def raw_exchange(conn_or_port, method, path, headers, body):
    """Sends one request with http.client, writing the whole body before reading anything, and
    reads the answer. conn_or_port: an open HTTPConnection (reused) or a port (a fresh one)."""
    fresh = isinstance(conn_or_port, int)
    conn = conn_or_port
    if fresh:
        conn = http.client.HTTPConnection("127.0.0.1", conn_or_port, timeout=60)
    try:
        conn.putrequest(method, path)
        for k, v in headers.items():
            conn.putheader(k, v)
        conn.putheader("Content-Length", str(len(body)))
        conn.endheaders()
        conn.send(body)
        r = conn.getresponse()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, r.read()
    finally:
        if fresh:
            conn.close()


class PublishedFields(ServerTest):
    """POST /events takes data.uid and data.externalTenantId by the same rule as every other path
    (at most 256 bytes, UTF-8, no control characters): a refusal names the field, nothing is
    published."""

    def test_control_characters_and_length(self):
        cases = [("externalTenantId", "t\r\nx", "field_has_control"),
                 ("externalTenantId", "t\x1b[31m", "field_has_control"),
                 ("uid", "a\nb", "field_has_control"),
                 ("externalTenantId", "x" * 257, "field_too_long"),
                 ("uid", "", "data_field_required")]
        for field, value, code in cases:
            with self.subTest(field=field, value=value[:10]):
                data = {"uid": "agent-1", "externalTenantId": "t"}
                data[field] = value
                r = self.app.call("POST", "events", {"event": "agent.updated", "data": data})
                self.assertEqual(r.status, 422, r)
                err = r.json()["error"]
                self.assertEqual(err["code"], code)
                self.assertTrue(err["message"].startswith("data." + field), err)
        self.assertEqual(self.app.ok("GET", "events")["data"], [])
        data = {"uid": "agent-1", "externalTenantId": "x" * 256}
        self.app.ok("POST", "events", {"event": "agent.updated", "data": data}, status=202)


@sqlite_only("the 413 comes from the HTTP layer, before the store")
class OversizedBodies(ServerTest):
    """A body over the limit, written whole by a client that reads only afterwards (as Node's
    undici does): it must read the 413, never a reset connection (EPIPE, ECONNRESET)."""
    server_args = ("--max-upload", "1M")
    BIG = b"x" * (3 << 20)

    def assert_413(self, status, headers, body):
        self.assertEqual(status, 413, body[:200])
        self.assertEqual(headers.get("content-type"), "application/json")
        err = json.loads(body)["error"]
        self.assertEqual(err["code"], "payload_too_large")
        self.assertIn("larger than", err["message"])

    def targets(self):
        ctx = self.app.ok("POST", "contexts", {"name": "kb", "externalTenantId": "t-1"})
        json_h = {"Content-Type": "application/json", "Authorization": "Bearer " + self.app.key}
        up_h = {"Content-Type": "text/plain", "Authorization": "Bearer " + self.app.key}
        return [("agents", self.app.path("agents"), json_h),
                ("upload", self.app.path("contexts/%s/files?fileName=a.txt" % ctx["uid"]), up_h)]

    def test_fresh_connections_read_the_413(self):
        for name, path, headers in self.targets():
            for i in range(12):
                with self.subTest(target=name, i=i):
                    self.assert_413(*raw_exchange(self.server.port, "POST", path, headers,
                                                  self.BIG))
        self.assertEqual(self.app.ok("GET", "agents")["data"], [])

    def test_reused_connection_reads_the_413_and_goes_on(self):
        for name, path, headers in self.targets():
            with self.subTest(target=name):
                conn = http.client.HTTPConnection("127.0.0.1", self.server.port, timeout=60)
                for _ in range(3):
                    self.assert_413(*raw_exchange(conn, "POST", path, headers, self.BIG))
                # The same connection carries the next request.
                status, _, body = raw_exchange(conn, "GET", self.app.path("agents"),
                                               {"Authorization": "Bearer " + self.app.key}, b"")
                self.assertEqual(status, 200, body)
                conn.close()


class DeliveryIds(ServerTest):
    """One rule for a delivery id on every path: dlv_ and a canonical positive decimal. Anything
    else (a sign, a leading zero, a space, percent-encoded or not, an overflow) is a 404 that
    states the rule, even when its number names a delivery."""

    def test_only_canonical_ids(self):
        rx = self.receiver()
        wh = self.app.webhook(rx.url(), entities=["agent"])
        self.app.ok("POST", "agents", {"agentName": "a", "externalTenantId": "t"})
        rx.wait_count(1)
        # Its one attempt is recorded before the probing starts, so "nothing was resent" below
        # compares against a settled count.
        d = wait_for(lambda: [x for x in self.app.ok("GET", "webhooks/%s/deliveries" % wh["uid"])
                              ["data"] if x["status"] == "succeeded"],
                     what="the delivery's recorded success")[0]
        n = int(d["id"][len("dlv_"):])
        self.assertEqual(d["id"], "dlv_%d" % n)
        self.assertEqual(self.app.ok("GET", "deliveries/" + d["id"])["id"], d["id"])
        bad = ["dlv_0%d" % n, "dlv_00%d" % n, "dlv_+%d" % n, "dlv_%%2B%d" % n, "dlv_%%20%d" % n,
               "dlv_%d%%20" % n, "dlv_%%09%d" % n, "dlv_-%d" % n, "dlv_0", "dlv_", "dlv",
               "DLV_%d" % n, "dlv_%d.0" % n, "dlv_0x%x" % n, "dlv_%de0" % n, "dlv_%d_" % n,
               "%d" % n, "dlv_1" + "0" * 19, "dlv_9223372036854775808",
               "dlv_99999999999999999999999"]
        for ident in bad:
            for method, rest in (("GET", "deliveries/" + ident),
                                 ("POST", "deliveries/%s/resend" % ident)):
                with self.subTest(method=method, id=ident):
                    r = self.app.call(method, rest)
                    self.assertEqual(r.status, 404, r)
                    err = r.json()["error"]
                    self.assertEqual(err["code"], "not_found")
                    self.assertIn("dlv_ followed by a positive decimal", err["message"])
        # A well-formed id that names nothing is just unknown; the largest one is well-formed.
        for ident in ("dlv_9223372036854775807", "dlv_%d" % (n + 1000)):
            r = self.app.call("GET", "deliveries/" + ident)
            self.assertEqual(r.status, 404, r)
            self.assertEqual(r.json()["error"]["message"], "no such delivery")
        # Nothing was resent.
        self.assertEqual(self.app.ok("GET", "deliveries/" + d["id"])["attempts"], 1)


if __name__ == "__main__":
    main()
