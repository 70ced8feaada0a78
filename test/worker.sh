#!/usr/bin/env bash
# Scenario: the background worker really runs submitted work.
#   (a) submit from one session, another sees the target converge; coco.wait
#   (b) LISTEN coco_target receives the completion NOTIFY
#   (c) a failing app is recorded failed (after its retries) while another
#       app in the same database succeeds, and shown as failing in coco.apps;
#       fixed, the resubmitted run converges and clears that
#   (d) kill -9 of the worker mid-run of a 200k-row app: after crash recovery
#       the run completes and the target equals the source
#   (e) pg_ctl restart with a run queued: it runs after the restart
#   (f) a second database is served too; DROP EXTENSION there stops the
#       worker cleanly
#   (g) pg_cron: a scheduled coco.update() keeps a derived table in line
#       (up to a minute with pg_cron 1.4, which has no second schedules);
#       a failing one is recorded failed, with origin 'cron', in coco.runs
#       as well as in cron.job_run_details; a scheduled coco.update() of an
#       app with source-driven refresh, its source written all along,
#       converges with the refresh runs
#   (i) auto-submit: a trigger declares per changed source row, and the
#       commits alone keep the target in line; rollbacks submit nothing
#   (j) run retention: finished runs older than coco_target.run_retention
#       are deleted; 0 keeps them
#   (h) without shared_preload_libraries, coco.submit() refuses clearly
# Runs against the throwaway cluster scripts/test.sh starts (PG* env set).
set -euo pipefail
source "$(dirname "$0")/../scripts/lib.sh"

fail() {
    echo "FAIL: $*" >&2
    echo "--- server log (tail) ---" >&2
    tail -n 40 "$COCO_TMP/postgres.log" >&2
    exit 1
}

# Wait until the server accepts connections again (after a crash/restart).
wait_server() {
    local deadline=$((SECONDS + 60))
    while [ "$SECONDS" -lt "$deadline" ]; do
        q -c "SELECT 1" >/dev/null 2>&1 && return 0
        sleep 0.2
    done
    return 1
}

# Quick retries for the failure scenario; reload, not restart. One worker
# per database: (e) keeps it busy to hold a run queued (several workers
# are test/scheduler.sh's).
q >/dev/null <<'SQL'
ALTER SYSTEM SET coco_target.workers_per_database = 1;
ALTER SYSTEM SET coco_target.max_attempts = 2;
ALTER SYSTEM SET coco_target.retry_base = '200ms';
SELECT pg_reload_conf();
CREATE EXTENSION coco_target;
CREATE TABLE src (id int PRIMARY KEY, v text);
INSERT INTO src SELECT g, 'v' || g FROM generate_series(1, 1000) g;
SELECT coco.create_app('a');
SQL

# --- (a) submit in one session, converge seen from another -----------------
run_a=$(q <<'SQL'
SELECT coco.declare_table('a', 'public.tgt',
    '[{"name": "id", "type": "integer"}, {"name": "v", "type": "text"}]', '{id}');
SELECT coco.declare_rows('a', 'public.tgt', 'SELECT id, v FROM src');
SELECT coco.submit('a');
SQL
)
run_a=$(echo "$run_a" | tail -n 1)
wait_for "SELECT count(*) FROM tgt" 1000 || fail "(a) target did not converge"
wait_for "SELECT count(*) FROM (SELECT * FROM src EXCEPT SELECT * FROM tgt) d" 0 ||
    fail "(a) target differs from source"
stats=$(q -c "SELECT coco.wait($run_a)->>'inserted'")
[ "$stats" = 1001 ] || fail "(a) coco.wait returned inserted=$stats, wanted 1001"
row=$(q -c "SELECT status, attempts, submitted_at <= started_at FROM coco.runs WHERE run_id = $run_a")
[ "$row" = "succeeded|1|t" ] || fail "(a) coco.runs row is '$row'"
ok "(a) run $run_a submitted in one session converged as seen from another; coco.wait returned its stats (inserted=1001)"

# submit in a rolled-back transaction queues nothing
n=$(q -c "BEGIN; SELECT coco.submit('a'); ROLLBACK;" -c "SELECT count(*) FROM coco.run WHERE run_id > $run_a" | tail -n 1)
[ "$n" = 0 ] || fail "(a) a rolled-back submit left $n run(s)"
err=$(q -c "BEGIN; SELECT coco.wait(coco.submit('a'));" 2>&1 || true)
echo "$err" | grep -q "was submitted in this transaction" || fail "(a) wait in the submitting transaction: $err"
ok "(a) a rolled-back submit queues nothing; waiting inside the submitting transaction is refused"

