#!/usr/bin/env bash
# bench/run-pg.sh [--quick] [--out FILE]
#
# hookline on PostgreSQL with one, two and three nodes on one database, beside one node on
# SQLite, in the same run: closed-loop throughput (changes/s at the API, deliveries/s at the
# sink) and answer-to-arrival latency at a steady 500 changes/s, the load spread over the nodes.
# Writes the table into BENCHMARKS.md between <!-- manual:begin pg --> and <!-- manual:end pg -->
# (bench/run.sh keeps that block). Needs a PostgreSQL server: without HOOKLINE_TEST_PG_URL it
# runs itself under scripts/with-postgres.sh with fsync on. About 4 minutes (--quick: ~2 min,
# written to build-bench/bench-pg/BENCHMARKS.md); every step is bounded by `timeout`, and
# everything started here is stopped on exit. Loopback only.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
if [ -z "${HOOKLINE_TEST_PG_URL:-}" ]; then
    # A benchmark keeps PostgreSQL's fsync (with-postgres.sh turns it off for tests otherwise).
    exec env HOOKLINE_TEST_PG_FSYNC=on "$ROOT/scripts/with-postgres.sh" "$ROOT/bench/run-pg.sh" "$@"
fi

MODE=full
OUT=""
while [ $# -gt 0 ]; do
    case "$1" in
    --quick) MODE=quick ;;
    --out)
        OUT=${2:?--out needs a file}
        shift
        ;;
    -h | --help)
        sed -n '2,11p' "$0" | sed 's/^# \{0,1\}//'
        exit 0
        ;;
    *)
        echo "usage: bench/run-pg.sh [--quick] [--out FILE]" >&2
        exit 2
        ;;
    esac
    shift
done

BUILD=$ROOT/build-bench
RUN=$BUILD/bench-pg
TOOLS=$BUILD/bench-tools
RESULTS=$RUN/results.json
PY=(python3 "$ROOT/bench/bench.py")
PG=(python3 "$ROOT/bench/bench_pg.py")

if [ "$MODE" = quick ]; then
    THR_S=5 LAT_S=5 WARMUP_S=1
    OUT=${OUT:-$RUN/BENCHMARKS.md}
else
    THR_S=15 LAT_S=15 WARMUP_S=2
    OUT=${OUT:-$ROOT/BENCHMARKS.md}
fi
THR_CONNS=64 LAT_RATE=500 LAT_CONNS=16 KIND=agents
CONFIGS=(sqlite pg1 pg2 pg3)

T_START=$(date +%s)
BENCH_TAG=bench-pg
# shellcheck source=bench/lib.sh
. "$ROOT/bench/lib.sh"

# ---- processes we start, and their cleanup ----
SINK_PID=""
HL_PIDS=()
cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    if [ -n "$STEP_PID" ]; then
        stop_pid "$STEP_PID" "the running step" || true
    fi
    local p
    for p in "${HL_PIDS[@]}"; do
        stop_pid "$p" hookline || true
    done
    stop_pid "$SINK_PID" hl-sink || true
    wait 2>/dev/null || true
    if [ $rc -ne 0 ]; then
        echo "bench-pg: failed; logs and data are in $RUN" >&2
    fi
    exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# ---- build (the same build-bench/ as bench/run.sh) ----
for tool in cmake cc python3 curl psql; do
    command -v "$tool" >/dev/null || fail "$tool is missing: run 'make bench-pg' (scripts/deps.sh bench installs it)"
done
PSQL=(psql -X -q -A -t -v ON_ERROR_STOP=1)
"${PSQL[@]}" -d "$HOOKLINE_TEST_PG_URL" -c "SELECT 1" >/dev/null ||
    fail "cannot reach PostgreSQL at $HOOKLINE_TEST_PG_URL"
build_bench

COMMIT=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
DIRTY=false
if [ -n "$(git status --porcelain -- src include CMakeLists.txt 2>/dev/null)" ]; then DIRTY=true; fi
PG_VERSION=$("${PSQL[@]}" -d "$HOOKLINE_TEST_PG_URL" -c "SHOW server_version")
PG_SETTINGS=$("${PSQL[@]}" -d "$HOOKLINE_TEST_PG_URL" -c \
    "SELECT string_agg(name || '=' || setting, ', ' ORDER BY name) FROM pg_settings WHERE name IN ('fsync','synchronous_commit','full_page_writes','shared_buffers','max_connections')")
