#!/usr/bin/env bash
# bench/run.sh [--quick] [--out FILE] [--only neighbours|latency]
#
# Builds an optimised hookline (build-bench/) and the bench tools, runs every benchmark on
# loopback and writes BENCHMARKS.md (the hand-written <!-- manual:... --> blocks are kept).
# --quick: every phase about 5 s, a 100,000-delivery backlog, a short retention phase and a
# 100,000-row scale phase, written to build-bench/bench-run/BENCHMARKS.md unless --out says
# otherwise. The full run takes about 30 minutes (more than half of it the retention phase, on
# SQLite and then on a throwaway PostgreSQL; then the noisy tenant and the noisy neighbours;
# then the scale phase: a million events and deliveries written and every list timed, about 8 minutes, most of it
# PostgreSQL's bulk load) and must stay under 35; every step is bounded by `timeout`, and
# everything started here is stopped on exit. --only neighbours runs the build and the
# noisy-neighbours phase alone, --only latency the build, the set-up of the first hookline and
# its latency floor and latency phases (figures in build-bench/bench-run/results.json, printed;
# BENCHMARKS.md untouched).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
MODE=full
OUT=""
ONLY=""
while [ $# -gt 0 ]; do
    case "$1" in
    --quick) MODE=quick ;;
    --out)
        OUT=${2:?--out needs a file}
        shift
        ;;
    --only)
        ONLY=${2:?--only needs a phase: neighbours or latency}
        case "$ONLY" in
        neighbours | latency) ;;
        *) echo "bench/run.sh: --only knows two phases: neighbours, latency" >&2; exit 2 ;;
        esac
        shift
        ;;
    -h | --help)
        sed -n '2,15p' "$0" | sed 's/^# \{0,1\}//'
        exit 0
        ;;
    *)
        echo "usage: bench/run.sh [--quick] [--out FILE] [--only neighbours|latency]" >&2
        exit 2
        ;;
    esac
    shift
done

BUILD=$ROOT/build-bench
RUN=$BUILD/bench-run
TOOLS=$BUILD/bench-tools
RESULTS=$RUN/results.json
PY=(python3 "$ROOT/bench/bench.py")

if [ "$MODE" = quick ]; then
    CEIL_S=5 FLOOR_S=3 LAT_S=5 LAT_RATE=1000 FAN_S=5 FAN_RATE=10 THRU_S=5 NOISY_S=10 NB_S=10
    BL_EVENTS=1000 BL_LAT_S=5 BL_RATE=1000 BL_LEAD_S=15 WARMUP_S=1 FSYNC_S=1 BURST_CHANGES=2500
    RET_BASE_S=15 RET_RUN_S=90 RET_PG_BASE_S=15 RET_PG_RUN_S=90 SCALE_EVENTS=100000
    OUT=${OUT:-$RUN/BENCHMARKS.md}
else
    CEIL_S=10 FLOOR_S=10 LAT_S=30 LAT_RATE=1000 FAN_S=20 FAN_RATE=10 THRU_S=30 NOISY_S=30 NB_S=30
    BL_EVENTS=10000 BL_LAT_S=10 BL_RATE=1000 BL_LEAD_S=60 WARMUP_S=2 FSYNC_S=2 BURST_CHANGES=10000
    RET_BASE_S=60 RET_RUN_S=270 RET_PG_BASE_S=45 RET_PG_RUN_S=180 SCALE_EVENTS=1000000
    OUT=${OUT:-$ROOT/BENCHMARKS.md}
fi
BL_WEBHOOKS=100 FANOUT=100 THRU_CONNS=64 LAT_CONNS=64 BURST_WEBHOOKS=20
RET_RATE=300 RET_S=60
# The noisy tenant: 16 webhooks on TCP blackholes x 1,000 changes; the healthy app's changes at
# a steady few per second.
NOISY_WEBHOOKS=16 NOISY_CHANGES=1000 NOISY_RATE=20
# Noisy neighbours (delivery policy): in one app, a healthy webhook beside 25 webhooks on a closed
# port and 25 on a receiver that answers after 4.9 s, all on the same events; changes at 500/s
# (NB_CLOSED=N and NB_SLOW=N in the environment change the counts, e.g. to see each kind alone).
NB_CLOSED=${NB_CLOSED:-25} NB_SLOW=${NB_SLOW:-25} NB_ANSWER_S=4.9 NB_RATE=500

