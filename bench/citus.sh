#!/usr/bin/env bash
# coco_target on Citus: keeping a distributed table in sync with a distributed
# source, coco_target against a hand-written MERGE, on a coordinator and two
# workers on this machine.
#
#   COCO_PGBIN=/path/to/pg15/bin bash bench/citus.sh [--quick]
#
# Run as root. COCO_PGBIN names a PostgreSQL 15 build that has Citus and has
# this extension installed (PG_CONFIG=$COCO_PGBIN/pg_config make install);
# the script builds nothing. Without Citus it prints SKIP and exits 0. It
# exits non-zero if a step fails or a synced table differs from its source.
#
#   full:    1M source rows        --quick: 100k source rows
#
# Setup, as a Citus user would have it: the source `src` (bigint id, two text
# columns, a float8; ~170 bytes/row) is a distributed table on id, and every
# synced table is distributed on id, colocated with it (default 32 shards,
# all on the two workers). Steps: 1. initial load, 2. no-op resync,
# 3. 2 % changed (1 % of src updated, 0.5 % deleted, 0.5 % inserted, once).
# Methods, each keeping its own table in sync with `src`:
#   coco_target     `target`, created and distributed by hand, declared with
#                   managed_by => 'user'; declare_table + declare_rows +
#                   reconcile at every step
#   coco_target/sys `target_sys`, system-managed, declared with the option
#                   {"distribution": {"column": "id", "colocate_with": "src"}};
#                   "n/a" where declare_table refuses that option
#   MERGE + DELETE  `peer_merge`: in one transaction, MERGE … WHEN MATCHED AND
#                   (cols) IS DISTINCT FROM (source cols) THEN UPDATE … WHEN
#                   NOT MATCHED THEN INSERT, then an anti-join DELETE (Citus
#                   12.1 has no WHEN NOT MATCHED BY SOURCE). Both run pushed
#                   down to the colocated shards.
# The initial load of every method includes creating (and, by hand,
# distributing) its table.
#
# How each step is measured: before it, CHECKPOINT on the coordinator and on
# each worker, then VACUUM ANALYZE of the tables it touches (autovacuum is
# off everywhere). It runs in a fresh psql session on the coordinator; time =
# clock_timestamp() difference on the coordinator around its statements;
# WAL = pg_current_wal_lsn() difference on the coordinator, and on each
# worker (read with psql on the worker's port just before and after the
# session), summed. After each step the synced table is compared with `src`
# (EXCEPT ALL both ways must be empty). Ratio = coco_target / MERGE + DELETE.
# A coco_target step's line also splits its time (up to the reconcile: the
# declarations, and for the initial load the table's creation; the reconcile
# itself) and shows the rows the reconcile inserted/updated/deleted/left.
set -euo pipefail
BENCH_DIR="$(cd "$(dirname "$0")" && pwd)"
# shellcheck source-path=SCRIPTDIR source=../scripts/lib.sh
source "$BENCH_DIR/../scripts/lib.sh"

N=1000000
for arg in "$@"; do
    case "$arg" in
        --quick) N=100000 ;;
        -h | --help) sed -n '2,11p' "$0"; exit 0 ;;
        *) echo "usage: bash bench/citus.sh [--quick]" >&2; exit 2 ;;
    esac
done
if ! coco_citus_available; then
    echo "SKIP: Citus is not installed in $COCO_PGBIN (set COCO_PGBIN to a PostgreSQL 15 build with Citus)"
    exit 0
fi

COLUMNS_JSON='[{"name":"id","type":"bigint","nullable":false},{"name":"title","type":"text"},{"name":"body","type":"text"},{"name":"score","type":"float8"}]'
DDL='(id bigint PRIMARY KEY, title text, body text, score float8)'
COLS='id, title, body, score'
COCO_RELS="coco.tracked_chunk, coco.staged_row, coco.staged_query, coco.staged_state, coco.target_state, coco.run"
# Rows lo..hi of the source, deterministic (8 + 40 + 114 + 8 bytes of data).
gen() {
    echo "SELECT g, 'Title ' || substr(md5(g::text), 1, 34),
       md5(g || 'a') || md5(g || 'b') || md5(g || 'c') || substr(md5(g || 'd'), 1, 18),
       ((abs(hashint8(g)) % 100000) / 100.0)::float8
  FROM generate_series($1::bigint, $2::bigint) g"
}
q1() { coco_psql -qAtX -c "$1"; }
wq() { coco_psql -p "${1##*:}" -qAtX -c "$2"; }

