#!/usr/bin/env bash
# coco_target benchmark: what source-driven refresh costs the writers of a
# source table — statements per second with the app's refresh option off
# and on, in one run on one cluster.
#
#   bash bench/refresh.sh [--quick]
#
# Run as root, like scripts/test.sh (COCO_SKIP_APT=1 skips the packages,
# COCO_BENCH_SKIP_BUILD=1 uses the installed extension). It starts a
# throwaway cluster, makes a 10,000-row source `src` and an app whose
# coco.sync_table query reads it, then runs pgbench with one-statement
# transactions (an UPDATE of one random row, autocommit) against `src`:
#
#   off  the app exists, refresh off (no trigger on src)
#   on   refresh on: every commit fires the statement trigger and queues a
#        run of the app or joins the one waiting; the worker refreshes the
#        target meanwhile, on the same 2 cores, as it would in production
#   held refresh on, with coco_target.refresh_delay = 1h so that no run
#        starts during the round: every commit joins the waiting run. The
#        writers' own cost, without the worker competing for the cores
#
# Rounds alternate off, on, held, three times (ROUND_SECS each; 8 s,
# --quick 4 s) for 1 client and for 4 clients. Printed: statements/s of
# each mode (the median of its rounds), its ratio to off, and the latency a
# statement gains, c * (1e6/tps_mode - 1e6/tps_off) microseconds for c
# clients. It exits non-zero if the target differs from the source once
# the last refresh ran.
set -euo pipefail
BENCH_DIR="$(cd "$(dirname "$0")" && pwd)"
# shellcheck source-path=SCRIPTDIR source=../scripts/lib.sh
source "$BENCH_DIR/../scripts/lib.sh"

ROUND_SECS=8
for arg in "$@"; do
    case "$arg" in
        --quick) ROUND_SECS=4 ;;
        -h | --help) sed -n '2,24p' "$0"; exit 0 ;;
        *) echo "usage: bash bench/refresh.sh [--quick]" >&2; exit 2 ;;
    esac
done
N=10000

coco_install_deps
if [ "${COCO_BENCH_SKIP_BUILD:-0}" != 1 ]; then
    # from a snapshot copy, so an edit in the tree cannot race with the build
    snap="$(mktemp -d -t coco-bench-build.XXXXXX)"
    cp -a "$COCO_ROOT/Makefile" "$COCO_ROOT"/*.control "$COCO_ROOT/src" "$COCO_ROOT/extension" "$snap/"
    COCO_ROOT="$snap" coco_build || { rm -rf "$snap"; echo "bench: BUILD FAILED" >&2; exit 1; }
    rm -rf "$snap"
fi
# synchronous_commit off: the wait for the WAL flush at each commit varies
# by orders of magnitude on a shared disk and would drown what is measured,
# the CPU and locking the trigger and the commit-time queueing add
coco_cluster_start "shared_buffers = 512MB" "autovacuum = off" "jit = off" "synchronous_commit = off"

sql() { coco_psql -qAtX -c "$1"; }
# Wait until no run is queued or running (the refresh runs of a round).
settle() {
    for _ in $(seq 1 600); do
        [ "$(sql "SELECT count(*) FROM coco.run WHERE status IN ('queued', 'running')")" = 0 ] && return 0
        sleep 0.2
    done
    echo "bench: runs still queued after 120 s" >&2
    exit 1
}

coco_psql -qX >/dev/null <<SQL
CREATE EXTENSION coco_target;
CREATE TABLE src (id int PRIMARY KEY, title text NOT NULL, score float8 NOT NULL);
INSERT INTO src SELECT g, 'title ' || g, g FROM generate_series(1, $N) g;
SELECT coco.create_app('bench');
SELECT coco.sync_table('bench', 'public.target', 'SELECT id, title, score FROM src', '{id}');
SELECT coco.reconcile('bench', false);
VACUUM ANALYZE src;
SQL
cat >"$COCO_TMP/write.sql" <<SQL
\\set id random(1, $N)
UPDATE src SET score = score + 1 WHERE id = :id;
SQL
chown postgres: "$COCO_TMP/write.sql"

# One pgbench round: prints its statements per second.
round() {
    local clients=$1
    runuser -u postgres -- "$COCO_PGBIN/pgbench" -n -c "$clients" -j "$clients" -T "$ROUND_SECS" \
        -f "$COCO_TMP/write.sql" postgres 2>/dev/null |
        sed -n 's/^tps = \([0-9.]*\) (without initial connection time)$/\1/p'
}
# mode off, on or held
set_mode() {
    local refresh=true
    [ "$1" = off ] && refresh=false
    if [ "$1" = held ]; then
        sql "ALTER SYSTEM SET coco_target.refresh_delay = '1h'" >/dev/null
    else
        sql "ALTER SYSTEM RESET coco_target.refresh_delay" >/dev/null
    fi
    sql "SELECT pg_reload_conf()" >/dev/null
    sleep 1
    sql "SELECT coco.set_app_option('bench', refresh => $refresh)" >/dev/null
    # the refresh runs of the previous round finish first (held: none is due)
    [ "$1" = held ] || settle
    sql "CHECKPOINT" >/dev/null
}
# the median of the rounds: the machine may be shared, one round can be off
median() { tr ' ' '\n' | grep . | sort -n | awk '{ v[NR] = $1 } END { printf "%.1f", v[int((NR + 1) / 2)] }'; }

declare -A tps
modes=(off on held)
for clients in 1 4; do
    declare -A got=([off]="" [on]="" [held]="")
    for _ in 1 2 3; do
        for mode in "${modes[@]}"; do
            set_mode "$mode"
            got[$mode]+="$(round "$clients") "
        done
    done
    set_mode off
    line="bench: $clients client(s), statements/s of each round:"
    for mode in "${modes[@]}"; do
        tps[${mode}_$clients]=$(printf '%s' "${got[$mode]}" | median)
        line+=" $mode ${got[$mode]}"
    done
    echo "$line"
    unset got
done
runs=$(sql "SELECT count(*) FILTER (WHERE status = 'succeeded') || ' executed, ' ||
                   count(*) FILTER (WHERE status = 'coalesced') || ' coalesced'
            FROM coco.run WHERE origin = 'refresh'")
settle
diff=$(sql "SELECT count(*) FROM ((TABLE target EXCEPT TABLE src) UNION ALL (TABLE src EXCEPT TABLE target)) d")

echo
printf '%-8s %-5s %12s %8s %24s\n' clients mode "stmt/s" "vs off" "overhead per statement"
for clients in 1 4; do
    printf '%-8s %-5s %12.1f\n' "$clients" off "${tps[off_$clients]}"
    for mode in on held; do
        awk -v c="$clients" -v m="$mode" -v off="${tps[off_$clients]}" -v on="${tps[${mode}_$clients]}" 'BEGIN {
            printf "%-8s %-5s %12.1f %8.3f %21.1f us\n", c, m, on, on / off, (1e6 / on - 1e6 / off) * c }'
    done
done
echo "refresh runs in all: $runs"
echo "(overhead: the latency a statement gains, c * (1e6/tps_mode - 1e6/tps_off) for c clients)"
[ "$diff" = 0 ] || { echo "bench: the target differs from the source in $diff rows" >&2; exit 1; }