T_START=$(date +%s)
BENCH_TAG=bench
# shellcheck source=bench/lib.sh
. "$ROOT/bench/lib.sh"

# ---- processes we start, and their cleanup ----
SINK_PID="" NGINX_PID="" HL_PID="" BH_PID=""
cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    if [ -n "$STEP_PID" ]; then
        stop_pid "$STEP_PID" "the running step" || true
    fi
    stop_pid "$HL_PID" hookline || true
    stop_pid "$BH_PID" blackholes || true
    stop_pid "$NGINX_PID" nginx || true
    stop_pid "$SINK_PID" hl-sink || true
    wait 2>/dev/null || true
    if [ $rc -ne 0 ]; then
        echo "bench: failed; logs and data are in $RUN" >&2
    fi
    exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# ---- 1. build ----
for tool in cmake cc wrk sqlite3 python3 curl; do
    command -v "$tool" >/dev/null || fail "$tool is missing: run 'make bench' (scripts/deps.sh bench installs it)"
done
build_bench

COMMIT=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
DIRTY=false
if [ -n "$(git status --porcelain -- src include CMakeLists.txt 2>/dev/null)" ]; then DIRTY=true; fi
"${PY[@]}" put "$RESULTS" meta "{\"mode\":\"$MODE\",\"date\":\"$(date -u +%Y-%m-%dT%H:%M:%SZ)\",\"commit\":\"$COMMIT\",\"dirty\":$DIRTY}"
"${PY[@]}" loadavg --name loadavg_before --results "$RESULTS"
step "machine" 30 "${PY[@]}" machine --dir "$RUN" --results "$RESULTS"
step "fsync" 30 "${PY[@]}" fsync --dir "$RUN" --seconds "$FSYNC_S" --results "$RESULTS"

read -r SINK_PORT HL_PORT NGINX_PORT DEAD_PORT <<<"$("${PY[@]}" ports 4)"

# ---- long-lived processes ----
start_sink() {
    "$TOOLS/hl-sink" -p "$SINK_PORT" -m 2000000 -o "$RUN/sink.dump" >"$RUN/sink.log" 2>&1 &
    SINK_PID=$!
    for _ in $(seq 1 100); do
        curl -sf "http://127.0.0.1:$SINK_PORT/count" >/dev/null 2>&1 && return 0
        kill -0 "$SINK_PID" 2>/dev/null || fail "hl-sink exited: $(cat "$RUN/sink.log")"
        sleep 0.05
    done
    fail "hl-sink did not answer on port $SINK_PORT"
}

# start_hookline DB LOG [VAR=value ...]: serve in the background, wait for /healthz. The load
# generators drive one app at thousands of requests per second: --api-rate 0 turns the per-app
# request limit off.
start_hookline() {
    local db=$1 logf=$2
    shift 2
    env "$@" "$HL" serve --listen "127.0.0.1:$HL_PORT" --database "$db" --mode development \
        --log-level warn --api-rate 0 >>"$logf" 2>&1 &
    HL_PID=$!
    for _ in $(seq 1 200); do
        curl -sf "http://127.0.0.1:$HL_PORT/healthz" >/dev/null 2>&1 && return 0
        kill -0 "$HL_PID" 2>/dev/null || fail "hookline exited at start: $(tail -5 "$logf")"
        sleep 0.05
    done
    fail "hookline did not answer /healthz within 10 s: $(tail -5 "$logf")"
}

stop_hookline() {
    stop_pid "$HL_PID" hookline || fail "hookline did not stop cleanly on SIGTERM"
    wait "$HL_PID" 2>/dev/null || fail "hookline exited with status $? on SIGTERM"
    HL_PID=""
}

# new_app DB NAME: prints "APP_UID API_KEY" (apps need a database: db init makes it the first time)
new_app() {
    local j
    timeout 60 "$HL" db init --database "$1" >>"$RUN/cli.log" 2>&1 ||
        fail "hookline db init $1: $(tail -3 "$RUN/cli.log")"
    j=$(timeout 60 "$HL" apps create "$2" --json --database "$1" 2>>"$RUN/cli.log") ||
        fail "hookline apps create $2: $(tail -3 "$RUN/cli.log")"
    printf '%s %s\n' "$("${PY[@]}" field appUid <<<"$j")" "$("${PY[@]}" field apiKey <<<"$j")"
}