# Cluster: the coordinator and the workers get the same tuning as bench/run.sh
# (no checkpoint inside a step, autovacuum off, jit off; durability on).
TUNING=("shared_buffers = 2GB" "work_mem = 64MB" "maintenance_work_mem = 1GB"
    "max_wal_size = 8GB" "min_wal_size = 1GB" "checkpoint_timeout = 30min"
    "wal_buffers = 64MB" "autovacuum = off" "jit = off")
coco_cluster_start "${TUNING[@]}"
coco_citus_start
for w in "${COCO_CITUS_WORKERS[@]}"; do
    printf '%s\n' "${TUNING[@]}" >>"${w%:*}/postgresql.conf"
    coco_as_pg "$COCO_PGBIN/pg_ctl" -D "${w%:*}" -l "${w%:*}.log" -w -m fast restart >/dev/null
done
q1 "CREATE EXTENSION coco_target" >/dev/null
echo "bench: $N rows; coordinator port $PGPORT, workers ${COCO_CITUS_WORKERS[*]##*:}; $(nproc) cores"
echo "bench: commit $(git -C "$COCO_ROOT" describe --always --dirty 2>/dev/null || echo '?'), coco_target.so md5 $(md5sum "$("$COCO_PGBIN/pg_config" --pkglibdir)/coco_target.so" | cut -c1-12); $(q1 "SELECT 'PostgreSQL ' || current_setting('server_version') || ', Citus ' || extversion FROM pg_extension WHERE extname = 'citus'")"

RES="$COCO_TMP/results.tsv"
: >"$RES"
FAILED=0

# step NAME METHOD VACUUM_RELS SQL: run SQL (psql text) in a fresh session
# and append "name method status ms coord_wal worker_wal" to $RES.
step() {
    local name="$1" method="$2" vac="$3" sql="$4" w out rc line ms wal decl res wal0=() wwal=0 i=0
    # (called in an if: set -e is off here, so a failed preparation exits)
    q1 "CHECKPOINT" >/dev/null || exit 1
    for w in "${COCO_CITUS_WORKERS[@]}"; do wq "$w" "CHECKPOINT" >/dev/null || exit 1; done
    q1 "VACUUM ANALYZE $vac" >/dev/null || exit 1
    for w in "${COCO_CITUS_WORKERS[@]}"; do wal0+=("$(wq "$w" "SELECT pg_current_wal_lsn()")"); done
    rc=0
    out="$(coco_psql -q 2>&1 <<EOF
\\o /dev/null
\\set b_decl -
\\set b_result -
SELECT pg_current_wal_lsn() AS b_lsn0, clock_timestamp() AS b_t0 \\gset
$sql
SELECT round(extract(epoch FROM clock_timestamp() - :'b_t0'::timestamptz) * 1000, 1) AS b_ms,
       pg_wal_lsn_diff(pg_current_wal_lsn(), :'b_lsn0') AS b_wal \\gset
\\echo BENCH :b_ms :b_wal
\\echo SPLIT :b_decl :b_result
EOF
)" || rc=$?
    for w in "${COCO_CITUS_WORKERS[@]}"; do
        wwal=$((wwal + $(wq "$w" "SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), '${wal0[$i]}')::bigint")))
        i=$((i + 1))
    done
    line="$(grep '^BENCH ' <<<"$out" | cut -d' ' -f2- || true)"
    if [ "$rc" != 0 ] || [ -z "$line" ]; then
        printf '  %-10s %-16s FAILED: %s\n' "$name" "$method" "$(grep -E 'ERROR|FATAL' <<<"$out" | head -1)"
        printf '%s\t%s\tFAILED\t-\t-\t-\n' "$name" "$method" >>"$RES"
        FAILED=$((FAILED + 1))
        return 1
    fi
    read -r ms wal <<<"$line"
    read -r decl res <<<"$(grep '^SPLIT ' <<<"$out" | cut -d' ' -f2-)"
    printf '%s\t%s\tok\t%s\t%s\t%s\n' "$name" "$method" "$ms" "$wal" "$wwal" >>"$RES"
    if [ "$decl" = - ]; then
        printf '  %-10s %-16s %10s ms\n' "$name" "$method" "$ms"
    else
        printf '  %-10s %-16s %10s ms: %s before the reconcile + %s in it; rows ins/upd/del/unchanged %s\n' "$name" "$method" \
            "$ms" "$decl" "$(awk -v a="$ms" -v b="$decl" 'BEGIN { printf "%.1f", a - b }')" "$res"
    fi
}
na() { printf '%s\t%s\tn/a\t-\t-\t-\n' "$1" "$2" >>"$RES"; }