# --- (b) LISTEN receives the NOTIFY ----------------------------------------
listen_out="$COCO_TMP/listen.out"
coco_psql -q >"$listen_out" 2>&1 <<'SQL' &
LISTEN coco_target;
SELECT pg_sleep(4);
SELECT 1;
SQL
listener=$!
wait_for "SELECT count(*) FROM pg_stat_activity WHERE query LIKE 'SELECT pg_sleep(4)%'" 1 ||
    fail "(b) listener did not start"
run_b=$(q -c "INSERT INTO src VALUES (1001, 'new')" -c "SELECT coco.declare_table('a', 'public.tgt', '[{\"name\": \"id\", \"type\": \"integer\"}, {\"name\": \"v\", \"type\": \"text\"}]', '{id}')" -c "SELECT coco.declare_rows('a', 'public.tgt', 'SELECT id, v FROM src')" -c "SELECT coco.submit('a')" | tail -n 1)
q -c "SELECT coco.wait($run_b)" >/dev/null || fail "(b) run $run_b did not succeed"
wait "$listener" || fail "(b) listener session failed"
grep -qF "Asynchronous notification \"coco_target\" with payload \"{\"app\": \"a\", \"run_id\": $run_b, \"status\": \"succeeded\"}\"" "$listen_out" ||
    fail "(b) no NOTIFY for run $run_b in: $(cat "$listen_out")"
ok "(b) LISTEN coco_target received {\"app\": \"a\", \"run_id\": $run_b, \"status\": \"succeeded\"}"

# --- (c) a failing app does not block another; fixed, it converges ----------
q >/dev/null <<'SQL'
CREATE ROLE lowly;
CREATE SCHEMA locked;
GRANT USAGE ON SCHEMA locked TO lowly;
SET ROLE lowly;
SELECT coco.create_app('bad');
SELECT coco.declare_table('bad', 'locked.t', '[{"name": "id", "type": "integer"}]', '{id}');
SELECT coco.declare_row('bad', 'locked.t', '{"id": 1}');
RESET ROLE;
SELECT coco.create_app('good');
SELECT coco.declare_table('good', 'public.good', '[{"name": "id", "type": "integer"}]', '{id}');
SELECT coco.declare_row('good', 'public.good', '{"id": 7}');
SQL
run_bad=$(q -c "SET ROLE lowly" -c "SELECT coco.submit('bad')" | tail -n 1)
run_good=$(q -c "SELECT coco.submit('good')" | tail -n 1)
q -c "SELECT coco.wait($run_good)" >/dev/null || fail "(c) run of app good did not succeed"
[ "$(q -c "SELECT id FROM good")" = 7 ] || fail "(c) app good's target is wrong"
err=$(q -c "SET ROLE lowly" -c "\\set VERBOSITY verbose" -c "SELECT coco.wait($run_bad, '20s')" 2>&1 || true)
echo "$err" | grep -q "ERROR:  42501: run $run_bad of app \"bad\" failed" ||
    fail "(c) coco.wait on the failing run said: $err"
echo "$err" | grep -q "DETAIL:  permission denied for schema locked" ||
    fail "(c) coco.wait did not carry the run's error: $err"
row=$(q -c "SELECT status, attempts, error FROM coco.runs WHERE run_id = $run_bad")
[ "$row" = "failed|2|permission denied for schema locked" ] || fail "(c) coco.runs row is '$row'"
err=$(q -c "CREATE ROLE other" -c "SET ROLE other" -c "SELECT coco.wait($run_bad)" 2>&1 || true)
# another role's run is refused as if it did not exist (no app name, no 42501)
echo "$err" | grep -q "run $run_bad does not exist" || fail "(c) a stranger could wait: $err"
ok "(c) app bad's run $run_bad failed after 2 attempts ('permission denied for schema locked', SQLSTATE 42501 from coco.wait) while app good's run $run_good succeeded; strangers may not wait"
row=$(q -c "SELECT string_agg(app || ':' || (failing_since = (SELECT finished_at FROM coco.run WHERE run_id = $run_bad)), ',') FROM coco.apps WHERE failing_since IS NOT NULL")
[ "$row" = "bad:true" ] || fail "(c) failing apps in coco.apps: '$row', wanted only bad, since its run $run_bad failed"
ok "(c) coco.apps shows app bad failing since run $run_bad failed for good; app good is not failing"
q -c "GRANT CREATE ON SCHEMA locked TO lowly" >/dev/null
run_fix=$(q -c "SET ROLE lowly" -c "SELECT coco.submit('bad')" | tail -n 1)
q -c "SET ROLE lowly" -c "SELECT coco.wait($run_fix)" >/dev/null || fail "(c) resubmitted run $run_fix failed"
[ "$(q -c "SELECT id FROM locked.t")" = 1 ] || fail "(c) locked.t not converged"
[ "$(q -c "SELECT tableowner FROM pg_tables WHERE schemaname = 'locked'")" = lowly ] ||
    fail "(c) locked.t is not owned by the app owner"