# The noisy-neighbours phase: the healthy webhook's latency alone, then beside the bad ones.
neighbours_phase() {
    log "noisy neighbours: a healthy webhook, then beside $NB_CLOSED webhooks on a closed port and $NB_SLOW answering after ${NB_ANSWER_S}s; changes at ${NB_RATE}/s for ${NB_S}s"
    local closed slow db=$RUN/neighbours.db app key
    read -r closed slow <<<"$("${PY[@]}" ports 2)"
    "${PY[@]}" blackhole --ports "$slow" --answer-after "$NB_ANSWER_S" --max-s 1800 \
        >"$RUN/slow.log" 2>&1 &
    BH_PID=$!
    note_cmd "bench.py blackhole --ports SLOW --answer-after $NB_ANSWER_S   # answers every request 200 after ${NB_ANSWER_S}s"
    read -r app key <<<"$(new_app "$db" neighbours)"
    start_hookline "$db" "$RUN/hookline-neighbours.log"
    step "healthy neighbour" 60 "${PY[@]}" webhooks --hl-port "$HL_PORT" --app "$app" --key "$key" \
        --url "http://127.0.0.1:$SINK_PORT/h"
    note_cmd "hl-load -p HL_PORT -a APP -k KEY -K agents -c 8 -d $NB_S -r $NB_RATE   # alone, then beside the bad webhooks"
    step "neighbour baseline" $((NB_S + 150)) "${PY[@]}" latency --tools "$TOOLS" --results "$RESULTS" \
        --run "$RUN" --dump-file "$RUN/sink.dump" --hl-port "$HL_PORT" --sink-port "$SINK_PORT" \
        --pid "$HL_PID" --app "$app" --key "$key" --name neighbour_baseline --prefix hbas \
        --rate "$NB_RATE" --duration "$NB_S" --conns 8 --warmup "$WARMUP_S"
    step "closed-port neighbours" 60 "${PY[@]}" webhooks --hl-port "$HL_PORT" --app "$app" \
        --key "$key" --url "http://127.0.0.1:$closed/closed/{i}" --count "$NB_CLOSED"
    step "slow neighbours" 60 "${PY[@]}" webhooks --hl-port "$HL_PORT" --app "$app" --key "$key" \
        --url "http://127.0.0.1:$slow/slow/{i}" --count "$NB_SLOW"
    step "neighbour latency" $((NB_S + 150)) "${PY[@]}" latency --tools "$TOOLS" --results "$RESULTS" \
        --run "$RUN" --dump-file "$RUN/sink.dump" --hl-port "$HL_PORT" --sink-port "$SINK_PORT" \
        --pid "$HL_PID" --app "$app" --key "$key" --name neighbour_latency --prefix hnbr \
        --rate "$NB_RATE" --duration "$NB_S" --conns 8 --warmup "$WARMUP_S"
    step "neighbours" 60 "${PY[@]}" neighbours --results "$RESULTS" --hl-port "$HL_PORT" \
        --closed "$NB_CLOSED" --slow "$NB_SLOW" --answer-after "$NB_ANSWER_S"
    stop_pid "$BH_PID" "slow receiver" || true # first: hookline then stops without waiting
    BH_PID=""
    stop_hookline
}

start_sink
log "hl-sink on 127.0.0.1:$SINK_PORT ($(cat "$RUN/sink.log"))"
if [ "$ONLY" = neighbours ]; then
    neighbours_phase
    log "done in $(($(date +%s) - T_START)) s (figures: $RESULTS)"
    exit 0
fi
note_cmd "build-bench/bench-tools/hl-sink -p SINK_PORT -m 2000000 -o build-bench/bench-run/sink.dump"

# ---- 2..5: one hookline on a fresh database ----
DB1=$RUN/main.db
read -r APP_A KEY_A <<<"$(new_app "$DB1" bench)"
read -r APP_F KEY_F <<<"$(new_app "$DB1" fanout)"
read -r APP_U KEY_U <<<"$(new_app "$DB1" burst)"
note_cmd "build-bench/hookline db init --database build-bench/bench-run/main.db"
note_cmd "build-bench/hookline apps create bench --json --database build-bench/bench-run/main.db   # and 'fanout', 'burst'"
note_cmd "build-bench/hookline serve --listen 127.0.0.1:HL_PORT --database build-bench/bench-run/main.db --mode development --log-level warn --api-rate 0   # --api-rate 0: no per-app request limit"
start_hookline "$DB1" "$RUN/hookline-main.log"
log "hookline $($HL version) on 127.0.0.1:$HL_PORT (pid $HL_PID)"
sleep 1
"${PY[@]}" rss --pid "$HL_PID" --name rss_idle --results "$RESULTS"

