#!/usr/bin/env bash
# Scenario: the scheduler shares the workers fairly, bounds and cancels runs,
# coalesces bursts of submits and contains a run that crashes its worker.
#   (a) flood, one worker per database: while alice submits app flood 3,000
#       times (one transaction each), bob's run of another app waits less
#       than 1 s to start; every flood submit ends succeeded, or coalesced
#       into a run that succeeded
#   (b) time limit, one worker: a run stuck in a 60 s query is cancelled at
#       coco_target.run_timeout (5 s), bob's run behind it finishes within
#       7 s of its submit; the stuck run is retried and ends failed with
#       SQLSTATE 57014 after 2 attempts of about 5 s; coco.wait raises 57014
#   (c) two workers: bob's run completes while alice's run is stuck (seen in
#       coco.runs and coco.workers); bob may not cancel alice's run (42501),
#       alice may: it is canceled at once, its query is gone, the worker
#       did not die, coco.wait on it raises 57014
#   (d) cancelling a queued run (coco_target.submit_delay keeps it queued),
#       also by a member of the owner role; a second cancel and a cancel of
#       a finished run return false; NULL raises 22004, an unknown run 42704;
#       a queued run's cancel is undone by a rollback, and a transaction
#       left open after it holds that app's runs back but no other app's;
#       a cancel that fails (read-only, caught in PL/pgSQL) leaves the
#       session and the server sound; an open drop_app of an app with old
#       runs holds up no worker deleting old runs
#   (e) coalescing: 200 submits of one app from 10 sessions in about a
#       second, with submit_delay = 200ms, execute at most 20 runs; every
#       waiter gets a result; cancelling a coalesced run returns false and
#       names the run it joined; the same with submit_delay = 0 (count shown)
#   (g) a run whose query catches query_canceled: past its time limit plus
#       a 5 s grace the worker is ended (no crash) and the run settled;
#       coco.cancel of such a run ends its worker likewise, and returns true
#   (h) with no worker alive, two apps submitted at once run side by side
#   (f) crash loop, in database crashdb: a run that kills its worker at the
#       fault point after_decisions (set for that database) is retried
#       once, then failed as having crashed its worker, and its app is
#       flagged; at most 2 crash-restarts; no third attempt; without the
#       fault point, the owner's next submit clears the flag and succeeds
# Outside (f) the server never restarts. Measured figures are printed as
# "figure: ..." lines.
# Runs against the throwaway cluster scripts/test.sh starts (PG* env set).
set -euo pipefail
source "$(dirname "$0")/../scripts/lib.sh"
# psql -U alice would otherwise connect to a database named alice
export PGDATABASE=postgres

fail() {
    echo "FAIL: $*" >&2
    echo "--- server log (tail) ---" >&2
    tail -n 40 "$COCO_TMP/postgres.log" >&2
    exit 1
}
figure() { echo "figure: $*"; }

# Run `sql` as role $1 (optionally in database $3), expecting an error:
# sets $err (psql's output) and $state (the SQLSTATE of the error, or '').
try_sql() {
    local role=$1 sql=$2 db=${3:-postgres}
    err=$(q -U "$role" -d "$db" -c "\\set VERBOSITY verbose" -c "$sql" 2>&1 || true)
    state=$(printf '%s\n' "$err" | sed -n 's/^ERROR:  \([0-9A-Z]\{5\}\): .*/\1/p' | head -n 1)
}

# Milliseconds now; seconds (2 decimals) since such a value; a < b for decimals.
now_ms() { date +%s%3N; }
secs_since() { awk -v a="$1" -v b="$(now_ms)" 'BEGIN { printf "%.2f", (b - a) / 1000 }'; }
lt() { awk -v a="$1" -v b="$2" 'BEGIN { exit !(a + 0 < b + 0) }'; }

