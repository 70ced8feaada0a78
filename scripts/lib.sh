# shellcheck shell=bash
# Shared helpers for scripts/*.sh and test/*.sh. Source it, don't run it:
#   source "$(dirname "$0")/../scripts/lib.sh"
# Everything targets PostgreSQL 15 from Debian 12; the pg_config on PATH may
# belong to another version, so binaries are always named by full path.
# Strict mode for whoever sources this (scripts and scenario tests alike).
set -euo pipefail

COCO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# COCO_PGBIN may name another PostgreSQL 15 build (one with assertions, say).
COCO_PGBIN="${COCO_PGBIN:-/usr/lib/postgresql/15/bin}"
export COCO_ROOT COCO_PGBIN

# Install everything the build, the tests and the demo need. A fresh machine
# has none of it, so this is the default; COCO_SKIP_APT=1 skips it for quick
# repeated local runs on a machine that already has it.
coco_install_deps() {
    if [ "${COCO_SKIP_APT:-0}" = 1 ]; then
        echo "coco: COCO_SKIP_APT=1, not installing packages"
        return 0
    fi
    export DEBIAN_FRONTEND=noninteractive
    # apt-get update once per process: package lists are needed before install.
    if [ -z "${COCO_APT_UPDATED:-}" ]; then
        apt-get update -qq
        COCO_APT_UPDATED=1
    fi
    # postgresql-contrib-15 is not a real package on Debian 12: postgresql-15
    # provides it, so it is not listed. libipc-run-perl is for TAP tests.
    # clang and libclang-rt-14-dev (libFuzzer and the sanitizer runtimes,
    # only recommended by clang) are for test/fuzz_smoke.sh; python3 with
    # psycopg2 for the model-based tester (test/model.sh).
    apt-get install -y -qq --no-install-recommends \
        postgresql-15 postgresql-server-dev-15 postgresql-15-cron \
        libxxhash-dev build-essential perl libipc-run-perl \
        clang libclang-rt-14-dev python3 python3-psycopg2 >/dev/null
}

# Build and install the extension from the repo root with the PG 15 toolchain.
# Returns non-zero on any failure (the Makefile builds with -Werror).
coco_build() {
    (cd "$COCO_ROOT" &&
        export PG_CONFIG="$COCO_PGBIN/pg_config" &&
        make -s clean && make -s && make -s install)
}

# Run a command as the postgres user from the cluster's temp dir, so the
# command never trips over a working directory postgres cannot read.
coco_as_pg() {
    (cd "${COCO_TMP:-/}" && runuser -u postgres -- "$@")
}

# pg_ctl for the current throwaway cluster (tests use it to restart/crash).
coco_pg_ctl() {
    coco_as_pg "$COCO_PGBIN/pg_ctl" -D "$PGDATA" -l "$COCO_TMP/postgres.log" "$@"
}

# The checks of a scenario test (test/*.sh); a test may define its own
# after sourcing this. ok reports a check that passed; fail stops the test,
# showing the tail of the server log, where the cause usually is; q runs
# SQL on the test cluster, unaligned and tuples only; wait_for polls a
# query until it gives the wanted answer.
ok() { echo "ok: $*"; }
fail() {
    echo "FAIL: $*" >&2
    [ -z "${COCO_TMP:-}" ] || tail -n 30 "$COCO_TMP/postgres.log" >&2
    exit 1
}
q() { coco_psql -qAt "$@"; }

# Poll `sql` (as postgres, in database $3, default postgres) until it
# prints `want`, at most $4 seconds (default 30).
wait_for() {
    local sql=$1 want=$2 db=${3:-postgres} secs=${4:-30} got=""
    local deadline=$((SECONDS + secs))
    while [ "$SECONDS" -lt "$deadline" ]; do
        got=$(q -d "$db" -c "$sql" 2>/dev/null || true)
        [ "$got" = "$want" ] && return 0
        sleep 0.2
    done
    echo "wait_for: '$sql' gave '$got', wanted '$want' after ${secs}s" >&2
    return 1
}

