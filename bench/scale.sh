#!/usr/bin/env bash
# bench/scale.sh [--events N] [--resources R] [--before REV] [--only sqlite|postgres]
#
# The scale phase of make bench on its own: builds an optimised hookline (build-bench/), and with
# --before the same from git revision REV (build-bench/before/, from `git archive`: nothing in the
# work tree changes), then runs bench/scale.py on SQLite and on a throwaway PostgreSQL
# (scripts/with-postgres.sh): N events and deliveries (default 1,000,000) and R resources (default
# N), every list and count timed by each binary on the same rows. Raw figures go to
# build-bench/scale-run/results.json (scale-run-N/ when N is not 1,000,000: a 10,000,000 run keeps
# the 1,000,000 one), the table to scale.md beside it.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
EVENTS=1000000
RESOURCES=0
BEFORE=""
ONLY=""
while [ $# -gt 0 ]; do
    case "$1" in
    --events)
        EVENTS=${2:?--events needs a number}
        shift
        ;;
    --resources)
        RESOURCES=${2:?--resources needs a number}
        shift
        ;;
    --before)
        BEFORE=${2:?--before needs a git revision}
        shift
        ;;
    --only)
        ONLY=${2:?--only needs sqlite or postgres}
        shift
        ;;
    -h | --help)
        sed -n '2,11p' "$0" | sed 's/^# \{0,1\}//'
        exit 0
        ;;
    *)
        echo "usage: bench/scale.sh [--events N] [--resources R] [--before REV] [--only sqlite|postgres]" >&2
        exit 2
        ;;
    esac
    shift
done

MODE=scale
BUILD=$ROOT/build-bench
RUN=$BUILD/scale-run
[ "$EVENTS" = 1000000 ] || RUN=$BUILD/scale-run-$EVENTS
TOOLS=$BUILD/bench-tools
RESULTS=$RUN/results.json
BENCH_TAG=scale
# shellcheck source=bench/lib.sh
. "$ROOT/bench/lib.sh"
trap 'if [ -n "$STEP_PID" ]; then stop_pid "$STEP_PID" "the running step" || true; fi' EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

build_bench
ARGS=(--hl "$HL" --events "$EVENTS" --resources "$RESOURCES" --results "$RESULTS")
# an hour a backend for a million rows (most of it the fill), and in proportion beyond
LIMIT=$((3600 * (EVENTS > 1000000 ? EVENTS / 1000000 : 1)))
if [ -n "$BEFORE" ]; then
    OLD=$BUILD/before
    REV=$(git rev-parse "$BEFORE^{commit}")
    # built already from the same revision: kept
    if [ "$(cat "$OLD/rev" 2>/dev/null)" != "$REV" ] || [ ! -x "$OLD/build/hookline" ]; then
        rm -rf "$OLD"
        mkdir -p "$OLD/src"
        git archive "$REV" | tar -x -C "$OLD/src"
        log "building $BEFORE (Release) in build-bench/before/"
        # shellcheck disable=SC2016 # expanded by the inner shell
        step "build $BEFORE" 900 sh -c 'cmake -S "$1/src" -B "$1/build" \
            -DCMAKE_BUILD_TYPE=Release -DHL_TESTS=OFF >"$1/build.log" 2>&1 &&
            cmake --build "$1/build" -j "$(nproc)" >>"$1/build.log" 2>&1' sh "$OLD"
        echo "$REV" >"$OLD/rev"
    fi
    ARGS+=(--hl-before "$OLD/build/hookline")
fi
if [ "$ONLY" != postgres ]; then
    log "SQLite: $EVENTS events and deliveries"
    step "scale (SQLite)" "$LIMIT" python3 "$ROOT/bench/scale.py" "${ARGS[@]}"
fi
if [ "$ONLY" = sqlite ]; then
    log "PostgreSQL: not run (--only sqlite)"
elif compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null; then
    log "PostgreSQL: $EVENTS events and deliveries"
    step "scale (PostgreSQL)" "$LIMIT" env HOOKLINE_TEST_PG_FSYNC=on HOOKLINE_TEST_BACKEND=postgres \
        "$ROOT/scripts/with-postgres.sh" python3 "$ROOT/bench/scale.py" "${ARGS[@]}"
else
    log "PostgreSQL: not run (PostgreSQL is not installed: scripts/deps.sh bench)"
fi
python3 "$ROOT/bench/scale.py" --table "$RESULTS" | tee "$RUN/scale.md"
log "done: $RUN/scale.md (raw figures: $RESULTS)"
