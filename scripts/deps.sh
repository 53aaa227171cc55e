#!/usr/bin/env bash
# Installs the Debian packages hookline needs, and only those that are missing.
# Usage: scripts/deps.sh [build|test|bench]   (each level includes the one before)
set -euo pipefail
level=${1:-build}
pkgs=(build-essential cmake pkg-config libmicrohttpd-dev libcurl4-openssl-dev libsqlite3-dev
      libjansson-dev libssl-dev libpq-dev libpoppler-glib-dev libyaml-dev zlib1g-dev)
# test: systemd for systemd-analyze, which checks examples/hookline.service; python3-yaml and
# python3-jsonschema for the harness, which checks every response against openapi/hookline.yaml
# (the suites run under /usr/bin/python3, where these are installed); chromium, chromium-driver
# and python3-selenium for the pages (/docs and the console) in a headless browser; prometheus for
# promtool, which checks a live /metrics and loads examples/alerts.yml and the dashboard's
# expressions.
case "$level" in
  test|bench|coverage) pkgs+=(libcmocka-dev python3 python3-yaml python3-jsonschema postgresql
                              nodejs npm sqlite3 clang libclang-rt-14-dev poppler-utils curl jq
                              systemd chromium chromium-driver python3-selenium prometheus) ;;
esac
case "$level" in
  bench) pkgs+=(nginx-light wrk) ;;
  coverage) pkgs+=(gcovr) ;;
esac
missing=()
for p in "${pkgs[@]}"; do
  # nodejs may come from outside Debian's archive: a working node is as good.
  if [ "$p" = nodejs ] && command -v node >/dev/null 2>&1; then continue; fi
  if [ "$p" = npm ] && command -v npm >/dev/null 2>&1; then continue; fi
  status=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
  [ "$status" = "install ok installed" ] || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing: ${missing[*]}"
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO=sudo
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
# test: the OpenAPI linter into tests/openapi/node_modules (tests/openapi/test_openapi.py runs
# it from there): @redocly/cli at the version tests/openapi/package-lock.json pins, which needs
# node 20.19 or later; on an older node (Debian 12's own is 18) the 1.34.20 release, which lints
# the document the same way.
case "$level" in
  test|bench|coverage)
    dir="$(cd "$(dirname "$0")/.." && pwd)/tests/openapi"
    if node -e 'const [a, b] = process.versions.node.split(".").map(Number);
                process.exit(a > 20 || (a === 20 && b >= 19) ? 0 : 1)'; then
      want=$(node -p 'require(process.argv[1]).packages["node_modules/@redocly/cli"].version' \
             "$dir/package-lock.json")
      install=(npm ci)
    else
      want=1.34.20
      install=(npm install --no-save --no-package-lock "@redocly/cli@$want")
    fi
    have=$(node -p 'require(process.argv[1]).version' \
           "$dir/node_modules/@redocly/cli/package.json" 2>/dev/null || true)
    if [ "$have" != "$want" ]; then
      echo "installing: @redocly/cli $want (npm, into tests/openapi/node_modules)"
      (cd "$dir" && "${install[@]}" --no-audit --no-fund --loglevel=error)
    fi ;;
esac
