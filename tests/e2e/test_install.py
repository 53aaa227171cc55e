"""make install and make uninstall, as a user of libhookline meets them (issue 13, point 1).

`make install PREFIX=<temporary folder>` (the README's command, which builds build/ first),
then, with nothing but what it installed:
- examples/receiver.c builds with `cc ... $(pkg-config --cflags --libs hookline libmicrohttpd)`
  and runs (no LD_LIBRARY_PATH), accepting a signed request and refusing a forged one;
- a CMake project with find_package(hookline) builds against hookline::hookline and
  hookline::hookline_static, and both programs run;
- `make uninstall PREFIX=...` removes every file install put there.
DESTDIR stages an install (hookline.pc still names the real prefix) and uninstalls from it.
"""
import hashlib
import hmac
import http.client
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.dirname(__file__))
from harness import SOURCE_DIR, free_port, main, need, wait_for  # noqa: E402

SECRET = "whsec_aW5zdGFsbC10ZXN0LXNlY3JldC0xMjM0NTY="
MANIFEST = "share/hookline/install-manifest.txt"


def env_without_make():
    """The environment for a make of our own: not the outer make's jobserver, no ASan options
    (this build is a plain one), no library path that could hide a missing rpath."""
    drop = ("MAKEFLAGS", "MFLAGS", "MAKELEVEL", "LD_LIBRARY_PATH", "PKG_CONFIG_PATH")
    return {k: v for k, v in os.environ.items() if k not in drop}


def make(*args):
    r = subprocess.run(["make", "-C", SOURCE_DIR] + list(args), capture_output=True, text=True,
                       env=env_without_make(), timeout=1800, stdin=subprocess.DEVNULL)
    if r.returncode != 0:
        raise AssertionError("make %s failed:\n%s\n%s" % (" ".join(args), r.stdout[-3000:],
                                                           r.stderr[-3000:]))
    return r


def files_under(root):
    out = []
    for d, _, names in os.walk(root):
        out += [os.path.relpath(os.path.join(d, n), root) for n in names]
    return sorted(out)


def post(port, body, headers):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    c.request("POST", "/webhooks/mindset", body=body,
              headers=dict(headers, **{"Content-Type": "application/json"}))
    r = c.getresponse()
    out = r.status, json.loads(r.read())
    c.close()
    return out


CONSUMER_C = r"""
#include <hookline/verify.h>
#include <stdio.h>
#include <string.h>

int main(void)
{
    const char *body = "%(body)s";
    int good = hookline_verify_signature("%(secret)s", body, strlen(body), "sha256=%(sig)s");
    int bad = hookline_verify_signature("%(secret)s", body, strlen(body) - 1, "sha256=%(sig)s");
    printf("%%s\n", good == HOOKLINE_OK && bad == HOOKLINE_ERR_SIGNATURE ? "verified" : "wrong");
    return good != HOOKLINE_OK;
}
"""

CONSUMER_CMAKE = """
cmake_minimum_required(VERSION 3.18)
project(consumer C)
find_package(hookline 0.1 REQUIRED)
add_executable(with_shared main.c)
target_link_libraries(with_shared PRIVATE hookline::hookline)
add_executable(with_static main.c)
target_link_libraries(with_static PRIVATE hookline::hookline_static)
"""