# verify TABLE: it must hold exactly the rows of src.
verify() {
    local d
    d="$(q1 "SELECT (SELECT count(*) FROM (SELECT $COLS FROM $1 EXCEPT ALL SELECT $COLS FROM src) a)
                  + (SELECT count(*) FROM (SELECT $COLS FROM src EXCEPT ALL SELECT $COLS FROM $1) b)")"
    if [ "$d" != 0 ]; then
        echo "bench: MISMATCH: $1 differs from src in $d rows" >&2
        exit 1
    fi
}

# The methods' SQL for one sync (CREATE_SQL only for the initial load).
sql_coco() {
    echo "SELECT coco.declare_table('b', 'public.target', '$COLUMNS_JSON', '{id}', managed_by => 'user');
SELECT coco.declare_rows('b', 'public.target', 'SELECT $COLS FROM src');
SELECT round(extract(epoch FROM clock_timestamp() - :'b_t0'::timestamptz) * 1000, 1) AS b_decl \\gset
SELECT format('%s/%s/%s/%s', c->'inserted', c->'updated', c->'deleted', c->'unchanged') AS b_result
  FROM (SELECT coco.reconcile('b')->'providers'->'postgres.row' AS c) r \\gset"
}
sql_sys() {
    echo "SELECT coco.declare_table('bs', 'public.target_sys', '$COLUMNS_JSON', '{id}',
    options => '{\"distribution\": {\"column\": \"id\", \"colocate_with\": \"src\"}}'::jsonb);
SELECT coco.declare_rows('bs', 'public.target_sys', 'SELECT $COLS FROM src');
SELECT round(extract(epoch FROM clock_timestamp() - :'b_t0'::timestamptz) * 1000, 1) AS b_decl \\gset
SELECT format('%s/%s/%s/%s', c->'inserted', c->'updated', c->'deleted', c->'unchanged') AS b_result
  FROM (SELECT coco.reconcile('bs')->'providers'->'postgres.row' AS c) r \\gset"
}
sql_merge() {
    echo "BEGIN;
MERGE INTO peer_merge t USING src s ON t.id = s.id
  WHEN MATCHED AND (t.title, t.body, t.score) IS DISTINCT FROM (s.title, s.body, s.score)
    THEN UPDATE SET title = s.title, body = s.body, score = s.score
  WHEN NOT MATCHED THEN INSERT ($COLS) VALUES (s.id, s.title, s.body, s.score);
DELETE FROM peer_merge t WHERE NOT EXISTS (SELECT 1 FROM src s WHERE s.id = t.id);
COMMIT;"
}
distributed() {
    echo "CREATE TABLE $1 $DDL;
SELECT create_distributed_table('$1', 'id', colocate_with => 'src');"
}

# Source.
q1 "CREATE TABLE src $DDL" >/dev/null
q1 "SELECT create_distributed_table('src', 'id')" >/dev/null
q1 "INSERT INTO src $(gen 1 "$N")" >/dev/null
q1 "VACUUM ANALYZE src" >/dev/null
echo "bench: src: $(q1 "SELECT count(*) FROM src") rows, $(q1 "SELECT pg_size_pretty(citus_table_size('src'))"), $(q1 "SELECT count(*) FROM pg_dist_shard WHERE logicalrelid = 'src'::regclass") shards"
q1 "SELECT coco.create_app('b'); SELECT coco.create_app('bs')" >/dev/null

# Does this build accept the distribution option? Asked in a rolled-back
# transaction, so it leaves nothing behind.
SYS=0
if coco_psql -qAtX >/dev/null 2>&1 <<EOF
BEGIN;
SELECT coco.create_app('probe');
SELECT coco.declare_table('probe', 'public.probe', '$COLUMNS_JSON', '{id}',
    options => '{"distribution": {"column": "id", "colocate_with": "src"}}'::jsonb);
ROLLBACK;
EOF
then SYS=1; fi
echo "bench: system-managed distributed table (declare_table option \"distribution\"): $([ "$SYS" = 1 ] && echo supported || echo 'not supported, n/a')"

