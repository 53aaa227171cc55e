#!/usr/bin/env bash
# bench/ab-pg.sh ROUNDS SECONDS LABEL=HOOKLINE_BINARY [LABEL=HOOKLINE_BINARY ...]
#
# A/B of hookline builds on one node, taking turns in one run: for each round, each binary in
# the order given serves a fresh database (PostgreSQL, or a SQLite file for the label "sqlite")
# with one app and one webhook to hl-sink, and bench_pg.py's closed loop (64 connections,
# SECONDS) reports API changes/s, deliveries/s during the load and the drain, with the load
# average beside each. Needs build-bench/bench-tools (bench/run-pg.sh --quick builds them).
# Without HOOKLINE_TEST_PG_URL it runs itself under scripts/with-postgres.sh with fsync on.
# STATS=1 (with HOOKLINE_TEST_PG_STATEMENTS=1) writes each PostgreSQL run's top statements
# (pg_stat_statements) to build-bench/ab-pg/stats-K.txt. SCHED=CMD runs CMD in the background as
# each run's load starts (e.g. SCHED=bench/pg-sched.sh: its backends' CPU and run-queue times).
set -uo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT" || exit 1
if [ $# -lt 3 ]; then
    sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//' >&2
    exit 2
fi
if [ -z "${HOOKLINE_TEST_PG_URL:-}" ]; then
    exec env HOOKLINE_TEST_PG_FSYNC=on "$ROOT/scripts/with-postgres.sh" "$ROOT/bench/ab-pg.sh" "$@"
fi
ROUNDS=$1 DUR=$2
shift 2
TOOLS=$ROOT/build-bench/bench-tools
RUN=$ROOT/build-bench/ab-pg
rm -rf "$RUN"
mkdir -p "$RUN"
PY=(python3 bench/bench.py)
PG=(python3 bench/bench_pg.py)
PSQL=(psql -X -q -A -t -v ON_ERROR_STOP=1)
read -r SINK_PORT PORT <<<"$("${PY[@]}" ports 2)"
"$TOOLS/hl-sink" -p "$SINK_PORT" -m 2000000 -o "$RUN/sink.dump" >"$RUN/sink.log" 2>&1 &
SINK=$!
NODE=""
trap 'kill "$SINK" $NODE 2>/dev/null' EXIT
sleep 0.5
k=0
for r in $(seq 1 "$ROUNDS"); do
    for spec in "$@"; do
        label=${spec%%=*} bin=${spec#*=} k=$((k + 1))
        if [ "$label" = sqlite ]; then
            DB=$RUN/s$k.db
        else
            name=hl_ab_$k
            "${PSQL[@]}" -d "$HOOKLINE_TEST_PG_URL" -c "SET client_min_messages=warning" \
                -c "DROP DATABASE IF EXISTS $name" -c "CREATE DATABASE $name" >/dev/null
            DB=${HOOKLINE_TEST_PG_URL%/*}/$name
            if [ -n "${STATS:-}" ]; then
                "${PSQL[@]}" -d "$DB" -c "CREATE EXTENSION IF NOT EXISTS pg_stat_statements" >/dev/null
            fi
        fi
        "$bin" db init --database "$DB" >>"$RUN/cli.log" 2>&1
        j=$("$bin" apps create bench --json --database "$DB" 2>>"$RUN/cli.log")
        APP=$("${PY[@]}" field appUid <<<"$j")
        KEY=$("${PY[@]}" field apiKey <<<"$j")
        mkdir -p "$RUN/f$k"
        "$bin" serve --listen "127.0.0.1:$PORT" --database "$DB" --mode development \
            --data-dir "$RUN/f$k" --log-level warn --api-rate 0 >>"$RUN/node-$label.log" 2>&1 &
        NODE=$!
        for _ in $(seq 1 200); do
            curl -sf "http://127.0.0.1:$PORT/healthz" >/dev/null && break
            sleep 0.05
        done
        "${PY[@]}" webhooks --hl-port "$PORT" --app "$APP" --key "$KEY" \
            --url "http://127.0.0.1:$SINK_PORT/a" >/dev/null
        if [ -n "${SCHED:-}" ]; then "$SCHED" & fi
        echo "round $r $label load $(cut -d' ' -f1 /proc/loadavg): $("${PG[@]}" throughput \
            --tools "$TOOLS" --results "$RUN/res.json" --hl-ports "$PORT" --pids "$NODE" \
            --sink-port "$SINK_PORT" --app "$APP" --key "$KEY" --kind agents --name "t$k" \
            --prefix "t$k" --duration "$DUR" --conns 64 --drain-timeout 120 2>&1 | tail -1)"
        if [ "$label" != sqlite ] && [ -n "${STATS:-}" ]; then
            "${PSQL[@]}" -d "$DB" -c "SELECT calls, round(total_exec_time::numeric), rows,
                left(regexp_replace(query, '\s+', ' ', 'g'), 90) FROM pg_stat_statements
                WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database())
                ORDER BY total_exec_time DESC LIMIT 14" >"$RUN/stats-$k.txt"
        fi
        kill -TERM "$NODE"
        wait "$NODE" 2>/dev/null
        NODE=""
        if [ "$label" != sqlite ]; then
            "${PSQL[@]}" -d "$HOOKLINE_TEST_PG_URL" -c "DROP DATABASE IF EXISTS $name" >/dev/null
        fi
    done
done