# set_conf name value [name value ...]: ALTER SYSTEM SET coco_target.<name>
# (value RESET: back to the default), reload, and give the workers a second
# to read it.
set_conf() {
    local args=()
    while [ $# -ge 2 ]; do
        if [ "$2" = RESET ]; then
            args+=(-c "ALTER SYSTEM RESET coco_target.$1")
        else
            args+=(-c "ALTER SYSTEM SET coco_target.$1 = '$2'")
        fi
        shift 2
    done
    q "${args[@]}" -c "SELECT pg_reload_conf()" >/dev/null || fail "could not change settings: ${args[*]}"
    sleep 1
}

# tiny_app role app [db]: an app of `role` declaring a one-row table in the
# role's schema, so each of its runs does something small.
tiny_app() {
    local role=$1 app=$2 db=${3:-postgres}
    q -U "$role" -d "$db" >/dev/null <<SQL || fail "could not create app $app"
SELECT coco.create_app('$app');
SELECT coco.declare_table('$app', '$role.${app}_t', '[{"name": "id", "type": "integer"}]', '{id}');
SELECT coco.declare_row('$app', '$role.${app}_t', '{"id": 1}');
SQL
}

# submit_stuck label: submit alice's app stuck and wait until its worker
# sits in the 60 s pg_sleep; sets $stuck_run and $stuck_pid.
submit_stuck() {
    stuck_run=$(q -U alice -c "SELECT coco.submit('stuck')")
    wait_for "SELECT status FROM coco.runs WHERE run_id = $stuck_run" running postgres 10 ||
        fail "$1 run $stuck_run of app stuck did not start"
    stuck_pid=$(q -c "SELECT pid FROM coco.runs WHERE run_id = $stuck_run")
    wait_for "SELECT wait_event FROM pg_stat_activity WHERE pid = $stuck_pid" PgSleep postgres 4 ||
        fail "$1 the worker $stuck_pid running run $stuck_run is not in its pg_sleep"
}

# Submit `app` as `role`, wait for the run up to `secs` and print
# "run_id|t" (t: coco.wait returned a result). Fails the psql on any error.
submit_and_wait() {
    local role=$1 app=$2 secs=$3
    q -U "$role" <<SQL
SELECT coco.submit('$app') AS r \\gset
SELECT :r, coco.wait(:r, '${secs}s') IS NOT NULL;
SQL
}

# Wait until no worker is connected to database $1 (an idle one leaves by
# itself after a few seconds); terminate any still there after 15 s.
no_worker_in() {
    local sql="SELECT count(*) FROM pg_stat_activity WHERE datname = '$1' AND backend_type LIKE 'coco_target%'"
    wait_for "$sql" 0 postgres 15 2>/dev/null && return 0
    q -c "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '$1' AND backend_type LIKE 'coco_target%'" >/dev/null
    wait_for "$sql" 0 postgres 10 || fail "a worker is still connected to database $1"
}

# How many crash-restarts the server log shows since mark $1.
restarts_since() {
    tail -c +"$(($1 + 1))" "$COCO_TMP/postgres.log" |
        grep -c "all server processes terminated; reinitializing" || true
}

mark0=$(coco_log_mark)

# alice and bob own their apps, each in a schema of their own (carol is a
# member of alice). in_coco_worker() tells a worker's backend from a
# client's; it reads pg_stat_activity with its owner's rights, so it answers
# the same whoever calls it (the worker runs a query as the app's owner).
q >/dev/null <<'SQL'
CREATE EXTENSION coco_target;
CREATE ROLE alice LOGIN;
CREATE ROLE bob LOGIN;
CREATE ROLE carol LOGIN IN ROLE alice;
CREATE SCHEMA alice AUTHORIZATION alice;
CREATE SCHEMA bob AUTHORIZATION bob;
CREATE FUNCTION public.in_coco_worker() RETURNS boolean
    LANGUAGE sql SECURITY DEFINER SET search_path = pg_catalog AS $$
    SELECT coalesce((SELECT backend_type LIKE 'coco_target%'
                       FROM pg_stat_activity WHERE pid = pg_backend_pid()), false)
$$;
SQL
tiny_app alice flood
tiny_app bob bobapp

# --- (a) flood, one worker per database ------------------------------------
set_conf workers_per_database 1
for _ in $(seq 1 3000); do echo "SELECT coco.submit('flood');"; done >"$COCO_TMP/flood.sql"
flood_t0=$(now_ms)
q -U alice -f "$COCO_TMP/flood.sql" >"$COCO_TMP/flood.ids" 2>"$COCO_TMP/flood.err" &
flood_job=$!
n=0
deadline=$((SECONDS + 120))
while [ "$SECONDS" -lt "$deadline" ]; do
    n=$(q -c "SELECT count(*) FROM coco.runs WHERE app = 'flood'" 2>/dev/null || echo 0)
    [ "$n" -ge 1000 ] && break
    kill -0 "$flood_job" 2>/dev/null || break
    sleep 0.1
done
[ "$n" -ge 1000 ] || fail "(a) the flood did not reach 1000 submits while running (at $n): $(cat "$COCO_TMP/flood.err")"
kill -0 "$flood_job" 2>/dev/null || fail "(a) the flood had ended before bob submitted; nothing was measured"
figure "(a) flood submits done when bob submitted: $n of 3000"
out=$(submit_and_wait bob bobapp 30) || fail "(a) bob's run did not succeed during the flood: $out"
IFS='|' read -r bob_run got <<<"$out"
[ "$got" = t ] || fail "(a) coco.wait on bob's run $bob_run returned no result"
flooding=$(kill -0 "$flood_job" 2>/dev/null && echo yes || echo no)
waited=$(q -c "SELECT round(extract(epoch FROM waited), 3) FROM coco.runs WHERE run_id = $bob_run")
figure "(a) bob's run $bob_run waited ${waited}s to start during the flood (flood still submitting after it: $flooding)"
if [ -z "$waited" ] || ! lt "$waited" 1; then
    fail "(a) bob's run $bob_run waited '${waited}' s to start, wanted < 1 s"
fi
wait "$flood_job" || fail "(a) the flood's psql failed: $(cat "$COCO_TMP/flood.err")"
flood_secs=$(secs_since "$flood_t0")
lines=$(grep -c '^[0-9][0-9]*$' "$COCO_TMP/flood.ids" || true)
[ "$lines" = 3000 ] || fail "(a) the flood returned $lines run ids, wanted 3000"
after=$(q -c "SELECT count(*) FROM coco.runs WHERE app = 'flood' AND run_id > $bob_run")
[ "$after" -gt 0 ] || fail "(a) no flood submit came after bob's run $bob_run: the flood did not overlap it"
figure "(a) 3000 flood submits took ${flood_secs}s; $after flood runs were recorded after bob's submit"
ok "(a) during a flood of 3000 submits of alice's app, with one worker per database, bob's run $bob_run waited ${waited}s (< 1 s) to start"
wait_for "SELECT count(*) FROM coco.runs WHERE app = 'flood' AND status IN ('queued', 'running')" 0 postgres 120 ||
    fail "(a) the flood's runs did not drain"
executed=$(q -c "SELECT count(*) FROM coco.runs WHERE app = 'flood' AND status <> 'coalesced'")
figure "(a) flood runs executed (status <> 'coalesced'): $executed for 3000 submits"
# Follow every submit's run through coalesced_into to the run that executed it.
row=$(q <<SQL
CREATE TEMP TABLE flood_ids (run_id bigint);
\\copy flood_ids FROM '$COCO_TMP/flood.ids'
WITH RECURSIVE chain (id, run_id, depth) AS (
    SELECT run_id, run_id, 0 FROM flood_ids
  UNION ALL
    SELECT c.id, r.coalesced_into, c.depth + 1
      FROM chain c JOIN coco.runs r ON r.run_id = c.run_id
     WHERE r.status = 'coalesced' AND r.coalesced_into IS NOT NULL AND c.depth < 100)
SELECT count(*), count(*) FILTER (WHERE r.status = 'succeeded'),
       (SELECT count(DISTINCT run_id) FROM flood_ids)
  FROM (SELECT DISTINCT ON (id) id, run_id FROM chain ORDER BY id, depth DESC) t
  LEFT JOIN coco.runs r ON r.run_id = t.run_id;
SQL
) || fail "(a) could not check the flood's runs"
row=$(printf '%s\n' "$row" | tail -n 1)
IFS='|' read -r n_ids n_ok n_distinct <<<"$row"
if [ "$n_ids" != "$n_distinct" ] || [ "$n_ok" != "$n_ids" ] || [ "$n_ids" -eq 0 ]; then
    fail "(a) of $n_ids distinct flood run ids, $n_ok succeeded or were coalesced into a run that succeeded"
fi
ok "(a) all 3000 flood submits ($n_ids run ids) ended succeeded or coalesced into a succeeded run; $executed runs executed"

# --- (b) time limit, one worker ---------------------------------------------
set_conf run_timeout 5s max_attempts 2 retry_base 500ms
q -U alice >/dev/null <<'SQL' || fail "(b) could not create app stuck"
CREATE FUNCTION alice.slow_src() RETURNS TABLE (id integer) LANGUAGE plpgsql AS $$
BEGIN
    IF public.in_coco_worker() THEN
        PERFORM pg_catalog.pg_sleep(60);
    END IF;
    RETURN QUERY SELECT 1;
END $$;
SELECT coco.create_app('stuck');
SELECT coco.declare_table('stuck', 'alice.stuck_t', '[{"name": "id", "type": "integer"}]', '{id}');
SQL
t0=$(now_ms)
# counted at declare time (coco_target.declare_rows_count), the query runs
# in the client session, where it is fast
n=$(q -U alice -c "SET coco_target.declare_rows_count = on" \
      -c "SELECT coco.declare_rows('stuck', 'alice.stuck_t', 'SELECT id FROM alice.slow_src()')") ||
    fail "(b) declare_rows of app stuck failed"
decl_secs=$(secs_since "$t0")
if [ "$n" != 1 ] || ! lt "$decl_secs" 5; then
    fail "(b) declare_rows in a client session returned '$n' after ${decl_secs}s (wanted 1, fast)"
fi
submit_stuck "(b)"
run_stuck=$stuck_run
# bob submits and waits in the background, while the stuck run is watched
bob_t0=$(now_ms)
submit_and_wait bob bobapp 20 >"$COCO_TMP/b.bob" 2>&1 &
bob_job=$!
att1=""
deadline=$((SECONDS + 45))
while [ "$SECONDS" -lt "$deadline" ]; do
    row=$(q -c "SELECT status, attempts, coalesce(round(extract(epoch FROM finished_at - started_at), 2)::text, '')
                  FROM coco.runs WHERE run_id = $run_stuck" 2>/dev/null || true)
    case "$row" in
        "queued|1|"?*) att1=${row##*|} ;;
        failed\|* | succeeded\|* | canceled\|*) break ;;
    esac
    sleep 0.1
done
wait "$bob_job" || fail "(b) bob's coco.wait(run, '20s') did not succeed behind the stuck run: $(cat "$COCO_TMP/b.bob")"
IFS='|' read -r bob_run got <"$COCO_TMP/b.bob"
[ "$got" = t ] || fail "(b) coco.wait on bob's run returned no result: $(cat "$COCO_TMP/b.bob")"
bob_wall=$(secs_since "$bob_t0")
bob_done=$(q -c "SELECT round(extract(epoch FROM finished_at - submitted_at), 2) FROM coco.runs WHERE run_id = $bob_run")
figure "(b) bob's run $bob_run finished ${bob_done}s after its submit (${bob_wall}s wall clock for submit + wait) behind a run stuck for the 5 s limit"
if [ -z "$bob_done" ] || ! lt "$bob_done" 7; then
    fail "(b) bob's run $bob_run finished '${bob_done}' s after its submit, wanted < 7 s"
fi
ok "(b) bob's run $bob_run finished ${bob_done}s after its submit although the only worker was stuck in alice's run"
row=$(q -c "SELECT status, coalesce(sqlstate, ''), attempts,
                   round(extract(epoch FROM finished_at - started_at), 2),
                   round(extract(epoch FROM finished_at - submitted_at), 2)
              FROM coco.runs WHERE run_id = $run_stuck")
IFS='|' read -r st sqlstate attempts last total <<<"$row"
error=$(q -c "SELECT error FROM coco.runs WHERE run_id = $run_stuck")
figure "(b) stuck run $run_stuck: attempt 1 lasted ${att1:-?}s (seen while it waited for its retry), attempt 2 ${last}s, ${total}s from submit to failed"
[ "$st|$sqlstate|$attempts" = "failed|57014|2" ] ||
    fail "(b) stuck run $run_stuck: status|sqlstate|attempts = '$st|$sqlstate|$attempts', wanted 'failed|57014|2' (error: $error)"
printf '%s\n' "$error" | grep -Eiq 'time ?limit|run_timeout|timed out|time-?out' ||
    fail "(b) stuck run $run_stuck's error does not mention the time limit: $error"
if ! lt 4.5 "$last" || ! lt "$last" 8; then
    fail "(b) the last attempt of run $run_stuck lasted ${last}s, wanted about 5 s"
fi
if ! lt 9.5 "$total" || ! lt "$total" 25; then
    fail "(b) run $run_stuck took ${total}s from submit to failed over 2 attempts, wanted about 2 x 5 s"
fi
if [ -n "$att1" ] && { ! lt 4.5 "$att1" || ! lt "$att1" 8; }; then
    fail "(b) the first attempt of run $run_stuck lasted ${att1}s, wanted about 5 s"
fi
try_sql alice "SELECT coco.wait($run_stuck, '5s')"
[ "$state" = 57014 ] || fail "(b) coco.wait on the timed-out run $run_stuck: $err"
ok "(b) run $run_stuck, stuck in a 60 s query, was stopped at the 5 s limit on each of its 2 attempts (${att1:-?}s, ${last}s): failed, sqlstate 57014, error '$(printf '%s' "$error" | head -n 1)'; coco.wait raises 57014"

# --- (c) two workers: one stuck, another app goes on; cancel ---------------
set_conf workers_per_database 2 run_timeout 0
mark_c=$(coco_log_mark)
# the failed run kept its declarations staged: the next run evaluates them again
[ "$(q -c "SELECT pending_declarations > 0 FROM coco.apps WHERE app = 'stuck'")" = t ] ||
    fail "(c) app stuck has nothing staged any more after its failed run $run_stuck"
submit_stuck "(c)"
run_stuck2=$stuck_run
row=$(q -c "SELECT pid, state, app, since <= now() FROM coco.workers WHERE run_id = $run_stuck2")
[ "$row" = "$stuck_pid|running|stuck|t" ] || fail "(c) coco.workers for run $run_stuck2: '$row', wanted '$stuck_pid|running|stuck|t'"
row=$(q -U alice -c "SELECT app FROM coco.workers WHERE pid = $stuck_pid")
[ "$row" = stuck ] || fail "(c) alice sees app '$row' in coco.workers for worker $stuck_pid, wanted stuck"
row=$(q -U bob -c "SELECT count(*), count(app) FROM coco.workers WHERE pid = $stuck_pid")
[ "$row" = "1|0" ] || fail "(c) bob sees count|count(app) = '$row' for alice's worker $stuck_pid, wanted '1|0' (row, app hidden)"
ok "(c) run $run_stuck2 is running in worker $stuck_pid: coco.runs and coco.workers show it (app hidden from bob)"
t0=$(now_ms)
out=$(submit_and_wait bob bobapp 10) || fail "(c) bob's coco.wait(run, '10s') failed while alice's run was stuck: $out"
bob_wall=$(secs_since "$t0")
IFS='|' read -r bob_run got <<<"$out"
[ "$got" = t ] || fail "(c) coco.wait on bob's run $bob_run returned no result"
row=$(q -c "SELECT r.pid <> $stuck_pid, s.status FROM coco.runs r, coco.runs s WHERE r.run_id = $bob_run AND s.run_id = $run_stuck2")
[ "$row" = "t|running" ] || fail "(c) bob's run $bob_run ran in the stuck worker, or the stuck run stopped: '$row'"
figure "(c) bob's run $bob_run: submit + wait took ${bob_wall}s while run $run_stuck2 was stuck in the other worker"
ok "(c) bob's run $bob_run succeeded in another worker while run $run_stuck2 was stuck"
try_sql bob "SELECT coco.cancel($run_stuck2)"
[ "$state" = 42501 ] || fail "(c) bob cancelling alice's run $run_stuck2: $err"
[ "$(q -c "SELECT status FROM coco.runs WHERE run_id = $run_stuck2")" = running ] ||
    fail "(c) bob's refused cancel changed run $run_stuck2"
ok "(c) bob may not cancel alice's run $run_stuck2 (42501); it keeps running"
t0=$(now_ms)
got=$(q -U alice -c "SELECT coco.cancel($run_stuck2)") || fail "(c) alice's coco.cancel($run_stuck2) failed"
cancel_secs=$(secs_since "$t0")
st=$(q -c "SELECT status FROM coco.runs WHERE run_id = $run_stuck2")
sleepers=$(q -c "SELECT count(*) FROM pg_stat_activity WHERE backend_type LIKE 'coco_target%' AND wait_event = 'PgSleep'")
alive=$(q -c "SELECT count(*) FROM pg_stat_activity WHERE pid = $stuck_pid")
figure "(c) coco.cancel of the running run $run_stuck2 returned after ${cancel_secs}s"
[ "$got" = t ] || fail "(c) alice's coco.cancel($run_stuck2) returned '$got', wanted t"
[ "$st" = canceled ] || fail "(c) run $run_stuck2 is '$st' right after coco.cancel, wanted canceled"
[ "$sleepers" = 0 ] || fail "(c) a worker is still in the cancelled run's pg_sleep"
[ "$alive" = 1 ] || fail "(c) the worker $stuck_pid is gone after the cancel"
crashed=$(coco_crashed_since "$mark_c")
[ -z "$crashed" ] || fail "(c) a process died around the cancel: $crashed"
try_sql alice "SELECT coco.wait($run_stuck2, '5s')"
[ "$state" = 57014 ] || fail "(c) coco.wait on the canceled run $run_stuck2: $err"
ok "(c) alice cancelled her running run $run_stuck2 in ${cancel_secs}s: canceled at once, its pg_sleep gone, worker $stuck_pid alive, no crash; coco.wait raises 57014"

# --- (d) cancel a queued run ------------------------------------------------
set_conf submit_delay 30s
tiny_app alice q
run_q=$(q -U alice -c "SELECT coco.submit('q')")
sleep 0.5
row=$(q -c "SELECT status, started_at IS NULL, attempts FROM coco.runs WHERE run_id = $run_q")
[ "$row" = "queued|t|0" ] || fail "(d) run $run_q with submit_delay = 30s: status|not started|attempts = '$row', wanted 'queued|t|0'"
got=$(q -U alice -c "SELECT coco.cancel($run_q)")
[ "$got" = t ] || fail "(d) coco.cancel of the queued run $run_q returned '$got', wanted t"
row=$(q -c "SELECT status, started_at IS NULL FROM coco.runs WHERE run_id = $run_q")
[ "$row" = "canceled|t" ] || fail "(d) run $run_q after coco.cancel: '$row', wanted 'canceled|t'"
got=$(q -U alice -c "SELECT coco.cancel($run_q)")
[ "$got" = f ] || fail "(d) a second coco.cancel($run_q) returned '$got', wanted f"
try_sql alice "SELECT coco.wait($run_q, '2s')"
[ "$state" = 57014 ] || fail "(d) coco.wait on the canceled queued run $run_q: $err"
ok "(d) the queued run $run_q was canceled (true) before it started; cancelling again returns false; coco.wait raises 57014"
run_q2=$(q -U alice -c "SELECT coco.submit('q')")
got=$(q -U carol -c "SELECT coco.cancel($run_q2)")
[ "$got" = t ] || fail "(d) carol, a member of alice, cancelling run $run_q2: '$got', wanted t"
[ "$(q -c "SELECT status FROM coco.runs WHERE run_id = $run_q2")" = canceled ] || fail "(d) run $run_q2 not canceled by carol"
got=$(q -U bob -c "SELECT coco.cancel($bob_run)")
[ "$got" = f ] || fail "(d) cancelling bob's finished run $bob_run returned '$got', wanted f"
try_sql alice "SELECT coco.cancel(NULL)"
[ "$state" = 22004 ] || fail "(d) coco.cancel(NULL): $err"
try_sql alice "SELECT coco.cancel(999999999)"
[ "$state" = 42704 ] || fail "(d) coco.cancel(999999999): $err"
# A cancel that fails (read-only transaction; caught in PL/pgSQL) leaves
# the session sound and the server up.
mark_d=$(coco_log_mark)
run_q4=$(q -U alice -c "SELECT coco.submit('q')")
out=$(q -U alice -v ON_ERROR_STOP=0 -c "\\set VERBOSITY sqlstate" -c "BEGIN READ ONLY" \
    -c "SELECT coco.cancel($run_q4)" -c "ROLLBACK" -c "SELECT 'session alive'" 2>&1)
case "$out" in *25006*"session alive") ;; *) fail "(d) a cancel in a read-only transaction: $out" ;; esac
out=$(q -U alice -v ON_ERROR_STOP=0 -c "BEGIN READ ONLY" \
    -c "DO \$\$ BEGIN PERFORM coco.cancel($run_q4); EXCEPTION WHEN OTHERS THEN RAISE NOTICE 'caught %', SQLSTATE; END \$\$" \
    -c "COMMIT" -c "SELECT 'session alive'" 2>&1)
