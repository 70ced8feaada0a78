#!/usr/bin/env bash
# Scenario: Citus distributed and reference tables as targets, on a
# coordinator and two workers on this machine. Runs where the PostgreSQL
# build has Citus (Debian 12 does not package it); elsewhere it prints a
# SKIP line and passes. Checked, at 100k rows, after every step: each
# target equals its declaration (EXCEPT both ways) and is tracked row for
# row.
# - targets: a system-managed distributed table (option "distribution",
#   8 shards) and reference table, a synced table distributed the same way,
#   one with array and float columns (written exactly), a user-managed
#   distributed table and reference table; an app owned by
#   a role that is not a superuser;
# - insert, update and delete in every target;
# - schema changes of the distributed table, each seen on every shard: an
#   added column, a retype in place, a retype whose values do not convert
#   (the fallback), a dropped column; a plain and a concurrent index and a
#   sql_command (a CHECK constraint), built on every shard; a primary-key
#   change rebuilds the table and keeps it distributed; a new shard count
#   redistributes it (coco.plan names the hazard); undistributed by hand, it
#   is drift the next run repairs;
# - undeclaring: the system-managed reference table is dropped, the
#   user-managed one loses its declared rows;
# - a worker run, and a session killed after a row batch: the next run
#   converges and no prepared transaction is left on the workers;
# - the option's refusals: 42P16, 42703, 22023, 42804 when declared; what
#   Citus refuses when the run applies it keeps its SQLSTATE (never XX000)
#   and names the table;
# - columns that go to Citus as text (arrays, composites) come back exactly
#   under a session DateStyle/TimeZone whose text does not read back;
#   another role's public.unnest(integer[]) is never called; a
#   distribution given as "DEFAULT" is Citus's default.
set -euo pipefail
source "$(dirname "$0")/../scripts/lib.sh"

if ! coco_citus_available; then
    echo "SKIP: Citus is not installed in this PostgreSQL build (Debian 12 does not package it): distributed and reference targets not tested"
    exit 0
fi
coco_citus_start
wait_up() { coco_wait_up || fail "the coordinator did not come back"; }
# SQL as the app's owner
qa() { q -U alice -d postgres "$@"; }
# a statement that must fail with $1
refused() {
    local want=$1 got
    shift
    got=$(qa -v VERBOSITY=sqlstate "$@" 2>&1 >/dev/null || true)
    case "$got" in *"$want"*) ;; *) fail "expected $want, got: $got" ;; esac
}

N=100000
# mallory may create functions in public, as on a careless shared server:
# her unnest(integer[]) would be the best match for a one-argument unnest
# of the run's statements on the workers, where Citus sends them unqualified
q -c "CREATE ROLE alice LOGIN" -c "CREATE ROLE mallory LOGIN" \
  -c "GRANT CREATE ON SCHEMA public TO alice, mallory" \
  -c "CREATE EXTENSION coco_target" >/dev/null
q -U mallory -d postgres -c "CREATE FUNCTION public.unnest(a integer[]) RETURNS SETOF integer LANGUAGE plpgsql AS
      \$\$BEGIN RAISE EXCEPTION 'mallory''s unnest ran as %', current_user; END\$\$" >/dev/null
qa -c "CREATE TYPE mood AS ENUM ('sad', 'ok')" -c "CREATE TYPE pt AS (x float8, y text)" >/dev/null

qa -c "CREATE TABLE src (id integer PRIMARY KEY, v text, n integer)" \
   -c "SELECT create_distributed_table('src', 'id')" \
   -c "INSERT INTO src SELECT g, md5(g::text), g % 1000 FROM generate_series(1, $N) g" \
   -c "CREATE TABLE usr_d (id integer PRIMARY KEY, v text, n integer)" \
   -c "SELECT create_distributed_table('usr_d', 'id', colocate_with => 'src')" \
   -c "CREATE TABLE usr_r (id integer PRIMARY KEY, v text, n integer)" \
   -c "SELECT create_reference_table('usr_r')" \
   -c "SELECT coco.create_app('c')" >/dev/null