ok "(c) after GRANT CREATE the resubmitted run $run_fix converged; the table is owned by the app owner (lowly), not the worker's superuser"
[ "$(q -c "SELECT failing_since IS NULL FROM coco.apps WHERE app = 'bad'")" = t ] ||
    fail "(c) app bad still failing after its run $run_fix succeeded"
ok "(c) the successful run $run_fix cleared app bad's failing_since"

# a failed attempt is retried after the backoff; fixed in between, it succeeds
q >/dev/null <<'SQL'
ALTER SYSTEM SET coco_target.retry_base = '3s';
SELECT pg_reload_conf();
CREATE SCHEMA locked2;
GRANT USAGE ON SCHEMA locked2 TO lowly;
SET ROLE lowly;
SELECT coco.create_app('flaky');
SELECT coco.declare_table('flaky', 'locked2.t', '[{"name": "id", "type": "integer"}]', '{id}');
SELECT coco.declare_row('flaky', 'locked2.t', '{"id": 3}');
SQL
sleep 0.5   # the worker has read the new retry_base
run_flaky=$(q -c "SET ROLE lowly" -c "SELECT coco.submit('flaky')" | tail -n 1)
wait_for "SELECT status, attempts, retry_at > now(), error FROM coco.runs WHERE run_id = $run_flaky" \
    "queued|1|t|permission denied for schema locked2" || fail "(c) run $run_flaky is not waiting for its retry"
[ "$(q -c "SELECT failing_since IS NULL FROM coco.apps WHERE app = 'flaky'")" = t ] ||
    fail "(c) app flaky marked failing while its run $run_flaky waits for a retry"
q -c "GRANT CREATE ON SCHEMA locked2 TO lowly" >/dev/null
q -c "SET ROLE lowly" -c "SELECT coco.wait($run_flaky)" >/dev/null || fail "(c) retried run $run_flaky failed"
row=$(q -c "SELECT status, attempts, retry_at IS NULL, error IS NULL FROM coco.runs WHERE run_id = $run_flaky")
[ "$row" = "succeeded|2|t|t" ] || fail "(c) retried run: $row"
q >/dev/null <<'SQL'
ALTER SYSTEM SET coco_target.retry_base = '200ms';
SELECT pg_reload_conf();
SQL
ok "(c) run $run_flaky failed its first attempt, waited for its retry (queued, retry_at set), and succeeded on attempt 2 after the fix"

# --- (d) kill -9 mid-run of a 200k-row app ----------------------------------
# pg_sleep in the declared query holds the run open long enough to kill it
# reliably in the middle.
q >/dev/null <<'SQL'
CREATE TABLE big_src (id int PRIMARY KEY, v text, n numeric);
INSERT INTO big_src SELECT g, md5(g::text), g * 1.5 FROM generate_series(1, 200000) g;
SELECT coco.create_app('big');
SELECT coco.declare_table('big', 'public.big_tgt',
    '[{"name": "id", "type": "integer"}, {"name": "v", "type": "text"}, {"name": "n", "type": "numeric"}]', '{id}');
SELECT coco.declare_rows('big', 'public.big_tgt', 'SELECT id, v, n FROM big_src, pg_catalog.pg_sleep(1.5) s');
SQL
run_big=$(q -c "SELECT coco.submit('big')" | tail -n 1)
wait_for "SELECT status FROM coco.runs WHERE run_id = $run_big" running || fail "(d) run never started"
sleep 0.5
wpid=$(q -c "SELECT pid FROM pg_stat_activity WHERE backend_type = 'coco_target worker' AND query LIKE 'coco_target: reconciling app big run $run_big'")
[ -n "$wpid" ] || fail "(d) no worker reconciling run $run_big in pg_stat_activity"
kill -9 "$wpid"
sleep 1
wait_server || fail "(d) server did not come back after the crash"
wait_for "SELECT status FROM coco.runs WHERE run_id = $run_big" succeeded postgres 60 ||
    fail "(d) run $run_big not completed after the crash"
d=$(q -c "SELECT (SELECT count(*) FROM big_tgt), (SELECT count(*) FROM (SELECT * FROM big_src EXCEPT SELECT * FROM big_tgt) x), (SELECT count(*) FROM (SELECT * FROM big_tgt EXCEPT SELECT * FROM big_src) y), (SELECT attempts FROM coco.run WHERE run_id = $run_big), (SELECT crashes FROM coco.run WHERE run_id = $run_big)")
# the worker died by a signal: the crash is counted against its run (one more try is allowed)
[ "$d" = "200000|0|0|2|1" ] || fail "(d) after recovery: count|missing|extra|attempts|crashes = $d"
grep -q "run $run_big is queued again: its worker died" "$COCO_TMP/postgres.log" || fail "(d) no re-queue logged"
ok "(d) killed worker $wpid mid-run; after crash recovery run $run_big was re-queued and succeeded on attempt 2; big_tgt equals big_src (200000 rows)"

