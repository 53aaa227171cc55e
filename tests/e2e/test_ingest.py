"""Context files: upload (multipart and raw), real ingestion, and a contextfile.updated for every
processing step, seen by a real receiver."""
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import unittest
import uuid
import zlib

sys.path.insert(0, os.path.dirname(__file__))
from harness import BIN, Server, ServerTest, App, Receiver, main, wait_for  # noqa: E402


def pdf_assemble(bodies):
    """A PDF file of these numbered object bodies (object 1 the catalog): header, the objects,
    their cross-reference table and the trailer."""
    out = b"%PDF-1.4\n"
    offsets = []
    for body in bodies:
        offsets.append(len(out))
        out += body
    xref = len(out)
    out += ("xref\n0 %d\n0000000000 65535 f \n" % (len(bodies) + 1)).encode()
    for off in offsets:
        out += ("%010d 00000 n \n" % off).encode()
    out += ("trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n"
            % (len(bodies) + 1, xref)).encode()
    return out


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
    return pdf_assemble([("%d 0 obj\n%s\nendobj\n" % (i + 1, o)).encode("latin-1")
                         for i, o in enumerate(objs)])


def pdf_pages(content, pages=1):
    """A valid PDF whose pages all draw one Flate-compressed content stream."""
    data = zlib.compress(content, 9)
    objs = ["<< /Type /Catalog /Pages 2 0 R >>", None,
            "<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>", None]
    kids = []
    for _ in range(pages):
        objs.append("<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] "
                    "/Resources << /Font << /F1 3 0 R >> >> /Contents 4 0 R >>")
        kids.append("%d 0 R" % len(objs))
    objs[1] = "<< /Type /Pages /Kids [%s] /Count %d >>" % (" ".join(kids), len(kids))
    bodies = [("%d 0 obj\n%s\nendobj\n" % (i + 1, o)).encode("latin-1") if i != 3 else
              b"4 0 obj\n<< /Length %d /Filter /FlateDecode >>\nstream\n" % len(data)
              + data + b"\nendstream\nendobj\n" for i, o in enumerate(objs)]
    return pdf_assemble(bodies)


def pdf_bomb(words=300000):
    """A 1.5 MB PDF of one page with words text-showing operators at varied positions: poppler
    keeps every word of a page to lay it out, hundreds of MiB for these."""
    ops = ["BT /F1 9 Tf"]
    for i in range(words):
        ops.append("1 0 0 1 %d %d Tm (w%d) Tj" % ((i * 37) % 600, (i * 53) % 780, i % 1000))
    ops.append("ET")
    return pdf_pages("\n".join(ops).encode())


def pdf_slow(pages=60):
    """A 10 KB PDF whose pages each run two million save/restore operators (one stream, shared):
    minutes of work with little memory, and one word per page."""
    return pdf_pages(b"BT /F1 9 Tf 72 720 Td (slow) Tj ET\n" + b"q Q " * 2000000, pages)


def helpers(server, file_uid=None):
    """The pids of the server's `hookline extract` children (extracting file_uid, when given)."""
    found = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % d) as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
            if ppid != server.proc.pid:
                continue
            with open("/proc/%s/cmdline" % d, "rb") as f:
                argv = f.read().split(b"\0")
        except (OSError, ValueError, IndexError):
            continue
        if argv[1:2] == [b"extract"] and (
                file_uid is None or argv[-2].endswith(b"/" + file_uid.encode())):
            found.append(int(d))
    return found


def extracting(server):
    """The pids of every `hookline extract` running (not a zombie) on a file of the server's
    data directory, whoever its parent is now: a dead server's helpers too."""
    found = []
    prefix = os.path.realpath(server.data_dir).encode() + b"/"
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % d) as f:
                state = f.read().rsplit(")", 1)[1].split()[0]
            with open("/proc/%s/cmdline" % d, "rb") as f:
                argv = f.read().split(b"\0")
        except (OSError, IndexError):
            continue
        if state != "Z" and argv[1:2] == [b"extract"] and len(argv) > 2 and \
                os.path.realpath(argv[-2]).startswith(prefix):
            found.append(int(d))
    return found


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