LOADAVG=$(cut -d' ' -f1-3 /proc/loadavg | tr ' ' ',')

read -r SINK_PORT P1 P2 P3 <<<"$("${PY[@]}" ports 4)"
PORTS=("$P1" "$P2" "$P3")

"$TOOLS/hl-sink" -p "$SINK_PORT" -m 2000000 -o "$RUN/sink.dump" >"$RUN/sink.log" 2>&1 &
SINK_PID=$!
up=0
for _ in $(seq 1 100); do
    if curl -sf "http://127.0.0.1:$SINK_PORT/count" >/dev/null 2>&1; then
        up=1
        break
    fi
    kill -0 "$SINK_PID" 2>/dev/null || fail "hl-sink exited: $(cat "$RUN/sink.log")"
    sleep 0.05
done
[ $up = 1 ] || fail "hl-sink did not answer on port $SINK_PORT"
log "hl-sink on 127.0.0.1:$SINK_PORT; PostgreSQL $PG_VERSION ($PG_SETTINGS)"
note_cmd "HOOKLINE_TEST_PG_FSYNC=on scripts/with-postgres.sh bench/run-pg.sh   # what 'bench/run-pg.sh' does by itself"
note_cmd "build-bench/bench-tools/hl-sink -p SINK_PORT -m 2000000 -o build-bench/bench-pg/sink.dump"

# start_node I DB LOG: hookline serve on PORTS[I], in the background
start_node() {
    local i=$1 db=$2 logf=$3
    "$HL" serve --listen "127.0.0.1:${PORTS[$i]}" --database "$db" --mode development \
        --data-dir "$RUN/files-$CUR" --log-level warn --api-rate 0 >>"$logf" 2>&1 &
    HL_PIDS+=($!)
}
wait_nodes() {
    local i p
    for i in "${!HL_PIDS[@]}"; do
        p=${PORTS[$i]}
        for _ in $(seq 1 400); do
            curl -sf "http://127.0.0.1:$p/healthz" >/dev/null 2>&1 && continue 2
            kill -0 "${HL_PIDS[$i]}" 2>/dev/null || fail "node $((i + 1)) exited at start: $(tail -5 "$RUN/hookline-$CUR.log")"
            sleep 0.05
        done
        fail "node $((i + 1)) did not answer /healthz within 20 s: $(tail -5 "$RUN/hookline-$CUR.log")"
    done
}
stop_nodes() {
    local p
    for p in "${HL_PIDS[@]}"; do
        stop_pid "$p" hookline || fail "hookline did not stop cleanly on SIGTERM"
        wait "$p" 2>/dev/null || fail "hookline exited with status $? on SIGTERM"
    done
    HL_PIDS=()
}
join_by() {
    local IFS=$1
    shift
    echo "$*"
}

