#!/usr/bin/env bash
# bench/writecost.sh --before BIN --after BIN [--seconds S] [--rounds N] [--drop "IDX ..."]...
#
# What the indexes cost the write path: the throughput phase of make bench (POST /agents,
# closed loop, 64 connections, one webhook to hl-sink, then the drain), on SQLite, alternating
# the binaries round by round on a fresh database each time so that the machine's load falls on
# both alike. Each --drop runs the after binary once more per round with those indexes dropped
# from its fresh database (what the rest costs without them); a name trigger:NAME drops that
# trigger instead (e.g. the counters' deliveries_count_insert/_update/_delete). Expects build-bench/bench-tools
# (bench/scale.sh or make bench builds them). Figures go to build-bench/writecost-run/.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
BEFORE="" AFTER="" SECONDS_RUN=15 ROUNDS=2
DROPS=()
while [ $# -gt 0 ]; do
    case "$1" in
    --before) BEFORE=${2:?} && shift ;;
    --after) AFTER=${2:?} && shift ;;
    --seconds) SECONDS_RUN=${2:?} && shift ;;
    --rounds) ROUNDS=${2:?} && shift ;;
    --drop) DROPS+=("${2:?}") && shift ;;
    *)
        sed -n '2,9p' "$0" | sed 's/^# \{0,1\}//' >&2
        exit 2
        ;;
    esac
    shift
done
if [ ! -x "$BEFORE" ] || [ ! -x "$AFTER" ]; then
    echo "writecost: --before and --after binaries needed" >&2
    exit 2
fi

RUN=$ROOT/build-bench/writecost-run
TOOLS=$ROOT/build-bench/bench-tools
RESULTS=$RUN/results.json
BENCH_TAG=writecost
# shellcheck source=bench/lib.sh
. "$ROOT/bench/lib.sh"
PY=(python3 "$ROOT/bench/bench.py")
rm -rf "$RUN"
mkdir -p "$RUN"
SINK_PID="" HL_PID=""
cleanup() {
    stop_pid "$HL_PID" hookline || true
    stop_pid "$SINK_PID" hl-sink || true
}
trap cleanup EXIT
read -r SINK_PORT HL_PORT <<<"$("${PY[@]}" ports 2)"
"$TOOLS/hl-sink" -p "$SINK_PORT" -m 2000000 >"$RUN/sink.log" 2>&1 &
SINK_PID=$!
sleep 0.5

# one BIN NAME [INDEX...]: a fresh database, one webhook, the throughput step.
one() {
    local bin=$1 name=$2 db=$RUN/$2.db j app key
    shift 2
    rm -f "$db"*
    "$bin" db init --database "$db" >>"$RUN/cli.log" 2>&1
    j=$("$bin" apps create w --json --database "$db" 2>>"$RUN/cli.log")
    app=$("${PY[@]}" field appUid <<<"$j")
    key=$("${PY[@]}" field apiKey <<<"$j")
    for idx in "$@"; do
        case $idx in
        trigger:*) sqlite3 "$db" "DROP TRIGGER ${idx#trigger:}" ;;
        *) sqlite3 "$db" "DROP INDEX $idx" ;;
        esac
    done
    "$bin" serve --listen "127.0.0.1:$HL_PORT" --database "$db" --mode development \
        --log-level warn --api-rate 0 >>"$RUN/$name.log" 2>&1 &
    HL_PID=$!
    for _ in $(seq 1 200); do
        curl -sf "http://127.0.0.1:$HL_PORT/healthz" >/dev/null 2>&1 && break
        sleep 0.05
    done
    "${PY[@]}" webhooks --hl-port "$HL_PORT" --app "$app" --key "$key" \
        --url "http://127.0.0.1:$SINK_PORT/w" >/dev/null
    step "$name" $((SECONDS_RUN + 300)) "${PY[@]}" throughput --tools "$TOOLS" --results "$RESULTS" \
        --hl-port "$HL_PORT" --sink-port "$SINK_PORT" --pid "$HL_PID" --sink-pid "$SINK_PID" \
        --app "$app" --key "$key" --kind agents --name "$name" --prefix "w$RANDOM" \
        --duration "$SECONDS_RUN" --conns 64 --drain-timeout 180
    stop_pid "$HL_PID" hookline
    HL_PID=""
}

for r in $(seq 1 "$ROUNDS"); do
    one "$BEFORE" "before_$r"
    one "$AFTER" "after_$r"
    i=0
    for d in "${DROPS[@]}"; do
        i=$((i + 1))
        # shellcheck disable=SC2086 # a list of index names
        one "$AFTER" "drop${i}_$r" $d
    done
done
python3 - "$RESULTS" "${DROPS[@]}" <<'PYEOF'
import json, statistics, sys
r = json.load(open(sys.argv[1]))
drops = sys.argv[2:]
groups = {}
for k, v in r.items():
    groups.setdefault(k.rsplit("_", 1)[0], []).append(v["api_per_s"])
base = statistics.median(groups["before"])
print("| run | API changes/s (each round) | median | vs before |")
print("|---|---|---:|---:|")
for g in sorted(groups, key=lambda x: (x != "before", x != "after", x)):
    label = g if not g.startswith("drop") else "after without " + drops[int(g[4:]) - 1]
    m = statistics.median(groups[g])
    print("| %s | %s | %.0f | %+.1f %% |" % (label, ", ".join("%.0f" % x for x in groups[g]), m,
                                        100.0 * (m - base) / base))
PYEOF
