#!/usr/bin/env bash
# Scenario: a big worker run commits in batches (coco_target.commit_every).
# - a first load of 20k rows with commit_every = 3000 commits in several
#   transactions; the target equals the source and tracking the target;
# - 10k rows change; the worker is killed right after a batch commits
#   (fault point after_batch_commit): the committed rows stay written, the
#   run is queued again after crash recovery, and its last attempt writes
#   only the rows that were not written yet; target = source again.
set -euo pipefail
source "$(dirname "$0")/../scripts/lib.sh"

fail() {
    echo "FAIL: $*" >&2
    tail -n 30 "$COCO_TMP/postgres.log" >&2
    exit 1
}
ok() { echo "ok: $*"; }
q() { coco_psql -qAt "$@"; }

wait_up() {
    for _ in $(seq 1 120); do
        if coco_as_pg "$COCO_PGBIN/pg_isready" -q -h "$PGHOST" -p "$PGPORT"; then
            q -c "SELECT 1" >/dev/null 2>&1 && return 0
        fi
        sleep 0.5
    done
    fail "server did not come back"
}
# target = source both ways, and one tracking row per target row
check() {
    local diff tracked rows
    diff=$(q -c "SELECT count(*) FROM ((SELECT * FROM t EXCEPT SELECT * FROM src) UNION ALL (SELECT * FROM src EXCEPT SELECT * FROM t)) d")
    tracked=$(q -c "SELECT count(*) FROM coco.tracked_row")
    rows=$(q -c "SELECT count(*) FROM t")
    [ "$diff" = 0 ] && [ "$tracked" = "$rows" ] || fail "$1: $diff differences, $tracked tracked for $rows rows"
}
declare_all() {
    q -c "SELECT coco.declare_table('b', 'public.t', '[{\"name\":\"id\",\"type\":\"integer\"},{\"name\":\"v\",\"type\":\"text\"}]', '{id}')" \
      -c "SELECT coco.declare_rows('b', 'public.t', 'SELECT id, v FROM src')" >/dev/null
}

q -c "ALTER SYSTEM SET coco_target.commit_every = 3000" -c "SELECT pg_reload_conf()" >/dev/null
q -c "CREATE EXTENSION coco_target" \
  -c "CREATE TABLE src AS SELECT g AS id, md5(g::text) AS v FROM generate_series(1, 20000) g" \
  -c "SELECT coco.create_app('b')" >/dev/null

# 1. the first load, in batches
declare_all
run=$(q -c "SELECT coco.submit('b')")
q -c "SELECT coco.wait($run, '120s')" >/dev/null
stats=$(q -c "SELECT stats FROM coco.run WHERE run_id = $run")
[ "$(q -c "SELECT format('%s %s', '$stats'::jsonb #>> '{providers,postgres.row,inserted}', ('$stats'::jsonb ->> 'transactions')::int >= 7)")" = "20000 t" ] ||
    fail "first load: $stats"
check "first load"
ok "20000 rows loaded in $(q -c "SELECT '$stats'::jsonb ->> 'transactions'") transactions"

# 2. 10k changes, killed after the first batch commit
q -c "UPDATE src SET v = v || '!' WHERE id % 2 = 0" >/dev/null
q -c "ALTER SYSTEM SET coco_target.fault_point = 'after_batch_commit'" -c "SELECT pg_reload_conf()" >/dev/null
declare_all
run=$(q -c "SELECT coco.submit('b')")
for _ in $(seq 1 120); do
    grep -q 'fault point "after_batch_commit" reached' "$COCO_TMP/postgres.log" && break
    sleep 0.25
done
grep -q 'fault point "after_batch_commit" reached' "$COCO_TMP/postgres.log" || fail "the fault point was not reached"
# every retry would stop the same way: stop, reset the fault point, and
# look at the target before the worker goes on
coco_pg_ctl -m immediate -w stop >/dev/null
sed -i '/coco_target.fault_point/d' "$PGDATA/postgresql.auto.conf"
echo "shared_preload_libraries = 'pg_cron'" >> "$PGDATA/postgresql.auto.conf"
coco_pg_ctl -w start >/dev/null
wait_up
done_before=$(q -c "SELECT count(*) FROM t WHERE v LIKE '%!'")
[ "$done_before" -ge 3000 ] && [ "$done_before" -lt 10000 ] || fail "rows written before the crash: $done_before"
[ "$(q -c "SELECT status FROM coco.runs WHERE run_id = $run")" = running ] || fail "run $run is not left running"
ok "killed after a batch commit: $done_before of 10000 changed rows are written and stay"
sed -i "/shared_preload_libraries = 'pg_cron'/d" "$PGDATA/postgresql.auto.conf"
coco_pg_ctl -m fast -w restart >/dev/null
wait_up
q -c "SELECT coco.wait($run, '120s')" >/dev/null
stats=$(q -c "SELECT stats FROM coco.run WHERE run_id = $run")
updated=$(q -c "SELECT '$stats'::jsonb #>> '{providers,postgres.row,updated}'")
[ "$updated" = $((10000 - done_before)) ] || fail "the last attempt updated $updated rows, expected $((10000 - done_before)): $stats"
check "after recovery"
ok "run $run re-queued and finished: its last attempt wrote the $updated rows left, none twice; target = source"