step "webhooks" 60 "${PY[@]}" webhooks --hl-port "$HL_PORT" --app "$APP_A" --key "$KEY_A" \
    --url "http://127.0.0.1:$SINK_PORT/a"
step "fan-out webhooks" 120 "${PY[@]}" webhooks --hl-port "$HL_PORT" --app "$APP_F" --key "$KEY_F" \
    --url "http://127.0.0.1:$SINK_PORT/f/{i}" --count "$FANOUT"
step "burst webhooks" 60 "${PY[@]}" webhooks --hl-port "$HL_PORT" --app "$APP_U" --key "$KEY_U" \
    --url "http://127.0.0.1:$SINK_PORT/u/{i}" --count "$BURST_WEBHOOKS"
step "probe" 30 "${PY[@]}" probe --hl-port "$HL_PORT" --sink-port "$SINK_PORT" --app "$APP_A" \
    --key "$KEY_A" --out "$RUN/delivery.http"
step "wrk script" 10 "${PY[@]}" wrk-lua --capture "$RUN/delivery.http" --out "$RUN/delivery.lua" \
    --results "$RESULTS"

# The latency floor (hl-load straight to hl-sink), then POST /agents at LAT_RATE for LAT_S.
latency_phase() {
    log "latency floor: hl-load → hl-sink at ${LAT_RATE}/s, ${FLOOR_S}s"
    note_cmd "hl-load -p SINK_PORT -a floor -k none -K agents -c $LAT_CONNS -d $FLOOR_S -r $LAT_RATE"
    step "floor" $((FLOOR_S + 60)) "${PY[@]}" floor --tools "$TOOLS" --results "$RESULTS" \
        --sink-port "$SINK_PORT" --rate "$LAT_RATE" --duration "$FLOOR_S" --conns "$LAT_CONNS"

    log "latency: POST /agents at ${LAT_RATE}/s for ${LAT_S}s"
    note_cmd "hl-load -p HL_PORT -a APP -k KEY -K agents -c $LAT_CONNS -d $LAT_S -r $LAT_RATE -o latency.gen.txt"
    step "latency" $((LAT_S + 150)) "${PY[@]}" latency --tools "$TOOLS" --results "$RESULTS" --run "$RUN" \
        --dump-file "$RUN/sink.dump" --hl-port "$HL_PORT" --sink-port "$SINK_PORT" --pid "$HL_PID" \
        --app "$APP_A" --key "$KEY_A" --name latency --prefix lat --rate "$LAT_RATE" \
        --duration "$LAT_S" --conns "$LAT_CONNS" --warmup "$WARMUP_S"
}

if [ "$ONLY" = latency ]; then
    latency_phase
    stop_hookline
    log "done in $(($(date +%s) - T_START)) s (figures: $RESULTS)"
    exit 0
fi

log "ceiling: wrk → hl-sink, ${CEIL_S}s"
note_cmd "wrk -t2 -c64 -d${CEIL_S}s --latency -s delivery.lua http://127.0.0.1:SINK_PORT/a   # delivery.lua: a captured hookline delivery"
step "ceiling (sink)" $((CEIL_S + 60)) "${PY[@]}" wrk --lua "$RUN/delivery.lua" \
    --url "http://127.0.0.1:$SINK_PORT/a" --duration "$CEIL_S" --threads 2 --conns 64 \
    --pid "$SINK_PID" --sink-port "$SINK_PORT" --name ceiling_sink --results "$RESULTS"

log "baseline: hl-curlmax (libcurl alone, one thread) → hl-sink, ${CEIL_S}s"
note_cmd "hl-curlmax -u http://127.0.0.1:SINK_PORT/a -f delivery.http -c 32 -d $CEIL_S -m reuse   # libcurl multi, one thread, 32 connections (the per-host cap)"
step "libcurl alone" $((CEIL_S + 60)) "${PY[@]}" curlmax --tools "$TOOLS" \
    --capture "$RUN/delivery.http" --url "http://127.0.0.1:$SINK_PORT/a" --duration "$CEIL_S" \
    --conns 32 --pid "$SINK_PID" --results "$RESULTS"

if command -v nginx >/dev/null 2>&1; then
    mkdir -p "$RUN/nginx/logs"
    cat >"$RUN/nginx/nginx.conf" <<EOF
