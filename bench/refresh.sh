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
#
# Rounds alternate off, on, off, on (ROUND_SECS each; 10 s, --quick 4 s) for
# 1 client (latency: the per-statement overhead in microseconds) and for
# 4 clients (throughput). Printed: statements/s of each mode (the mean of
# its rounds), the ratio on/off, and the overhead per statement
# 1e6/tps_on - 1e6/tps_off at 1 client. It exits non-zero if the target
# differs from the source once the last refresh ran.
set -euo pipefail
BENCH_DIR="$(cd "$(dirname "$0")" && pwd)"
# shellcheck source-path=SCRIPTDIR source=../scripts/lib.sh
source "$BENCH_DIR/../scripts/lib.sh"

ROUND_SECS=10
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
coco_cluster_start "shared_buffers = 512MB" "autovacuum = off" "jit = off"

q() { coco_psql -qAtX -c "$1"; }

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
set_refresh() {
    q "SELECT coco.set_app_option('bench', refresh => $1)" >/dev/null
    # let the refresh runs of the previous round finish
    wait_for "SELECT count(*) FROM coco.run WHERE status IN ('queued', 'running')" 0 postgres 120
    q "CHECKPOINT" >/dev/null
}
mean() { awk '{ s += $1; n++ } END { printf "%.1f", s / n }'; }

declare -A tps
for clients in 1 4; do
    off=() on=()
    for _ in 1 2; do
        set_refresh false
        off+=("$(round "$clients")")
        set_refresh true
        on+=("$(round "$clients")")
    done
    tps[off_$clients]=$(printf '%s\n' "${off[@]}" | mean)
    tps[on_$clients]=$(printf '%s\n' "${on[@]}" | mean)
    echo "bench: $clients client(s): off ${off[*]} / on ${on[*]} statements/s"
done
runs=$(q "SELECT count(*) FILTER (WHERE status = 'succeeded') || ' executed, ' ||
                 count(*) FILTER (WHERE status = 'coalesced') || ' coalesced'
          FROM coco.run WHERE origin = 'refresh'")
wait_for "SELECT count(*) FROM coco.run WHERE status IN ('queued', 'running')" 0 postgres 120
diff=$(q "SELECT count(*) FROM ((TABLE target EXCEPT TABLE src) UNION ALL (TABLE src EXCEPT TABLE target)) d")

echo
printf '%-10s %14s %14s %8s %22s\n' clients "off (stmt/s)" "on (stmt/s)" "on/off" "overhead per statement"
for clients in 1 4; do
    awk -v c="$clients" -v off="${tps[off_$clients]}" -v on="${tps[on_$clients]}" 'BEGIN {
        printf "%-10s %14.1f %14.1f %8.3f %19.1f us\n", c, off, on, on / off,
               (1e6 / on - 1e6 / off) * (c == 1 ? 1 : c) }'
done
echo "refresh runs during the 'on' rounds: $runs"
echo "(overhead at 4 clients: per statement of one client, i.e. 4e6/tps_on - 4e6/tps_off)"
[ "$diff" = 0 ] || { echo "bench: the target differs from the source in $diff rows" >&2; exit 1; }