# --- (e) pg_ctl restart with a queued run pending ---------------------------
# app slow keeps the database's only worker busy, so app e's run is still
# queued when the server goes down.
q >/dev/null <<'SQL'
SELECT coco.create_app('slow');
SELECT coco.declare_table('slow', 'public.slow_tgt', '[{"name": "id", "type": "integer"}]', '{id}');
SELECT coco.declare_rows('slow', 'public.slow_tgt', 'SELECT 1 AS id FROM pg_catalog.pg_sleep(3) s');
SELECT coco.create_app('e');
SELECT coco.declare_table('e', 'public.e_tgt', '[{"name": "id", "type": "integer"}]', '{id}');
SELECT coco.declare_row('e', 'public.e_tgt', '{"id": 42}');
SQL
run_slow=$(q -c "SELECT coco.submit('slow')" | tail -n 1)
run_e=$(q -c "SELECT coco.submit('e')" | tail -n 1)
wait_for "SELECT status FROM coco.runs WHERE run_id = $run_slow" running || fail "(e) slow run never started"
st=$(q -c "SELECT status FROM coco.runs WHERE run_id = $run_e")
[ "$st" = queued ] || fail "(e) run $run_e is '$st' before the restart, wanted queued"
err=$(q -c "\\set VERBOSITY verbose" -c "SELECT coco.wait($run_e, '300ms')" 2>&1 || true)
echo "$err" | grep -q "ERROR:  55000: timed out waiting for run $run_e" || fail "(e) wait did not time out: $err"
err=$(q -c "\\set VERBOSITY verbose" -c "BEGIN ISOLATION LEVEL REPEATABLE READ" -c "SELECT coco.wait($run_e)" 2>&1 || true)
echo "$err" | grep -q "ERROR:  55000: run $run_e has not finished yet" || fail "(e) wait in repeatable read: $err"
ok "(e) coco.wait on the queued run $run_e times out with 55000, and refuses at once in REPEATABLE READ"
coco_pg_ctl -w -t 60 -m fast restart >/dev/null || fail "(e) restart failed"
wait_for "SELECT status FROM coco.runs WHERE run_id = $run_e" succeeded postgres 60 ||
    fail "(e) queued run $run_e did not run after the restart"
[ "$(q -c "SELECT id FROM e_tgt")" = 42 ] || fail "(e) e_tgt not converged"
wait_for "SELECT status FROM coco.runs WHERE run_id = $run_slow" succeeded postgres 30 ||
    fail "(e) interrupted slow run $run_slow did not complete"
ok "(e) run $run_e queued across pg_ctl restart ran afterwards; interrupted run $run_slow completed too"

# a launcher restarted while a worker is busy must not start a second worker
# for the same database (which would take the busy run for interrupted)
q >/dev/null <<'SQL'
SELECT coco.declare_table('slow', 'public.slow_tgt', '[{"name": "id", "type": "integer"}]', '{id}');
SELECT coco.declare_rows('slow', 'public.slow_tgt', 'SELECT 2 AS id FROM pg_catalog.pg_sleep(3) s');
SQL
run_slow2=$(q -c "SELECT coco.submit('slow')" | tail -n 1)
wait_for "SELECT status FROM coco.runs WHERE run_id = $run_slow2" running || fail "(e) slow run 2 never started"
q -c "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE backend_type = 'coco_target launcher'" >/dev/null
wait_for "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'coco_target launcher'" 1 ||
    fail "(e) the launcher was not restarted"
q -c "SELECT coco.wait($run_slow2)" >/dev/null || fail "(e) slow run 2 failed"
row=$(q -c "SELECT status, attempts, error IS NULL FROM coco.runs WHERE run_id = $run_slow2")
[ "$row" = "succeeded|1|t" ] || fail "(e) run $run_slow2 was disturbed by the launcher restart: $row"
ok "(e) the launcher, terminated mid-run, came back without starting a second worker: run $run_slow2 succeeded on its first attempt"

