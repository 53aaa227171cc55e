#!/usr/bin/env bash
# Installs the Debian packages hookline needs, and only those that are missing.
# Usage: scripts/deps.sh [build|test|bench]   (each level includes the one before)
set -euo pipefail
level=${1:-build}
pkgs=(build-essential cmake pkg-config libmicrohttpd-dev libcurl4-openssl-dev libsqlite3-dev
      libjansson-dev libssl-dev libpq-dev libpoppler-glib-dev)
# test: systemd for systemd-analyze, which checks examples/hookline.service; chromium,
# chromium-driver and python3-selenium (for /usr/bin/python3, which the browser suite runs on)
# drive the console in a headless browser.
case "$level" in
  test|bench|coverage) pkgs+=(libcmocka-dev python3 postgresql nodejs npm sqlite3 clang
                               libclang-rt-14-dev poppler-utils systemd chromium chromium-driver
                               python3-selenium) ;;
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
  if [ "$p" = python3 ] && command -v python3 >/dev/null 2>&1; then continue; fi
  status=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
  [ "$status" = "install ok installed" ] || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
echo "installing: ${missing[*]}"
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO=sudo
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