# Where the server log is now, and what it shows since such a mark of a
# backend that died: its signal, or the crash-restart it caused (the
# postmaster's start time does not change on a crash-restart). Empty when
# none died.
coco_log_mark() { wc -c <"$COCO_TMP/postgres.log"; }
coco_crashed_since() {
    tail -c +"$(($1 + 1))" "$COCO_TMP/postgres.log" |
        grep -E "terminated by signal|terminating any other active server processes|all server processes terminated; reinitializing" ||
        true
}

# Wait until the cluster answers queries again (after a crash or restart).
coco_wait_up() {
    for _ in $(seq 1 120); do
        if coco_as_pg "$COCO_PGBIN/pg_isready" -q -h "$PGHOST" -p "$PGPORT" &&
            coco_psql -qAt -c "SELECT 1" >/dev/null 2>&1; then
            return 0
        fi
        sleep 0.5
    done
    echo "coco: the server did not come back" >&2
    return 1
}

# Wait up to 60 s for a fault point (coco_target.fault_point) to be reached.
coco_await_fault() {
    for _ in $(seq 1 240); do
        grep -q "fault point \"$1\" reached" "$COCO_TMP/postgres.log" && return 0
        sleep 0.25
    done
    echo "coco: fault point $1 was not reached" >&2
    return 1
}

# After a fault point set with ALTER SYSTEM killed the worker: every retry
# would die the same way. Stop at once, forget the fault point, and start
# without the worker (coco_target not preloaded), so the state the crash
# left can be looked at; coco_start_worker_again brings the worker back.
coco_stop_fault_and_worker() {
    coco_pg_ctl -m immediate -w stop >/dev/null
    sed -i '/coco_target.fault_point/d' "$PGDATA/postgresql.auto.conf"
    echo "shared_preload_libraries = 'pg_cron'" >>"$PGDATA/postgresql.auto.conf"
    coco_pg_ctl -w start >/dev/null
    coco_wait_up
}
coco_start_worker_again() {
    sed -i "/shared_preload_libraries = 'pg_cron'/d" "$PGDATA/postgresql.auto.conf"
    coco_pg_ctl -m fast -w restart >/dev/null
    coco_wait_up
}

# psql against the throwaway cluster, as postgres, stopping at the first error.
coco_psql() {
    runuser -u postgres -- "$COCO_PGBIN/psql" -X -v ON_ERROR_STOP=1 "$@"
}

# Print a TCP port nobody listens on. A port answering a connect on
# 127.0.0.1 is taken; bash's /dev/tcp avoids needing ss or python.
coco_free_port() {
    local port
    port=$((20000 + RANDOM % 30000))
    for _ in $(seq 1 200); do
        if ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
            echo "$port"
            return 0
        fi
        port=$((port + 1))
    done
    echo "coco: no free TCP port found" >&2
    return 1
}

# Start a throwaway cluster: temp dir owned by postgres, initdb, a free port,
# the unix socket inside the temp dir, our library + pg_cron preloaded.
# Extra arguments are appended to postgresql.conf as lines.
# Exports PGHOST PGPORT PGUSER PGDATA COCO_TMP; stops and deletes on exit.
# shellcheck disable=SC2120  # extra conf lines are optional
coco_cluster_start() {
    local line preload=coco_target,pg_cron
    if [ ! -f "$("$COCO_PGBIN/pg_config" --pkglibdir)/pg_cron.so" ]; then
        # Debian's server always has it (the test command installs it);
        # another build may not, and then tests that schedule jobs fail
        if [ "$COCO_PGBIN" = /usr/lib/postgresql/15/bin ]; then
            echo "coco: pg_cron is not installed (package postgresql-15-cron)" >&2
            return 1
        fi
        echo "coco: no pg_cron in $COCO_PGBIN: not preloaded" >&2
        preload=coco_target
    fi
    COCO_TMP="$(mktemp -d -t coco.XXXXXX)"
    chown postgres: "$COCO_TMP"
    export COCO_TMP PGDATA="$COCO_TMP/data" PGHOST="$COCO_TMP" PGUSER=postgres
    PGPORT="$(coco_free_port)"
    export PGPORT
    # The trap is set before initdb so a half-made cluster is cleaned too;
    # INT/TERM are turned into a normal exit so the EXIT trap runs.
    trap coco_cluster_stop EXIT
    trap 'exit 130' INT TERM
    # C locale: deterministic sort order for expected test output.
    coco_as_pg "$COCO_PGBIN/initdb" -D "$PGDATA" -A trust -U postgres \
        -E UTF8 --locale=C >"$COCO_TMP/initdb.log"
    # fsync stays on: crash tests rely on real durability.
    {
        echo "port = $PGPORT"
        echo "unix_socket_directories = '$COCO_TMP'"
        echo "listen_addresses = 'localhost'"
        echo "shared_preload_libraries = '$preload'"
        echo "cron.database_name = 'postgres'"
        echo "max_worker_processes = 16"
        for line in "$@"; do echo "$line"; done
    } >>"$PGDATA/postgresql.conf"
    if ! coco_pg_ctl -w -t 60 start >/dev/null; then
        echo "coco: server failed to start; log follows" >&2
        cat "$COCO_TMP/postgres.log" >&2
        return 1
    fi
}

