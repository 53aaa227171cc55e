"""A small client for Firefox's Marionette protocol, so the console can be tested in Firefox
without geckodriver (Debian ships firefox-esr but no geckodriver).

Firefox started with --marionette listens on the loopback port its profile's user.js names
(marionette.port). Every message either way is "<length>:<json>", the length being the JSON's
byte count in decimal. The server speaks first: a hello, {"applicationType": "gecko",
"marionetteProtocol": 3}. A command is [0, id, "Name", {params}]; its answer is
[1, id, error, result], error null or {"error": ..., "message": ..., "stacktrace": ...}.

Every read is bounded (a message's length, the bytes a length may take) and every wait has a
timeout: a browser that stops answering fails the test, it never hangs it.
"""
import base64
import json
import os
import shutil
import socket
import subprocess
import tempfile
import threading
import time

MAX_LENGTH_DIGITS = 10
MAX_MESSAGE = 64 << 20  # a full-page screenshot of a laptop-size window is a few MiB


class MarionetteError(Exception):
    """An error the browser answered (a WebDriver error: no such element, javascript error, ...)."""

    def __init__(self, name, message, stack=""):
        super().__init__("%s: %s" % (name, message))
        self.name = name
        self.message = message
        self.stack = stack


class Connection:
    """One Marionette connection: send a command, read its answer."""

    def __init__(self, port, timeout):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.sock.settimeout(timeout)
        self.buf = b""
        self.next_id = 0
        self.hello = self._read()
        if not isinstance(self.hello, dict) or self.hello.get("marionetteProtocol") != 3:
            raise ConnectionError("not a Marionette protocol 3 hello: %r" % (self.hello,))

    def _fill(self, want):
        while len(self.buf) < want:
            chunk = self.sock.recv(min(1 << 20, want - len(self.buf)))
            if not chunk:
                raise ConnectionError("Marionette closed the connection")
            self.buf += chunk

    def _read(self):
        digits = b""
        while True:
            self._fill(len(digits) + 1)
            c = self.buf[len(digits):len(digits) + 1]
            if c == b":":
                break
            if not c.isdigit() or len(digits) >= MAX_LENGTH_DIGITS:
                raise ConnectionError("bad Marionette frame: %r" % self.buf[:32])
            digits += c
        length = int(digits)
        if length > MAX_MESSAGE:
            raise ConnectionError("Marionette message of %d bytes (at most %d)" % (length,
                                                                                     MAX_MESSAGE))
        start = len(digits) + 1
        self._fill(start + length)
        body, self.buf = self.buf[start:start + length], self.buf[start + length:]
        return json.loads(body)

    def call(self, name, params=None):
        self.next_id += 1
        msg = json.dumps([0, self.next_id, name, params or {}]).encode()
        self.sock.sendall(b"%d:%s" % (len(msg), msg))
        while True:
            answer = self._read()
            if not (isinstance(answer, list) and len(answer) == 4 and answer[0] == 1):
                raise ConnectionError("not a Marionette answer: %r" % (answer,))
            if answer[1] == self.next_id:
                break  # an answer to an earlier command that timed out on our side is dropped
        err, result = answer[2], answer[3]
        if err:
            raise MarionetteError(err.get("error", "unknown error"), err.get("message", ""),
                                  err.get("stacktrace", ""))
        return result

    def close(self):
        self.sock.close()


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Firefox:
    """A headless Firefox in a throwaway profile with one Marionette session.

    Its stderr goes to a file: read it with stderr_text() (Firefox writes a page's uncaught
    errors there as "JavaScript error: URL, line N: ..." when browser.dom.window.dump.enabled).
    """

    def __init__(self, binary, prefs=None, timeout=30, size=(1366, 900)):
        self.timeout = timeout
        self.profile = tempfile.mkdtemp(prefix="hookline-firefox-")
        self.port = free_port()
        every = {
            "marionette.port": self.port,
            # Nothing from outside: no updates, no telemetry, no remote settings, no first run.
            "app.update.enabled": False, "app.update.auto": False,
            "browser.shell.checkDefaultBrowser": False,
            "browser.startup.homepage_override.mstone": "ignore",
            "browser.aboutwelcome.enabled": False,
            "datareporting.policy.dataSubmissionEnabled": False,
            "toolkit.telemetry.reportingpolicy.firstRun": False,
            "network.captive-portal-service.enabled": False,
            "network.connectivity-service.enabled": False,
            "browser.safebrowsing.malware.enabled": False,
            "browser.safebrowsing.phishing.enabled": False,
            "browser.safebrowsing.downloads.enabled": False,
            "extensions.update.enabled": False,
            "services.settings.server": "http://127.0.0.1:9/",
            "browser.region.network.url": "",
            "network.proxy.type": 0,
            # Uncaught errors of pages to stderr ("JavaScript error: URL, line N: ...").
            "browser.dom.window.dump.enabled": True,
            # The chrome/userChrome.css below: the window's own minimum width (about 500 px)
            # would keep a page from a phone's 390.
            "toolkit.legacyUserProfileCustomizations.stylesheets": True,
        }
        every.update(prefs or {})
        with open(os.path.join(self.profile, "user.js"), "w") as f:
            for k, v in every.items():
                f.write("user_pref(%s, %s);\n" % (json.dumps(k), json.dumps(v)))
        os.mkdir(os.path.join(self.profile, "chrome"))
        with open(os.path.join(self.profile, "chrome", "userChrome.css"), "w") as f:
            f.write(":root, #main-window, #navigator-toolbox, #nav-bar, #TabsToolbar "
                    "{ min-width: 0 !important; }\n")
        self.stderr_path = os.path.join(self.profile, "stderr.log")
        self._err = open(self.stderr_path, "wb")
        env = dict(os.environ, MOZ_HEADLESS="1", MOZ_HEADLESS_WIDTH=str(size[0]),
                   MOZ_HEADLESS_HEIGHT=str(size[1]), MOZ_CRASHREPORTER_DISABLE="1")
        self.proc = subprocess.Popen(
            [binary, "--headless", "--marionette", "--no-remote", "--profile", self.profile,
             "about:blank"], stdin=subprocess.DEVNULL, stdout=self._err, stderr=self._err,
            env=env)
        self.conn = None
        try:
            self._connect()
            self.call("WebDriver:NewSession", {"capabilities": {"alwaysMatch": {
                "pageLoadStrategy": "normal", "timeouts": {"pageLoad": timeout * 1000,
                                                           "script": timeout * 1000}}}})
        except BaseException:
            self.quit()
            raise

    def _connect(self):
        deadline = time.monotonic() + self.timeout
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError("firefox exited with %s before Marionette answered:\n%s"
                                   % (self.proc.returncode, self.stderr_text()[-3000:]))
            try:
                self.conn = Connection(self.port, self.timeout)
                return
            except (ConnectionRefusedError, ConnectionResetError):
                if time.monotonic() > deadline:
                    raise RuntimeError("Marionette did not answer on port %d in %d s:\n%s"
                                       % (self.port, self.timeout, self.stderr_text()[-3000:]))
                time.sleep(0.1)

    def call(self, name, params=None):
        return self.conn.call(name, params)

    # ---- the few commands the suite uses ----

    def get(self, url):
        self.call("WebDriver:Navigate", {"url": url})

    def current_url(self):
        return self.call("WebDriver:GetCurrentURL")["value"]

    def execute(self, script, *args):
        """Runs script (a function body) in the page's window; returns what it returns."""
        return self.call("WebDriver:ExecuteScript", {"script": script, "args": list(args)})["value"]

    def execute_async(self, script, *args):
        """Like execute(); the script calls its last argument with the result."""
        return self.call("WebDriver:ExecuteAsyncScript", {"script": script,
                                                          "args": list(args)})["value"]

    def find(self, css):
        """The elements that match css: WebDriver element references."""
        return self.call("WebDriver:FindElements", {"using": "css selector", "value": css})

    def click(self, element):
        self.call("WebDriver:ElementClick", {"id": element_id(element)})

    def send_keys(self, element, text):
        self.call("WebDriver:ElementSendKeys", {"id": element_id(element), "text": text})

    def text(self, element):
        return self.call("WebDriver:GetElementText", {"id": element_id(element)})["value"]

    def set_window_size(self, width, height):
        self.call("WebDriver:SetWindowRect", {"width": width, "height": height})

    def cookies(self):
        return self.call("WebDriver:GetCookies")

    def delete_cookies(self):
        self.call("WebDriver:DeleteAllCookies")

    def screenshot(self, path):
        png = self.call("WebDriver:TakeScreenshot", {"full": False, "hash": False})["value"]
        with open(path, "wb") as f:
            f.write(base64.b64decode(png))

    def stderr_text(self):
        self._err.flush()
        with open(self.stderr_path, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def quit(self):
        """Ends the session, then the browser (killed when it does not exit in time)."""
        if self.conn:
            closing = threading.Thread(target=self._quit_session, daemon=True)
            closing.start()
            closing.join(self.timeout)
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self._err.close()
        shutil.rmtree(self.profile, ignore_errors=True)

    def _quit_session(self):
        try:
            self.call("WebDriver:DeleteSession")
            self.call("Marionette:Quit", {"flags": ["eForceQuit"]})
        except (OSError, MarionetteError):
            pass
        finally:
            self.conn.close()


def element_id(element):
    """The id in a WebDriver element reference ({"element-6066-...": id})."""
    return next(iter(element.values()))
