"""Context files: upload (multipart and raw), real ingestion, and a contextfile.updated for every
processing step, seen by a real receiver."""
import json
import os
import sys
import time
import unittest
import uuid

sys.path.insert(0, os.path.dirname(__file__))
from harness import Server, ServerTest, App, Receiver, main, wait_for  # noqa: E402


def make_pdf(pages):
    """A valid PDF with one line of text per page, xref offsets computed."""
    objs = ["<< /Type /Catalog /Pages 2 0 R >>", None,
            "<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>"]
    kids = []
    for text in pages:
        stream = "BT /F1 18 Tf 72 720 Td (%s) Tj ET" % text
        objs.append("<< /Length %d >>\nstream\n%s\nendstream" % (len(stream), stream))
        content = len(objs)
        objs.append("<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] "
                    "/Resources << /Font << /F1 3 0 R >> >> /Contents %d 0 R >>" % content)
        kids.append("%d 0 R" % len(objs))
    objs[1] = "<< /Type /Pages /Kids [%s] /Count %d >>" % (" ".join(kids), len(kids))
    out = b"%PDF-1.4\n"
    offsets = []
    for i, o in enumerate(objs):
        offsets.append(len(out))
        out += ("%d 0 obj\n%s\nendobj\n" % (i + 1, o)).encode("latin-1")
    xref = len(out)
    out += ("xref\n0 %d\n0000000000 65535 f \n" % (len(objs) + 1)).encode()
    for off in offsets:
        out += ("%010d 00000 n \n" % off).encode()
    out += ("trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n"
            % (len(objs) + 1, xref)).encode()
    return out


def multipart(fields, file_name, data, ctype):
    boundary = "----hookline" + uuid.uuid4().hex
    body = b""
    for k, v in fields.items():
        body += ("--%s\r\nContent-Disposition: form-data; name=\"%s\"\r\n\r\n%s\r\n"
                 % (boundary, k, v)).encode()
    body += ("--%s\r\nContent-Disposition: form-data; name=\"file\"; filename=\"%s\"\r\n"
             "Content-Type: %s\r\n\r\n" % (boundary, file_name, ctype)).encode()
    body += data + ("\r\n--%s--\r\n" % boundary).encode()
    return body, "multipart/form-data; boundary=" + boundary


