#!/usr/bin/env bash
# Scenario: every run is recorded, whatever its origin and outcome.
#   1. a synchronous coco.reconcile() that fails (division by zero in a
#      declare_rows query, at run time): the caller gets 22012, and the run
#      is in coco.runs all the same — failed, 22012, origin 'session', the
#      run_id it had taken, its pid — and coco.apps shows the app failing;
#   2. a later successful run clears failing_since; a failed record that
#      arrives after it (the worker inserts them late) does not set it again;
#   3. a failed coco.update() (its declaration function raises a SQLSTATE of
#      its own) is recorded too, as a full run;
#   4. a failed worker run (coco.submit) has origin 'worker' and its SQLSTATE;
#   5. the worker run a synchronous run queues to complete a concurrent
#      index build has origin 'completion';
#   6. 100 failing synchronous runs in a row: each is recorded, or its
#      record's loss is told by a WARNING — none goes unseen;
#   7. another role sees none of it (row level security);
#   8. a report of an app dropped before the worker got to it is discarded;
#   9. a session terminated (pg_terminate_backend) in the middle of a run:
#      recorded failed with 57P01;
#  10. the ring of reports full (the one worker busy): the oldest reports
#      give way, each with a WARNING to the session that reported;
#  11. what is no run is not recorded: another role's call for alice's app,
#      and a call nested in a run (refused by the run guard) — the run it is
#      nested in failed, and is recorded.
# The failed pg_cron run is test/worker.sh's (g), which waits for pg_cron.
set -euo pipefail
source "$(dirname "$0")/../scripts/lib.sh"

# as alice, the apps' owner; errors go on (each failing call is a test)
as_alice() { coco_psql -qAt -U alice -d postgres -v ON_ERROR_STOP=0 -v VERBOSITY=verbose "$@"; }
# the last run of an app, as "status|sqlstate|origin|full"
last_run() {
    q -c "SELECT concat_ws('|', status, coalesce(sqlstate, '-'), origin, \"full\") FROM coco.runs
          WHERE app = '$1' ORDER BY run_id DESC LIMIT 1"
}

# one attempt per worker run: a failing submit fails at once
q >/dev/null <<'SQL'
ALTER SYSTEM SET coco_target.max_attempts = 1;
ALTER SYSTEM SET coco_target.workers_per_database = 1;
SELECT pg_reload_conf();
CREATE EXTENSION coco_target;
CREATE ROLE alice LOGIN;
CREATE ROLE mallory LOGIN;
CREATE SCHEMA rr AUTHORIZATION alice;
SQL
as_alice >/dev/null <<'SQL'
CREATE TABLE rr.src (id int PRIMARY KEY, n int NOT NULL);
INSERT INTO rr.src SELECT g, g FROM generate_series(1, 10) g;
CREATE TABLE rr.divisor (d int NOT NULL);
INSERT INTO rr.divisor VALUES (1);
SELECT coco.create_app('f');
CREATE FUNCTION rr.declare_f() RETURNS void LANGUAGE sql AS $$
    SELECT coco.declare_table('f', 'rr.quot',
        '[{"name": "id", "type": "integer"}, {"name": "q", "type": "integer"}]', '{id}');
    SELECT coco.declare_rows('f', 'rr.quot',
        'SELECT id, n / (SELECT d FROM rr.divisor) AS q FROM rr.src');
$$;
SQL

# --- 1. a failed coco.reconcile() ------------------------------------------
as_alice -c "SELECT rr.declare_f()" >/dev/null
as_alice -c "UPDATE rr.divisor SET d = 0" >/dev/null
out=$(as_alice -c "SELECT pg_backend_pid()" -c "SELECT coco.reconcile('f')" 2>&1 || true)
pid=$(echo "$out" | head -n 1)
echo "$out" | grep -q "ERROR:  22012: division by zero" || fail "1. the caller did not get 22012: $out"
taken=$(q -c "SELECT last_value FROM coco.run_run_id_seq")
wait_for "SELECT count(*) FROM coco.runs WHERE app = 'f'" 1 ||
    fail "1. the failed run was not recorded"
