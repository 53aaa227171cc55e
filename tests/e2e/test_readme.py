"""The README's Quick start, run as written (issue 13, point 2), so that it cannot drift from the
program again.

Every ```sh block from "## Quick start" up to "## What a receiver gets" runs in order in one
bash (set -e, pipefail), in a temporary folder that looks like the repository to the commands:
build/hookline is the binary under test, examples/ the repository's. The first block must be
`make run`; the test runs the Makefile's own `run` recipe in its place (not the build and apt-get
steps before it), in the background, like the first terminal of the README. Only the ports
change: 8080 and 3000 become free ones, so that the test never meets another server on a shared
machine.

The test fails when a command fails, when an answer is an API error, or when an output block (a
fenced block that is not sh) is not matched by what the sh block before it printed: each of its
lines must match a line of that output (whitespace runs count as one space, "…" stands for any
text, lines in any order: the receiver's lines arrive when they arrive). It also holds the README
to its own rules: every curl has -sS, and its output ends with a newline (piped to jq, or -w
'...\\n', or captured by $(...)).
"""
import fnmatch
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(__file__))
from harness import BIN, SOURCE_DIR, free_port, main, need, wait_for  # noqa: E402

README = os.path.join(SOURCE_DIR, "README.md")
START, END = "## Quick start", "## What a receiver gets"
SANITIZER = ("AddressSanitizer", "runtime error:", "LeakSanitizer")


def quick_start_blocks():
    """[(language, text)] of the fenced blocks of the Quick start and the sections under it."""
    with open(README, encoding="utf-8") as f:
        text = f.read()
    region = text[text.index(START):text.index(END)]
    return [(m.group(1), m.group(2))
            for m in re.finditer(r"^```(\w*)\n(.*?)^```$", region, re.S | re.M)]


def logical_lines(block):
    """The block's commands: lines joined across a trailing backslash or pipe, an open $( and
    an open single quote."""
    out, cur = [], []
    for line in block.splitlines():
        s = line.rstrip()
        cur.append(s.rstrip("\\").rstrip())
        joined = " ".join(cur)
        if (s.endswith("\\") or s.endswith("|") or joined.count("$(") > joined.count(")")
                or joined.count("'") % 2):
            continue
        if joined.strip():
            out.append(joined.strip())
        cur = []
    if cur:
        out.append(" ".join(cur).strip())
    return out


def make_run_recipe():
    """The commands of the Makefile's `run` target, with its variables' defaults."""
    with open(os.path.join(SOURCE_DIR, "Makefile")) as f:
        text = f.read()
    defaults = dict(re.findall(r"^(\w+) \?= (.*)$", text, re.M))
    recipe = re.search(r"^run:.*\n((?:\t.*\n)+)", text, re.M).group(1)
    cmds = [line.strip() for line in recipe.splitlines()]
    return [re.sub(r"\$\((\w+)\)", lambda m: defaults[m.group(1)], c) for c in cmds]


def normalize(line):
    return " ".join(line.split())


def pattern(expected):
    parts = [re.escape(p) for p in normalize(expected).split("…")]
    return re.compile(".*".join(parts))