class IngestBase(ServerTest):
    """A server with a receiver of contextfile events and a context to upload to."""

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

    def final(self, uid, timeout=20, app=None, ctx=None):
        app, ctx = app or self.app, ctx or self.ctx

        def done():
            f = app.ok("GET", "contexts/%s/files/%s" % (ctx["uid"], uid))
            return f if f["processingStatus"] in ("completed", "failed") else None
        return wait_for(done, timeout=timeout, what="file %s processed" % uid)

    def status(self, uid):
        return self.app.ok("GET", self.files("/" + uid))["processingStatus"]

    def events_for(self, uid, n):
        def got():
            evs = [b for b in self.rx.bodies() if b["data"]["uid"] == uid]
            return evs if len(evs) >= n else None
        return wait_for(got, timeout=20, what="%d events for %s" % (n, uid))

    def statuses(self, uid):
        """The processingStatus of every contextfile event of uid received so far."""
        return [b["data"]["processingStatus"] for b in self.rx.bodies()
                if b["data"]["uid"] == uid]


class Ingest(IngestBase):
    server_env = {"HOOKLINE_CHUNK_SIZE": "200", "HOOKLINE_CHUNK_OVERLAP": "20",
                  "HOOKLINE_MAX_UPLOAD": str(256 * 1024)}

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
        after = self.final(f["uid"])
        self.assertEqual(after["processingStatus"], "completed", after)

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


class IngestMemory(IngestBase):
    server_env = {"HOOKLINE_INGEST_MEMORY": "64M", "HOOKLINE_INGEST_TIMEOUT": "10m",
                  "HOOKLINE_MAX_UPLOAD": "16M"}

    def test_pdf_bomb_fails_on_memory_and_the_server_keeps_serving(self):
        """What it proves: a PDF whose extraction needs hundreds of MiB ends failed, at once,
        with the --ingest-memory limit named, while the server and its other work go on: its
        own app's next file and another app's file are extracted."""
        pid = self.server.proc.pid
        other = App(self.server, self.server.create_app("other"))
        other_ctx = other.ok("POST", "contexts", {"name": "kb", "externalTenantId": "t-9"})
        bomb = self.upload_raw("bomb.pdf", pdf_bomb(), "application/pdf")
        after = self.upload_raw("after.txt", b"the file after the bomb", "text/plain")
        r = other.call("POST", "contexts/%s/files?fileName=b.txt" % other_ctx["uid"],
                       raw=b"another app's text", headers={"Content-Type": "text/plain"})
        self.assertEqual(r.status, 202, r)
        done = self.final(bomb["uid"], timeout=300)
        self.assertEqual(done["processingStatus"], "failed", done)
        self.assertIn("needs more than 64 MiB to extract", done["processingError"])
        self.assertIn("--ingest-memory", done["processingError"])
        self.assertEqual(self.final(after["uid"])["processingStatus"], "completed")
        theirs = self.final(r.json()["uid"], app=other, ctx=other_ctx)
        self.assertEqual(theirs["processingStatus"], "completed", theirs)
        # the same server process, still serving; the bomb was tried once, not again
        self.assertIsNone(self.server.proc.poll())
        self.assertEqual(self.server.proc.pid, pid)
        self.assertEqual(self.server.request("GET", "/healthz").status, 200)
        self.events_for(bomb["uid"], 3)
        self.assertEqual(sorted(self.statuses(bomb["uid"])), ["failed", "pending", "processing"])


class IngestTimeout(IngestBase):
    # Long enough for a small file on a loaded machine; the slow file takes minutes.
    server_env = {"HOOKLINE_INGEST_TIMEOUT": "20s"}

    def test_slow_file_fails_on_time(self):
        """What it proves: a file whose extraction takes longer than --ingest-timeout ends
        failed with that limit named, is not tried again, and the worker goes on."""
        slow = self.upload_raw("slow.pdf", pdf_slow(), "application/pdf")
        done = self.final(slow["uid"], timeout=120)
        self.assertEqual(done["processingStatus"], "failed", done)
        self.assertIn("took longer than 20 s", done["processingError"])
        self.assertIn("--ingest-timeout", done["processingError"])
        f = self.upload_raw("after.txt", b"still working", "text/plain")
        after = self.final(f["uid"])
        self.assertEqual(after["processingStatus"], "completed", after)
        self.events_for(slow["uid"], 3)
        self.assertEqual(sorted(self.statuses(slow["uid"])), ["failed", "pending", "processing"])
        self.assertEqual(helpers(self.server), [])