# --- (f) a second database; DROP EXTENSION there ----------------------------
q -c "CREATE DATABASE db2" >/dev/null
q -d db2 >/dev/null <<'SQL'
CREATE EXTENSION coco_target;
SELECT coco.create_app('two');
SELECT coco.declare_table('two', 'public.t2', '[{"name": "id", "type": "integer"}]', '{id}');
SELECT coco.declare_row('two', 'public.t2', '{"id": 2}');
SQL
run_two=$(q -d db2 -c "SELECT coco.submit('two')" | tail -n 1)
q -d db2 -c "SELECT coco.wait($run_two)" >/dev/null || fail "(f) run in db2 failed"
[ "$(q -d db2 -c "SELECT id FROM t2")" = 2 ] || fail "(f) db2 target not converged"
pid_two=$(q -d db2 -c "SELECT pid FROM coco.runs WHERE run_id = $run_two")
ok "(f) database db2 is served by its own worker (pid $pid_two): run $run_two converged"
# The worker lingers 3 s after its last run, so it is normally still there.
present=$(q -c "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'coco_target worker' AND datname = 'db2'")
log_at=$(stat -c %s "$COCO_TMP/postgres.log")
q -d db2 -c "DROP EXTENSION coco_target CASCADE" 2>/dev/null
wait_for "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'coco_target worker' AND datname = 'db2'" 0 ||
    fail "(f) worker in db2 did not exit after DROP EXTENSION"
sleep 1.5   # a launcher round: it must not start the worker again
errors=$(tail -c +"$((log_at + 1))" "$COCO_TMP/postgres.log" | grep -E "ERROR|FATAL|PANIC" || true)
[ -z "$errors" ] || fail "(f) errors in the log after DROP EXTENSION: $errors"
q -c "DROP DATABASE db2" >/dev/null || fail "(f) DROP DATABASE db2 failed (a worker still connected?)"
ok "(f) DROP EXTENSION in db2 (workers connected then: $present): no worker left, no errors logged, DROP DATABASE db2 succeeded"

# --- (g) pg_cron keeps a derived table in line ------------------------------
# pg_cron 1.5+ takes '1 seconds'; 1.4 (Debian 12) only minute schedules, so
# there the check waits for the next minute boundary.
q -c "CREATE EXTENSION IF NOT EXISTS pg_cron" >/dev/null
cron_ver=$(q -c "SELECT extversion FROM pg_extension WHERE extname = 'pg_cron'")
case "$cron_ver" in
    1.[0-4]|1.[0-4][.-]*) schedule='* * * * *'; cron_wait=75 ;;
    *) schedule='1 seconds'; cron_wait=30 ;;
esac
q >/dev/null <<'SQL'
CREATE TABLE docs (id int PRIMARY KEY, body text);
INSERT INTO docs VALUES (1, 'hello world'), (2, 'goodbye');
CREATE FUNCTION declare_docs(app text) RETURNS void LANGUAGE sql AS $$
    SELECT coco.declare_table(app, 'public.doc_words',
        '[{"name": "id", "type": "integer"}, {"name": "words", "type": "integer"}]', '{id}');
    SELECT coco.declare_rows(app, 'public.doc_words',
        'SELECT id, pg_catalog.array_length(pg_catalog.regexp_split_to_array(body, '' ''), 1) AS words FROM public.docs');
$$;
SELECT coco.create_app('docs', 'declare_docs(text)');
SELECT coco.update('docs');
SQL
[ "$(q -c "SELECT string_agg(id || ':' || words, ',' ORDER BY id) FROM doc_words")" = "1:2,2:1" ] ||
    fail "(g) coco.update('docs') did not build doc_words"
q -c "INSERT INTO docs VALUES (3, 'a b c')" -c "DELETE FROM docs WHERE id = 2" >/dev/null
# a second job in the same minute whose coco.update() fails: its run is
# recorded all the same, failed with origin 'cron' and its SQLSTATE, and
# pg_cron records the failure too
q >/dev/null <<'SQL'
CREATE FUNCTION declare_broken(app text) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'the cron source is broken' USING ERRCODE = 'CC002';
END $$;
SELECT coco.create_app('cron_broken', 'declare_broken(text)');
-- what a job's session calls itself (what tells coco_target a run is cron's)
CREATE TABLE cron_seen (application_name text);
SQL
# a third: an app of synced tables with source-driven refresh, written to
# all along, which the scheduled coco.update() updates as well
q >/dev/null <<'SQL'
CREATE TABLE mix_src (id int PRIMARY KEY, grp int NOT NULL, v int NOT NULL);
INSERT INTO mix_src SELECT g, g % 7, 0 FROM generate_series(1, 200) g;
SELECT coco.create_app('mix');
SELECT coco.sync_table('mix', 'public.mix_by_grp',
    'SELECT grp, count(*) AS n, sum(v) AS total FROM mix_src GROUP BY grp', '{grp}');