[ "$(last_run f)" = "failed|22012|session|f" ] || fail "1. recorded as $(last_run f)"
[ "$(q -c "SELECT run_id = $taken AND pid = $pid AND error = 'division by zero'
                  AND started_at <= finished_at AND providers IS NULL
             FROM coco.runs WHERE app = 'f'")" = t ] ||
    fail "1. run_id/pid/error/times: $(q -c "SELECT row(run_id, pid, error, started_at, finished_at) FROM coco.runs WHERE app = 'f'") (taken $taken, pid $pid)"
[ "$(q -c "SELECT failing_since = (SELECT finished_at FROM coco.runs WHERE app = 'f')
             FROM coco.apps WHERE app = 'f'")" = t ] || fail "1. failing_since not set"
[ "$(q -c "SELECT count(*) FROM rr.quot" 2>/dev/null || echo none)" = none ] ||
    fail "1. the failed run's work did not roll back"
ok "1. a failed coco.reconcile(): the caller got 22012, coco.runs has it (run $taken, origin session), the app is failing"

# --- 2. recovery; a failed record arriving after it ------------------------
# the declarations the failed run read are still staged
as_alice -c "UPDATE rr.divisor SET d = 1" -c "SELECT coco.reconcile('f')" >/dev/null
[ "$(last_run f)" = "succeeded|-|session|f" ] || fail "2. the fixed run: $(last_run f)"
[ "$(q -c "SELECT failing_since IS NULL FROM coco.apps WHERE app = 'f'")" = t ] ||
    fail "2. failing_since not cleared by the success"
# a failed record the worker inserts late: it finished before the success
q >/dev/null <<'SQL'
INSERT INTO coco.run (app_id, "full", status, error, sqlstate, started_at, finished_at, origin)
SELECT app_id, false, 'failed', 'late', '22012', finished_at - interval '2 s', finished_at - interval '1 s', 'session'
  FROM coco.run WHERE status = 'succeeded' AND app_id = (SELECT app_id FROM coco.app WHERE name = 'f');
SQL
[ "$(q -c "SELECT failing_since IS NULL FROM coco.apps WHERE app = 'f'")" = t ] ||
    fail "2. a failed record older than the success set failing_since"
# the contrast: one that finished after the success does
q >/dev/null <<'SQL'
INSERT INTO coco.run (app_id, "full", status, error, sqlstate, started_at, finished_at, origin)
SELECT app_id, false, 'failed', 'later', '22012', finished_at, finished_at + interval '1 s', 'session'
  FROM coco.run WHERE status = 'succeeded' AND app_id = (SELECT app_id FROM coco.app WHERE name = 'f');
SQL
[ "$(q -c "SELECT failing_since = (SELECT max(finished_at) FROM coco.run WHERE error = 'later')
             FROM coco.apps WHERE app = 'f'")" = t ] || fail "2. a failure after the success did not set failing_since"
q -c "DELETE FROM coco.run WHERE error IN ('late', 'later')" -c "UPDATE coco.app SET failing_since = NULL" >/dev/null
ok "2. a success clears failing_since; a failure recorded late but older than it does not set it again"

