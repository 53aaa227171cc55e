#!/usr/bin/env bash
# Runs a browser suite on Debian's /usr/bin/python3, which is where python3-selenium is
# installed; a python3 found first on another PATH (pyenv, a virtualenv) would not have it.
# Without /usr/bin/python3 the suite cannot start: 77 (ctest's "skipped"), 1 under
# HL_REQUIRE_ALL=1. The suite itself checks for selenium, chromium and chromium-driver.
set -euo pipefail
if [ ! -x /usr/bin/python3 ]; then
    echo "$0: /usr/bin/python3 is missing (scripts/deps.sh test installs it)" >&2
    [ "${HL_REQUIRE_ALL:-0}" = 1 ] && exit 1
    exit 77
fi
exec /usr/bin/python3 -u "$@"
