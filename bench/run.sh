#!/usr/bin/env bash
# coco_target benchmark: keeping a derived table in sync with a source table,
# coco_target against the usual hand-written ways, in one run on one cluster.
#
#   bash bench/run.sh [--quick]
#
# Run as root from anywhere, on Debian 12 (like scripts/test.sh). It installs
# the packages (COCO_SKIP_APT=1 skips that), builds and installs the extension
# from a snapshot of the tree (COCO_BENCH_SKIP_BUILD=1 uses the installed
# one), starts a throwaway cluster tuned for a 2-core / 24 GB machine, runs
# the scenarios below and prints one table. It exits non-zero if any synced
# table differs from its source; the goals are only marked PASS / MISS.
#
#   full:    1M source rows; scaling at 250k, 1M, 4M        (about 10 min)
#   --quick: 100k source rows; scaling at 25k, 100k, 400k   (about 1 min)
#
# Scenarios (source: bigint key, two text columns, a float8; ~170 bytes/row):
#   1. initial load     2. no-op resync     3. 2 % changed     4. 20 % changed
#   5. per-row API: declare_row 100k times in one statement, the same rows
#      declared again (each replaces its staged row), then reconcile
#   6. scaling: no-op and 2 % at three sizes, with the reconciling backend's
#      peak memory
# Methods, each keeping its own copy of the target in sync with `src`:
#   coco_target   declare_table + declare_rows + reconcile (table `target`)
#   merge         MERGE … WHEN MATCHED AND (cols) IS DISTINCT FROM (source
#                 cols) THEN UPDATE … WHEN NOT MATCHED THEN INSERT + anti-join
#                 DELETE: the best hand-written peer            (`peer_merge`)
#   diff_sql      INSERT … ON CONFLICT DO UPDATE … WHERE (cols) IS DISTINCT
#                 FROM (EXCLUDED cols) + anti-join DELETE      (`peer_diff`)
#   naive_upsert  the same without the WHERE: rewrites every row (`peer_naive`)
#   matview       REFRESH MATERIALIZED VIEW CONCURRENTLY          (`peer_mv`)
#   rebuild       TRUNCATE + INSERT … SELECT                 (`peer_rebuild`)
#   insert_select initial load only: INSERT … SELECT into a new table with
#                 its primary key (it becomes `peer_rebuild`)
#
# How each step is measured (identically for every method):
#   - before it: CHECKPOINT, then VACUUM ANALYZE of the tables it touches, so
#     every method starts clean and pays for its own full-page writes, then
#     pg_prewarm of those tables and their indexes, so every method starts
#     with them in shared buffers whichever step ran before (VACUUM reads
#     through a small ring, and the first step to read a table would
#     otherwise pay for bringing it in for the steps after it);
#   - it runs in a fresh psql session; time = clock_timestamp() difference
#     on the server around the step's statements (commits included, client
#     start-up excluded); WAL = pg_wal_lsn_diff of pg_current_wal_lsn();
#   - target writes = n_tup_ins / n_tup_upd / n_tup_del deltas of the synced
#     table in pg_stat_all_tables (flushed with pg_stat_force_next_flush());
#     "bookkeeping" = the same for coco_target's own tables (schema coco);
#   - memory: a sampler reads /proc/<backend>/status every 20 ms during the
#     step. "peak private" is the highest RssAnon (the backend's own memory);
#     VmHWM (reset through /proc/<pid>/clear_refs just before the step) is
#     printed too, but it also counts every shared_buffers page the backend
#     touched, so it grows with the table whatever the reconciler keeps;
#   - after every coco_target step (and every peer step) the synced table is
#     compared with the source (EXCEPT both ways must be empty).
# Source changes are applied once to `src`, then every method syncs from its
# own previous state. autovacuum is off so it cannot add WAL or I/O to a step.
set -euo pipefail
BENCH_DIR="$(cd "$(dirname "$0")" && pwd)"
# shellcheck source-path=SCRIPTDIR source=../scripts/lib.sh
source "$BENCH_DIR/../scripts/lib.sh"

QUICK=0
for arg in "$@"; do
    case "$arg" in
        --quick) QUICK=1 ;;
        -h | --help) sed -n '2,13p' "$0"; exit 0 ;;
        *) echo "usage: bash bench/run.sh [--quick]" >&2; exit 2 ;;
    esac
done
if [ "$QUICK" = 1 ]; then
    N=100000
    SCALE_SIZES=(25000 100000 400000)
else
    N=1000000
    SCALE_SIZES=(250000 1000000 4000000)
fi
ROWAPI_N=100000