# The declared shape of sys_d changes by phase; the other three keep theirs.
COLS='{"name":"id","type":"integer"},{"name":"v","type":"text"},{"name":"n","type":"integer"}'
SYS_COLS="[$COLS]"
SYS_KEY='{id}'
SYS_QUERY='SELECT id, v, n FROM src'
SYS_DIST='{"column": "id", "shard_count": 8}'
WITH_R=1
# columns whose types have no array type (arrays) travel as text; floats exactly
ARR_COLS='[{"name":"id","type":"integer"},{"name":"tags","type":"text[]"},{"name":"f","type":"float8"},{"name":"m","type":"int[][]"},{"name":"e","type":"mood"},{"name":"p","type":"pt"},{"name":"ts","type":"timestamptz[]"}]'
ARR_QUERY='SELECT id, ARRAY[v, n::text, NULL] AS tags, id / 3.0::float8 AS f, ARRAY[[id, n], [n, NULL]] AS m, (enum_range(NULL::mood))[n % 2 + 1] AS e, ROW(id / 7.0::float8, v)::pt AS p, ARRAY[to_timestamp(-2208988800), to_timestamp(1577934245 + id)] AS ts FROM src WHERE id % 50 = 0'
declare_all() {
    local extra=("$@")
    qa -c "SELECT coco.declare_table('c', 'public.sys_d', '$SYS_COLS', '$SYS_KEY', options => '{\"distribution\": $SYS_DIST}')" \
       -c "SELECT coco.declare_rows('c', 'public.sys_d', '$SYS_QUERY')" \
       -c "SELECT coco.declare_table('c', 'public.usr_d', '[$COLS]', '{id}', managed_by => 'user')" \
       -c "SELECT coco.declare_rows('c', 'public.usr_d', 'SELECT id, v, n FROM src')" \
       -c "SELECT coco.declare_table('c', 'public.arr', '$ARR_COLS', '{id}', options => '{\"distribution\": {\"column\": \"id\"}}')" \
       -c "SELECT coco.declare_rows('c', 'public.arr', '$ARR_QUERY')" \
       -c "SELECT coco.declare_table('c', 'public.one', '[{\"name\":\"id\",\"type\":\"integer\"}]', '{id}', options => '{\"distribution\": {\"column\": \"id\", \"colocate_with\": \"DEFAULT\"}}')" \
       -c "SELECT coco.declare_rows('c', 'public.one', 'SELECT id FROM src WHERE id % 10 = 1')" \
       "${extra[@]}" >/dev/null
    if [ "$WITH_R" = 1 ]; then
        qa -c "SELECT coco.declare_table('c', 'public.sys_r', '[$COLS]', '{id}', options => '{\"distribution\": {\"reference\": true}}')" \
           -c "SELECT coco.declare_rows('c', 'public.sys_r', 'SELECT id, v, n FROM src WHERE n < 500')" \
           -c "SELECT coco.declare_table('c', 'public.usr_r', '[$COLS]', '{id}', managed_by => 'user')" \
           -c "SELECT coco.declare_rows('c', 'public.usr_r', 'SELECT id, v, n FROM src WHERE n >= 500')" >/dev/null
    fi
}
same() {
    local table=$1 query=$2 what=$3 diff tracked rows
    diff=$(qa -c "SELECT count(*) FROM ((TABLE $table EXCEPT $query) UNION ALL ($query EXCEPT TABLE $table)) d")
    rows=$(qa -c "SELECT count(*) FROM $table")
    tracked=$(q -c "SELECT count(*) FROM coco.tracked_row r JOIN coco.target_state t ON t.ts_id = r.target_id
                    WHERE t.name = 'public.$table'")
    [ "$diff" = 0 ] && [ "$tracked" = "$rows" ] || fail "$what: $table differs from its declaration in $diff rows; $tracked tracked for $rows rows"
}
check() {
    same sys_d "$SYS_QUERY" "$1"
    same synced "SELECT n, count(*) AS c FROM src GROUP BY n" "$1"
    same usr_d "SELECT id, v, n FROM src" "$1"
    same arr "$ARR_QUERY" "$1"
    same one "SELECT id FROM src WHERE id % 10 = 1" "$1"
    if [ "$WITH_R" = 1 ]; then
        same sys_r "SELECT id, v, n FROM src WHERE n < 500" "$1"
        same usr_r "SELECT id, v, n FROM src WHERE n >= 500" "$1"
    fi
}
reconcile() { qa -c "SELECT coco.reconcile('c')"; }
# how Citus holds a table: method, replication model, shard count
held() {
    q -c "SELECT p.partmethod::text || p.repmodel::text || ' ' ||
                 (SELECT count(*) FROM pg_dist_shard s WHERE s.logicalrelid = p.logicalrelid)
          FROM pg_dist_partition p WHERE p.logicalrelid = '$1'::regclass"
}
# one line per distinct answer of `sql` on every shard of sys_d (%s: the shard)
on_shards() {
    q -c "SELECT string_agg(DISTINCT result, ',') FROM run_command_on_placements('sys_d', \$\$$1\$\$)"
}
col_type() { on_shards "SELECT coalesce(format_type(atttypid, atttypmod), 'none') FROM (SELECT) x LEFT JOIN pg_attribute ON attrelid = '%s'::regclass AND attname = '$1' AND NOT attisdropped"; }

# 1. the first load; a synced table is distributed as declare_table's are
qa -c "SELECT coco.sync_table('c', 'public.synced', 'SELECT n, count(*) AS c FROM src GROUP BY n', '{n}',
                              options => '{\"distribution\": {\"column\": \"n\", \"shard_count\": 2}}')" >/dev/null
