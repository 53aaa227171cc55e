"""A hostile tenant with its own API key: malformed uploads, oversized input, floods. Every case
gets a 4xx JSON error and leaves nothing behind; the server keeps serving everyone."""
import os
import sys
import unittest

sys.path.insert(0, os.path.dirname(__file__))
from harness import ServerTest, main  # noqa: E402


class MalformedForms(ServerTest):
    def setUp(self):
        super().setUp()
        self.ctx = self.app.ok("POST", "contexts", {"name": "kb", "externalTenantId": "t-1"})

    def post_form(self, body, boundary="XyZ"):
        return self.app.call("POST", "contexts/%s/files" % self.ctx["uid"], raw=body,
                             headers={"Content-Type": "multipart/form-data; boundary=" + boundary})

    def assert_refused(self, r, status=400):
        self.assertEqual(r.status, status, r)
        err = r.json()["error"]
        self.assertTrue(err["code"] and err["message"], err)
        # The server is still up, and nothing was stored.
        self.assertEqual(self.server.request("GET", "/healthz").status, 200)
        files = self.app.ok("GET", "contexts/%s/files" % self.ctx["uid"])
        self.assertEqual(files["data"], [])

    def test_part_without_name(self):
        # Crashed the whole server (strcmp on a NULL part name).
        body = b"--XyZ\r\nContent-Disposition: form-data\r\n\r\nhello\r\n--XyZ--\r\n"
        self.assert_refused(self.post_form(body))

    def test_part_without_name_after_file(self):
        body = (b"--XyZ\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.txt\"\r\n"
                b"\r\nhello\r\n--XyZ\r\nContent-Disposition: form-data\r\n\r\nx\r\n--XyZ--\r\n")
        self.assert_refused(self.post_form(body))


if __name__ == "__main__":
    main()