worker_processes 2;
pid $RUN/nginx/nginx.pid;
error_log $RUN/nginx/logs/error.log warn;
daemon off;
events { worker_connections 4096; }
http {
    access_log off;
    keepalive_requests 10000000;
    client_body_temp_path $RUN/nginx/body;
    server {
        listen 127.0.0.1:$NGINX_PORT reuseport;
        location / { return 200 'ok'; }
    }
}
EOF
    nginx -p "$RUN/nginx" -e "$RUN/nginx/logs/error.log" -c "$RUN/nginx/nginx.conf" \
        >"$RUN/nginx/out.log" 2>&1 &
    NGINX_PID=$!
    up=0
    for _ in $(seq 1 100); do
        if curl -sf -X POST -d x "http://127.0.0.1:$NGINX_PORT/" >/dev/null 2>&1; then
            up=1
            break
        fi
        sleep 0.05
    done
    if [ $up = 1 ]; then
        log "reference: wrk → nginx, ${CEIL_S}s"
        note_cmd "nginx -c nginx.conf   # worker_processes 2; location / { return 200 'ok'; }"
        note_cmd "wrk -t2 -c64 -d${CEIL_S}s --latency -s delivery.lua http://127.0.0.1:NGINX_PORT/a"
        step "ceiling (nginx)" $((CEIL_S + 60)) "${PY[@]}" wrk --lua "$RUN/delivery.lua" \
            --url "http://127.0.0.1:$NGINX_PORT/a" --duration "$CEIL_S" --threads 2 --conns 64 \
            --name ceiling_nginx --results "$RESULTS"
    else
        log "nginx did not start (see $RUN/nginx); skipping the nginx reference"
    fi
    stop_pid "$NGINX_PID" nginx || true
    NGINX_PID=""
fi

latency_phase

log "fan-out: ${FAN_RATE} changes/s to $FANOUT webhooks for ${FAN_S}s"
note_cmd "hl-load -p HL_PORT -a FANOUT_APP -k KEY -K agents -c 16 -d $FAN_S -r $FAN_RATE -o fanout.gen.txt"
step "fan-out" $((FAN_S + 150)) "${PY[@]}" latency --tools "$TOOLS" --results "$RESULTS" --run "$RUN" \
    --dump-file "$RUN/sink.dump" --hl-port "$HL_PORT" --sink-port "$SINK_PORT" --pid "$HL_PID" \
    --app "$APP_F" --key "$KEY_F" --name fanout --prefix fan --rate "$FAN_RATE" \
    --duration "$FAN_S" --conns 16 --fanout "$FANOUT"

for kind in agents events; do
    log "throughput: POST /$kind, closed loop, $THRU_CONNS connections, ${THRU_S}s, then drain"
    note_cmd "hl-load -p HL_PORT -a APP -k KEY -K $kind -c $THRU_CONNS -d $THRU_S"
    step "throughput $kind" $((THRU_S + 300)) "${PY[@]}" throughput --tools "$TOOLS" \
        --results "$RESULTS" --hl-port "$HL_PORT" --sink-port "$SINK_PORT" --pid "$HL_PID" \
        --sink-pid "$SINK_PID" --app "$APP_A" --key "$KEY_A" --kind "$kind" \
        --name "throughput_$kind" --prefix "thr${kind:0:1}" --duration "$THRU_S" \
        --conns "$THRU_CONNS" --drain-timeout 180
done
log "dispatcher alone: $BURST_CHANGES events x $BURST_WEBHOOKS webhooks queued, then drained"
note_cmd "hl-load -p HL_PORT -a BURST_APP -k KEY -K events -c $THRU_CONNS -n $BURST_CHANGES   # $BURST_WEBHOOKS webhooks"
step "burst" 600 "${PY[@]}" burst --tools "$TOOLS" --results "$RESULTS" --hl-port "$HL_PORT" \
    --sink-port "$SINK_PORT" --pid "$HL_PID" --app "$APP_U" --key "$KEY_U" --name burst \
    --prefix burst --changes "$BURST_CHANGES" --fanout "$BURST_WEBHOOKS" --conns "$THRU_CONNS" \
    --timeout 300
"${PY[@]}" rss --pid "$HL_PID" --name rss_peak --results "$RESULTS"
stop_hookline