class Terminal:
    """One bash fed command blocks, its output (stdout and stderr, background jobs included)
    gathered in the background."""

    def __init__(self, cwd, env):
        self.proc = subprocess.Popen(["bash", "--noprofile", "--norc"], cwd=cwd, env=env,
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, start_new_session=True)
        self.out = b""
        self.lock = threading.Lock()
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()
        self.send("set -eo pipefail\n")

    def _read(self):
        while True:
            chunk = self.proc.stdout.read1(65536)
            if not chunk:
                return
            with self.lock:
                self.out += chunk

    def text(self, since=0):
        with self.lock:
            return self.out[since:].decode("utf-8", "replace")

    def size(self):
        with self.lock:
            return len(self.out)

    def send(self, text):
        self.proc.stdin.write(text.encode())
        self.proc.stdin.flush()

    def run_block(self, n, block, timeout=120):
        """Runs block; returns its output. Fails when bash exits (set -e) or the block hangs."""
        start = self.size()
        marker = "@@block-%d-done@@" % n
        self.send(block + "\necho %s\n" % marker)
        wait_for(lambda: marker in self.text(start) or self.proc.poll() is not None, timeout,
                 0.05, "block %d to finish" % n)
        if marker not in self.text(start):
            raise AssertionError("block %d failed (bash exited %s):\n%s\n--- output:\n%s"
                                 % (n, self.proc.returncode, block, self.text(start)))
        return start

    def close(self):
        try:
            os.killpg(self.proc.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
        self.reader.join(timeout=20)
        self.proc.stdin.close()
        self.proc.stdout.close()


class QuickStart(unittest.TestCase):

    def setUp(self):
        for tool in ("bash", "curl", "jq"):
            need(shutil.which(tool), tool)
        self.tmp = tempfile.mkdtemp(prefix="hookline-readme-")
        os.mkdir(os.path.join(self.tmp, "build"))
        os.symlink(os.path.abspath(BIN), os.path.join(self.tmp, "build", "hookline"))
        os.symlink(os.path.join(os.path.abspath(SOURCE_DIR), "examples"),
                   os.path.join(self.tmp, "examples"))
        self.api_port, self.rx_port = free_port(), free_port()
        self.server = self.terminal = None

    def tearDown(self):
        if self.terminal:
            self.terminal.close()
        if self.server and self.server.poll() is None:
            self.server.kill()
            self.server.wait()
        shutil.rmtree(self.tmp, ignore_errors=True)

    def ports(self, text):
        text = text.replace("127.0.0.1:8080", "127.0.0.1:%d" % self.api_port)
        text = text.replace("127.0.0.1:3000", "127.0.0.1:%d" % self.rx_port)
        return text.replace("port 3000", "port %d" % self.rx_port)  # --port 3000, and its log

    def test_the_readme_rules(self):
        blocks = quick_start_blocks()
        sh = [b for lang, b in blocks if lang == "sh"]
        self.assertGreaterEqual(len(sh), 5)
        for block in sh:
            for cmd in map(normalize, logical_lines(block)):
                if "curl " not in cmd:
                    continue
                self.assertIn(" -sS ", cmd + " ", cmd)
                ends_in_newline = ("| jq" in cmd or re.search(r"-w '[^']*\\n'", cmd)
                                   or re.match(r"^\w+=\$\(curl ", cmd))
                self.assertTrue(ends_in_newline, "output without a final newline: " + cmd)
            for port in ("8080", "3000"):
                # every port is one the test can move
                self.assertNotIn(port, self.ports(block), block)

    def test_quick_start_as_written(self):
        blocks = quick_start_blocks()
        self.assertEqual(blocks[0], ("sh", "make run\n"), "the Quick start starts with make run")

        # the first terminal: make run's recipe
        recipe = [self.ports(c) for c in make_run_recipe()]
        self.assertIn("serve", recipe[-1])
        for cmd in recipe[:-1]:
            subprocess.run(cmd, shell=True, cwd=self.tmp, check=True, timeout=60)
        log = open(os.path.join(self.tmp, "serve.log"), "wb")
        self.server = subprocess.Popen("exec " + recipe[-1], shell=True, cwd=self.tmp, stdout=log,
                                       stderr=subprocess.STDOUT, start_new_session=True)
        log.close()

        def server_log():
            with open(os.path.join(self.tmp, "serve.log"), "rb") as f:
                return f.read().decode("utf-8", "replace")
        wait_for(lambda: "listening on" in server_log() or self.server.poll() is not None, 60,
                 0.05, "make run's server")
        self.assertIsNone(self.server.poll(), server_log())
        self.assertIn("Created a development app", server_log())

        # the second terminal: every other block, in order
        env = {k: v for k, v in os.environ.items() if not k.startswith("HOOKLINE_")}
        self.terminal = Terminal(self.tmp, env)
        start = None
        for n, (lang, text) in enumerate(blocks[1:], 1):
            if lang == "sh":
                start = self.terminal.run_block(n, self.ports(text))
                out = self.terminal.text(start)
                self.assertNotRegex(out, r'"error" ?: ?\{', "block %d: an API error:\n%s\n%s"
                                    % (n, text, out))
                continue
            self.assertIsNotNone(start, "an output block before any command")
            self.expect(n, self.ports(text), start)

        self.server.send_signal(signal.SIGTERM)
        self.assertEqual(self.server.wait(timeout=30), 0, server_log())
        for bad in SANITIZER:
            self.assertNotIn(bad, server_log() + self.terminal.text())

    def expect(self, n, block, start):
        """Waits until every line of the output block has matched its own line of the output
        printed since start."""
        want = [pattern(line) for line in block.splitlines() if line.strip()]

        def matched():
            lines = [normalize(x) for x in self.terminal.text(start).splitlines()]
            free = list(range(len(lines)))
            for p in want:
                hit = next((i for i in free if p.fullmatch(lines[i])), None)
                if hit is None:
                    return False
                free.remove(hit)
            return True
        try:
            wait_for(matched, 30, 0.1, "output block %d" % n)
        except AssertionError:
            self.fail("output block %d not matched:\n%s\n--- printed:\n%s"
                      % (n, block, self.terminal.text(start)))


def slug(heading):
    """GitHub's anchor for a heading."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower().replace("`", ""))
    return text.replace(" ", "-")


def gitignored(patterns, path):
    """Whether a .gitignore with these patterns (the simple kinds: a name, a glob, /anchored)
    ignores path."""
    for p in patterns:
        if p.endswith("/"):  # a folder, and everything in it
            d = p.strip("/")
            parents = path.split("/")[:-1]
            if (parents[:1] == [d]) if p.startswith("/") else d in parents:
                return True
        elif p.startswith("/"):
            if fnmatch.fnmatch(path, p[1:]):
                return True
        elif fnmatch.fnmatch(os.path.basename(path), p) or fnmatch.fnmatch(path, p):
            return True
    return False


class StandsAlone(unittest.TestCase):
    """The README and docs/ point only inside the repository, which carries its licence and
    ignores what the Quick start and the README's commands leave behind."""

    def test_links_resolve_inside_the_repository(self):
        docs = os.path.join(SOURCE_DIR, "docs")
        self.assertTrue(os.path.exists(os.path.join(docs, "ARCHITECTURE.md")))
        for doc in ["README.md"] + [os.path.join("docs", f) for f in sorted(os.listdir(docs))
                                    if f.endswith(".md")]:
            with open(os.path.join(SOURCE_DIR, doc), encoding="utf-8") as f:
                text = f.read()
            for bad in ("webhooks-guide.txt", "/work/"):
                self.assertNotIn(bad, text, doc)
            # no path into a "shared" folder outside the repository (shared/DESIGN.md, ...)
            self.assertIsNone(re.search(r"(?<![\w-])shared/", text), doc)
            anchors = {slug(h) for h in re.findall(r"^#+ (.*)$", text, re.M)}
            for target in re.findall(r"\]\(([^)\s]+)\)", text):
                with self.subTest(doc=doc, link=target):
                    if re.match(r"^[a-z]+://", target):
                        continue
                    path, _, anchor = target.partition("#")
                    if path:
                        where = os.path.normpath(os.path.join(os.path.dirname(doc), path))
                        self.assertFalse(where.startswith(".."), target)
                        self.assertTrue(os.path.exists(os.path.join(SOURCE_DIR, where)), target)
                    else:
                        self.assertIn(anchor, anchors)

    def test_licence_and_ignored_files(self):
        with open(os.path.join(SOURCE_DIR, "LICENSE")) as f:
            self.assertIn("hookline contributors", f.read())
        with open(os.path.join(SOURCE_DIR, ".gitignore")) as f:
            patterns = [line.strip() for line in f
                        if line.strip() and not line.startswith("#")]
        for path in ("hookline-listen.db", "hookline-listen.db-wal", "hookline-listen.db-shm",
                     "receiver", "examples/receiver", "data/hookline.db",
                     "data/hookline-data/dev-api-key"):
            self.assertTrue(gitignored(patterns, path), path)
        for path in ("examples/receiver.c", "examples/files/guide.pdf", "README.md"):
            self.assertFalse(gitignored(patterns, path), path)


if __name__ == "__main__":
    main()