case "$out" in *"caught 25006"*"session alive") ;; *) fail "(d) a cancel caught in PL/pgSQL: $out" ;; esac
[ -z "$(coco_crashed_since "$mark_d")" ] || fail "(d) a failed cancel crashed a process: $(coco_crashed_since "$mark_d")"
[ "$(q -c "SELECT status FROM coco.runs WHERE run_id = $run_q4")" = queued ] || fail "(d) run $run_q4 changed by failed cancels"
[ "$(q -U alice -c "SELECT coco.cancel($run_q4)")" = t ] || fail "(d) run $run_q4 could not be canceled afterwards"

# A queued run is canceled in the canceling transaction: rolled back, the
# cancel is undone; left open, it keeps the run (and its app's later runs)
# from starting and holds nothing the workers wait for: other apps' runs
# go on; at its commit the run is canceled.
run_q3=$(q -U alice -c "SELECT coco.submit('q')")
q -U alice -c "BEGIN" -c "SELECT coco.cancel($run_q3)" -c "ROLLBACK" >/dev/null
[ "$(q -c "SELECT status FROM coco.runs WHERE run_id = $run_q3")" = queued ] ||
    fail "(d) a cancel rolled back left run $run_q3 not queued"
q -U alice -c "BEGIN" -c "SELECT coco.cancel($run_q3)" -c "SELECT pg_sleep(6)" -c "COMMIT" >/dev/null 2>&1 &
open_job=$!
sleep 0.5
set_conf submit_delay RESET
t0=$(now_ms)
out=$(submit_and_wait bob bobapp 5) || fail "(d) bob's run did not succeed while alice's cancel transaction was open: $out"
figure "(d) bob's run took $(secs_since "$t0")s while alice's transaction canceling run $run_q3 stayed open"
kill -0 "$open_job" 2>/dev/null || fail "(d) alice's transaction ended too early to show anything"
row=$(q -c "SELECT status, attempts FROM coco.runs WHERE run_id = $run_q3")
[ "$row" = "queued|0" ] || fail "(d) run $run_q3, being canceled by an open transaction, is '$row', wanted queued|0"
wait "$open_job" || fail "(d) alice's cancel transaction failed"
[ "$(q -c "SELECT status FROM coco.runs WHERE run_id = $run_q3")" = canceled ] ||
    fail "(d) run $run_q3 not canceled after the canceling transaction committed"

