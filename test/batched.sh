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
coco_await_fault after_batch_commit || fail "the fault point was not reached"
# look at the target before the worker goes on
coco_stop_fault_and_worker || fail "server did not come back"
done_before=$(q -c "SELECT count(*) FROM t WHERE v LIKE '%!'")
[ "$done_before" -ge 3000 ] && [ "$done_before" -lt 10000 ] || fail "rows written before the crash: $done_before"
# The run is left running, or already queued again: the launcher of the
# server's crash restart may re-queue it before the stop above lands.
case "$(q -c "SELECT status FROM coco.runs WHERE run_id = $run")" in
    running|queued) ;;
    *) fail "run $run is neither left running nor queued again" ;;
esac
ok "killed after a batch commit: $done_before of 10000 changed rows are written and stay"
coco_start_worker_again || fail "server did not come back"
q -c "SELECT coco.wait($run, '120s')" >/dev/null
stats=$(q -c "SELECT stats FROM coco.run WHERE run_id = $run")
updated=$(q -c "SELECT '$stats'::jsonb #>> '{providers,postgres.row,updated}'")
[ "$updated" = $((10000 - done_before)) ] || fail "the last attempt updated $updated rows, expected $((10000 - done_before)): $stats"
check "after recovery"
ok "run $run re-queued and finished: its last attempt wrote the $updated rows left, none twice; target = source"

# 3. an attempt that fails after some of its batches committed: those stay
#    applied, with their tracking (target and tracking agree); the run
#    record says so; the retry goes on from there.
q -c "ALTER SYSTEM SET coco_target.max_attempts = 2" -c "ALTER SYSTEM SET coco_target.retry_base = 0" \
  -c "SELECT pg_reload_conf()" >/dev/null
# a user's table whose trigger refuses every row after the 5000th written
q -c "CREATE SEQUENCE written" \
  -c "CREATE TABLE u (id integer PRIMARY KEY, v text)" \
  -c "CREATE FUNCTION refuse_late() RETURNS trigger LANGUAGE plpgsql AS \$\$
      BEGIN
        IF nextval('public.written') > 5000 THEN RAISE EXCEPTION 'row % refused', NEW.id USING ERRCODE = '23514'; END IF;
        RETURN NEW;
      END \$\$" \
  -c "CREATE TRIGGER refuse_late BEFORE INSERT ON u FOR EACH ROW EXECUTE FUNCTION refuse_late()" \
  -c "SELECT coco.create_app('f')" \
  -c "SELECT coco.declare_table('f', 'public.u', '[{\"name\":\"id\",\"type\":\"integer\"},{\"name\":\"v\",\"type\":\"text\"}]', '{id}', managed_by => 'user')" \
  -c "SELECT coco.declare_rows('f', 'public.u', 'SELECT id, v FROM src')" >/dev/null
run=$(q -c "SELECT coco.submit('f')")
q -c "DO \$\$ BEGIN PERFORM coco.wait($run, '120s'); EXCEPTION WHEN OTHERS THEN NULL; END \$\$" >/dev/null
err=$(q -c "SELECT error FROM coco.run WHERE run_id = $run")
case "$err" in "row "*" refused") ;; *) fail "run $run did not fail as the trigger says: $err" ;; esac
read -r status written tracked partial txns inserted < <(q -F ' ' -c "SELECT r.status, (SELECT count(*) FROM u),
       (SELECT count(*) FROM coco.tracked_row tr JOIN coco.target_state ts ON ts.ts_id = tr.target_id WHERE ts.name = 'public.u'),
       r.stats ->> 'partial', coalesce(r.stats ->> 'transactions', '1'), r.stats #>> '{providers,postgres.row,inserted}'
  FROM coco.run r WHERE r.run_id = $run")
[ "$status" = failed ] || fail "run $run is $status, not failed"
[ "$written" = 3000 ] && [ "$tracked" = 3000 ] ||
    fail "after the failed run: $written rows written, $tracked tracked (expected the first batch: 3000 and 3000)"
[ "$partial" = true ] && [ "$inserted" = 3000 ] && [ "$txns" -ge 1 ] ||
    fail "the failed run's record does not say what stayed applied: partial=$partial inserted=$inserted transactions=$txns"
q -c "SELECT coco.verify('f', repair => false) ->> 'drifted'" | grep -qx 0 || fail "target and tracking disagree after the failed run"
ok "a run failing after a batch commit leaves that batch applied and tracked (3000 of 20000 rows), and its record says so (partial, inserted 3000)"
# the cause removed, the next run goes on from there
q -c "DROP TRIGGER refuse_late ON u" >/dev/null
run=$(q -c "SELECT coco.submit('f')")
q -c "SELECT coco.wait($run, '120s')" >/dev/null
inserted=$(q -c "SELECT stats #>> '{providers,postgres.row,inserted}' FROM coco.run WHERE run_id = $run")
[ "$inserted" = 17000 ] && [ "$(q -c "SELECT count(*) FROM u")" = 20000 ] ||
    fail "the next run inserted $inserted rows (expected the 17000 left)"
ok "the next run wrote only the 17000 rows left"