# The target table's shape, as coco_target declares it and as the peers create it.
COLUMNS_JSON='[{"name":"id","type":"bigint","nullable":false},{"name":"title","type":"text"},{"name":"body","type":"text"},{"name":"score","type":"float8"}]'
TABLE_DDL='(id bigint PRIMARY KEY, title text, body text, score float8)'
COLS='id, title, body, score'

# --------------------------------------------------------------------------
# Setup: packages, build, cluster
# --------------------------------------------------------------------------

build_extension() {
    if [ "${COCO_BENCH_SKIP_BUILD:-0}" = 1 ]; then
        echo "bench: COCO_BENCH_SKIP_BUILD=1, using the installed extension"
        return 0
    fi
    # Build from a snapshot copy: someone editing or building in the tree at
    # the same time cannot race with our make clean / make.
    local snap
    snap="$(mktemp -d -t coco-bench-build.XXXXXX)"
    cp -a "$COCO_ROOT/Makefile" "$COCO_ROOT"/*.control "$COCO_ROOT/src" "$COCO_ROOT/extension" "$snap/"
    if ! COCO_ROOT="$snap" coco_build; then
        rm -rf "$snap"
        echo "bench: BUILD FAILED" >&2
        return 1
    fi
    rm -rf "$snap"
}

start_cluster() {
    # A benchmark configuration for 2 cores / 24 GB. Durability stays on
    # (fsync, synchronous_commit, full_page_writes are the defaults).
    # checkpoint_timeout / max_wal_size: no checkpoint starts inside a step
    # (the bench checkpoints before each one). autovacuum off: the bench
    # vacuums explicitly before each step. jit off: its compile time is
    # noise at these sizes and would blur the ratios.
    coco_cluster_start \
        "shared_buffers = 2GB" \
        "effective_cache_size = 16GB" \
        "work_mem = 64MB" \
        "maintenance_work_mem = 1GB" \
        "max_wal_size = 8GB" \
        "min_wal_size = 1GB" \
        "checkpoint_timeout = 30min" \
        "checkpoint_completion_target = 0.9" \
        "wal_buffers = 64MB" \
        "autovacuum = off" \
        "jit = off" \
        "log_checkpoints = off"
    # The memory sampler runs as postgres (from psql's \!), so it lives in
    # the cluster's temp dir.
    cat >"$COCO_TMP/memsample.sh" <<'EOF'
# Sample the backend's memory until told to stop. Writes "peak_RssAnon_kB VmHWM_kB".
pid="$BENCH_PID"; dir="$COCO_TMP"
echo 5 >"/proc/$pid/clear_refs" 2>/dev/null || true   # reset VmHWM to current RSS
anon=0; hwm=0
: >"$dir/mem.ready"
while [ ! -e "$dir/mem.stop" ] && [ -r "/proc/$pid/status" ]; do
    while read -r k v _; do
        case "$k" in
            RssAnon:) [ "$v" -gt "$anon" ] && anon=$v ;;
            VmHWM:) hwm=$v ;;
        esac
    done <"/proc/$pid/status" 2>/dev/null || break
    sleep 0.02
done
echo "$anon $hwm" >"$dir/mem.tmp" && mv "$dir/mem.tmp" "$dir/mem.out"
EOF
    chown postgres: "$COCO_TMP/memsample.sh"
    RES="$COCO_TMP/results.tsv"
    : >"$RES"
    chmod 644 "$RES"
}

# One scalar (or one row, |-separated) from the server.
q() { coco_psql -qAtX -c "$1"; }

# --------------------------------------------------------------------------
# The measuring driver
# --------------------------------------------------------------------------

# Bring the cluster to the same starting point before every step.
prepare() {
    local rels="$1"
    q "CHECKPOINT" >/dev/null
    q "VACUUM ANALYZE $rels" >/dev/null
    q "SELECT count(pg_prewarm(r)) FROM (SELECT to_regclass(n) AS t FROM unnest(string_to_array('$rels', ', ')) n) x,
              LATERAL (SELECT x.t AS r UNION ALL SELECT indexrelid FROM pg_index WHERE indrelid = x.t) y
        WHERE x.t IS NOT NULL" >/dev/null
}

# step SCENARIO SIZE METHOD TABLE VACUUM_RELS SQL
# Runs SQL (psql script text) in a fresh session and appends one line to
# $RES: scenario size method ms wal ins upd del bookkeeping anon_kB hwm_kB
# table declare_ms result
# TABLE is the synced table whose writes are counted. SQL may \gset
# b_result to report a value (coco_target reports the reconcile's jsonb).
step() {
    local scen="$1" size="$2" method="$3" table="$4" vac="$5" sql="$6"
    local out line stats ms wal ins upd del bk
    prepare "$vac"
    rm -f "$COCO_TMP"/mem.*
    stats="SELECT coalesce(sum(n_tup_ins), 0) AS ins, coalesce(sum(n_tup_upd), 0) AS upd,
                  coalesce(sum(n_tup_del), 0) AS del,
                  (SELECT coalesce(sum(n_tup_ins + n_tup_upd + n_tup_del), 0)
                     FROM pg_stat_all_tables WHERE schemaname = 'coco') AS bk
             FROM pg_stat_all_tables WHERE relid = to_regclass('$table')"
    out="$(coco_psql -q <<EOF
\\o /dev/null
\\set b_result ''
\\set b_decl -
SELECT pg_backend_pid() AS b_pid \\gset
\\setenv BENCH_PID :b_pid
\\! bash "\$COCO_TMP/memsample.sh" </dev/null >/dev/null 2>&1 &
\\! while [ ! -e "\$COCO_TMP/mem.ready" ]; do sleep 0.005; done
$stats \\gset s0_
SELECT pg_current_wal_lsn() AS b_lsn0, clock_timestamp() AS b_t0 \\gset
-- ---- the measured step ----
$sql
-- ---- end of step ----
SELECT round(extract(epoch FROM clock_timestamp() - :'b_t0'::timestamptz) * 1000, 1) AS b_ms,
       pg_wal_lsn_diff(pg_current_wal_lsn(), :'b_lsn0') AS b_wal \\gset
\\! touch "\$COCO_TMP/mem.stop"
SELECT pg_stat_force_next_flush();
$stats \\gset s1_
SELECT :s1_ins - :s0_ins AS d_ins, :s1_upd - :s0_upd AS d_upd, :s1_del - :s0_del AS d_del,
       :s1_bk - :s0_bk AS d_bk \\gset
\\echo BENCH :b_ms :b_wal :d_ins :d_upd :d_del :d_bk
\\echo RESULT :b_result
\\echo DECL :b_decl
EOF
)"
    for _ in $(seq 1 200); do [ -e "$COCO_TMP/mem.out" ] && break; sleep 0.01; done
    local mem="0 0"
    [ -e "$COCO_TMP/mem.out" ] && mem="$(cat "$COCO_TMP/mem.out")"
    line="$(grep '^BENCH ' <<<"$out" | cut -d' ' -f2-)"
    local result
    result="$(grep '^RESULT' <<<"$out" | cut -d' ' -f2- || true)"
    [ -n "$result" ] || result="-"
    local decl
    decl="$(grep '^DECL ' <<<"$out" | cut -d' ' -f2)"
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$scen" "$size" "$method" \
        "$(tr ' ' '\t' <<<"$line")" "$(tr ' ' '\t' <<<"$mem")" "$table" "${decl:--}" "$result" >>"$RES"
    read -r ms wal ins upd del bk <<<"$line"
    printf '  %-14s %-14s %10s ms  WAL %8s  writes %s/%s/%s  bookkeeping %s  peak private %s kB\n' \
        "$scen" "$method" "$ms" "$(human_bytes "$wal")" "$ins" "$upd" "$del" "$bk" "${mem%% *}"
}

# verify TABLE SRC: the synced table must hold exactly the source's rows.
verify() {
    local table="$1" src="$2" diff
    diff="$(q "SELECT (SELECT count(*) FROM (SELECT $COLS FROM $table EXCEPT ALL SELECT $COLS FROM $src) a)
                    + (SELECT count(*) FROM (SELECT $COLS FROM $src EXCEPT ALL SELECT $COLS FROM $table) b)")"
    if [ "$diff" != 0 ]; then
        echo "bench: MISMATCH: $table differs from $src in $diff rows" >&2
        MISMATCHES=$((MISMATCHES + 1))
        exit 1
    fi
}

human_bytes() {
    awk -v b="$1" 'BEGIN {
        if (b == "" || b == "-") { print "-"; exit }
        if (b < 1024) printf "%d B", b;
        else if (b < 1048576) printf "%.1f kB", b / 1024;
        else if (b < 1073741824) printf "%.1f MB", b / 1048576;
        else printf "%.2f GB", b / 1073741824 }'
}

# --------------------------------------------------------------------------
# Data: the source and its deterministic changes
# --------------------------------------------------------------------------

setup_schema() {
    q "CREATE EXTENSION coco_target" >/dev/null
    q "CREATE EXTENSION pg_prewarm" >/dev/null
    coco_psql -q <<'EOF'
CREATE SCHEMA bench;
-- Row g of the source: ~170 bytes of data (8 + 40 + 114 + 8).
CREATE FUNCTION bench.gen(lo bigint, hi bigint)
RETURNS TABLE (id bigint, title text, body text, score float8)
LANGUAGE sql IMMUTABLE AS $$
    SELECT g,
           'Title ' || substr(md5(g::text), 1, 34),
           md5(g || 'a') || md5(g || 'b') || md5(g || 'c') || substr(md5(g || 'd'), 1, 18),
           ((abs(hashint8(g)) % 100000) / 100.0)::float8
      FROM generate_series(lo, hi) g
$$;
EOF
}

# make_source SRC ROWS
make_source() {
    q "CREATE TABLE $1 $TABLE_DDL" >/dev/null
    q "INSERT INTO $1 SELECT * FROM bench.gen(1, $2)" >/dev/null
    q "VACUUM ANALYZE $1" >/dev/null
}

# change SRC PCT: update PCT/2 %, delete PCT/4 %, insert PCT/4 % (new keys
# beyond the current maximum). Deterministic; prints the counts.
change() {
    local src="$1" pct="$2" upd del ins n
    n="$(q "SELECT count(*) FROM $src")"
    case "$pct" in
        # 1 % updated (title), 0.5 % deleted (disjoint from the updated ones)
        2) upd="$(q "WITH u AS (UPDATE $src SET title = title || 'x' WHERE id % 100 = 7 RETURNING 1) SELECT count(*) FROM u")"
           del="$(q "WITH d AS (DELETE FROM $src WHERE id % 200 = 13 RETURNING 1) SELECT count(*) FROM d")"
           ins=$((n / 200)) ;;
        # 10 % updated (body and score), 5 % deleted, 5 % inserted
        20) upd="$(q "WITH u AS (UPDATE $src SET body = body || 'y', score = score + 1 WHERE id % 10 = 3 RETURNING 1) SELECT count(*) FROM u")"
            del="$(q "WITH d AS (DELETE FROM $src WHERE id % 20 = 11 RETURNING 1) SELECT count(*) FROM d")"
            ins=$((n / 20)) ;;
        *) echo "bench: unknown change $pct" >&2; exit 2 ;;
    esac
    q "INSERT INTO $src SELECT * FROM bench.gen((SELECT max(id) + 1 FROM $src), (SELECT max(id) + $ins FROM $src))" >/dev/null
    q "VACUUM ANALYZE $src" >/dev/null
    echo "  source $src: $upd updated, $del deleted, $ins inserted (of $n rows)"
}

# --------------------------------------------------------------------------
# The methods. Each prints the psql text of one sync of TABLE from SRC.
# --------------------------------------------------------------------------

# coco_target: a resync declares the table and its rows again (the component
# is replaced as a whole), then reconciles. The reconcile's jsonb is kept, and
# the time at which the declarations were done (to split the step's time).
sql_coco() {
    local app="$1" table="$2" src="$3"
    cat <<EOF
SELECT coco.declare_table('$app', 'public.$table', '$COLUMNS_JSON', '{id}');
SELECT coco.declare_rows('$app', 'public.$table', 'SELECT $COLS FROM $src');
SELECT round(extract(epoch FROM clock_timestamp() - :'b_t0'::timestamptz) * 1000, 1) AS b_decl \\gset
SELECT coco.reconcile('$app')::text AS b_result \\gset
EOF
}

upsert_sql() {
    local table="$1" src="$2" where="$3"
    cat <<EOF
BEGIN;
INSERT INTO $table AS t ($COLS) SELECT $COLS FROM $src
    ON CONFLICT (id) DO UPDATE SET title = EXCLUDED.title, body = EXCLUDED.body, score = EXCLUDED.score
    $where;
DELETE FROM $table t WHERE NOT EXISTS (SELECT 1 FROM $src s WHERE s.id = t.id);
COMMIT;
EOF
}

sql_diff() {
    upsert_sql "$1" "$2" "WHERE (t.title, t.body, t.score) IS DISTINCT FROM (EXCLUDED.title, EXCLUDED.body, EXCLUDED.score)"
}
sql_naive() { upsert_sql "$1" "$2" ""; }
# The best a PostgreSQL 15 user can write: a MERGE that leaves unchanged rows
# alone (no lock, no new version, no WAL), and the anti-join DELETE.
sql_merge() {
    cat <<EOF
BEGIN;
MERGE INTO $1 t USING $2 s ON t.id = s.id
    WHEN MATCHED AND (t.title, t.body, t.score) IS DISTINCT FROM (s.title, s.body, s.score) THEN
        UPDATE SET title = s.title, body = s.body, score = s.score
    WHEN NOT MATCHED THEN
        INSERT ($COLS) VALUES (s.id, s.title, s.body, s.score);
DELETE FROM $1 t WHERE NOT EXISTS (SELECT 1 FROM $2 s WHERE s.id = t.id);
COMMIT;
EOF
}
sql_mv() { echo "REFRESH MATERIALIZED VIEW CONCURRENTLY $1;"; }
sql_rebuild() {
    cat <<EOF
BEGIN;
TRUNCATE $1;
INSERT INTO $1 ($COLS) SELECT $COLS FROM $2;
COMMIT;
EOF
}

COCO_RELS="coco.tracked_chunk, coco.staged_row, coco.staged_query, coco.staged_state, coco.target_state, coco.run"

# sync_all SCENARIO: one resync of every method from `src` (main scenarios).
sync_all() {
    local scen="$1"
    step "$scen" "$N" coco_target target "src, target, $COCO_RELS" "$(sql_coco bench target src)"
    verify target src
    step "$scen" "$N" merge peer_merge "src, peer_merge" "$(sql_merge peer_merge src)"
    verify peer_merge src
    step "$scen" "$N" diff_sql peer_diff "src, peer_diff" "$(sql_diff peer_diff src)"
    verify peer_diff src
    step "$scen" "$N" naive_upsert peer_naive "src, peer_naive" "$(sql_naive peer_naive src)"
    verify peer_naive src
    step "$scen" "$N" matview peer_mv "src, peer_mv" "$(sql_mv peer_mv)"
    verify peer_mv src
    step "$scen" "$N" rebuild peer_rebuild "src, peer_rebuild" "$(sql_rebuild peer_rebuild src)"
    verify peer_rebuild src
}

# --------------------------------------------------------------------------
# Scenarios
# --------------------------------------------------------------------------

# 1. Initial load: every method builds its copy from nothing.
scenario_initial() {
    echo "== 1. initial load ($N rows)"
    q "SELECT coco.create_app('bench')" >/dev/null
    step 1_initial "$N" coco_target target "src, $COCO_RELS" "$(sql_coco bench target src)"
    verify target src
    step 1_initial "$N" insert_select peer_rebuild "src" \
        "CREATE TABLE peer_rebuild $TABLE_DDL;
INSERT INTO peer_rebuild ($COLS) SELECT $COLS FROM src;"
    verify peer_rebuild src
    step 1_initial "$N" merge peer_merge "src" \
        "CREATE TABLE peer_merge $TABLE_DDL;
$(sql_merge peer_merge src)"
    verify peer_merge src
    step 1_initial "$N" diff_sql peer_diff "src" \
        "CREATE TABLE peer_diff $TABLE_DDL;
$(sql_diff peer_diff src)"
    verify peer_diff src
    step 1_initial "$N" naive_upsert peer_naive "src" \
        "CREATE TABLE peer_naive $TABLE_DDL;
$(sql_naive peer_naive src)"
    verify peer_naive src
    step 1_initial "$N" matview peer_mv "src" \
        "CREATE MATERIALIZED VIEW peer_mv AS SELECT $COLS FROM src;
CREATE UNIQUE INDEX peer_mv_id ON peer_mv (id);"
    verify peer_mv src
}

# 2. No-op resync: nothing changed in the source.
scenario_noop() {
    echo "== 2. no-op resync"
    sync_all 2_noop
}

# 3. 2 % of the rows changed.
scenario_2pct() {
    echo "== 3. 2 % changed"
    change src 2
    sync_all 3_2pct
}

# 4. 20 % of the rows changed.
scenario_20pct() {
    echo "== 4. 20 % changed"
    change src 20
    sync_all 4_20pct
}

# 5. Per-row API: declare_row called ROWAPI_N times in one statement of one
#    session (its own app and table), then once more for the same rows, then
#    the reconcile that applies them. The rows come from a table, so that the
#    rate is declare_row's (and the caller's jsonb_build_object), not that of
#    making up the rows.
scenario_rowapi() {
    echo "== 5. per-row API: declare_row x $ROWAPI_N"
    q "SELECT coco.create_app('rowapi')" >/dev/null
    q "CREATE TABLE rowapi_src AS SELECT * FROM bench.gen(1, $ROWAPI_N)" >/dev/null
    local declare_all="SELECT count(coco.declare_row('rowapi', 'public.target_rowapi',
           jsonb_build_object('id', g.id, 'title', g.title, 'body', g.body, 'score', g.score)))
  FROM rowapi_src g;"
    step 5_rowapi "$ROWAPI_N" declare_row target_rowapi "$COCO_RELS" \
        "SELECT coco.declare_table('rowapi', 'public.target_rowapi', '$COLUMNS_JSON', '{id}');
$declare_all"
    # The same rows declared again before the run: each replaces its staged
    # row (what a trigger that declares on every update does to a hot row).
    step 5_rowapi "$ROWAPI_N" redeclare_row target_rowapi "$COCO_RELS" "$declare_all"
    step 5_rowapi "$ROWAPI_N" reconcile target_rowapi "$COCO_RELS" \
        "SELECT coco.reconcile('rowapi')::text AS b_result \\gset"
    verify target_rowapi rowapi_src
}

# 6. Scaling: initial load, no-op and 2 % at each size, coco_target and
#    diff_sql, on tables of their own. The main size reuses scenarios 1-3
#    (same steps, same order). The main scenarios' apps are dropped first so
#    the coco bookkeeping holds only the rows of the size being measured.
scenario_scaling() {
    echo "== 6. scaling: ${SCALE_SIZES[*]}"
    q "SELECT coco.drop_app('bench'); SELECT coco.drop_app('rowapi')" >/dev/null
    q "DROP TABLE IF EXISTS peer_diff, peer_merge, peer_naive, peer_rebuild, rowapi_src;
       DROP MATERIALIZED VIEW IF EXISTS peer_mv" >/dev/null
    q "VACUUM ANALYZE $COCO_RELS" >/dev/null
    local s
    for s in "${SCALE_SIZES[@]}"; do
        if [ "$s" = "$N" ]; then
            echo "  $s rows: from scenarios 1-3"
            continue
        fi
        local src="src_$s" tgt="target_$s" peer="peer_diff_$s" app="scale_$s"
        echo "  $s rows"
        make_source "$src" "$s"
        q "SELECT coco.create_app('$app')" >/dev/null
        step "6_initial" "$s" coco_target "$tgt" "$src, $COCO_RELS" "$(sql_coco "$app" "$tgt" "$src")"
        verify "$tgt" "$src"
        step "6_initial" "$s" diff_sql "$peer" "$src" "CREATE TABLE $peer $TABLE_DDL;
$(sql_diff "$peer" "$src")"
        verify "$peer" "$src"
        step "6_noop" "$s" coco_target "$tgt" "$src, $tgt, $COCO_RELS" "$(sql_coco "$app" "$tgt" "$src")"
        verify "$tgt" "$src"
        step "6_noop" "$s" diff_sql "$peer" "$src, $peer" "$(sql_diff "$peer" "$src")"
        verify "$peer" "$src"
        change "$src" 2
        step "6_2pct" "$s" coco_target "$tgt" "$src, $tgt, $COCO_RELS" "$(sql_coco "$app" "$tgt" "$src")"
        verify "$tgt" "$src"
        step "6_2pct" "$s" diff_sql "$peer" "$src, $peer" "$(sql_diff "$peer" "$src")"
        verify "$peer" "$src"
        # Free the space before the next size.
        q "SELECT coco.drop_app('$app')" >/dev/null
        q "SET client_min_messages = warning; DROP TABLE IF EXISTS $src, $peer, $tgt" >/dev/null
        q "VACUUM $COCO_RELS" >/dev/null
    done
}

# --------------------------------------------------------------------------
# Report
# --------------------------------------------------------------------------

report() {
    awk -F'\t' -v main="$N" -v sizes="${SCALE_SIZES[*]}" -v rowapi="$ROWAPI_N" '
    function hb(b) {
        if (b < 1024) return sprintf("%d B", b)
        if (b < 1048576) return sprintf("%.1f kB", b / 1024)
        if (b < 1073741824) return sprintf("%.1f MB", b / 1048576)
        return sprintf("%.2f GB", b / 1073741824)
    }
    function mark(ok) { return ok ? "PASS" : "MISS" }
    function hs(n) { return n >= 1000000 ? sprintf("%gM", n / 1000000) : sprintf("%gk", n / 1000) }
    # fields: 1 scen 2 size 3 method 4 ms 5 wal 6 ins 7 upd 8 del 9 bk 10 anon 11 hwm 12 table
    #         13 declare_ms 14 result
    {
        k = $1 SUBSEP $2 SUBSEP $3
        ms[k] = $4; wal[k] = $5; ins[k] = $6; upd[k] = $7; del[k] = $8; bk[k] = $9
        anon[k] = $10; hwm[k] = $11
        if (!(($1 SUBSEP $2) in seen)) { seen[$1 SUBSEP $2] = 1; order[++n] = $1 SUBSEP $2 }
        meth[$1 SUBSEP $2] = meth[$1 SUBSEP $2] " " $3
    }
    END {
        names["1_initial"] = "1. initial load"; names["2_noop"] = "2. no-op resync"
        names["3_2pct"] = "3. 2 % changed"; names["4_20pct"] = "4. 20 % changed"
        names["5_rowapi"] = "5. per-row API"
        names["6_initial"] = "6. initial load"; names["6_noop"] = "6. no-op resync"
        names["6_2pct"] = "6. 2 % changed"

        print ""
        print "Scenarios 1-5 (" main " source rows; per-row API " rowapi " rows)"
        printf "%-17s %-14s %11s %10s %10s %27s %11s %9s %9s\n", "scenario", "method", "time ms",
            "coco/x", "WAL", "target writes ins/upd/del", "bookkeeping", "priv MB", "VmHWM MB"
        hr = sprintf("%124s", ""); gsub(/ /, "-", hr); print hr
        for (i = 1; i <= n; i++) {
            split(order[i], sk, SUBSEP)
            if (sk[1] ~ /^6_/) continue
            m = split(substr(meth[order[i]], 2), ml, " ")
            c = sk[1] SUBSEP sk[2] SUBSEP "coco_target"
            for (j = 1; j <= m; j++) {
                k = order[i] SUBSEP ml[j]
                ratio = (c in ms && ms[k] > 0) ? sprintf("%.2fx", ms[c] / ms[k]) : "-"
                if (ml[j] == "coco_target") ratio = "1.00x"
                if (ml[j] ~ /declare_row$/) ratio = sprintf("%.1fk/s", sk[2] / ms[k])
                printf "%-17s %-14s %11.1f %10s %10s %27s %11s %9.1f %9.1f\n",
                    (j == 1 ? names[sk[1]] : ""), ml[j], ms[k], ratio, hb(wal[k]),
                    sprintf("%d/%d/%d = %d", ins[k], upd[k], del[k], ins[k] + upd[k] + del[k]),
                    bk[k], anon[k] / 1024, hwm[k] / 1024
            }
        }
        print "coco/x = coco_target time / that method'\''s time (below 1 = coco_target is faster)."
        print ""
        print "Against the best peer of each step that leaves the same end state (a table with its primary key):"
        for (i = 1; i <= n; i++) {
            split(order[i], sk, SUBSEP)
            if (sk[1] ~ /^[56]_/) continue
            m = split(substr(meth[order[i]], 2), ml, " ")
            best = ""
            for (j = 1; j <= m; j++) {
                if (ml[j] == "coco_target" || ml[j] == "matview") continue
                k = order[i] SUBSEP ml[j]
                if (best == "" || ms[k] < ms[order[i] SUBSEP best]) best = ml[j]
            }
            c = order[i] SUBSEP "coco_target"
            bestms[sk[1]] = ms[order[i] SUBSEP best]; bestname[sk[1]] = best
            printf "  %-17s best peer %-14s %10.1f ms   coco_target %10.1f ms   coco/best %6.2fx\n",
                names[sk[1]], best, ms[order[i] SUBSEP best], ms[c], ms[c] / ms[order[i] SUBSEP best]
        }
        print "bookkeeping = rows written to coco_target'\''s own tables (staging, tracking, run history)."

        print ""
        print "Scenario 6, scaling (coco_target vs diff_sql; priv MB = peak private memory of the backend)"
        printf "%-17s %9s %12s %9s %12s %9s %8s %9s %9s %12s\n", "step", "rows", "coco ms", "us/row",
            "diff_sql ms", "us/row", "coco/x", "priv MB", "VmHWM MB", "WAL coco"
        print hr
        ns = split(sizes, sz, " ")
        split("initial noop 2pct", st, " ")
        for (a = 1; a <= 3; a++) {
            for (b = 1; b <= ns; b++) {
                s = sz[b]
                scen = "6_" st[a]
                if (s == main) scen = (a == 1 ? "1_initial" : (a == 2 ? "2_noop" : "3_2pct"))
                c = scen SUBSEP s SUBSEP "coco_target"; d = scen SUBSEP s SUBSEP "diff_sql"
                if (!(c in ms)) continue
                printf "%-17s %9d %12.1f %9.2f %12.1f %9.2f %8s %9.1f %9.1f %12s\n",
                    (b == 1 ? names["6_" st[a]] : ""), s, ms[c], ms[c] * 1000 / s,
                    ms[d], ms[d] * 1000 / s, sprintf("%.2fx", ms[c] / ms[d]),
                    anon[c] / 1024, hwm[c] / 1024, hb(wal[c])
                if (anon[c] > peak[s]) peak[s] = anon[c]
                if (hwm[c] > peakh[s]) peakh[s] = hwm[c]
            }
        }

        print ""
        print "Goals (not asserted)"
        printf "%-58s %14s %12s  %s\n", "goal", "measured", "goal", ""
        print hr
        c = "2_noop" SUBSEP main SUBSEP "coco_target"; d = "2_noop" SUBSEP main SUBSEP "diff_sql"
        r = ms[c] / bestms["2_noop"]
        printf "%-58s %13.2fx %12s  %s\n", "no-op resync time vs the best peer (" bestname["2_noop"] ")", r, "<= 0.20x", mark(r <= 0.20)
        c3 = "3_2pct" SUBSEP main SUBSEP "coco_target"
        r = ms[c3] / bestms["3_2pct"]
        printf "%-58s %13.2fx %12s  %s\n", "2 % changed time vs the best peer (" bestname["3_2pct"] ")", r, "<= 0.45x", mark(r <= 0.45)
        c4 = "4_20pct" SUBSEP main SUBSEP "coco_target"
        r = ms[c4] / bestms["4_20pct"]
        printf "%-58s %13.2fx %12s  %s\n", "20 % changed time vs the best peer (" bestname["4_20pct"] ")", r, "<= 0.70x", mark(r <= 0.70)
        c1 = "1_initial" SUBSEP main SUBSEP "coco_target"; d1 = "1_initial" SUBSEP main SUBSEP "insert_select"
        r = ms[c1] / ms[d1]
        printf "%-58s %13.2fx %12s  %s\n", "initial load time vs INSERT ... SELECT", r, "<= 1.25x", mark(r <= 1.25)
        k = "5_rowapi" SUBSEP rowapi SUBSEP "declare_row"
        rate = rowapi / (ms[k] / 1000)
        printf "%-58s %14s %12s  %s\n", "declare_row rate", sprintf("%.0f rows/s", rate), ">= 100000/s", mark(rate >= 100000)
        w = ins[c] + upd[c] + del[c]
        printf "%-58s %14d %12s  %s\n", "no-op resync: target tuples written", w, "0", mark(w == 0)
        r = wal[c] / wal[d]
        printf "%-58s %13.1f%% %12s  %s\n", "no-op resync: WAL vs diff_sql (" hb(wal[c]) " / " hb(wal[d]) ")",
            r * 100, "<= 5 %", mark(r <= 0.05)
        lo = sz[ns - 1]; hi = sz[ns]
        r = peak[hi] / peak[lo]
        printf "%-58s %13.2fx %12s  %s\n", sprintf("reconcile peak private memory, %s vs %s rows (%.1f / %.1f MB)",
            hs(hi), hs(lo), peak[hi] / 1024, peak[lo] / 1024), r, "<= 1.20x", mark(r <= 1.20)
        printf "%-58s %13.2fx %12s  %s\n", sprintf("  for reference, VmHWM incl. shared buffers (%.0f / %.0f MB)",
            peakh[hi] / 1024, peakh[lo] / 1024), peakh[hi] / peakh[lo], "", "info"
    }' "$RES"

    echo
    echo "coco_target steps: time split (declare / reconcile) and the reconcile's own counts:"
    awk -F'\t' '$14 != "-" && $14 != "" {
        r = $14; gsub(/"providers".*"unchanged": [0-9]+}}, /, "", r); gsub(/"passes": [0-9]+, /, "", r)
        if ($13 == "-") split_ = sprintf("       - / %8.1f ms", $4)
        else split_ = sprintf("%8.1f / %8.1f ms", $13, $4 - $13)
        printf "  %-10s %8s %-12s %s  %s\n", $1, $2, $3, split_, r }' "$RES"
}

# --------------------------------------------------------------------------
# Main
# --------------------------------------------------------------------------

MISMATCHES=0
trap 'echo "bench: FAILED at line $LINENO" >&2' ERR
coco_install_deps
build_extension
start_cluster
T0=$SECONDS
echo "bench: $([ "$QUICK" = 1 ] && echo quick || echo full) run, $N rows; cluster on port $PGPORT"
echo "bench: commit $(git -C "$COCO_ROOT" describe --always --dirty 2>/dev/null || echo '?'), coco_target.so md5 $(md5sum "$("$COCO_PGBIN/pg_config" --pkglibdir)/coco_target.so" | cut -c1-12)"
echo "bench: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GB", $2 / 1048576}' /proc/meminfo) RAM; $(q "SHOW server_version")"
setup_schema
make_source src "$N"
echo "bench: source: $(q "SELECT count(*) || ' rows, ' || pg_size_pretty(pg_relation_size('src')) || ' heap, ' || round(avg(pg_column_size(s.id) + pg_column_size(s.title) + pg_column_size(s.body) + pg_column_size(s.score))) || ' bytes of data/row' FROM src s")"
scenario_initial
scenario_noop
scenario_2pct
scenario_20pct
scenario_rowapi
scenario_scaling
report
echo
echo "bench: every synced table matched its source after every step; $((SECONDS - T0)) s"