class Install(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        for tool in ("make", "cc", "pkg-config", "cmake"):
            need(shutil.which(tool), tool)

    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="hookline-install-")

    def tearDown(self):
        shutil.rmtree(self.tmp, ignore_errors=True)

    def manifest(self, root):
        with open(os.path.join(root, MANIFEST)) as f:
            return f.read().split()

    def test_install_build_against_it_uninstall(self):
        prefix = os.path.join(self.tmp, "prefix")
        make("install", "PREFIX=" + prefix)
        installed = self.manifest(prefix)
        self.assertEqual(sorted(os.path.join(prefix, f) for f in files_under(prefix)),
                         sorted(installed))
        pcs = [f for f in installed if f.endswith("/pkgconfig/hookline.pc")]
        self.assertEqual(len(pcs), 1, installed)
        with open(pcs[0]) as f:
            self.assertIn("prefix=%s\n" % prefix, f.read())
        for want in ("bin/hookline", "include/hookline/verify.h", "libhookline.so.0",
                     "libhookline.a", "cmake/hookline/hooklineConfig.cmake"):
            self.assertTrue(any(f.endswith(want) for f in installed), want)

        self.run_receiver(os.path.dirname(pcs[0]))
        self.build_cmake_consumer(prefix)

        make("uninstall", "PREFIX=" + prefix)
        self.assertEqual(files_under(prefix), [])
        for f in installed:
            self.assertFalse(os.path.lexists(f), f)

    def run_receiver(self, pkgconfig_dir):
        env = env_without_make()
        env["PKG_CONFIG_PATH"] = pkgconfig_dir
        flags = subprocess.run(["pkg-config", "--cflags", "--libs", "hookline", "libmicrohttpd"],
                               capture_output=True, text=True, env=env, check=True).stdout.split()
        exe = os.path.join(self.tmp, "receiver")
        r = subprocess.run(["cc", os.path.join(SOURCE_DIR, "examples", "receiver.c")] + flags +
                           ["-lpthread", "-o", exe], capture_output=True, text=True,
                           env=env_without_make(), timeout=300)
        self.assertEqual(r.returncode, 0, r.stderr)
        port = free_port()
        log = os.path.join(self.tmp, "receiver.out")
        with open(log, "wb") as out:
            proc = subprocess.Popen([exe, str(port)], stdout=out, stderr=subprocess.STDOUT,
                                    env=dict(env_without_make(), MINDSET_WEBHOOK_SECRET=SECRET))

        def text():
            with open(log, "rb") as f:
                return f.read().decode("utf-8", "replace")
        try:
            wait_for(lambda: "running on port" in text() or proc.poll() is not None, 20,
                     what="the receiver to start")
            self.assertIsNone(proc.poll(), text())
            ts = time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime())
            body = json.dumps({"eventId": "evt_install", "event": "agent.created",
                               "timestamp": ts, "appUid": "app-1", "version": 1,
                               "data": {"uid": "agent-1", "externalTenantId": "tenant-1"}},
                              separators=(",", ":")).encode()
            sig = hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
            self.assertEqual(post(port, body, {"X-Webhook-Signature": "sha256=" + sig}),
                             (200, {"received": True}))
            self.assertEqual(post(port, body, {"X-Webhook-Signature": "sha256=" + "0" * 64})[0],
                             401)
            wait_for(lambda: "evt_install" in text(), 10, what="the event processed")
        finally:
            proc.send_signal(signal.SIGTERM)
            rc = proc.wait(timeout=20)
        self.assertEqual(rc, 0, text())
        self.assertNotIn("error while loading shared libraries", text())

    def build_cmake_consumer(self, prefix):
        src = os.path.join(self.tmp, "consumer")
        os.mkdir(src)
        body = '{"eventId":"evt_1","event":"agent.created"}'
        sig = hmac.new(SECRET.encode(), body.encode(), hashlib.sha256).hexdigest()
        with open(os.path.join(src, "main.c"), "w") as f:
            f.write(CONSUMER_C % {"body": body.replace('"', '\\"'), "secret": SECRET,
                                  "sig": sig})
        with open(os.path.join(src, "CMakeLists.txt"), "w") as f:
            f.write(CONSUMER_CMAKE)
        build = os.path.join(self.tmp, "consumer-build")
        for cmd in (["cmake", "-S", src, "-B", build, "-DCMAKE_PREFIX_PATH=" + prefix],
                    ["cmake", "--build", build]):
            r = subprocess.run(cmd, capture_output=True, text=True, env=env_without_make(),
                               timeout=600)
            self.assertEqual(r.returncode, 0, r.stdout[-3000:] + r.stderr[-3000:])
        for exe in ("with_shared", "with_static"):
            r = subprocess.run([os.path.join(build, exe)], capture_output=True, text=True,
                               env=env_without_make(), timeout=60)
            self.assertEqual((r.returncode, r.stdout), (0, "verified\n"), r.stderr)

    def test_destdir_stages_for_the_real_prefix(self):
        stage = os.path.join(self.tmp, "stage")
        make("install", "PREFIX=/opt/hookline-test", "DESTDIR=" + stage)
        root = os.path.join(stage, "opt", "hookline-test")
        installed = self.manifest(root)
        for f in installed:
            self.assertTrue(f.startswith("/opt/hookline-test/"), f)
            self.assertTrue(os.path.lexists(stage + f), f)
        self.assertEqual(files_under(stage), sorted(f.lstrip("/") for f in installed))
        self.assertFalse(os.path.exists("/opt/hookline-test"))
        pc = [f for f in installed if f.endswith("hookline.pc")][0]
        with open(stage + pc) as f:
            text = f.read()
        self.assertIn("prefix=/opt/hookline-test\n", text)
        self.assertNotIn(stage, text)
        for f in installed:
            if f.endswith(".cmake"):
                with open(stage + f) as fh:
                    self.assertNotIn(stage, fh.read(), f)
        make("uninstall", "PREFIX=/opt/hookline-test", "DESTDIR=" + stage)
        self.assertEqual(files_under(stage), [])


if __name__ == "__main__":
    main()
