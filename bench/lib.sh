# Shell pieces shared by bench/run.sh and bench/run-pg.sh; sourced, not run.
# The sourcing script sets BENCH_TAG (log prefix) before, and RUN, BUILD and TOOLS before
# calling build_bench; it defines its own cleanup (calling stop_pid for what it started).

log() { printf '[%s %s] %s\n' "$BENCH_TAG" "$(date +%H:%M:%S)" "$*"; }
fail() {
    printf '[%s %s] FAILED: %s\n' "$BENCH_TAG" "$(date +%H:%M:%S)" "$*" >&2
    exit 1
}

# step NAME SECONDS CMD...: runs CMD bounded by SECONDS; a failure or a timeout ends the run.
# CMD runs in the background and is waited for, so that a signal to the script is handled at
# once (cleanup stops the step too) rather than after the step.
STEP_PID=""
step() {
    local name=$1 secs=$2
    shift 2
    local rc=0
    timeout --kill-after=10 "$secs" "$@" &
    STEP_PID=$!
    wait "$STEP_PID" || rc=$?
    STEP_PID=""
    if [ $rc -eq 124 ] || [ $rc -eq 137 ]; then
        fail "$name: timed out after ${secs}s"
    elif [ $rc -ne 0 ]; then
        fail "$name: exit status $rc"
    fi
}

# The exact commands of a run, for BENCHMARKS.md.
COMMANDS=()
note_cmd() { COMMANDS+=("$*"); }

stop_pid() { # stop_pid PID NAME: TERM, wait up to 30 s, then KILL
    local pid=$1 name=$2
    [ -n "$pid" ] || return 0
    kill -0 "$pid" 2>/dev/null || return 0
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 1 300); do
        kill -0 "$pid" 2>/dev/null || return 0
        sleep 0.1
    done
    echo "$BENCH_TAG: $name ($pid) did not stop on SIGTERM within 30 s; killing it" >&2
    kill -KILL "$pid" 2>/dev/null || true
    return 1
}

# build_bench: an optimised hookline in $BUILD (sets HL) and hl-sink/hl-load/hl-curlmax in $TOOLS; $RUN is
# made afresh for the run's logs and data.
build_bench() {
    log "mode $MODE; building hookline (Release) in build-bench/ and the bench tools"
    rm -rf "$RUN"
    mkdir -p "$RUN" "$TOOLS"
    note_cmd "cmake -S . -B build-bench -DCMAKE_BUILD_TYPE=Release -DHL_TESTS=OFF && cmake --build build-bench -j"
    if ! timeout 300 cmake -S . -B "$BUILD" -DCMAKE_BUILD_TYPE=Release -DHL_TESTS=OFF \
        >"$RUN/build.log" 2>&1; then
        tail -20 "$RUN/build.log" >&2
        fail "cmake configure (log: $RUN/build.log)"
    fi
    if ! timeout 600 cmake --build "$BUILD" -j "$(nproc)" >>"$RUN/build.log" 2>&1; then
        tail -30 "$RUN/build.log" >&2
        fail "build (log: $RUN/build.log)"
    fi
    HL=$BUILD/hookline
    [ -x "$HL" ] || fail "no $HL after the build"
    local cflags="-O2 -g -std=c11 -Wall -Wextra -Wshadow -Wformat=2 -Wstrict-prototypes -Wmissing-prototypes -Wvla -Wwrite-strings -Wimplicit-fallthrough -Werror"
    note_cmd "cc $cflags -pthread -o build-bench/bench-tools/hl-sink bench/sink.c"
    note_cmd "cc $cflags -o build-bench/bench-tools/hl-load bench/load.c"
    note_cmd "cc $cflags -o build-bench/bench-tools/hl-curlmax bench/curlmax.c -lcurl"
    # shellcheck disable=SC2086
    step "build hl-sink" 120 cc $cflags -pthread -o "$TOOLS/hl-sink" bench/sink.c
    # shellcheck disable=SC2086
    step "build hl-load" 120 cc $cflags -o "$TOOLS/hl-load" bench/load.c
    # shellcheck disable=SC2086
    step "build hl-curlmax" 120 cc $cflags -o "$TOOLS/hl-curlmax" bench/curlmax.c -lcurl
}
