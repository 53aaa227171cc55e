"""The command line: options from flags and environment variables, refused before anything is
created, every command's help, and serve's one start-up and teardown path."""
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.dirname(__file__))
from harness import BIN, Server, free_port, main, wait_for  # noqa: E402

SANITIZER = ("AddressSanitizer", "runtime error:", "LeakSanitizer")


def clean_env(**extra):
    """The environment without any HOOKLINE_ variable, plus extra."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("HOOKLINE_")}
    env.update(extra)
    return env


def run(args, env=None, timeout=60):
    return subprocess.run([BIN] + args, capture_output=True, text=True, env=env or clean_env(),
                          timeout=timeout, stdin=subprocess.DEVNULL)


class Cli(unittest.TestCase):

    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="hookline-cli-")

    def tearDown(self):
        shutil.rmtree(self.tmp, ignore_errors=True)

    def assert_clean(self, text):
        for bad in SANITIZER:
            self.assertNotIn(bad, text)

    def test_bad_argument_creates_nothing(self):
        # Each is refused with status 2 and a message naming what is wrong, before the database,
        # its folder or a development app exist.
        sub = os.path.join(self.tmp, "sub")
        db = os.path.join(sub, "y.db")
        cases = [
            (["serve", "--listen", "8080", "--database", db], {}, "--listen 8080: want HOST:PORT"),
            (["serve", "--database", db, "--listen", "127.0.0.1:99999"], {}, "--listen"),
            (["serve", "--database", db, "--threads", "0"], {}, "--threads 0: want a whole"),
            (["serve", "--database", db], {"HOOKLINE_TIMEOUT": "1x"},
             "HOOKLINE_TIMEOUT=1x: want a duration"),
            (["serve", "--database", db], {"HOOKLINE_LISTEN": "8080"}, "HOOKLINE_LISTEN=8080"),
            (["serve", "--database", db, "--chunk-overlap", "5000"], {}, "--chunk-overlap 5000"),
            (["serve", "--database", db, "--allow-network", "10.0.0.0/33"], {},
             "--allow-network 10.0.0.0/33"),
            (["serve", "--database", db, "--max-upload", "50MB"], {}, "--max-upload 50MB"),
            (["serve", "--database", db, "--mode", "staging"], {}, "development or production"),
            (["serve", "--database", db, "now"], {}, "unexpected argument 'now'"),
            (["apps", "create", "x", "--database", db, "--json=yes"], {}, "--json takes no value"),
            (["apps", "create", "x", "--database", db, "--threads", "8"], {},
             "unknown option --threads"),
            (["keys", "list", "--database", db, "--nope"], {}, "unknown option --nope"),
        ]
        for args, env, want in cases:
            with self.subTest(args=args, env=env):
                r = run(args, clean_env(**env))
                self.assertEqual(r.returncode, 2, r.stderr)
                self.assertIn(want, r.stderr)
                self.assertIn("--help lists the options", r.stderr)
                self.assertNotIn("apiKey", r.stdout)
                self.assertFalse(os.path.exists(sub), "%s created %s" % (args, sub))
                self.assert_clean(r.stderr)

    def test_secrets_are_not_repeated_in_errors(self):
        secret = "whsec_" + "Q" * 2000
        for args, env in ((["listen", "--secret", secret], {}),
                          (["verify", "--signature", "x"], {"HOOKLINE_WEBHOOK_SECRET": secret})):
            with self.subTest(args=args[0]):
                r = run(args, clean_env(**env))
                self.assertEqual(r.returncode, 2)
                self.assertIn("want 1 to 1024 bytes", r.stderr)
                self.assertNotIn("QQQQ", r.stderr)

    def test_every_command_has_generated_help(self):
        for cmd, options in (("serve", ["--listen ADDR:PORT", "HOOKLINE_LISTEN", "--lease",
                                         "--allow-network CIDR", "default 256"]),
                             ("apps", ["--database PATH|URL", "--json"]),
                             ("keys", ["--database PATH|URL", "--json"]),
                             ("listen", ["--secret SECRET", "HOOKLINE_WEBHOOK_SECRET",
                                         "--max-body BYTES", "default 2M"]),
                             ("verify", ["--standard-signature", "--tolerance SECONDS"])):
            with self.subTest(cmd=cmd):
                for flag in ("--help", "-h"):
                    r = run([cmd, flag])
                    self.assertEqual(r.returncode, 0, r.stderr)
                    self.assertTrue(r.stdout.startswith("usage: hookline " + cmd), r.stdout)
                    for o in options:
                        self.assertIn(o, r.stdout)
                    self.assertIn("--help", r.stdout)
                    self.assertEqual(r.stderr, "")
                r = run([cmd, "--bogus"])
                self.assertEqual(r.returncode, 2)
                self.assertIn("unknown option --bogus", r.stderr)

    def test_environment_configures_serve(self):
        # No flags at all: the address, database and mode come from the environment, and the
        # server stops cleanly on SIGTERM through its one teardown.
        port = free_port()
        db = os.path.join(self.tmp, "env.db")
        env = clean_env(HOOKLINE_LISTEN="127.0.0.1:%d" % port, HOOKLINE_DATABASE=db,
                        HOOKLINE_MODE="production", HOOKLINE_THREADS="2")
        log = open(os.path.join(self.tmp, "serve.log"), "w+")
        p = subprocess.Popen([BIN, "serve"], env=env, stdout=log, stderr=subprocess.STDOUT)
        try:
            def up():
                if p.poll() is not None:
                    raise AssertionError("serve exited %s" % p.returncode)
                try:
                    socket.create_connection(("127.0.0.1", port), timeout=1).close()
                    return True
                except OSError:
                    return False
            wait_for(up, 20, 0.02, "serve on the port from HOOKLINE_LISTEN")
            self.assertTrue(os.path.exists(db))
            p.send_signal(signal.SIGTERM)
            self.assertEqual(p.wait(timeout=20), 0)
        finally:
            if p.poll() is None:
                p.kill()
                p.wait()
        log.seek(0)
        text = log.read()
        log.close()
        self.assertIn("production mode", text)
        self.assertNotIn("apiKey", text)  # production: no development app
        self.assert_clean(text)

    def test_start_failure_takes_the_teardown_path(self):
        # The port is taken: serve opened the database and started its workers, then stops them
        # all on the way out (status 1, and the sanitizers find nothing left behind).
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        s.listen(1)
        try:
            db = os.path.join(self.tmp, "busy.db")
            r = run(["serve", "--listen", "127.0.0.1:%d" % s.getsockname()[1], "--database", db,
                     "--mode", "production"])
        finally:
            s.close()
        self.assertEqual(r.returncode, 1, r.stderr)
        self.assertIn("cannot listen", r.stderr)
        self.assert_clean(r.stderr)


class Precedence(unittest.TestCase):
    """A flag beats its environment variable, which beats the default."""

    def test_flag_beats_variable(self):
        # The harness gives --listen and --mode as flags: variables saying otherwise are not
        # read, not even to be refused.
        srv = Server(env={"HOOKLINE_LISTEN": "not-an-address", "HOOKLINE_MODE": "staging",
                          "HOOKLINE_THREADS": "2"})
        try:
            srv.start()
            self.assertEqual(srv.request("GET", "/healthz").status, 200)
            self.assertIn("development mode", srv.log())
        finally:
            self.assertEqual(srv.stop(), 0)
            log = srv.log()
            srv.cleanup()
        for bad in SANITIZER:
            self.assertNotIn(bad, log)


if __name__ == "__main__":
    main()