# An owner dropping an app with old runs in a transaction left open holds
# nothing the workers wait for either, when they delete old runs.
tiny_app alice olddrop
q -U alice -c "SELECT coco.submit('olddrop')" >/dev/null
wait_for "SELECT count(*) FROM coco.runs WHERE app = 'olddrop' AND status = 'succeeded'" 1 ||
    fail "(d) app olddrop's run did not succeed"
q -c "UPDATE coco.run r SET finished_at = now() - interval '2 days' FROM coco.app a WHERE a.app_id = r.app_id AND a.name = 'olddrop'" >/dev/null
# one worker, started by bob's submit: it deletes old runs before it
# serves bob
set_conf workers_per_database 1
no_worker_in postgres
q -U alice -c "BEGIN" -c "SELECT coco.drop_app('olddrop', true)" -c "SELECT pg_sleep(6)" -c "COMMIT" >/dev/null 2>&1 &
open_job=$!
sleep 0.5
set_conf run_retention 1d
out=$(submit_and_wait bob bobapp 5) || fail "(d) bob's run did not succeed while alice's drop_app transaction was open: $out"
kill -0 "$open_job" 2>/dev/null || fail "(d) alice's drop_app transaction ended too early to show anything"
wait "$open_job" || fail "(d) alice's drop_app transaction failed"
set_conf run_retention RESET workers_per_database 2
ok "(d) a member of the owner role cancels too; a finished run gives false; coco.cancel(NULL) raises 22004, an unknown run 42704; a queued run's cancel is transactional and, left open, blocks nobody"

