#!/usr/bin/env bash
# Scenario: a reconcile stopped hard (SIGKILL, as a crash) at each named
# point of a run leaves a state the next run converges from, without
# declaring anything again: declarations are staged durably, and a run's
# target changes and tracking commit together or not at all.
# For every point: a 10k-row app is loaded; its source changes (10 %
# updated, 5 % deleted, 5 % inserted), a column is added and its index
# changed; the reconcile is killed at the point; after crash recovery a
# plain reconcile brings the target to exactly the declared state (EXCEPT
# both ways), tracking matches the target, and the catalog matches the
# declaration.  A crash in the middle of a first load is covered too, and
# an immediate shutdown of the server during a large run.
set -euo pipefail
source "$(dirname "$0")/../scripts/lib.sh"

wait_up() { coco_wait_up || fail "server did not come back"; }

T1='[{"name":"id","type":"integer","nullable":false},{"name":"v","type":"text"},{"name":"n","type":"integer"}]'
T2='[{"name":"id","type":"integer","nullable":false},{"name":"v","type":"text"},{"name":"n","type":"integer"},{"name":"w","type":"integer","nullable":false}]'

q -c "CREATE EXTENSION coco_target"

# declare(app, phase): phase 1 is the first shape, 2 the changed one
declare() {
    local app=$1 phase=$2
    if [ "$phase" = 1 ]; then
        q -c "SELECT coco.declare_table('$app', 'public.${app}_t', '$T1', '{id}')" \
          -c "SELECT coco.declare_rows('$app', 'public.${app}_t', 'SELECT id, v, n FROM ${app}_src')" \
          -c "SELECT coco.declare_index('$app', 'public.${app}_t', 'ix', '{v}')" >/dev/null
    else
        q -c "SELECT coco.declare_table('$app', 'public.${app}_t', '$T2', '{id}')" \
          -c "SELECT coco.declare_rows('$app', 'public.${app}_t', 'SELECT id, v, n, n * 2 AS w FROM ${app}_src')" \
          -c "SELECT coco.declare_index('$app', 'public.${app}_t', 'ix', '{v,n}')" >/dev/null
    fi
}

# reconcile that is expected to die at $2
killed_reconcile() {
    local app=$1 point=$2
    if q -c "SET coco_target.batch_size = 1000" -c "SET coco_target.fault_point = '$point'" \
         -c "SELECT coco.reconcile('$app')" >/dev/null 2>&1; then
        fail "$app: the reconcile was not stopped at $point"
    fi
    wait_up
}

check() {
    local app=$1 phase=$2 what=$3 expect cols
    if [ "$phase" = 1 ]; then expect="SELECT id, v, n FROM ${app}_src"; cols="id, v, n"
    else expect="SELECT id, v, n, n * 2 FROM ${app}_src"; cols="id, v, n, w"; fi
    local diff
    diff=$(q -c "SELECT count(*) FROM ((SELECT $cols FROM ${app}_t EXCEPT $expect)
                                        UNION ALL ($expect EXCEPT SELECT $cols FROM ${app}_t)) d")
    [ "$diff" = 0 ] || fail "$app ($what): target differs from the declaration in $diff rows"
    local tracked target
    tracked=$(q -c "SELECT count(*) FROM coco.tracked_row r JOIN coco.target_state t ON t.ts_id = r.target_id
                     JOIN coco.app a ON a.app_id = t.app_id WHERE a.name = '$app'")
    target=$(q -c "SELECT count(*) FROM ${app}_t")
    [ "$tracked" = "$target" ] || fail "$app ($what): $tracked tracked rows for $target target rows"
    local ixdef
    ixdef=$(q -c "SELECT indexdef FROM pg_indexes WHERE indexname = '${app}_t_ix'")
    if [ "$phase" = 1 ]; then
        case "$ixdef" in *"(v)"*) ;; *) fail "$app ($what): index is '$ixdef'";; esac
    else
        case "$ixdef" in *"(v, n)"*) ;; *) fail "$app ($what): index is '$ixdef'";; esac
        [ "$(q -c "SELECT attnotnull FROM pg_attribute WHERE attrelid = '${app}_t'::regclass AND attname = 'w'")" = t ] \
            || fail "$app ($what): column w missing or nullable"
    fi
    [ "$(q -c "SELECT pending_declarations FROM coco.apps WHERE app = '$app'")" = 0 ] \
        || fail "$app ($what): declarations left pending"
}