SELECT coco.reconcile('mix');
SELECT coco.set_app_option('mix', refresh => true);
SQL
mix_stop="$COCO_TMP/mix_stop"
(
    i=0
    while [ ! -e "$mix_stop" ] && [ "$i" -lt 20000 ]; do
        i=$((i + 1))
        case $((i % 3)) in
            0) q -c "UPDATE mix_src SET v = v + 1 WHERE id = $((i % 200 + 1))" ;;
            1) q -c "INSERT INTO mix_src VALUES ($((1000 + i)), $((i % 9)), $i)" ;;
            2) q -c "DELETE FROM mix_src WHERE id = $((1000 + i - 1))" ;;
        esac >/dev/null 2>&1 || echo "write $i failed" >>"$COCO_TMP/mix_errors"
    done
) &
mix_writer=$!
q -c "SELECT cron.schedule('coco-mix', '$schedule', \$\$SELECT coco.update('mix')\$\$)" >/dev/null
q -c "SELECT cron.schedule('coco-update', '$schedule', \$\$SELECT coco.update('docs')\$\$)" \
  -c "SELECT cron.schedule('coco-broken', '$schedule', \$\$SELECT coco.update('cron_broken')\$\$)" \
  -c "SELECT cron.schedule('coco-seen', '$schedule', \$\$INSERT INTO cron_seen SELECT current_setting('application_name')\$\$)" >/dev/null
wait_for "SELECT string_agg(id || ':' || words, ',' ORDER BY id) FROM doc_words" "1:2,3:3" postgres "$cron_wait" ||
    fail "(g) pg_cron did not bring doc_words in line"
[ "$(q -c "SELECT origin FROM coco.runs WHERE app = 'docs' ORDER BY run_id DESC LIMIT 1")" = cron ] ||
    fail "(g) the cron run's origin: $(q -c "SELECT origin FROM coco.runs WHERE app = 'docs' ORDER BY run_id DESC LIMIT 1")"
wait_for "SELECT concat_ws('|', status, sqlstate, origin, error) FROM coco.runs WHERE app = 'cron_broken' LIMIT 1" \
    "failed|CC002|cron|the cron source is broken" postgres 30 ||
    fail "(g) the failed cron run was not recorded"
wait_for "SELECT d.status FROM cron.job_run_details d JOIN cron.job j USING (jobid)
          WHERE j.jobname = 'coco-broken' ORDER BY d.runid DESC LIMIT 1" failed postgres 30 ||
    fail "(g) pg_cron did not record the failure"
[ "$(q -c "SELECT failing_since IS NOT NULL FROM coco.apps WHERE app = 'cron_broken'")" = t ] ||
    fail "(g) cron_broken is not shown failing"
wait_for "SELECT application_name FROM cron_seen LIMIT 1" pg_cron postgres 30 ||
    fail "(g) a cron job's application_name is not pg_cron"
# the cron update of mix ran while the writes went on; then they stop, and
# the derived table settles on its source
wait_for "SELECT d.status FROM cron.job_run_details d JOIN cron.job j USING (jobid)
          WHERE j.jobname = 'coco-mix' ORDER BY d.runid DESC LIMIT 1" succeeded postgres 30 ||
    fail "(g) the cron coco.update('mix') did not succeed"
touch "$mix_stop"
wait "$mix_writer"
[ ! -e "$COCO_TMP/mix_errors" ] || fail "(g) source writes failed: $(head -n 3 "$COCO_TMP/mix_errors")"
mix_diff="SELECT count(*) FROM ((SELECT grp, count(*) AS n, sum(v) AS total FROM mix_src GROUP BY grp
                               EXCEPT SELECT grp, n, total FROM mix_by_grp)
                              UNION ALL (SELECT grp, n, total FROM mix_by_grp
                               EXCEPT SELECT grp, count(*), sum(v) FROM mix_src GROUP BY grp)) d"
wait_for "$mix_diff" 0 postgres 30 || fail "(g) mix_by_grp did not settle on mix_src: $(q -c "$mix_diff") groups differ"
wait_for "SELECT count(*) FROM coco.runs WHERE app = 'mix' AND status IN ('queued', 'running')" 0 postgres 30 ||
    fail "(g) runs of mix left waiting"