class IngestWorkers(IngestBase):
    # Slow files stay in their helper for the whole test.
    server_env = {"HOOKLINE_INGEST_TIMEOUT": "10m"}

    def test_apps_take_turns(self):
        """What it proves: with two workers busy on one app's slow files, a worker that frees
        up takes another app's file before the first app's older ones, so that app's small
        file completes while the slow file is still processing and the first app's backlog
        waits. Without fair claims the freed worker would take the oldest file, the slow one
        again, and the other app's file would wait for it."""
        other = App(self.server, self.server.create_app("other"))
        other_ctx = other.ok("POST", "contexts", {"name": "kb", "externalTenantId": "t-9"})
        s1 = self.upload_raw("s1.pdf", pdf_slow(), "application/pdf")["uid"]
        s2 = self.upload_raw("s2.pdf", pdf_slow(), "application/pdf")["uid"]
        # both workers at work on s1 and s2
        wait_for(lambda: helpers(self.server, s1) and helpers(self.server, s2), timeout=60,
                 what="helpers for s1 and s2")
        backlog = [self.upload_raw("a%d.txt" % i, b"waiting text", "text/plain")["uid"]
                   for i in range(2)]
        r = other.call("POST", "contexts/%s/files?fileName=b.txt" % other_ctx["uid"],
                       raw=b"another app's text", headers={"Content-Type": "text/plain"})
        self.assertEqual(r.status, 202, r)
        b = r.json()["uid"]
        # s2's helper dies: its worker frees up, s2 goes back to the queue (first crash)
        for pid in helpers(self.server, s2):
            os.kill(pid, signal.SIGKILL)
        done = self.final(b, timeout=60, app=other, ctx=other_ctx)
        self.assertEqual(done["processingStatus"], "completed", done)
        # b went first, though s2 and the backlog waited longer; s1 never stopped
        self.assertEqual(self.status(s1), "processing")
        self.assertEqual([self.status(u) for u in backlog], ["pending", "pending"])

    def test_helper_killed_twice_fails_and_is_not_retried(self):
        """What it proves: a file whose extraction process dies is tried once more; when that
        one dies too the file ends failed with the reason, and a restart does not try it
        again."""
        slow = self.upload_raw("slow.pdf", pdf_slow(), "application/pdf")["uid"]
        killed = []
        for attempt in (1, 2):
            pids = wait_for(lambda: [p for p in helpers(self.server, slow) if p not in killed],
                            timeout=60, what="helper %d" % attempt)
            os.kill(pids[0], signal.SIGKILL)
            killed.append(pids[0])
        done = self.final(slow, timeout=60)
        self.assertEqual(done["processingStatus"], "failed", done)
        self.assertIn("failed 2 times", done["processingError"])
        self.assertIn("SIGKILL", done["processingError"])
        self.events_for(slow, 4)
        self.assertEqual(sorted(self.statuses(slow)),
                         ["failed", "pending", "processing", "processing"])
        # after a restart the worker processes new files, and leaves this one alone
        self.server.stop()
        self.server.start()
        f = self.upload_raw("after.txt", b"after the restart", "text/plain")
        after = self.final(f["uid"])
        self.assertEqual(after["processingStatus"], "completed", after)
        again = self.app.ok("GET", self.files("/" + slow))
        self.assertEqual(again["processingStatus"], "failed")
        self.assertEqual(again["processingCompletedAt"], done["processingCompletedAt"])
        self.assertEqual(helpers(self.server, slow), [])
        self.assertEqual(len(self.statuses(slow)), 4)


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
            # tens of thousands of passages, one INSERT each on PostgreSQL: minutes on a loaded
            # machine under the sanitizers
            f = wait_for(final, timeout=400, what="processed after restart")
            self.assertEqual(f["processingStatus"], "completed", f)

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

    def test_helpers_die_with_the_server(self):
        """What it proves: a kill -9 of the server takes its extraction helpers along, also one
        killed as it starts (before it could arrange to follow its parent): none runs on to its
        timeout holding memory and CPU. Each round kills the server as soon as a helper shows."""
        srv = Server(env={"HOOKLINE_INGEST_TIMEOUT": "10m", "HOOKLINE_INGEST_WORKERS": "2"})
        try:
            app = App(srv, srv.create_app())
            for _ in range(5):
                srv.start()
                ctx = app.ok("POST", "contexts", {"name": "kb", "externalTenantId": "t"})
                for name in ("a.pdf", "b.pdf"):
                    r = app.call("POST", "contexts/%s/files?fileName=%s" % (ctx["uid"], name),
                                 raw=pdf_slow(), headers={"Content-Type": "application/pdf"})
                    self.assertEqual(r.status, 202, r)
                wait_for(lambda: helpers(srv), timeout=60, interval=0.001, what="a helper")
                srv.kill()
                # every helper of the server: the one seen and any started just before the kill
                try:
                    wait_for(lambda: not extracting(srv), timeout=60,
                             what="the helpers to die with their server")
                except AssertionError:
                    self.fail("helpers outlived their server: %s" % extracting(srv))
        finally:
            srv.stop()
            srv.cleanup()

    def test_a_helper_whose_parent_is_not_the_server_stops(self):
        """What it proves: a helper stops at once, before reading its file, when its parent is
        not the pid the server put in HOOKLINE_EXTRACT_PARENT (the server was killed before the
        helper could follow it) or that pid is not a number; with its real parent it runs."""
        tmp = tempfile.TemporaryDirectory()
        self.addCleanup(tmp.cleanup)
        path = os.path.join(tmp.name, "a.txt")
        with open(path, "w") as f:
            f.write("hello")
        args = [BIN, "extract", "--ingest-memory", "268435456", "--ingest-timeout", "30000ms",
                "--max-upload", "1048576", "--", path]
        for parent in ("1", "abc", str(os.getpid())):
            env = dict(os.environ, HOOKLINE_EXTRACT_PARENT=parent)
            r = subprocess.run(args, env=env, capture_output=True, timeout=60)
            if parent == str(os.getpid()):  # this process started it: it runs
                self.assertEqual(r.returncode, 0, (parent, r.stderr))
                self.assertNotIn(b"cannot follow", r.stderr)
            else:
                self.assertEqual(r.returncode, 1, (parent, r.stderr))
                self.assertIn(b"cannot follow the server", r.stderr, parent)
                self.assertEqual(r.stdout, b"", parent)

    def test_server_dying_twice_on_a_file_fails_it(self):
        """What it proves: a file being extracted when the server dies, twice, is not claimed
        a third time to kill it again (the restart loop of a file that takes the server down):
        after the second restart it ends failed with the reason."""
        srv = Server(env={"HOOKLINE_INGEST_TIMEOUT": "10m"})
        try:
            app = App(srv, srv.create_app())
            srv.start()
            ctx = app.ok("POST", "contexts", {"name": "kb", "externalTenantId": "t"})
            r = app.call("POST", "contexts/%s/files?fileName=slow.pdf" % ctx["uid"],
                         raw=pdf_slow(), headers={"Content-Type": "application/pdf"})
            self.assertEqual(r.status, 202, r)
            uid = r.json()["uid"]
            for attempt in (1, 2):
                wait_for(lambda: helpers(srv, uid), timeout=60, what="helper %d" % attempt)
                srv.kill()
                srv.start()

            def final():
                f = app.ok("GET", "contexts/%s/files/%s" % (ctx["uid"], uid))
                return f if f["processingStatus"] in ("completed", "failed") else None
            f = wait_for(final, timeout=60, what="the file failed")
            self.assertEqual(f["processingStatus"], "failed")
            self.assertIn("cut short 2 times", f["processingError"])
            self.assertEqual(helpers(srv, uid), [])
        finally:
            srv.stop()
            srv.cleanup()


if __name__ == "__main__":
    main()