# sync_all STEP: one sync of every method (STEP 1 also creates the tables).
sync_all() {
    local s="$1" cc="" cm="" vu=", target" vm=", peer_merge" vs=", target_sys"
    if [ "$s" = 1_initial ]; then
        cc="$(distributed target)"; cm="$(distributed peer_merge)"; vu=""; vm=""; vs=""
    fi
    if step "$s" coco_target "src$vu, $COCO_RELS" "$cc
$(sql_coco)"; then verify target; fi
    if [ "$SYS" = 1 ]; then
        if step "$s" coco_target/sys "src$vs, $COCO_RELS" "$(sql_sys)"; then verify target_sys; fi
    else
        na "$s" coco_target/sys
    fi
    step "$s" "MERGE + DELETE" "src$vm" "$cm
$(sql_merge)" || true
    verify peer_merge
}

echo "== 1. initial load"
sync_all 1_initial
if [ "$SYS" = 1 ]; then
    echo "bench: target_sys: $(q1 "SELECT coalesce((SELECT 'distributed on ' || column_to_column_name(p.logicalrelid, p.partkey)
        || CASE WHEN p.colocationid = s.colocationid THEN ', colocated with src' ELSE ', NOT colocated with src' END
        FROM pg_dist_partition p, pg_dist_partition s
        WHERE p.logicalrelid = to_regclass('target_sys') AND s.logicalrelid = 'src'::regclass), 'not distributed')")"
fi
echo "== 2. no-op resync"
sync_all 2_noop
echo "== 3. 2 % changed"
n="$(q1 "SELECT count(*) FROM src")"
max="$(q1 "SELECT max(id) FROM src")"
upd="$(q1 "WITH u AS (UPDATE src SET title = title || 'x' WHERE id % 100 = 7 RETURNING 1) SELECT count(*) FROM u")"
del="$(q1 "WITH d AS (DELETE FROM src WHERE id % 200 = 13 RETURNING 1) SELECT count(*) FROM d")"
q1 "INSERT INTO src $(gen $((max + 1)) $((max + n / 200)))" >/dev/null
echo "  src: $upd updated, $del deleted, $((n / 200)) inserted (of $n rows)"
sync_all 3_2pct

awk -F'\t' '
function hb(b) {
    if (b == "-") return "-"
    if (b < 1024) return sprintf("%d B", b)
    if (b < 1048576) return sprintf("%.1f kB", b / 1024)
    if (b < 1073741824) return sprintf("%.1f MB", b / 1048576)
    return sprintf("%.2f GB", b / 1073741824)
}
function ratio(a, b) { return (a == "-" || b == "-" || b == 0) ? "-" : sprintf("%.2fx", a / b) }
{ st[NR] = $1; me[NR] = $2; ok[NR] = $3; ms[NR] = $4; wc[NR] = $5; ww[NR] = $6
  wt[NR] = ($3 == "ok") ? $5 + $6 : "-"
  if ($2 == "MERGE + DELETE") { pms[$1] = $4; pwal[$1] = wt[NR] } }
END {
    names["1_initial"] = "1. initial load"; names["2_noop"] = "2. no-op resync"; names["3_2pct"] = "3. 2 % changed"
    printf "\n%-16s %-16s %11s %8s %11s %11s %11s %8s\n", "step", "method", "time ms", "ratio",
        "WAL coord", "WAL workers", "WAL total", "ratio"
    hr = sprintf("%98s", ""); gsub(/ /, "-", hr); print hr
    for (i = 1; i <= NR; i++) {
        label = (st[i] != st[i - 1]) ? names[st[i]] : ""
        if (ok[i] != "ok") {
            printf "%-16s %-16s %11s\n", label, me[i], ok[i]
            continue
        }
        peer = (me[i] == "MERGE + DELETE")
        printf "%-16s %-16s %11.1f %8s %11s %11s %11s %8s\n", label, me[i], ms[i],
            peer ? "" : ratio(ms[i], pms[st[i]]), hb(wc[i]), hb(ww[i]), hb(wt[i]),
            peer ? "" : ratio(wt[i], pwal[st[i]])
    }
    print "ratio = coco_target / MERGE + DELETE (time; total WAL). WAL workers = sum over both workers."
}' "$RES"

if [ "$FAILED" != 0 ]; then
    echo "bench: $FAILED step(s) FAILED (see above); the tables that synced matched src" >&2
    exit 1
fi
echo "bench: every synced table matched src after every step"