# --- (e) coalescing ---------------------------------------------------------
tiny_app alice burst
{
    # spread over about a second: 20 submits 50 ms apart
    for i in $(seq 1 20); do echo "SELECT coco.submit('burst') AS r$i \\gset"; echo "SELECT pg_sleep(0.05);"; done
    for i in $(seq 1 20); do echo "SELECT :r$i, coco.wait(:r$i, '60s') IS NOT NULL;"; done
} >"$COCO_TMP/burst.sql"

# burst label: 10 sessions of alice submit 20 times each, then wait for each
# of their runs. Checks every wait returned; sets $executed (runs executed
# among the run ids and those they were coalesced into) and $span.
burst() {
    local label=$1 i good ids row pids=() rc=0
    rm -f "$COCO_TMP"/burst."$label".*
    for i in $(seq 1 10); do
        q -U alice -f "$COCO_TMP/burst.sql" >"$COCO_TMP/burst.$label.$i" 2>&1 &
        pids+=($!)
    done
    for i in "${pids[@]}"; do wait "$i" || rc=1; done
    good=$(cat "$COCO_TMP"/burst."$label".* | grep -c '^[0-9][0-9]*|t$' || true)
    [ "$rc|$good" = "0|200" ] ||
        fail "(e) $label: $good of 200 waits returned a result: $(grep -hv '^[0-9][0-9]*|t$' "$COCO_TMP"/burst."$label".* | head -n 5)"
    ids=$(grep -h '^[0-9][0-9]*|t$' "$COCO_TMP"/burst."$label".* | cut -d'|' -f1 | paste -sd, -)
    row=$(q <<SQL
WITH RECURSIVE c (run_id) AS (
    SELECT unnest('{$ids}'::bigint[])
  UNION
    SELECT r.coalesced_into FROM coco.runs r JOIN c USING (run_id) WHERE r.coalesced_into IS NOT NULL)
SELECT count(*) FILTER (WHERE r.status <> 'coalesced'),
       count(*) FILTER (WHERE r.status NOT IN ('coalesced', 'succeeded')),
       (SELECT round(extract(epoch FROM max(submitted_at) - min(submitted_at)), 2)
          FROM coco.runs WHERE run_id = ANY ('{$ids}'::bigint[]))
  FROM c JOIN coco.runs r USING (run_id);
SQL
    ) || fail "(e) $label: could not count the runs"
    local bad
    IFS='|' read -r executed bad span <<<"$row"
    [ "$bad" = 0 ] || fail "(e) $label: $bad of the runs are neither coalesced nor succeeded"
}

