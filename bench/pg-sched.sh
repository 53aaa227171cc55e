#!/usr/bin/env bash
# bench/pg-sched.sh [DELAY_S [SPAN_S]]   (under scripts/with-postgres.sh, during a load)
#
# Where the PostgreSQL backends of one hookline node spend a closed loop: after DELAY_S (4), finds
# the backend running the dispatcher's claims and records (by its statements in
# pg_stat_activity) and the node's other backends on that database (the API's), and prints for each, over SPAN_S (4), the time on
# the CPU and the time runnable but waiting for one (/proc/PID/schedstat). Same machine only.
# bench/ab-pg.sh runs it beside each run when SCHED=bench/pg-sched.sh.
set -uo pipefail
DELAY=${1:-4} SPAN=${2:-4}
PSQL=${HOOKLINE_TEST_PG_PSQL:?run under scripts/with-postgres.sh}
sleep "$DELAY"
D=""
for _ in $(seq 1 100); do
    D=$($PSQL -At -c "SELECT pid FROM pg_stat_activity WHERE query LIKE 'WITH a AS%'
        OR query LIKE 'WITH cand%' OR query LIKE 'WITH RECURSIVE wh%' LIMIT 1")
    [ -n "$D" ] && break
    sleep 0.05
done
[ -n "$D" ] || { echo "pg-sched: no dispatcher statement seen" >&2; exit 1; }
# the node's other connections to that database: the API's pool (the committers among them)
C=$($PSQL -At -c "SELECT string_agg(pid::text, ' ') FROM pg_stat_activity
    WHERE datname = (SELECT datname FROM pg_stat_activity WHERE pid = $D) AND pid <> $D
    AND pid <> pg_backend_pid() AND backend_type = 'client backend' AND query NOT LIKE 'LISTEN%'")
declare -A cpu0 wait0
for p in $D $C; do
    read -r c w _ <"/proc/$p/schedstat" || continue
    cpu0[$p]=$c wait0[$p]=$w
done
sleep "$SPAN"
for p in $D $C; do
    [ -n "${cpu0[$p]:-}" ] || continue
    read -r c w _ <"/proc/$p/schedstat" || continue
    who=API
    [ "$p" = "$D" ] && who=dispatcher
    echo "pg-sched: $who backend $p over ${SPAN}s: on CPU $(((c - cpu0[$p]) / 1000000)) ms," \
        "runnable and waiting $(((w - wait0[$p]) / 1000000)) ms"
done