# ---- 6. backlog: a second database with pending deliveries to a dead endpoint ----
BL_PENDING=$((BL_EVENTS * BL_WEBHOOKS))
log "backlog: building $BL_PENDING pending deliveries to 127.0.0.1:$DEAD_PORT (closed)"
DB2=$RUN/backlog.db
read -r APP_B KEY_B <<<"$(new_app "$DB2" healthy)"
read -r APP_D KEY_D <<<"$(new_app "$DB2" dead)"
BL_ENV=("HOOKLINE_RETRY_SCHEDULE=0,1h")
start_hookline "$DB2" "$RUN/hookline-backlog.log" "${BL_ENV[@]}"
step "backlog webhooks" 60 "${PY[@]}" webhooks --hl-port "$HL_PORT" --app "$APP_B" --key "$KEY_B" \
    --url "http://127.0.0.1:$SINK_PORT/b"
step "dead webhooks" 120 "${PY[@]}" webhooks --hl-port "$HL_PORT" --app "$APP_D" --key "$KEY_D" \
    --url "http://127.0.0.1:$DEAD_PORT/d/{i}" --count "$BL_WEBHOOKS"
TEMPLATE=$("${PY[@]}" publish-one --hl-port "$HL_PORT" --app "$APP_D" --key "$KEY_D") ||
    fail "could not publish the backlog's template event"
sleep 1 # its first attempts fail (connection refused) and are recorded
stop_hookline
FIRST_DUE=$("${PY[@]}" backlog-sql --event-id "$TEMPLATE" --events "$BL_EVENTS" \
    --dead-port "$DEAD_PORT" --lead-s "$BL_LEAD_S" --out "$RUN/backlog.sql")
t0=$(date +%s%N)
note_cmd "sqlite3 build-bench/bench-run/backlog.db < backlog.sql   # $BL_EVENTS copies of one real event x $BL_WEBHOOKS dead webhooks"
PENDING=$(timeout 600 sqlite3 "$DB2" <"$RUN/backlog.sql" 2>"$RUN/backlog-sql.log" | tail -1) ||
    fail "sqlite3 could not build the backlog: $(cat "$RUN/backlog-sql.log")"
t1=$(date +%s%N)
[ "$PENDING" -ge "$BL_PENDING" ] 2>/dev/null || fail "backlog: expected $BL_PENDING pending deliveries, the database has '$PENDING'"
DB_MIB=$(($(stat -c %s "$DB2") / 1048576))
"${PY[@]}" put "$RESULTS" backlog "{\"pending_at_start\":$PENDING,\"insert_s\":$(((t1 - t0) / 1000000))e-3,\"db_mib\":$DB_MIB,\"method\":\"hookline made 100 webhooks on a closed port and one real event (retry schedule 0,1h); the sqlite3 CLI copied the event $BL_EVENTS times and added one pending delivery per webhook per copy, with one failed attempt each and the next attempt spread over one hour starting $BL_LEAD_S s later\"}"
log "backlog: $PENDING pending; restarting hookline on it"
note_cmd "HOOKLINE_RETRY_SCHEDULE=0,1h build-bench/hookline serve --database build-bench/bench-run/backlog.db ..."
start_hookline "$DB2" "$RUN/hookline-backlog.log" "${BL_ENV[@]}"
sleep 2
"${PY[@]}" rss --pid "$HL_PID" --name backlog_rss_restart --results "$RESULTS"
step "backlog lead time" 200 "${PY[@]}" wait-until --ms "$FIRST_DUE" --max-s 180 \
    --results "$RESULTS" --key backlog
log "backlog: new changes at ${BL_RATE}/s for ${BL_LAT_S}s to a healthy webhook"
step "backlog latency" $((BL_LAT_S + 150)) "${PY[@]}" latency --tools "$TOOLS" --results "$RESULTS" \
    --run "$RUN" --dump-file "$RUN/sink.dump" --hl-port "$HL_PORT" --sink-port "$SINK_PORT" \
    --pid "$HL_PID" --app "$APP_B" --key "$KEY_B" --name backlog_latency --prefix blat \
    --rate "$BL_RATE" --duration "$BL_LAT_S" --conns "$LAT_CONNS" --warmup "$WARMUP_S"
stop_hookline