set_conf submit_delay 200ms
burst delay200
one=$(q -c "SELECT run_id FROM coco.runs WHERE app = 'burst' AND status = 'coalesced' LIMIT 1")
[ -n "$one" ] || fail "(e) no coalesced run of app burst"
out=$(q -U alice -c "SELECT coco.cancel($one)" 2>&1)
case "$out" in *"joined run"*f) ;; *) fail "(e) coco.cancel of the coalesced run $one: $out" ;; esac
figure "(e) submit_delay = 200ms: 200 submits from 10 sessions within ${span}s executed $executed runs"
if [ "$executed" -lt 1 ] || [ "$executed" -gt 20 ]; then
    fail "(e) with submit_delay = 200ms, 200 submits within ${span}s executed $executed runs, wanted at most 20"
fi
ok "(e) with submit_delay = 200ms, 200 submits of app burst from 10 sessions executed $executed runs; all 200 waiters got a result"
set_conf submit_delay 0
burst delay0
figure "(e) submit_delay = 0: 200 submits from 10 sessions within ${span}s executed $executed runs"
set_conf submit_delay RESET
ok "(e) with submit_delay = 0, all 200 waiters got a result too ($executed runs executed)"

# --- (g) a run that ignores the cancel ------------------------------------
# alice's declared query catches query_canceled (in the worker only): the
# time limit, then coco.cancel, end the worker after their grace period
# (5 s) instead; the run is settled and nothing crashes.
q -U alice >/dev/null <<'SQL' || fail "(g) could not create app stubborn"
CREATE FUNCTION alice.stubborn() RETURNS SETOF integer LANGUAGE plpgsql AS $$
BEGIN
    IF public.in_coco_worker() THEN
        FOR i IN 1 .. 60 LOOP
            BEGIN
                PERFORM pg_sleep(1);
            EXCEPTION WHEN query_canceled THEN
                NULL;  -- ignore it
            END;
        END LOOP;
    END IF;
    RETURN QUERY SELECT 1;
