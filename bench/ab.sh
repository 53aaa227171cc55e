#!/usr/bin/env bash
# bench/ab.sh [--ref REF | --ref-bin PATH] [--rounds N] [--seconds S] [--threads N]
#
# A/B in one run: builds REF (default main) and the work tree (Release, like bench/run.sh),
# then, N rounds (default 2) taking turns, runs each on a fresh SQLite database with one webhook
# to hl-sink: the closed-loop POST /agents throughput (64 connections, S seconds, default 10) and
# the delivery latency at 1,000 changes/s (S seconds). Prints every figure and each median ratio
# (work tree / REF); the raw figures go to build-bench/ab-run/results-*.json. --threads passes
# serve --threads to both (default: each build's own default). --ref-bin: a hookline already
# built from the reference (named in the output by its path). Everything started here is stopped
# on exit; every step is bounded by `timeout`.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
REF=main REF_BIN="" ROUNDS=2 SECS=10 THREADS=""
while [ $# -gt 0 ]; do
    case "$1" in
    --ref) REF=${2:?--ref needs a revision}; shift ;;
    --ref-bin) REF_BIN=${2:?--ref-bin needs a path}; shift ;;
    --rounds) ROUNDS=${2:?--rounds needs a number}; shift ;;
    --seconds) SECS=${2:?--seconds needs a number}; shift ;;
    --threads) THREADS=${2:?--threads needs a number}; shift ;;
    -h | --help) sed -n '2,10p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "usage: bench/ab.sh [--ref REF | --ref-bin PATH] [--rounds N] [--seconds S] [--threads N]" >&2; exit 2 ;;
    esac
    shift
done

BUILD=$ROOT/build-bench
RUN=$BUILD/ab-run
TOOLS=$BUILD/bench-tools
MODE=ab
BENCH_TAG=ab
PY=(python3 "$ROOT/bench/bench.py")
# shellcheck source=bench/lib.sh
. "$ROOT/bench/lib.sh"

SINK_PID="" HL_PID=""
cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    [ -z "$STEP_PID" ] || stop_pid "$STEP_PID" "the running step" || true
    stop_pid "$HL_PID" hookline || true
    stop_pid "$SINK_PID" hl-sink || true
    wait 2>/dev/null || true
    [ $rc -eq 0 ] || echo "ab: failed; logs and data are in $RUN" >&2
    exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

build_bench # the work tree: $HL, the tools, a fresh $RUN
B_HL=$HL
if [ -n "$REF_BIN" ]; then
    A_HL=$REF_BIN REF_SHA=$REF_BIN REF="given"
else
    REF_SHA=$(git rev-parse --short "$REF")
    log "building $REF ($REF_SHA) in build-bench/ab-ref"
    rm -rf "$BUILD/ab-ref-src" && mkdir -p "$BUILD/ab-ref-src"
    git archive "$REF" | tar -x -C "$BUILD/ab-ref-src"
    step "configure $REF" 300 cmake -S "$BUILD/ab-ref-src" -B "$BUILD/ab-ref" \
        -DCMAKE_BUILD_TYPE=Release -DHL_TESTS=OFF >"$RUN/ref-build.log" 2>&1
    step "build $REF" 900 cmake --build "$BUILD/ab-ref" -j "$(nproc)" --target hookline \
        >>"$RUN/ref-build.log" 2>&1
    A_HL=$BUILD/ab-ref/hookline
fi

read -r SINK_PORT HL_PORT <<<"$("${PY[@]}" ports 2)"
"$TOOLS/hl-sink" -p "$SINK_PORT" -m 2000000 -o "$RUN/sink.dump" >"$RUN/sink.log" 2>&1 &
SINK_PID=$!
for _ in $(seq 1 100); do
    curl -sf "http://127.0.0.1:$SINK_PORT/count" >/dev/null 2>&1 && break
    sleep 0.05
done

# one NAME BIN ROUND: a fresh database, one webhook to the sink, throughput then latency.
one() {
    local name=$1 bin=$2 round=$3 db=$RUN/$1-$3.db res=$RUN/results-$1.json j app key
    timeout 60 "$bin" db init --database "$db" >>"$RUN/cli.log" 2>&1
    j=$(timeout 60 "$bin" apps create ab --json --database "$db")
    app=$("${PY[@]}" field appUid <<<"$j")
    key=$("${PY[@]}" field apiKey <<<"$j")
    env ${THREADS:+HOOKLINE_THREADS=$THREADS} "$bin" serve --listen "127.0.0.1:$HL_PORT" \
        --database "$db" --mode development --log-level warn --api-rate 0 \
        >>"$RUN/hookline-$name.log" 2>&1 &
    HL_PID=$!
    for _ in $(seq 1 200); do
        curl -sf "http://127.0.0.1:$HL_PORT/healthz" >/dev/null 2>&1 && break
        sleep 0.05
    done
    step "webhooks" 60 "${PY[@]}" webhooks --hl-port "$HL_PORT" --app "$app" --key "$key" \
        --url "http://127.0.0.1:$SINK_PORT/a"
    log "$name round $round: POST /agents closed loop, 64 connections, ${SECS}s"
    step "throughput" $((SECS + 300)) "${PY[@]}" throughput --tools "$TOOLS" --results "$res" \
        --hl-port "$HL_PORT" --sink-port "$SINK_PORT" --pid "$HL_PID" --sink-pid "$SINK_PID" \
        --app "$app" --key "$key" --kind agents --name "thr$round" --prefix "t$name$round" \
        --duration "$SECS" --conns 64 --drain-timeout 180
    log "$name round $round: latency at 1,000 changes/s, ${SECS}s"
    step "latency" $((SECS + 150)) "${PY[@]}" latency --tools "$TOOLS" --results "$res" \
        --run "$RUN" --dump-file "$RUN/sink.dump" --hl-port "$HL_PORT" --sink-port "$SINK_PORT" \
        --pid "$HL_PID" --app "$app" --key "$key" --name "lat$round" --prefix "l$name$round" \
        --rate 1000 --duration "$SECS" --conns 64 --warmup 1
    stop_pid "$HL_PID" hookline || fail "hookline ($name) did not stop cleanly"
    HL_PID=""
}

for r in $(seq 1 "$ROUNDS"); do
    one ref "$A_HL" "$r"
    one head "$B_HL" "$r"
done
python3 - "$RUN" "$ROUNDS" "$REF ($REF_SHA)" <<'PY'
import json, statistics, sys
run, rounds, ref = sys.argv[1], int(sys.argv[2]), sys.argv[3]
res = {n: json.load(open("%s/results-%s.json" % (run, n))) for n in ("ref", "head")}
FIGS = (("POST /agents closed loop, changes/s", "thr", lambda d: d["api_per_s"]),
        ("1,000 changes/s: answer -> sink p99 ms", "lat",
         lambda d: d["answer_to_arrival_us"]["p99"] / 1000),
        ("1,000 changes/s: API answer p99 ms", "lat", lambda d: d["gen"]["rt_us"]["p99"] / 1000))
for label, key, get in FIGS:
    a = [get(res["ref"]["%s%d" % (key, r)]) for r in range(1, rounds + 1)]
    b = [get(res["head"]["%s%d" % (key, r)]) for r in range(1, rounds + 1)]
    print("%s\n  %s: %s\n  work tree: %s\n  median ratio (work tree / ref): %.2f" % (
        label, ref, " ".join("%.1f" % x for x in a), " ".join("%.1f" % x for x in b),
        statistics.median(b) / statistics.median(a)))
PY