declare_all
stats=$(reconcile)
check "first load"
[ "$(held sys_d) $(held synced)" = "hs 8 hs 2" ] && [ "$(held sys_r) $(held usr_r)" = "nt 1 nt 1" ] ||
    fail "distribution: $(held sys_d) / $(held synced) / $(held sys_r)"
[ "$(q -c "SELECT '$stats'::jsonb #>> '{providers,postgres.row,inserted}'")" = $((3 * N + 1000 + N / 50 + N / 10)) ] || fail "first load: $stats"
ok "first load: 313000 rows into distributed (8 shards) and reference tables the system made (one synced, one of one column, one with array, float, enum, composite and timestamptz[] columns), and two user tables Citus holds"

# values sent as text come back exactly from a session that prints times
# in a style whose zone abbreviation (IST) reads back as another zone
qa -c "CREATE TABLE lsrc AS SELECT * FROM src WHERE id % 50 = 0" \
   -c "SELECT coco.create_app('tx')" \
   -c "SELECT coco.declare_table('tx', 'public.arr_l', '$ARR_COLS', '{id}', options => '{\"distribution\": {\"column\": \"id\"}}')" \
   -c "SELECT coco.declare_rows('tx', 'public.arr_l', '${ARR_QUERY/FROM src/FROM lsrc}')" \
   -c "SET DateStyle = 'SQL, DMY'" -c "SET TimeZone = 'Asia/Kolkata'" -c "SELECT coco.reconcile('tx')" >/dev/null
same arr_l "${ARR_QUERY/FROM src/FROM lsrc}" "text values under another DateStyle"
ok "array, enum, composite and timestamptz[] values reach a Citus table exactly from a session with DateStyle SQL and TimeZone Asia/Kolkata"

# 2. inserts, updates, deletes
qa -c "UPDATE src SET v = v || '!' WHERE id % 10 = 0" \
   -c "DELETE FROM src WHERE id % 20 = 1" \
   -c "INSERT INTO src SELECT g, md5(g::text), g % 1000 FROM generate_series($N + 1, $N + 5000) g" >/dev/null
declare_all
stats=$(reconcile)
check "changes"
[ "$(q -c "SELECT ('$stats'::jsonb #>> '{providers,postgres.row,updated}')::int > 0 AND ('$stats'::jsonb #>> '{providers,postgres.row,deleted}')::int > 0")" = t ] || fail "changes: $stats"
ok "updates, deletes and inserts written to all four"

# 3. schema changes of the distributed table, on every shard
SYS_COLS='[{"name":"id","type":"integer"},{"name":"v","type":"text"},{"name":"n","type":"bigint"},{"name":"w","type":"integer"}]'
SYS_QUERY='SELECT id, v, n::bigint AS n, n * 2 AS w FROM src'
declare_all
reconcile >/dev/null
check "column added, n retyped"
[ "$(col_type w) $(col_type n)" = "integer bigint" ] || fail "shards after add/retype: w $(col_type w), n $(col_type n)"
ok "added column and retype in place reach every shard"
SYS_COLS='[{"name":"id","type":"integer"},{"name":"v","type":"integer"},{"name":"n","type":"bigint"}]'
SYS_QUERY='SELECT id, length(v) AS v, n::bigint AS n FROM src'
declare_all
reconcile >/dev/null
check "v retyped (fallback), w dropped"
[ "$(col_type v) $(col_type w)" = "integer none" ] || fail "shards after retype/drop: v $(col_type v), w $(col_type w)"
ok "a retype whose values do not convert (the fallback) and a dropped column reach every shard"

# 4. indexes and a sql_command on the distributed table
IDX=(-c "SELECT coco.declare_index('c', 'public.sys_d', 'n_idx', '{n}')"
     -c "SELECT coco.declare_index('c', 'public.sys_d', 'v_idx', '{v}', 'btree', '{\"concurrently\": true}')"
     -c "SELECT coco.declare_sql_command('c', 'public.sys_d', 'n_ok', 'ALTER TABLE public.sys_d ADD CONSTRAINT n_ok CHECK (n >= 0)', 'ALTER TABLE public.sys_d DROP CONSTRAINT IF EXISTS n_ok')")
declare_all "${IDX[@]}"
r=$(qa -c "SELECT coco.reconcile('c')")
run=$(q -c "SELECT '$r'::jsonb ->> 'completion_run_id'")
[ -n "$run" ] || fail "no run queued for the concurrent index: $r"
# polled in short transactions: a concurrent build waits for every older
# snapshot, and a session blocked in coco.wait() holds one
wait_for "SELECT status FROM coco.runs WHERE run_id = $run" succeeded postgres 120 ||
    fail "run $run: $(q -c "SELECT status || ' ' || coalesce(error, '') FROM coco.runs WHERE run_id = $run")"
[ "$(on_shards "SELECT count(*) FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid WHERE i.indrelid = '%s'::regclass AND i.indisvalid AND c.relname ~ '_(n|v)_idx'") $(on_shards "SELECT count(*) FROM pg_constraint WHERE conrelid = '%s'::regclass AND conname ~ '^n_ok'")" = "2 1" ] ||
    fail "indexes/constraint on shards: $(on_shards "SELECT string_agg(indexrelid::regclass::text, ' ') FROM pg_index WHERE indrelid = '%s'::regclass")"
check "indexes"
ok "a plain and a concurrent index, and a sql_command, on every shard"

# 5. a primary-key change keeps the distribution; a new shard count redistributes
SYS_KEY='{id,n}'
declare_all "${IDX[@]}"
reconcile >/dev/null
check "primary key changed"
[ "$(held sys_d)" = "hs 8" ] || fail "after the primary-key change sys_d is held as '$(held sys_d)'"
[ "$(q -c "SELECT column_to_column_name(logicalrelid, partkey) FROM pg_dist_partition WHERE logicalrelid = 'sys_d'::regclass")" = id ] || fail "distribution column lost"
[ "$(on_shards "SELECT count(*) FROM pg_index WHERE indrelid = '%s'::regclass AND indisprimary AND indnatts = 2")" = 1 ] || fail "new primary key not on every shard"
ok "a primary-key change rebuilt the table distributed by id again, on 8 shards"
SYS_DIST='{"column": "id", "shard_count": 4}'
declare_all "${IDX[@]}"
plan=$(qa -c "SELECT string_agg(detail::text, ' ') FROM coco.plan('c') WHERE provider = 'postgres.table'")
case "$plan" in *redistributes_table*) ;; *) fail "plan does not name the redistribution: $plan" ;; esac
declare_all "${IDX[@]}"
reconcile >/dev/null
check "redistributed"
[ "$(held sys_d)" = "hs 4" ] || fail "after the new shard count sys_d is held as '$(held sys_d)'"
ok "a new shard count redistributes the table (plan: redistributes_table); rows kept"
# undistributed by hand: drift, which the next run repairs
qa -c "SELECT undistribute_table('sys_d')" >/dev/null
[ "$(held sys_d)" = "" ] || fail "undistribute_table left sys_d held as '$(held sys_d)'"
declare_all "${IDX[@]}"
stats=$(reconcile)
check "distribution drift"
[ "$(held sys_d)" = "hs 4" ] && [ "$(q -c "SELECT ('$stats'::jsonb ->> 'drift')::int >= 1")" = t ] ||
    fail "after undistribute_table by hand: held as '$(held sys_d)', $stats"
ok "a table undistributed by hand is drift: the next run distributes it again"

# 6. a worker run
qa -c "UPDATE src SET n = n + 1 WHERE id % 7 = 0" -c "DELETE FROM src WHERE id % 50 = 3" >/dev/null
declare_all "${IDX[@]}"
run=$(qa -c "SELECT coco.submit('c')")
q -c "SELECT coco.wait($run, '120s')" >/dev/null
[ "$(q -c "SELECT status FROM coco.runs WHERE run_id = $run")" = succeeded ] || fail "worker run $run: $(q -c "SELECT error FROM coco.runs WHERE run_id = $run")"
check "worker run"
ok "a worker run writes to the distributed and reference tables"
# rows edited behind the reconciler's back are found and repaired
qa -c "DELETE FROM sys_d WHERE id % 1000 = 5" -c "UPDATE usr_d SET v = 'edited' WHERE id % 1000 = 6" >/dev/null
qa -c "INSERT INTO sys_d VALUES (-1, 0, 0)" >/dev/null
v=$(qa -c "SELECT coco.verify('c', remove_untracked => true)")
[ "$(q -c "SELECT format('%s %s %s %s', j #>> '{tables,public.sys_d,missing}', j #>> '{tables,public.usr_d,changed}',
                          j #>> '{tables,public.sys_d,removed}', j ->> 'drifted') FROM (SELECT '$v'::jsonb AS j) x")" = "105 105 1 210" ] ||
    fail "verify: $v"
declare_all "${IDX[@]}"
reconcile >/dev/null
check "verify"
ok "coco.verify finds rows deleted, edited and added in Citus tables, removes the added one; the next run repairs the rest"

# 7. killed after a row batch; the next run converges
qa -c "UPDATE src SET v = v || '?' WHERE id % 3 = 0" >/dev/null
declare_all "${IDX[@]}"
# (the fault point is a superuser's setting; the run still writes as alice)
if q -c "SET coco_target.batch_size = 2000" -c "SET coco_target.fault_point = 'after_row_batch'" \
      -c "SELECT coco.reconcile('c')" >/dev/null 2>&1; then
    fail "the reconcile was not stopped after a row batch"
fi
wait_up
grep -q 'fault point "after_row_batch" reached' "$COCO_TMP/postgres.log" || fail "the session was not killed after a row batch"
declare_all "${IDX[@]}"
reconcile >/dev/null
check "after the crash"
q -c "SELECT recover_prepared_transactions()" >/dev/null
for w in "${COCO_CITUS_WORKERS[@]}"; do
    [ "$(q -p "${w##*:}" -c "SELECT count(*) FROM pg_prepared_xacts")" = 0 ] || fail "prepared transactions left on worker ${w##*:}"
done
ok "a run killed after a row batch: the next run converges; no prepared transaction is left"

# 8. undeclared: the system's reference table is dropped, the user's loses its rows
WITH_R=0
declare_all "${IDX[@]}"
reconcile >/dev/null
check "undeclared"
[ "$(q -c "SELECT to_regclass('public.sys_r') IS NULL")" = t ] || fail "sys_r not dropped"
[ "$(qa -c "SELECT count(*) FROM usr_r")" = 0 ] || fail "usr_r keeps $(qa -c "SELECT count(*) FROM usr_r") rows"
ok "undeclared: the reference table the system made is dropped, the user's is emptied"

# 9. the option's refusals
D="SELECT coco.declare_table('c', 'public.x', '[$COLS]', '{id}', options => "
refused 42P16 -c "$D '{\"distribution\": {\"column\": \"n\"}}')"
refused 42703 -c "$D '{\"distribution\": {\"column\": \"nope\"}}')"
refused 22023 -c "$D '{\"distribution\": {\"column\": \"id\", \"shard_count\": 0}}')"
refused 22023 -c "$D '{\"distribution\": {\"reference\": false}}')"
refused 22023 -c "$D '{\"distribution\": {\"column\": \"id\", \"colocate_with\": \"src\", \"shard_count\": 4}}')"
refused 22023 -c "SELECT coco.declare_table('c', 'public.x', '[$COLS]', '{id}', managed_by => 'user', options => '{\"distribution\": {\"reference\": true}}')"
ok "refused: a distribution column outside the primary key (42P16), an unknown one (42703), bad shapes and a user-managed table (22023)"
# colocate_with checked when declared, where the table exists; what Citus
# refuses when the run applies it keeps its SQLSTATE (never XX000), the
# table named
qa -c "SELECT coco.create_app('c2')" >/dev/null
D2="SELECT coco.declare_table('c2', 'public.x2', '[$COLS]', '{id}', options => "
refused 22023 -c "$D2 '{\"distribution\": {\"column\": \"id\", \"colocate_with\": \"usr_r\"}}')"
refused 42804 -c "SELECT coco.declare_table('c2', 'public.x3', '[{\"name\":\"k\",\"type\":\"text\"}]', '{k}', options => '{\"distribution\": {\"column\": \"k\", \"colocate_with\": \"src\"}}')"
refused 42P01 -c "$D2 '{\"distribution\": {\"column\": \"id\", \"colocate_with\": \"nope\"}}')" -c "SELECT coco.reconcile('c2')"
qa -c "$D2 '{\"distribution\": {\"column\": \"id\", \"colocate_with\": \"later\"}}')" >/dev/null
qa -c "CREATE TABLE later (id integer)" >/dev/null
err=$(qa -v VERBOSITY=verbose -c "SELECT coco.reconcile('c2')" 2>&1 >/dev/null || true)
case "$err" in *"ERROR:  0A000"*'distributing table "public.x2" (Citus)'*) ;; *) fail "a Citus refusal at the run: $err" ;; esac
[ "$(q -c "SELECT to_regclass('public.x2') IS NULL")" = t ] || fail "a refused run left public.x2 behind"
ok "colocate_with a reference table (22023) or a column of another type (42804) refused when declared; at the run, a missing table (42P01) and Citus's own refusal (0A000, not XX000) name the table; nothing left behind"