# Stop the cluster (fast, then immediate if that fails) and delete its
# directory. Silent, so a caller's last output line stays the last line.
coco_cluster_stop() {
    [ -n "${COCO_TMP:-}" ] && [ -d "$COCO_TMP" ] || return 0
    if [ -f "$PGDATA/postmaster.pid" ]; then
        coco_pg_ctl -w -m fast stop >/dev/null 2>&1 ||
            coco_pg_ctl -w -m immediate stop >/dev/null 2>&1 || true
    fi
    rm -rf "$COCO_TMP"
    COCO_TMP=
}

# Citus: the test cluster becomes a coordinator with two workers, all on
# this machine. Returns 2 (and starts nothing) when the PostgreSQL build has
# no Citus: Debian 12 does not package it, so callers print a SKIP line.
# The workers live under $COCO_TMP and stop with the coordinator.
COCO_CITUS_WORKERS=()
coco_citus_available() {
    [ -f "$("$COCO_PGBIN/pg_config" --pkglibdir)/citus.so" ]
}
coco_citus_start() {
    local w dir port preload=citus,coco_target,pg_cron
    coco_citus_available || return 2
    [ -f "$("$COCO_PGBIN/pg_config" --pkglibdir)/pg_cron.so" ] || preload=citus,coco_target
    trap 'coco_citus_stop; coco_cluster_stop' EXIT
    for w in 1 2; do
        dir="$COCO_TMP/worker$w"
        port="$(coco_free_port)"
        coco_as_pg "$COCO_PGBIN/initdb" -D "$dir" -A trust -U postgres -E UTF8 --locale=C >/dev/null
        {
            echo "port = $port"
            echo "unix_socket_directories = '$COCO_TMP'"
            echo "listen_addresses = 'localhost'"
            echo "shared_preload_libraries = 'citus,coco_target'"
            echo "max_prepared_transactions = 100"
            echo "max_worker_processes = 16"
        } >>"$dir/postgresql.conf"
        coco_as_pg "$COCO_PGBIN/pg_ctl" -D "$dir" -l "$COCO_TMP/worker$w.log" -w -t 60 start >/dev/null
        COCO_CITUS_WORKERS+=("$dir:$port")
        coco_psql -p "$port" -qAt -c "CREATE EXTENSION citus" >/dev/null
    done
    {
        echo "shared_preload_libraries = '$preload'"
        echo "max_prepared_transactions = 100"
    } >>"$PGDATA/postgresql.conf"
    coco_pg_ctl -w -m fast restart >/dev/null
    coco_wait_up
    q -c "CREATE EXTENSION citus" \
      -c "SELECT citus_set_coordinator_host('localhost', $PGPORT)" >/dev/null
    for w in "${COCO_CITUS_WORKERS[@]}"; do
        q -c "SELECT citus_add_node('localhost', ${w##*:})" >/dev/null
    done
}
coco_citus_stop() {
    local w
    for w in "${COCO_CITUS_WORKERS[@]}"; do
        coco_as_pg "$COCO_PGBIN/pg_ctl" -D "${w%:*}" -w -m fast stop >/dev/null 2>&1 ||
            coco_as_pg "$COCO_PGBIN/pg_ctl" -D "${w%:*}" -w -m immediate stop >/dev/null 2>&1 || true
    done
    COCO_CITUS_WORKERS=()
}