END $$;
SELECT coco.create_app('stubborn');
SELECT coco.declare_table('stubborn', 'alice.stubborn_t', '[{"name": "id", "type": "integer"}]', '{id}');
SELECT coco.declare_rows('stubborn', 'alice.stubborn_t', 'SELECT s AS id FROM alice.stubborn() s');
SQL
mark_g=$(coco_log_mark)
set_conf run_timeout 2s max_attempts 1
t0=$(now_ms)
run_g=$(q -U alice -c "SELECT coco.submit('stubborn')")
wait_for "SELECT status FROM coco.runs WHERE run_id = $run_g" failed postgres 30 ||
    fail "(g) the run $run_g that ignores its time limit did not end"
g_secs=$(secs_since "$t0")
figure "(g) run $run_g, ignoring the cancel at its 2 s limit, ended after ${g_secs}s"
lt "$g_secs" 12 || fail "(g) the run ignoring its time limit took ${g_secs}s to end, wanted < 12 s (2 s + 5 s grace)"
tail -c +"$((mark_g + 1))" "$COCO_TMP/postgres.log" | grep -q 'terminating background worker "coco_target worker" due to administrator command' ||
    fail "(g) the worker running run $run_g was not ended"
row=$(q -c "SELECT sqlstate, error FROM coco.runs WHERE run_id = $run_g")
case "$row" in
"57014|canceled: the run took longer than its time limit of 2 s (coco_target.run_timeout) and did not stop when canceled"*) ;;
*) fail "(g) run $run_g's sqlstate|error: $row" ;;
esac
set_conf run_timeout 0 max_attempts RESET
run_g2=$(q -U alice -c "SELECT coco.submit('stubborn')")
wait_for "SELECT status FROM coco.runs WHERE run_id = $run_g2" running postgres 20 || fail "(g) run $run_g2 never started"
sleep 1
t0=$(now_ms)
got=$(q -U alice -c "SELECT coco.cancel($run_g2)")
c_secs=$(secs_since "$t0")
[ "$got" = t ] || fail "(g) coco.cancel of run $run_g2, which ignores cancels, returned '$got'"
[ "$(q -c "SELECT status FROM coco.runs WHERE run_id = $run_g2")" = canceled ] ||
    fail "(g) run $run_g2 is not canceled after coco.cancel returned"
figure "(g) coco.cancel of run $run_g2, which ignores cancels, returned after ${c_secs}s"
lt "$c_secs" 10 || fail "(g) coco.cancel took ${c_secs}s, wanted < 10 s (5 s grace)"
crashed=$(coco_crashed_since "$mark_g")
[ -z "$crashed" ] || fail "(g) a process died by a signal: $crashed"
set_conf run_timeout RESET
ok "(g) a run catching query_canceled still ends: past its limit + 5 s grace its worker is ended (run $run_g failed with 57014 after ${g_secs}s); coco.cancel ends it too (${c_secs}s); no crash"

# --- (h) two workers start for two apps submitted at once --------------------
# With no worker alive, two apps' 3 s runs submitted back to back run side
# by side: the worker that takes the first asks for another.
q -U alice >/dev/null <<'SQL' || fail "(h) could not create apps h1, h2"
SELECT coco.create_app('h1');
SELECT coco.declare_table('h1', 'alice.h1_t', '[{"name": "id", "type": "integer"}]', '{id}');
SELECT coco.declare_rows('h1', 'alice.h1_t', 'SELECT 1 AS id FROM pg_catalog.pg_sleep(3) s');
SELECT coco.create_app('h2');
SELECT coco.declare_table('h2', 'alice.h2_t', '[{"name": "id", "type": "integer"}]', '{id}');
SELECT coco.declare_rows('h2', 'alice.h2_t', 'SELECT 1 AS id FROM pg_catalog.pg_sleep(3) s');
SQL
no_worker_in postgres
ids=$(q -U alice -c "SELECT coco.submit('h1')" -c "SELECT coco.submit('h2')" | paste -sd, -)
wait_for "SELECT count(*) FROM coco.runs WHERE run_id IN ($ids) AND status = 'succeeded'" 2 postgres 20 ||
    fail "(h) runs $ids did not both succeed"
