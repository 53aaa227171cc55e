#!/usr/bin/env bash
# Runs a command beside a throwaway PostgreSQL server.
#
# Usage: scripts/with-postgres.sh CMD [ARGS...]
#
# Starts a private PostgreSQL cluster (Debian's postgresql package: initdb and pg_ctl from
# /usr/lib/postgresql/*/bin) in a temporary directory, listening on a free loopback port with
# trust authentication, creates the database "hookline", and runs CMD with:
#   HOOKLINE_TEST_PG_URL   postgres://postgres@127.0.0.1:PORT/hookline
#   HOOKLINE_TEST_PG_DATA  the cluster's data directory
#   HOOKLINE_TEST_PG_CTL   a pg_ctl that runs as the right user and logs to the cluster's log,
#                          e.g. "$HOOKLINE_TEST_PG_CTL restart -D "$HOOKLINE_TEST_PG_DATA" -m fast -w"
#   HOOKLINE_TEST_PG_PSQL  psql for that server, e.g. "$HOOKLINE_TEST_PG_PSQL -c 'SELECT 1'"
# The server is stopped and the directory removed when CMD ends, fails or is interrupted; the
# script exits with CMD's status. Nothing outside the temporary directory is touched, so it works
# on a machine where the postgresql package is installed but no cluster runs.
#
# HOOKLINE_TEST_PG_FSYNC=on keeps fsync (for benchmarks); tests run without it by default.
# HOOKLINE_TEST_PG_STATEMENTS=1 loads pg_stat_statements (shared_preload_libraries; a database
# that wants the view runs CREATE EXTENSION pg_stat_statements): per-statement times for profiles.
#
# When PostgreSQL is not installed it exits 77 (what ctest takes for "skipped") without running
# CMD; under HL_REQUIRE_ALL=1 (make test, whose set-up installs it) it exits 1 instead.
set -euo pipefail

missing() {
    echo "$0: $1" >&2
    if [ "${HL_REQUIRE_ALL:-0}" = 1 ]; then
        exit 1
    fi
    echo "$0: skipped (exit 77)" >&2
    exit 77
}

if [ $# -eq 0 ]; then
    echo "usage: $0 CMD [ARGS...]" >&2
    exit 2
fi

# The newest installed server version.
bindir=""
best=0
for d in /usr/lib/postgresql/*/bin; do
    v=${d#/usr/lib/postgresql/}
    v=${v%/bin}
    if [[ $v =~ ^[0-9]+$ ]] && [ -x "$d/initdb" ] && [ -x "$d/pg_ctl" ] && [ "$v" -gt "$best" ]; then
        best=$v
        bindir=$d
    fi
done
if [ -z "$bindir" ]; then
    missing "PostgreSQL server binaries not found (apt-get install postgresql)"
fi

# pg_ctl and the server refuse to run as root: run them as the postgres user then.
as_pg=()
if [ "$(id -u)" -eq 0 ]; then
    if ! id postgres >/dev/null 2>&1; then
        missing "running as root but there is no postgres user"
    fi
    as_pg=(runuser -u postgres --)
fi

orig=$PWD
tmp=$(mktemp -d "${TMPDIR:-/tmp}/hookline-pg.XXXXXX")
data="$tmp/data"
log="$tmp/postgres.log"
started=0
child=""

# shellcheck disable=SC2317  # called by the EXIT trap
cleanup() {
    if [ -n "$child" ] && kill -0 "$child" 2>/dev/null; then
        kill -TERM "$child" 2>/dev/null || true
        wait "$child" 2>/dev/null || true
    fi
    if [ "$started" = 1 ]; then
        (cd "$tmp" && "${as_pg[@]}" "$bindir/pg_ctl" -D "$data" -m immediate -w -t 30 stop \
            >/dev/null 2>&1) || true
    fi
    rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
trap 'exit 129' HUP

if [ "$(id -u)" -eq 0 ]; then
    chown postgres: "$tmp"
fi
chmod 700 "$tmp"
cd "$tmp"

if ! "${as_pg[@]}" "$bindir/initdb" -D "$data" -U postgres --auth=trust -E UTF8 \
    --locale=C.UTF-8 >"$tmp/initdb.log" 2>&1; then
    cat "$tmp/initdb.log" >&2
    echo "$0: initdb failed" >&2
    exit 1
fi

fsync=${HOOKLINE_TEST_PG_FSYNC:-off}
cat >>"$data/postgresql.conf" <<EOF
# hookline test cluster
listen_addresses = '127.0.0.1'
unix_socket_directories = '$tmp'
max_connections = 200
fsync = $fsync
full_page_writes = $fsync
synchronous_commit = on
logging_collector = off
log_min_messages = warning
EOF
if [ "${HOOKLINE_TEST_PG_STATEMENTS:-0}" = 1 ]; then
    cat >>"$data/postgresql.conf" <<EOF
shared_preload_libraries = 'pg_stat_statements'
pg_stat_statements.track = all
EOF
fi

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# Another process may take the port between the check and the start: try a few.
port=""
for _ in 1 2 3 4 5; do
    p=$(free_port)
    # In the configuration (the last setting wins), so that a plain `pg_ctl start` after a stop
    # comes back on the same port.
    echo "port = $p" >>"$data/postgresql.conf"
    if "${as_pg[@]}" "$bindir/pg_ctl" -D "$data" -l "$log" -w -t 60 start >/dev/null 2>&1; then
        port=$p
        started=1
        break
    fi
done
if [ -z "$port" ]; then
    cat "$log" >&2 2>/dev/null || true
    echo "$0: could not start PostgreSQL" >&2
    exit 1
fi

"${as_pg[@]}" "$bindir/psql" -X -q -h 127.0.0.1 -p "$port" -U postgres -d postgres \
    -v ON_ERROR_STOP=1 -c "CREATE DATABASE hookline" >/dev/null

# Helpers the tests call: pg_ctl and psql as the right user, from a directory it may enter.
cat >"$tmp/pg_ctl" <<EOF
#!/bin/sh
cd "$tmp" && exec ${as_pg[*]} "$bindir/pg_ctl" -l "$log" "\$@"
EOF
cat >"$tmp/psql" <<EOF
#!/bin/sh
exec "$bindir/psql" -X -q -h 127.0.0.1 -p "$port" -U postgres -d hookline "\$@"
EOF
chmod 755 "$tmp/pg_ctl" "$tmp/psql"

export HOOKLINE_TEST_PG_URL="postgres://postgres@127.0.0.1:$port/hookline"
export HOOKLINE_TEST_PG_DATA="$data"
export HOOKLINE_TEST_PG_CTL="$tmp/pg_ctl"
export HOOKLINE_TEST_PG_PSQL="$tmp/psql"

cd "$orig"
# In the background so that a signal to this script runs the traps at once (bash defers traps
# until a foreground command ends); stdin stays the script's.
"$@" <&0 &
child=$!
status=0
wait "$child" || status=$?
child=""
exit "$status"