mix_runs=$(q -c "SELECT string_agg(origin || ':' || status || ':' || n, ',' ORDER BY origin, status)
                   FROM (SELECT origin, status, count(*) AS n FROM coco.runs WHERE app = 'mix' GROUP BY 1, 2) r")
echo "$mix_runs" | grep -q "cron:succeeded" || fail "(g) no cron run of mix succeeded: $mix_runs"
echo "$mix_runs" | grep -q "refresh:succeeded" || fail "(g) no refresh run of mix succeeded: $mix_runs"
echo "$mix_runs" | grep -q ":failed" && fail "(g) a run of mix failed: $mix_runs"
ok "(g) a scheduled coco.update('mix') and source-driven refresh, with the source written all along, converged: mix_by_grp equals its source; runs by origin:status:count $mix_runs"
q -c "SELECT cron.unschedule('coco-update')" -c "SELECT cron.unschedule('coco-broken')" \
  -c "SELECT cron.unschedule('coco-seen')" -c "SELECT cron.unschedule('coco-mix')" >/dev/null
ok "(g) pg_cron $cron_ver running coco.update('docs') on schedule '$schedule' brought doc_words in line with docs (origin cron); a failing job's run is in coco.runs (failed, CC002, origin cron) and in cron.job_run_details"

# --- (i) auto-submit: a trigger-driven pipeline ------------------------------
# One component per source row, holding that row's target row: the trigger
# replaces (clear + declare) or clears it, and the commit submits the app.
q >/dev/null <<'SQL'
CREATE TABLE items (id int PRIMARY KEY, name text NOT NULL, qty int NOT NULL);
SELECT coco.create_app('pipe');
CREATE FUNCTION items_declare() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP IN ('UPDATE', 'DELETE') THEN
        PERFORM coco.clear_component('pipe', ARRAY[OLD.id::text]);
    END IF;
    IF TG_OP IN ('INSERT', 'UPDATE') THEN
        PERFORM coco.declare_row('pipe', 'public.items_tgt',
            jsonb_build_object('id', NEW.id, 'name', upper(NEW.name), 'qty', NEW.qty),
            ARRAY[NEW.id::text]);
    END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER items_coco AFTER INSERT OR UPDATE OR DELETE ON items
    FOR EACH ROW EXECUTE FUNCTION items_declare();
BEGIN;
SELECT coco.set_app_option('pipe', true);
SELECT coco.declare_table('pipe', 'public.items_tgt',
    '[{"name": "id", "type": "integer"}, {"name": "name", "type": "text"}, {"name": "qty", "type": "integer"}]', '{id}');
COMMIT;
SQL
wait_for "SELECT to_regclass('public.items_tgt') IS NOT NULL" t ||
    fail "(i) the commit declaring items_tgt did not submit app pipe"
[ "$(q -c "SELECT auto_submit FROM coco.apps WHERE app = 'pipe'")" = t ] || fail "(i) coco.apps does not show auto_submit"
tgt="SELECT coalesce(string_agg(id || ':' || name || ':' || qty, ',' ORDER BY id), '') FROM items_tgt"
q -c "INSERT INTO items VALUES (1, 'apple', 3), (2, 'pear', 5)" >/dev/null
wait_for "$tgt" "1:APPLE:3,2:PEAR:5" || fail "(i) insert not followed"
q -c "UPDATE items SET qty = 7 WHERE id = 2" >/dev/null
wait_for "$tgt" "1:APPLE:3,2:PEAR:7" || fail "(i) update not followed"
q -c "DELETE FROM items WHERE id = 1" >/dev/null
wait_for "$tgt" "2:PEAR:7" || fail "(i) delete not followed"
q -c "BEGIN ISOLATION LEVEL REPEATABLE READ" -c "INSERT INTO items VALUES (5, 'kiwi', 2)" -c "COMMIT" >/dev/null
wait_for "$tgt" "2:PEAR:7,5:KIWI:2" || fail "(i) repeatable read insert not followed"
wait_for "SELECT count(*) FILTER (WHERE status <> 'succeeded' OR submitted_at IS NULL) FROM coco.runs WHERE app = 'pipe'" 0 ||
    fail "(i) pipe has runs that are not submitted or did not succeed"
nruns=$(q -c "SELECT count(*) FROM coco.runs WHERE app = 'pipe'")
ok "(i) with auto_submit, the target followed insert, update, delete and a repeatable read insert of the source rows in separate transactions, through $nruns submitted runs, with no explicit coco.submit"

# rolled back, entirely or a savepoint: nothing staged, nothing queued
q -c "BEGIN" -c "INSERT INTO items VALUES (3, 'plum', 1)" -c "UPDATE items SET qty = 0 WHERE id = 2" -c "ROLLBACK" >/dev/null
q -c "BEGIN" -c "SAVEPOINT s" -c "INSERT INTO items VALUES (4, 'fig', 1)" -c "ROLLBACK TO SAVEPOINT s" -c "COMMIT" >/dev/null
sleep 1
row=$(q -c "SELECT count(*), sum(pending_declarations) FROM coco.runs r, coco.apps a WHERE r.app = 'pipe' AND a.app = 'pipe'")
[ "$row" = "$nruns|0" ] || fail "(i) after rollbacks: runs|pending = '$row', wanted '$nruns|0'"
[ "$(q -c "$tgt")" = "2:PEAR:7,5:KIWI:2" ] || fail "(i) a rolled-back change reached the target"
ok "(i) a rolled-back transaction and a rolled-back savepoint queued nothing and changed nothing (still $nruns runs, 0 pending declarations)"

# while a run of another app keeps the worker busy, two commits queue one run
q >/dev/null <<'SQL'
SELECT coco.declare_table('slow', 'public.slow_tgt', '[{"name": "id", "type": "integer"}]', '{id}');
SELECT coco.declare_rows('slow', 'public.slow_tgt', 'SELECT 3 AS id FROM pg_catalog.pg_sleep(3) s');
SQL
run_slow3=$(q -c "SELECT coco.submit('slow')" | tail -n 1)
wait_for "SELECT status FROM coco.runs WHERE run_id = $run_slow3" running || fail "(i) slow run never started"
q -c "INSERT INTO items VALUES (6, 'lime', 1)" >/dev/null
q -c "INSERT INTO items VALUES (7, 'date', 9)" >/dev/null
row=$(q -c "SELECT count(*) FILTER (WHERE status = 'queued'), count(*) FROM coco.runs WHERE app = 'pipe'")
[ "$row" = "1|$((nruns + 1))" ] || fail "(i) two commits behind a busy worker: queued|total = '$row', wanted '1|$((nruns + 1))'"
wait_for "$tgt" "2:PEAR:7,5:KIWI:2,6:LIME:1,7:DATE:9" || fail "(i) the queued run did not take both commits"
ok "(i) two commits while the worker was busy queued one run, which took both"

err=$(q -c "\\set VERBOSITY verbose" -c "SET ROLE other" -c "SELECT coco.set_app_option('pipe', false)" 2>&1 || true)
echo "$err" | grep -q "ERROR:  42501: permission denied for app \"pipe\"" || fail "(i) a stranger set an option: $err"
ok "(i) coco.set_app_option by a non-member fails with 42501"

# --- (j) run retention --------------------------------------------------------
[ "$(q -c "SHOW coco_target.run_retention")" = 7d ] || fail "(j) default retention is not 7d"
q -c "ALTER SYSTEM SET coco_target.run_retention = 0" -c "SELECT pg_reload_conf()" >/dev/null
sleep 1
q -c "UPDATE coco.run SET started_at = now() - interval '30 days', finished_at = now() - interval '30 days' WHERE run_id = $run_a" >/dev/null
# a canceled run is finished too: one canceled in its own transaction, made old
run_c=$(q -c "BEGIN" -c "SELECT coco.submit('e')" -c "SELECT coco.cancel(currval('coco.run_run_id_seq'))" -c "COMMIT" | sed -n 1p)
q -c "UPDATE coco.run SET finished_at = now() - interval '30 days' WHERE run_id = $run_c AND status = 'canceled'" >/dev/null
run_j=$(q -c "SELECT coco.submit('e')" | tail -n 1)
q -c "SELECT coco.wait($run_j)" >/dev/null || fail "(j) run $run_j failed"
sleep 2
[ "$(q -c "SELECT count(*) FROM coco.run WHERE run_id = $run_a")" = 1 ] || fail "(j) run_retention = 0 deleted run $run_a"
ok "(j) with run_retention = 0 run $run_a, finished 30 days ago, is kept"
q -c "ALTER SYSTEM SET coco_target.run_retention = '1h'" -c "SELECT pg_reload_conf()" >/dev/null
sleep 1
run_j=$(q -c "SELECT coco.submit('e')" | tail -n 1)
q -c "SELECT coco.wait($run_j)" >/dev/null || fail "(j) run $run_j failed"
wait_for "SELECT count(*) FROM coco.run WHERE run_id IN ($run_a, $run_c)" 0 || fail "(j) runs $run_a, $run_c (canceled) not deleted with run_retention = 1h"
row=$(q -c "SELECT count(*) FROM coco.run WHERE run_id IN ($run_b, $run_bad, $run_j)")
[ "$row" = 3 ] || fail "(j) recent runs were deleted too ($row of 3 left)"
q -c "ALTER SYSTEM RESET coco_target.run_retention" -c "SELECT pg_reload_conf()" >/dev/null
ok "(j) with run_retention = 1h the worker deleted run $run_a and the canceled run $run_c (finished 30 days ago) and kept the recent runs"

# --- (h) not preloaded: submit refuses with a hint --------------------------
echo "shared_preload_libraries = 'pg_cron'" >>"$PGDATA/postgresql.conf"
coco_pg_ctl -w -t 60 -m fast restart >/dev/null || fail "(h) restart failed"
wait_server || fail "(h) server did not come back"
err=$(q -c "\\set VERBOSITY verbose" -c "SELECT coco.submit('a')" 2>&1 || true)
echo "$err" | grep -q "ERROR:  55000: coco.submit() requires the coco_target background worker" ||
    fail "(h) submit without preload said: $err"
echo "$err" | grep -q "HINT:  Add coco_target to shared_preload_libraries" || fail "(h) no hint: $err"
ok "(h) without shared_preload_libraries coco.submit() fails with SQLSTATE 55000 and a hint"

echo "worker scenario passed"
