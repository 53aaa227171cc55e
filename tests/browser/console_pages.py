"""What the console's browser suites share (Chromium through Selenium, test_console.py; Firefox
through Marionette, test_console_firefox.py): where screenshots go, the window sizes, the
hostile value, and the scripts that check a page."""
import calendar
import os
import tempfile
import time

import harness

SHOTS = os.path.join(os.environ.get("HL_BUILD_DIR") or tempfile.gettempdir(), "browser-screenshots")
LAPTOP = (1366, 900)
PHONE = (390, 844)

# Markup that would set window.__pwned if it ever ran.
HOSTILE = '<script>window.__pwned=1</script><img src=x onerror="window.__pwned=2">'
PWNED_JS = "return window.__pwned === undefined ? null : window.__pwned"
# Elements the page made that it should not have (its own module script aside).
MADE_ELEMENTS_JS = ("return [...document.querySelectorAll('script, img, iframe, object, embed')]"
                    ".filter((e) => !e.matches('head script[type=module][src]'))"
                    ".map((e) => e.outerHTML)")
# [the page's width, the window's]: nothing may stick out sideways (a wide table scrolls in
# its own box).
OVERFLOW_JS = "return [document.scrollingElement.scrollWidth, window.innerWidth]"


def phone_pages(webhook_uid):
    """(name, hash) of each page a phone-width check visits."""
    return (("webhooks", "#/webhooks"), ("webhook", "#/webhooks/" + webhook_uid),
            ("deliveries", "#/deliveries"), ("events", "#/events"))


def wait_expired(link):
    """Waits until a portal link (POST portal's answer) is past its expiresAt."""
    expires = calendar.timegm(time.strptime(link["expiresAt"][:19], "%Y-%m-%dT%H:%M:%S"))
    harness.wait_for(lambda: time.time() > expires + 1.2, timeout=10, what="the link to expire")