span=$(q -c "SELECT round(extract(epoch FROM max(finished_at) - min(submitted_at)), 2) FROM coco.runs WHERE run_id IN ($ids)")
figure "(h) two 3 s runs submitted at once with no worker alive finished ${span}s after the first submit"
lt "$span" 5.5 || fail "(h) runs $ids took ${span}s: one after the other, not side by side"
ok "(h) two apps' runs submitted at once ran side by side in two workers (${span}s for two 3 s runs)"

# --- no restart so far ------------------------------------------------------
wait_for "SELECT count(*) FROM coco.runs WHERE status IN ('queued', 'running')" 0 ||
    fail "runs are left unfinished before (f)"
crashed=$(coco_crashed_since "$mark0")
[ -z "$crashed" ] || fail "the server restarted during (a)-(h): $crashed"
ok "no process died and the server did not restart during (a)-(h)"

# --- (f) crash loop in database crashdb -------------------------------------
# Crashes are retried once whatever max_attempts says: back to the defaults.
set_conf max_attempts RESET retry_base RESET
# A worker keeps the database's settings it connected with, and one may have
# come to look at the new database already: none may be left from before the
# fault point was set.
q -c "CREATE DATABASE crashdb" \
  -c "ALTER DATABASE crashdb SET coco_target.fault_point = 'after_decisions'" >/dev/null
no_worker_in crashdb
q -d crashdb -c "CREATE EXTENSION coco_target" -c "CREATE SCHEMA alice AUTHORIZATION alice" >/dev/null
tiny_app alice boom crashdb
mark_f=$(coco_log_mark)
run_boom=$(q -U alice -d crashdb -c "SELECT coco.submit('boom')")
st=""
deadline=$((SECONDS + 90))
while [ "$SECONDS" -lt "$deadline" ]; do
    st=$(q -d crashdb -c "SELECT status FROM coco.runs WHERE run_id = $run_boom" 2>/dev/null || true)
    case "$st" in failed | succeeded | canceled) break ;; esac
    [ -n "$st" ] || coco_wait_up || fail "(f) the server did not come back after a crash"
    sleep 0.3
done
[ "$st" = failed ] || fail "(f) run $run_boom is '$st' after 90 s, wanted failed"
restarts=$(restarts_since "$mark_f")
row=$(q -d crashdb -c "SELECT attempts, error FROM coco.runs WHERE run_id = $run_boom")
attempts=${row%%|*}
error=${row#*|}
flag=$(q -d crashdb -c "SELECT coalesce(flagged, '') FROM coco.apps WHERE app = 'boom'")
figure "(f) crash-restarts caused by run $run_boom: $restarts; attempts: $attempts"
if [ "$restarts" -lt 1 ] || [ "$restarts" -gt 2 ]; then
    fail "(f) run $run_boom caused $restarts crash-restarts, wanted 1 or 2"
fi
if [ "$attempts" -lt 1 ] || [ "$attempts" -gt 2 ]; then
    fail "(f) run $run_boom made $attempts attempts, wanted 1 or 2"
fi
printf '%s\n' "$error" | grep -qi 'crash' || fail "(f) run $run_boom's error does not say it crashed its worker: $error"
[ -n "$flag" ] || fail "(f) app boom is not flagged after its run $run_boom crashed its worker twice"
ok "(f) run $run_boom crashed its worker $restarts times, then failed ('$(printf '%s' "$error" | head -n 1)'); app boom flagged: '$flag'"
# the fault point stays set: a third attempt would crash again
sleep 5
again=$(restarts_since "$mark_f")
row=$(q -d crashdb -c "SELECT status, attempts FROM coco.runs WHERE run_id = $run_boom")
[ "$again|$row" = "$restarts|failed|$attempts" ] ||
    fail "(f) 5 s later: $again crash-restarts (was $restarts), run $run_boom '$row' (was 'failed|$attempts')"
ok "(f) no third attempt: 5 s later still $again crash-restarts and run $run_boom failed"
q -c "ALTER DATABASE crashdb RESET coco_target.fault_point" >/dev/null
no_worker_in crashdb
mark_g=$(coco_log_mark)
run_boom2=$(q -U alice -d crashdb -c "SELECT coco.submit('boom')")
flag=$(q -d crashdb -c "SELECT flagged IS NULL FROM coco.apps WHERE app = 'boom'")
[ "$flag" = t ] || fail "(f) alice's submit did not clear app boom's flag"
q -U alice -d crashdb -c "SELECT coco.wait($run_boom2, '30s')" >/dev/null || fail "(f) run $run_boom2 of app boom did not succeed"
[ "$(q -d crashdb -c "SELECT id FROM alice.boom_t")" = 1 ] || fail "(f) alice.boom_t was not made by run $run_boom2"
crashed=$(coco_crashed_since "$mark_g")
[ -z "$crashed" ] || fail "(f) the server crashed again without the fault point: $crashed"
ok "(f) without the fault point, alice's submit cleared the flag and run $run_boom2 succeeded, with no crash"

echo "scheduler scenario passed"