class Ingest(ServerTest):
    server_env = {"HOOKLINE_CHUNK_SIZE": "200", "HOOKLINE_CHUNK_OVERLAP": "20",
                  "HOOKLINE_MAX_UPLOAD": str(256 * 1024)}

    def setUp(self):
        super().setUp()
        self.rx = self.receiver()
        self.app.webhook(self.rx.url(), entities=["contextfile"])
        self.ctx = self.app.ok("POST", "contexts", {"name": "kb", "externalTenantId": "t-1"})

    def files(self, rest=""):
        return "contexts/%s/files%s" % (self.ctx["uid"], rest)

    def upload_raw(self, name, data, ctype="application/octet-stream", status=202):
        r = self.app.call("POST", self.files("?fileName=" + name), raw=data,
                          headers={"Content-Type": ctype})
        self.assertEqual(r.status, status, r)
        return r.json()

    def final(self, uid):
        def done():
            f = self.app.ok("GET", self.files("/" + uid))
            return f if f["processingStatus"] in ("completed", "failed") else None
        return wait_for(done, timeout=20, what="file %s processed" % uid)

    def events_for(self, uid, n):
        def got():
            evs = [b for b in self.rx.bodies() if b["data"]["uid"] == uid]
            return evs if len(evs) >= n else None
        return wait_for(got, timeout=20, what="%d events for %s" % (n, uid))

    def test_pdf_upload_multipart_events_in_order(self):
        pdf = make_pdf(["Hello page one with some words", "Second page here",
                        "Third and final page"])
        body, ctype = multipart({"externalTenantId": "t-2"}, "guide.pdf", pdf,
                                "application/pdf")
        r = self.app.call("POST", self.files(), raw=body, headers={"Content-Type": ctype})
        self.assertEqual(r.status, 202, r)
        f = r.json()
        self.assertEqual(f["processingStatus"], "pending")
        self.assertEqual(f["fileName"], "guide.pdf")
        self.assertEqual(f["sizeBytes"], len(pdf))
        self.assertEqual(f["externalTenantId"], "t-2")
        import hashlib
        self.assertEqual(f["sha256"], hashlib.sha256(pdf).hexdigest())
        done = self.final(f["uid"])
        self.assertEqual(done["processingStatus"], "completed", done)
        self.assertEqual(done["pageCount"], 3)
        self.assertGreaterEqual(done["wordCount"], 12)
        self.assertGreaterEqual(done["chunkCount"], 1)
        self.assertIsNotNone(done["processingStartedAt"])
        self.assertIsNotNone(done["processingCompletedAt"])
        evs = self.events_for(f["uid"], 3)
        evs.sort(key=lambda e: e["timestamp"])
        self.assertEqual([e["event"] for e in evs],
                         ["contextfile.created", "contextfile.updated", "contextfile.updated"])
        self.assertEqual([e["data"]["processingStatus"] for e in evs],
                         ["pending", "processing", "completed"])
        self.assertEqual(evs[2]["data"]["chunkCount"], done["chunkCount"])
        chunks = self.app.ok("GET", self.files("/%s/chunks" % f["uid"]))["data"]
        self.assertEqual(len(chunks), done["chunkCount"])
        text = " ".join(c["text"] for c in chunks)
        for word in ("Hello", "Second", "final"):
            self.assertIn(word, text)

    def test_text_kinds_and_chunks_with_overlap(self):
        para = " ".join("word%d" % i for i in range(300))
        cases = [("notes.txt", para.encode(), "text/plain", "word299"),
                 ("readme.md", b"# Title\n\nSome *markdown* text.\n", "text/markdown", "Title"),
                 ("data.csv", b'name,quote\n"Smith, J","said ""hi"""\n', "text/csv", "Smith"),
                 ("doc.json", json.dumps({"title": "Caf\u00e9", "n": [1, 2]}).encode(),
                  "application/json", "Caf\u00e9"),
                 ("page.html", b"<html><head><style>p{}</style><script>var x=1;</script></head>"
                  b"<body><p>Fish &amp; chips &eacute;t&#233;</p></body></html>", "text/html",
                  "Fish & chips \u00e9t\u00e9")]
        for name, data, ctype, needle in cases:
            with self.subTest(name=name):
                f = self.upload_raw(name, data, ctype)
                done = self.final(f["uid"])
                self.assertEqual(done["processingStatus"], "completed", done)
                self.assertIsNone(done["processingError"])
                chunks = self.app.ok("GET", self.files("/%s/chunks?limit=100" % f["uid"]))
                text = "".join(c["text"] for c in chunks["data"])
                self.assertIn(needle, text)
                self.assertNotIn("var x", text)
                self.assertNotIn("<p>", text)
        f = self.app.ok("GET", self.files("?limit=100"))["data"]
        big = [x for x in f if x["fileName"] == "notes.txt"][0]
        self.assertGreater(big["chunkCount"], 5)
        self.assertEqual(big["wordCount"], 300)

    def test_bad_files_fail_with_a_reason(self):
        pdf = make_pdf(["one", "two"])
        cases = [("empty.txt", b"", "text/plain", "empty"),
                 ("half.pdf", pdf[:len(pdf) // 2], "application/pdf", "PDF"),
                 ("corrupt.pdf", b"%PDF-1.4\n" + os.urandom(2000), "application/pdf", "PDF"),
                 ("junk.bin", bytes(range(256)) * 20, "application/octet-stream", "binary"),
                 ("bad.txt", b"ok \xff\xfe\x00\x00 not utf8 \x00\x01", "text/plain", "")]
        for name, data, ctype, why in cases:
            with self.subTest(name=name):
                f = self.upload_raw(name, data, ctype)
                done = self.final(f["uid"])
                self.assertEqual(done["processingStatus"], "failed", done)
                self.assertTrue(done["processingError"])
                self.assertIn(why.lower(), done["processingError"].lower())
                evs = self.events_for(f["uid"], 3)
                self.assertEqual(sorted(e["data"]["processingStatus"] for e in evs),
                                 ["failed", "pending", "processing"])
        # the worker is still alive
        f = self.upload_raw("after.txt", b"still working")
        self.assertEqual(self.final(f["uid"])["processingStatus"], "completed")

    def test_size_limit_leaves_nothing_behind(self):
        uploads = os.path.join(self.server.data_dir, "uploads")
        files_dir = os.path.join(self.server.data_dir, "files")
        big = b"x" * (300 * 1024)
        try:
            r = self.app.call("POST", self.files("?fileName=big.txt"), raw=big,
                              headers={"Content-Type": "text/plain"})
            self.assertEqual(r.status, 413)
        except (ConnectionResetError, BrokenPipeError):
            pass
        body, ctype = multipart({}, "big.txt", big, "text/plain")
        try:
            r = self.app.call("POST", self.files(), raw=body, headers={"Content-Type": ctype})
            self.assertEqual(r.status, 413)
        except (ConnectionResetError, BrokenPipeError):
            pass
        time.sleep(0.2)
        self.assertEqual(os.listdir(uploads), [])
        self.assertEqual(os.listdir(files_dir), [])
        self.assertEqual(self.app.ok("GET", self.files())["data"], [])

    def test_errors_and_delete_removes_bytes(self):
        self.assertEqual(self.app.call("POST", "contexts/context-nope/files?fileName=a.txt",
                                       raw=b"x", headers={"Content-Type": "text/plain"}).status,
                         404)
        r = self.server.request("POST", self.app.path(self.files("?fileName=a.txt")), raw=b"x",
                                headers={"Content-Type": "text/plain"})
        self.assertEqual(r.status, 401)
        body, ctype = multipart({"colour": "blue"}, "a.txt", b"x", "text/plain")
        r = self.app.call("POST", self.files(), raw=body, headers={"Content-Type": ctype})
        self.assertEqual(r.status, 422)
        f = self.upload_raw("a.txt", b"hello there", "text/plain")
        self.final(f["uid"])
        stored = os.path.join(self.server.data_dir, "files", f["uid"])
        self.assertTrue(os.path.exists(stored))
        self.app.ok("DELETE", self.files("/" + f["uid"]))
        self.assertFalse(os.path.exists(stored))
        self.assertEqual(self.app.call("GET", self.files("/%s/chunks" % f["uid"])).status, 404)
        # deleting the context deletes its files (and their bytes) first
        g = self.upload_raw("b.txt", b"more text", "text/plain")
        self.final(g["uid"])
        self.app.ok("DELETE", "contexts/" + self.ctx["uid"])
        self.assertEqual(os.listdir(os.path.join(self.server.data_dir, "files")), [])
        evs = self.events_for(g["uid"], 4)
        self.assertIn("contextfile.deleted", [e["event"] for e in evs])


class IngestCrash(unittest.TestCase):

    def test_kill_during_processing_recovers(self):
        """What it proves: a kill -9 while a file is being processed loses nothing: after the
        restart the file is processed to completion, and exactly one "completed" event exists
        and reaches the receiver once."""
        # A large text keeps the worker busy long enough to be killed mid-way.
        srv = Server(env={"HOOKLINE_CHUNK_SIZE": "50", "HOOKLINE_CHUNK_OVERLAP": "10"})
        rx = Receiver()
        try:
            app = App(srv, srv.create_app())
            srv.start()
            app.webhook(rx.url(), entities=["contextfile"])
            ctx = app.ok("POST", "contexts", {"name": "kb", "externalTenantId": "t"})
            data = (" ".join("w%d" % i for i in range(400000))).encode()
            r = app.call("POST", "contexts/%s/files?fileName=big.txt" % ctx["uid"], raw=data,
                         headers={"Content-Type": "text/plain"})
            self.assertEqual(r.status, 202, r)
            uid = r.json()["uid"]
            wait_for(lambda: any(b["data"]["processingStatus"] == "processing"
                                 for b in rx.bodies()), timeout=20, what="processing")
            srv.kill()
            srv.start()

            def final():
                f = app.ok("GET", "contexts/%s/files/%s" % (ctx["uid"], uid))
                return f if f["processingStatus"] in ("completed", "failed") else None
            f = wait_for(final, timeout=120, what="processed after restart")
            self.assertEqual(f["processingStatus"], "completed")

            # The event log holds exactly one "completed" change for the file: the processing
            # cut short by the kill did not complete too, nor did the restart complete it twice.
            def completed(bodies):
                return [b for b in bodies if b["event"] == "contextfile.updated"
                        and b["data"]["uid"] == uid
                        and b["data"]["processingStatus"] == "completed"]
            log = app.ok("GET", "events?event=contextfile.updated&limit=100")["data"]
            self.assertEqual(len(completed(log)), 1, log)
            # and the receiver gets it, once (read after waiting for it, not before)
            wait_for(lambda: completed(rx.bodies()), timeout=20,
                     what="the completed event delivered")
            time.sleep(0.5)
            self.assertEqual([b["eventId"] for b in completed(rx.bodies())],
                             [completed(log)[0]["eventId"]])
        finally:
            srv.stop()
            rx.close()
            srv.cleanup()


if __name__ == "__main__":
    main()