# ---- 8. retention: a steady load with a short retention, storage sampled ----
log "retention: POST /events at ${RET_RATE}/s, ${RET_BASE_S}s with --retention 0, then ${RET_RUN_S}s with --retention ${RET_S}s"
note_cmd "python3 bench/retention.py --hl build-bench/hookline --rate $RET_RATE --base-s $RET_BASE_S --run-s $RET_RUN_S --retention-s $RET_S ...   # two fresh databases; hl-load -K events -r $RET_RATE in each"
step "retention" $((RET_BASE_S + RET_RUN_S + 300)) python3 "$ROOT/bench/retention.py" \
    --hl "$HL" --tools "$TOOLS" --run "$RUN" --results "$RESULTS" --hl-port "$HL_PORT" \
    --sink-port "$SINK_PORT" --dead-port "$DEAD_PORT" --rate "$RET_RATE" \
    --base-s "$RET_BASE_S" --run-s "$RET_RUN_S" --retention-s "$RET_S"

# The same on PostgreSQL (a throwaway server with fsync on, scripts/with-postgres.sh), shorter:
# its plateau is judged from two retentions on, and the p99 figure needs no longer a run.
if compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null; then
    log "retention on PostgreSQL: ${RET_PG_BASE_S}s with --retention 0, then ${RET_PG_RUN_S}s with --retention ${RET_S}s"
    note_cmd "HOOKLINE_TEST_PG_FSYNC=on scripts/with-postgres.sh python3 bench/retention.py --pg-url \$HOOKLINE_TEST_PG_URL --name retention_pg --rate $RET_RATE --base-s $RET_PG_BASE_S --run-s $RET_PG_RUN_S --retention-s $RET_S ..."
    # shellcheck disable=SC2016 # expanded by the inner shell, where with-postgres.sh sets it
    step "retention (PostgreSQL)" $((RET_PG_BASE_S + RET_PG_RUN_S + 360)) \
        env HOOKLINE_TEST_PG_FSYNC=on "$ROOT/scripts/with-postgres.sh" \
        sh -c 'exec python3 "$@" --pg-url "$HOOKLINE_TEST_PG_URL"' sh "$ROOT/bench/retention.py" \
        --hl "$HL" --tools "$TOOLS" --run "$RUN" --results "$RESULTS" --hl-port "$HL_PORT" \
        --sink-port "$SINK_PORT" --dead-port "$DEAD_PORT" --rate "$RET_RATE" --name retention_pg \
        --base-s "$RET_PG_BASE_S" --run-s "$RET_PG_RUN_S" --retention-s "$RET_S"
else
    log "retention on PostgreSQL: not run (PostgreSQL is not installed: scripts/deps.sh bench)"
    "${PY[@]}" put "$RESULTS" retention_pg '{"skipped":"PostgreSQL is not installed"}'
fi

# ---- 9. noisy tenant: a third database; one app's webhooks on TCP blackholes ----
log "noisy tenant: $NOISY_WEBHOOKS webhooks on TCP blackholes x $NOISY_CHANGES changes; a healthy app's changes at ${NOISY_RATE}/s for ${NOISY_S}s, before and during"
BH_PORTS=$("${PY[@]}" ports "$NOISY_WEBHOOKS" | tr ' ' ',')
"${PY[@]}" blackhole --ports "$BH_PORTS" --max-s 1800 >"$RUN/blackhole.log" 2>&1 &
BH_PID=$!
note_cmd "bench.py blackhole --ports P1,...,P$NOISY_WEBHOOKS   # accept every connection, never answer"
DB3=$RUN/noisy.db
read -r APP_H KEY_H <<<"$(new_app "$DB3" healthy)"
read -r APP_N KEY_N <<<"$(new_app "$DB3" noisy)"
start_hookline "$DB3" "$RUN/hookline-noisy.log"
step "healthy webhook" 60 "${PY[@]}" webhooks --hl-port "$HL_PORT" --app "$APP_H" --key "$KEY_H" \
    --url "http://127.0.0.1:$SINK_PORT/n"
step "noisy webhooks" 60 "${PY[@]}" webhooks --hl-port "$HL_PORT" --app "$APP_N" --key "$KEY_N" \
    --url "http://127.0.0.1:{port}/hole/{i}" --ports "$BH_PORTS" --count "$NOISY_WEBHOOKS"
note_cmd "hl-load -p HL_PORT -a HEALTHY_APP -k KEY -K agents -c 4 -d $NOISY_S -r $NOISY_RATE   # alone, then beside the noisy app"
step "noisy baseline" $((NOISY_S + 150)) "${PY[@]}" latency --tools "$TOOLS" --results "$RESULTS" \
    --run "$RUN" --dump-file "$RUN/sink.dump" --hl-port "$HL_PORT" --sink-port "$SINK_PORT" \
    --pid "$HL_PID" --app "$APP_H" --key "$KEY_H" --name noisy_baseline --prefix nbas \
    --rate "$NOISY_RATE" --duration "$NOISY_S" --conns 4 --warmup "$WARMUP_S"