# --- 3. a failed coco.update() -----------------------------------------------
as_alice >/dev/null <<'SQL'
CREATE FUNCTION rr.declare_u(app text) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'the source is not ready' USING ERRCODE = 'CC001', DETAIL = 'Try later.';
END $$;
SELECT coco.create_app('u', 'rr.declare_u(text)');
SQL
out=$(as_alice -c "SELECT coco.update('u')" 2>&1 || true)
echo "$out" | grep -q "ERROR:  CC001: the source is not ready" || fail "3. the caller did not get CC001: $out"
wait_for "SELECT count(*) FROM coco.runs WHERE app = 'u'" 1 || fail "3. the failed update was not recorded"
[ "$(last_run u)" = "failed|CC001|session|t" ] || fail "3. recorded as $(last_run u)"
[ "$(q -c "SELECT error FROM coco.runs WHERE app = 'u'")" = "the source is not ready
Try later." ] || fail "3. error: $(q -c "SELECT error FROM coco.runs WHERE app = 'u'")"
[ "$(q -c "SELECT failing_since IS NOT NULL FROM coco.apps WHERE app = 'u'")" = t ] || fail "3. u not failing"
ok "3. a failed coco.update(): recorded failed with CC001 and its detail, as a full run"

# --- 4. a failed worker run -------------------------------------------------
as_alice -c "UPDATE rr.divisor SET d = 0" -c "SELECT rr.declare_f()" >/dev/null
run=$(as_alice -c "SELECT coco.submit('f')")
wait_for "SELECT status FROM coco.runs WHERE run_id = $run" failed || fail "4. the submitted run did not fail"
[ "$(q -c "SELECT concat_ws('|', sqlstate, origin) FROM coco.runs WHERE run_id = $run")" = "22012|worker" ] ||
    fail "4. worker run: $(q -c "SELECT concat_ws('|', sqlstate, origin) FROM coco.runs WHERE run_id = $run")"
ok "4. a failed worker run: origin worker, 22012"

# --- 5. a completion run ----------------------------------------------------
as_alice >/dev/null <<'SQL'
SELECT coco.create_app('ix');
SELECT coco.declare_table('ix', 'rr.t', '[{"name": "id", "type": "integer"}, {"name": "v", "type": "text"}]', '{id}');
SELECT coco.declare_index('ix', 'rr.t', 'v_idx', '{v}', 'btree', '{"concurrently": true}');
SQL
r=$(as_alice -c "SELECT coco.reconcile('ix')")
run=$(q -c "SELECT '$r'::jsonb ->> 'completion_run_id'")
[ -n "$run" ] || fail "5. no completion run queued: $r"
wait_for "SELECT status FROM coco.runs WHERE run_id = $run" succeeded postgres 60 || fail "5. completion run $run"
[ "$(q -c "SELECT string_agg(origin, ',' ORDER BY run_id) FROM coco.runs WHERE app = 'ix'")" = "session,completion" ] ||
    fail "5. origins: $(q -c "SELECT string_agg(origin, ',' ORDER BY run_id) FROM coco.runs WHERE app = 'ix'")"
ok "5. the synchronous run is 'session', the worker run completing its index 'completion'"

# --- 6. a flood of failing synchronous runs --------------------------------
# the declarations the failed worker run read are still staged
before=$(q -c "SELECT count(*) FROM coco.runs WHERE app = 'f' AND status = 'failed' AND origin = 'session'")
out=$(for _ in $(seq 1 100); do echo "SELECT coco.reconcile('f');"; done | as_alice 2>&1 || true)
errors=$(echo "$out" | grep -c "ERROR:  22012: division by zero" || true)
dropped=$(echo "$out" | grep -c "WARNING:  01000: coco_target: the record of failed run [0-9]* of app \"f\" was dropped" || true)
[ "$errors" = 100 ] || fail "6. $errors of 100 calls got the error"
wait_for "SELECT count(*) - $before FROM coco.runs WHERE app = 'f' AND status = 'failed' AND origin = 'session'" \
    "$((100 - dropped))" || fail "6. not every failed run was recorded ($dropped dropped with a WARNING)"
[ "$(q -c "SELECT count(DISTINCT run_id) FROM coco.runs WHERE app = 'f'")" = "$(q -c "SELECT count(*) FROM coco.runs WHERE app = 'f'")" ] ||
    fail "6. run ids repeat"
ok "6. 100 failing runs in a row: $((100 - dropped)) recorded, $dropped dropped with a WARNING"

# --- 7. another role sees none of it ---------------------------------------
[ "$(coco_psql -qAt -U mallory -d postgres -c "SELECT count(*) FROM coco.runs" -c "SELECT count(*) FROM coco.run")" = "0
0" ] || fail "7. mallory sees alice's runs"
[ "$(as_alice -c "SELECT count(*) > 100 FROM coco.runs WHERE status = 'failed'")" = t ] || fail "7. alice does not see hers"
ok "7. another role sees none of the failed runs"

# --- 8. a report of an app dropped before the worker got to it -------------
# the one worker is busy with a slow run of another app meanwhile
as_alice >/dev/null <<'SQL'
SELECT coco.create_app('slow');
SELECT coco.declare_table('slow', 'rr.slow', '[{"name": "id", "type": "integer"}]', '{id}');
SELECT coco.declare_rows('slow', 'rr.slow', 'SELECT 1 AS id FROM pg_catalog.pg_sleep(3)');
CREATE TABLE rr.gone_div (d int NOT NULL);
INSERT INTO rr.gone_div VALUES (1);
SELECT coco.create_app('gone');
SELECT coco.declare_table('gone', 'rr.gone', '[{"name": "id", "type": "integer"}]', '{id}');
SELECT coco.declare_rows('gone', 'rr.gone', 'SELECT 1 / (SELECT d FROM rr.gone_div) AS id');
UPDATE rr.gone_div SET d = 0;
SQL
slow=$(as_alice -c "SELECT coco.submit('slow')")
wait_for "SELECT status FROM coco.runs WHERE run_id = $slow" running || fail "8. the slow run did not start"
mark=$(coco_log_mark)
as_alice -c "SELECT coco.reconcile('gone')" 2>/dev/null >/dev/null || true
as_alice -c "SELECT coco.drop_app('gone', keep_targets => true)" >/dev/null
wait_for "SELECT status FROM coco.runs WHERE run_id = $slow" succeeded || fail "8. the slow run"
for _ in $(seq 1 50); do
    tail -c +"$((mark + 1))" "$COCO_TMP/postgres.log" | grep -q "of app \"gone\" is discarded: the app was dropped" && break
    sleep 0.2
done
tail -c +"$((mark + 1))" "$COCO_TMP/postgres.log" | grep -q "of app \"gone\" is discarded: the app was dropped" ||
    fail "8. the report of the dropped app was not discarded"
[ -z "$(coco_crashed_since "$mark")" ] || fail "8. a process crashed"
ok "8. the record of an app dropped meanwhile is discarded"

# --- 9. a session terminated in the middle of a run ------------------------
as_alice >/dev/null <<'SQL'
SELECT coco.create_app('term');
SELECT coco.declare_table('term', 'rr.term', '[{"name": "id", "type": "integer"}]', '{id}');
SELECT coco.declare_rows('term', 'rr.term', 'SELECT 1 AS id FROM pg_catalog.pg_sleep(30)');
SQL
mark=$(coco_log_mark)
as_alice -c "SELECT coco.reconcile('term')" >/dev/null 2>&1 &
victim=$!
wait_for "SELECT count(*) FROM pg_stat_activity WHERE query LIKE '%coco.reconcile(''term'')%' AND usename = 'alice'" 1 ||
    fail "9. the run did not start"
sleep 0.5
q -c "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE query LIKE '%coco.reconcile(''term'')%' AND usename = 'alice'" >/dev/null
wait "$victim" || true
wait_for "SELECT concat_ws('|', status, sqlstate, origin) FROM coco.runs WHERE app = 'term'" "failed|57P01|session" ||
    fail "9. the terminated run: $(q -c "SELECT row(status, sqlstate, origin, error) FROM coco.runs WHERE app = 'term'")"
[ -z "$(coco_crashed_since "$mark")" ] || fail "9. a process crashed"
ok "9. a session terminated mid-run: recorded failed with 57P01 ($(q -c "SELECT error FROM coco.runs WHERE app = 'term'"))"

# --- 10. more failed runs than the ring holds, while the worker is busy ----
# 128 reports fit; 131 failures with the one worker busy: 3 give way
slow=$(as_alice -c "SELECT coco.declare_table('slow', 'rr.slow', '[{\"name\": \"id\", \"type\": \"integer\"}]', '{id}')" \
                -c "SELECT coco.declare_rows('slow', 'rr.slow', 'SELECT 2 AS id FROM pg_catalog.pg_sleep(4)')" \
                -c "SELECT coco.submit('slow')" | tail -n 1)
wait_for "SELECT status FROM coco.runs WHERE run_id = $slow" running || fail "10. the slow run did not start"
before=$(q -c "SELECT count(*) FROM coco.runs WHERE app = 'f' AND status = 'failed' AND origin = 'session'")
out=$(for _ in $(seq 1 131); do echo "SELECT coco.reconcile('f');"; done | as_alice 2>&1 || true)
[ "$(q -c "SELECT status FROM coco.runs WHERE run_id = $slow")" = running ] ||
    fail "10. the worker was free before the flood ended: the test proves nothing"
errors=$(echo "$out" | grep -c "ERROR:  22012: division by zero" || true)
dropped=$(echo "$out" | grep -c "WARNING:  01000: coco_target: the record of failed run [0-9]* of app \"f\" was dropped" || true)
[ "$errors" = 131 ] || fail "10. $errors of 131 calls got the error"
[ "$dropped" = 3 ] || fail "10. $dropped WARNINGs of a dropped record, wanted 3"
wait_for "SELECT count(*) - $before FROM coco.runs WHERE app = 'f' AND status = 'failed' AND origin = 'session'" 128 ||
    fail "10. the 128 records the ring held were not all inserted"
ok "10. 131 failures while the worker was busy: 128 recorded once it was free, 3 dropped, each with a WARNING"

# --- 11. refused calls are no runs -------------------------------------------
as_alice >/dev/null <<'SQL'
CREATE FUNCTION rr.declare_nested(app text) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    PERFORM coco.reconcile('ix');     -- refused: a run of 'nested' is going on
END $$;
SELECT coco.create_app('nested', 'rr.declare_nested(text)');
SQL
ix_runs=$(q -c "SELECT count(*) FROM coco.runs WHERE app = 'ix'")
f_runs=$(q -c "SELECT count(*) FROM coco.runs WHERE app = 'f'")
out=$(coco_psql -qAt -U mallory -d postgres -v VERBOSITY=verbose -c "SELECT coco.reconcile('f')" 2>&1 || true)
echo "$out" | grep -q "ERROR:" || fail "11. mallory reconciled alice's app: $out"
out=$(as_alice -c "SELECT coco.update('nested')" 2>&1 || true)
echo "$out" | grep -q "ERROR:  55006: coco.reconcile() is not allowed while app \"nested\" is being reconciled" ||
    fail "11. the nested call: $out"
wait_for "SELECT concat_ws('|', status, sqlstate, origin) FROM coco.runs WHERE app = 'nested'" "failed|55006|session" ||
    fail "11. the outer run was not recorded"
# reports are inserted oldest first: any made before the outer run's are in
[ "$(q -c "SELECT count(*) FROM coco.runs WHERE app = 'ix'")" = "$ix_runs" ] || fail "11. the refused nested call was recorded"
[ "$(q -c "SELECT count(*) FROM coco.runs WHERE app = 'f'")" = "$f_runs" ] || fail "11. mallory's refused call was recorded"
[ "$(q -c "SELECT failing_since IS NULL FROM coco.apps WHERE app = 'ix'")" = t ] || fail "11. ix marked failing"
ok "11. a refused nested call and another role's call record nothing; the run they were in is recorded failed"