for CUR in "${CONFIGS[@]}"; do
    if [ "$CUR" = sqlite ]; then
        N=1
        DB=$RUN/sqlite.db
        DB_SHOWN=build-bench/bench-pg/sqlite.db
    else
        N=${CUR#pg}
        name=hookline_bench_$CUR
        "${PSQL[@]}" -d "$HOOKLINE_TEST_PG_URL" -c "SET client_min_messages = warning" -c "DROP DATABASE IF EXISTS $name" -c "CREATE DATABASE $name" >/dev/null ||
            fail "cannot create the database $name"
        DB=${HOOKLINE_TEST_PG_URL%/*}/$name
        DB_SHOWN="postgres://postgres@127.0.0.1:PG_PORT/$name"
    fi
    mkdir -p "$RUN/files-$CUR"
    timeout 60 "$HL" db init --database "$DB" >>"$RUN/cli.log" 2>&1 ||
        fail "hookline db init on $CUR: $(tail -3 "$RUN/cli.log")"
    j=$(timeout 60 "$HL" apps create bench --json --database "$DB" 2>>"$RUN/cli.log") ||
        fail "hookline apps create on $CUR: $(tail -3 "$RUN/cli.log")"
    APP=$("${PY[@]}" field appUid <<<"$j")
    KEY=$("${PY[@]}" field apiKey <<<"$j")
    note_cmd "build-bench/hookline db init --database $DB_SHOWN"
    note_cmd "build-bench/hookline apps create bench --json --database $DB_SHOWN"
    for i in $(seq 0 $((N - 1))); do
        start_node "$i" "$DB" "$RUN/hookline-$CUR.log"
    done
    wait_nodes
    note_cmd "build-bench/hookline serve --listen 127.0.0.1:HL_PORT_i --database $DB_SHOWN --mode development --data-dir build-bench/bench-pg/files-$CUR --log-level warn --api-rate 0   # x $N (--api-rate 0: no per-app request limit)"
    NODE_PORTS=$(join_by , "${PORTS[@]:0:$N}")
    NODE_PIDS=$(join_by , "${HL_PIDS[@]}")
    log "$CUR: $N node(s) up on ports $NODE_PORTS"
    step "$CUR webhook" 60 "${PY[@]}" webhooks --hl-port "${PORTS[0]}" --app "$APP" --key "$KEY" \
        --url "http://127.0.0.1:$SINK_PORT/a"

    log "$CUR: throughput, POST /$KIND closed loop, $THR_CONNS connections over $N node(s), ${THR_S}s, then drain"
    note_cmd "hl-load -p HL_PORT_i -a APP -k KEY -K $KIND -c $((THR_CONNS / N)) -d $THR_S   # one per node, at once ($CUR)"
    step "$CUR throughput" $((THR_S + 300)) "${PG[@]}" throughput --tools "$TOOLS" \
        --results "$RESULTS" --hl-ports "$NODE_PORTS" --pids "$NODE_PIDS" \
        --sink-port "$SINK_PORT" --app "$APP" --key "$KEY" --kind "$KIND" --name "thr_$CUR" \
        --prefix "t$CUR" --duration "$THR_S" --conns "$THR_CONNS" --drain-timeout 180

    log "$CUR: latency, POST /agents at $LAT_RATE/s in all over $N node(s), ${LAT_S}s"
    note_cmd "hl-load -p HL_PORT_i -a APP -k KEY -K agents -c $LAT_CONNS -d $LAT_S -r $((LAT_RATE / N)) -o lat_$CUR.i.gen.txt   # one per node, at once ($CUR; after ${WARMUP_S}s of warm-up)"
    step "$CUR latency" $((LAT_S + WARMUP_S + 200)) "${PG[@]}" latency --tools "$TOOLS" \
        --results "$RESULTS" --run "$RUN" --dump-file "$RUN/sink.dump" --hl-ports "$NODE_PORTS" \
        --pids "$NODE_PIDS" --sink-port "$SINK_PORT" --app "$APP" --key "$KEY" \
        --name "lat_$CUR" --prefix "l$CUR" --rate "$LAT_RATE" --duration "$LAT_S" \
        --conns "$LAT_CONNS" --warmup "$WARMUP_S"
    stop_nodes
    if [ "$CUR" != sqlite ]; then
        "${PSQL[@]}" -d "$HOOKLINE_TEST_PG_URL" -c "DROP DATABASE IF EXISTS $name" >/dev/null || true
    fi
done

ELAPSED=$(($(date +%s) - T_START))
python3 - "$RESULTS" <<EOF
import json, sys
path = sys.argv[1]
r = json.load(open(path))
r["meta"] = {"mode": "$MODE", "date": "$(date -u +%Y-%m-%dT%H:%M:%SZ)", "commit": "$COMMIT",
             "dirty": $([ "$DIRTY" = true ] && echo True || echo False), "elapsed_s": $ELAPSED,
             "nproc": $(nproc), "loadavg_before": [$LOADAVG],
             "pg_version": "$PG_VERSION", "pg_settings": "$PG_SETTINGS",
             "configs": "${CONFIGS[*]}".split(), "thr_kind": "$KIND", "thr_conns": $THR_CONNS,
             "thr_s": $THR_S, "lat_rate": $LAT_RATE, "lat_conns": $LAT_CONNS, "lat_s": $LAT_S,
             "warmup_s": $WARMUP_S}
json.dump(r, open(path, "w"), indent=1, sort_keys=True)
EOF
python3 - "$RESULTS" "${COMMANDS[@]}" <<'EOF'
import json, sys
r = json.load(open(sys.argv[1]))
r["meta"]["commands"] = sys.argv[2:]
json.dump(r, open(sys.argv[1], "w"), indent=1, sort_keys=True)
EOF
"${PG[@]}" render --results "$RESULTS" --out "$OUT"
log "done in $ELAPSED s: $OUT (raw figures: $RESULTS)"
