#!/usr/bin/env bash
# bench/scale.sh [--events N] [--before REV]
#
# The scale phase of make bench on its own: builds an optimised hookline (build-bench/), and with
# --before the same from git revision REV (build-bench/before/, from `git archive`: nothing in the
# work tree changes), then runs bench/scale.py on SQLite and on a throwaway PostgreSQL
# (scripts/with-postgres.sh): N events and deliveries (default 1,000,000) and as many resources,
# every list and count timed by each binary on the same rows. Raw figures go to
# build-bench/scale-run/results.json, the table to build-bench/scale-run/scale.md.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
EVENTS=1000000
BEFORE=""
while [ $# -gt 0 ]; do
    case "$1" in
    --events)
        EVENTS=${2:?--events needs a number}
        shift
        ;;
    --before)
        BEFORE=${2:?--before needs a git revision}
        shift
        ;;
    -h | --help)
        sed -n '2,10p' "$0" | sed 's/^# \{0,1\}//'
        exit 0
        ;;
    *)
        echo "usage: bench/scale.sh [--events N] [--before REV]" >&2
        exit 2
        ;;
    esac
    shift
done

MODE=scale
BUILD=$ROOT/build-bench
RUN=$BUILD/scale-run
TOOLS=$BUILD/bench-tools
RESULTS=$RUN/results.json
BENCH_TAG=scale
# shellcheck source=bench/lib.sh
. "$ROOT/bench/lib.sh"
trap 'if [ -n "$STEP_PID" ]; then stop_pid "$STEP_PID" "the running step" || true; fi' EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

build_bench
ARGS=(--hl "$HL" --events "$EVENTS" --results "$RESULTS")
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
log "SQLite: $EVENTS events and deliveries"
step "scale (SQLite)" 3600 python3 "$ROOT/bench/scale.py" "${ARGS[@]}"
if compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null; then
    log "PostgreSQL: $EVENTS events and deliveries"
    step "scale (PostgreSQL)" 3600 env HOOKLINE_TEST_PG_FSYNC=on HOOKLINE_TEST_BACKEND=postgres \
        "$ROOT/scripts/with-postgres.sh" python3 "$ROOT/bench/scale.py" "${ARGS[@]}"
else
    log "PostgreSQL: not run (PostgreSQL is not installed: scripts/deps.sh bench)"
fi
python3 "$ROOT/bench/scale.py" --table "$RESULTS" | tee "$RUN/scale.md"
log "done: $RUN/scale.md (raw figures: $RESULTS)"