n=0
for point in after_staging_read after_decisions after_table_ddl after_row_batch before_attachments before_consume; do
    n=$((n + 1))
    app="fp$n"
    q -c "CREATE TABLE ${app}_src (id int PRIMARY KEY, v text, n int)" \
      -c "INSERT INTO ${app}_src SELECT g, md5(g::text), g FROM generate_series(1, 10000) g" \
      -c "SELECT coco.create_app('$app')" >/dev/null
    declare "$app" 1
    q -c "SELECT coco.reconcile('$app')" >/dev/null
    check "$app" 1 "first load"
    q -c "UPDATE ${app}_src SET v = v || 'x' WHERE id % 10 = 0" \
      -c "DELETE FROM ${app}_src WHERE id % 20 = 1" \
      -c "INSERT INTO ${app}_src SELECT g, md5(g::text), g FROM generate_series(10001, 10500) g" >/dev/null
    declare "$app" 2
    killed_reconcile "$app" "$point"
    grep -q "fault point \"$point\" reached" "$COCO_TMP/postgres.log" || fail "$app: no log line for $point"
    q -c "SELECT coco.reconcile('$app')" >/dev/null
    check "$app" 2 "killed at $point"
    ok "killed at $point: the next run converged (target = declaration, tracking = target, catalog as declared)"
done

# a first load killed between the table's rows and their tracking
q -c "CREATE TABLE fp_load_src (id int PRIMARY KEY, v text, n int)" \
  -c "INSERT INTO fp_load_src SELECT g, md5(g::text), g FROM generate_series(1, 10000) g" \
  -c "SELECT coco.create_app('fp_load')" >/dev/null
declare fp_load 1
killed_reconcile fp_load after_row_batch
[ "$(q -c "SELECT to_regclass('public.fp_load_t') IS NULL")" = t ] || fail "fp_load: a killed first load left its table"
q -c "SELECT coco.reconcile('fp_load')" >/dev/null
check fp_load 1 "killed during the first load"
ok "first load killed mid-way: nothing was left behind, and the next run loaded everything"

# immediate shutdown of the server during a large run, then start
q -c "CREATE TABLE fp_big_src (id int PRIMARY KEY, v text, n int)" \
  -c "INSERT INTO fp_big_src SELECT g, md5(g::text), g FROM generate_series(1, 300000) g" \
  -c "SELECT coco.create_app('fp_big')" >/dev/null
declare fp_big 1
(q -c "SELECT coco.reconcile('fp_big')" >/dev/null 2>&1 || true) &
running=""
for _ in $(seq 1 100); do
    running=$(q -c "SELECT count(*) FROM pg_stat_activity WHERE query LIKE 'SELECT coco.reconcile(''fp_big'')%' AND state = 'active'" 2>/dev/null || true)
    [ "$running" = 1 ] && break
    sleep 0.05
done
[ "$running" = 1 ] || fail "fp_big: the large run was not seen running"
sleep 0.3
coco_pg_ctl -m immediate -w stop >/dev/null
wait
coco_pg_ctl -w -t 60 start >/dev/null
wait_up
q -c "SELECT coco.reconcile('fp_big')" >/dev/null
check fp_big 1 "immediate shutdown during the run"
ok "immediate shutdown during a 300k-row run: after restart the next run converged"

echo "fault point scenario passed"