note_cmd "hl-load -p HL_PORT -a NOISY_APP -k KEY -K events -c 8 -n $NOISY_CHANGES   # $NOISY_WEBHOOKS webhooks on blackholes"
step "noisy load" 300 "${PY[@]}" noisy-load --tools "$TOOLS" --results "$RESULTS" \
    --hl-port "$HL_PORT" --app "$APP_N" --key "$KEY_N" --changes "$NOISY_CHANGES" \
    --webhooks "$NOISY_WEBHOOKS" --min-inflight 100 --max-inflight "${HOOKLINE_MAX_INFLIGHT:-256}" \
    --timeout "${HOOKLINE_TIMEOUT:-5s}"
step "noisy latency" $((NOISY_S + 150)) "${PY[@]}" latency --tools "$TOOLS" --results "$RESULTS" \
    --run "$RUN" --dump-file "$RUN/sink.dump" --hl-port "$HL_PORT" --sink-port "$SINK_PORT" \
    --pid "$HL_PID" --app "$APP_H" --key "$KEY_H" --name noisy_latency --prefix nlat \
    --rate "$NOISY_RATE" --duration "$NOISY_S" --conns 4
"${PY[@]}" rss --pid "$HL_PID" --name noisy_rss --results "$RESULTS" --hl-port "$HL_PORT"
stop_pid "$BH_PID" blackholes || true # first: hookline then stops without waiting out timeouts
BH_PID=""
stop_hookline

# ---- 9b. noisy neighbours: bad webhooks beside a healthy one in the same app ----
neighbours_phase

# ---- 10. scale: every list and count with a million events and deliveries (bench/scale.py) ----
log "scale: $SCALE_EVENTS events, deliveries and resources; every list and count timed"
note_cmd "python3 bench/scale.py --hl build-bench/hookline --events $SCALE_EVENTS   # and under scripts/with-postgres.sh with HOOKLINE_TEST_BACKEND=postgres"
step "scale (SQLite)" 3600 python3 "$ROOT/bench/scale.py" --hl "$HL" --events "$SCALE_EVENTS" \
    --results "$RESULTS" >"$RUN/scale.log" 2>&1
if compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null; then
    step "scale (PostgreSQL)" 3600 env HOOKLINE_TEST_PG_FSYNC=on HOOKLINE_TEST_BACKEND=postgres \
        "$ROOT/scripts/with-postgres.sh" python3 "$ROOT/bench/scale.py" --hl "$HL" \
        --events "$SCALE_EVENTS" --results "$RESULTS" >>"$RUN/scale.log" 2>&1
fi

# ---- 11. BENCHMARKS.md ----
"${PY[@]}" loadavg --name loadavg_after --results "$RESULTS"
python3 - "$RESULTS" "$RUN" "$(($(date +%s) - T_START))" "${COMMANDS[@]}" <<'EOF'
import json, os, sys
path, run, elapsed, cmds = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4:]
r = json.load(open(path))
r["meta"]["elapsed_s"] = elapsed
r["meta"]["commands"] = cmds
r["meta"]["env"] = {k: v for k, v in sorted(os.environ.items()) if k.startswith("HOOKLINE_")}
logs = {}
for name in ("hookline-main.log", "hookline-backlog.log", "hookline-retention.log",
             "hookline-noisy.log", "hookline-neighbours.log"):
    if not os.path.exists(os.path.join(run, name)):
        continue
    counts = {"warn": 0, "error": 0}
    with open(os.path.join(run, name), errors="replace") as f:
        for line in f:
            for level in counts:
                if " %s " % level in line[:40]:
                    counts[level] += 1
    logs[name] = counts
r["meta"]["log_lines"] = logs
bl = r.get("backlog")
if bl is not None and "backlog_rss_restart" in r:
    bl["rss_restart"] = r["backlog_rss_restart"]
json.dump(r, open(path, "w"), indent=1, sort_keys=True)
EOF
"${PY[@]}" render --results "$RESULTS" --out "$OUT"
log "done in $(($(date +%s) - T_START)) s: $OUT (raw figures: $RESULTS)"
