#!/usr/bin/env bash
# Scenario: the worker's run meets a user's transaction holding the target
# table.  With coco_target.lock_timeout its DDL gives up instead of
# queueing; the attempt's error is recorded in coco.runs and the run goes
# back to the queue with a backoff; once the user's transaction ends, a
# later attempt applies the change.  The error names the table and the
# process holding it: the recorded one, and a synchronous run's (55P03).
set -euo pipefail
source "$(dirname "$0")/../scripts/lib.sh"

q -c "ALTER SYSTEM SET coco_target.lock_timeout = '300ms'" \
  -c "ALTER SYSTEM SET coco_target.retry_base = '500ms'" \
  -c "SELECT pg_reload_conf()" >/dev/null
q -c "CREATE EXTENSION coco_target" \
  -c "SELECT coco.create_app('lt')" \
  -c "SELECT coco.declare_table('lt', 'public.t', '[{\"name\":\"id\",\"type\":\"integer\"}]', '{id}')" \
  -c "SELECT coco.declare_row('lt', 'public.t', '{\"id\": 1}')" \
  -c "SELECT coco.reconcile('lt')" >/dev/null

# the user holds the table for 5 s; the test knows the holder's pid
holder_pid_file=$(mktemp)
chmod 666 "$holder_pid_file"
coco_psql -qAt -c "BEGIN" -c "LOCK TABLE t IN ACCESS EXCLUSIVE MODE" \
    -c "\\o $holder_pid_file" -c "SELECT pg_backend_pid()" -c "\\o" -c "SELECT pg_sleep(5)" -c "COMMIT" >/dev/null &
holder=$!
sleep 0.5
holder_pid=$(cat "$holder_pid_file")
rm -f "$holder_pid_file"
[ -n "$holder_pid" ] || fail "the holder's pid is unknown"
q -c "SELECT coco.declare_table('lt', 'public.t', '[{\"name\":\"id\",\"type\":\"integer\"},{\"name\":\"w\",\"type\":\"integer\"}]', '{id}')" \
  -c "SELECT coco.declare_row('lt', 'public.t', '{\"id\": 1, \"w\": 5}')" >/dev/null
run=$(q -c "SELECT coco.submit('lt')")

# while the lock is held: an attempt failed on it and the run waits to retry
seen=
for _ in $(seq 1 30); do
    seen=$(q -c "SELECT status || ' ' || attempts FROM coco.runs WHERE run_id = $run AND error LIKE '%lock timeout%' AND status = 'queued'")
    [ -n "$seen" ] && break
    sleep 0.1
done
[ -n "$seen" ] || fail "no recorded lock-timeout attempt: $(q -c "SELECT status, attempts, error FROM coco.runs WHERE run_id = $run")"
ok "attempt timed out on the user's lock, recorded, run queued again ($seen)"
err=$(q -c "SELECT error FROM coco.runs WHERE run_id = $run")
case "$err" in
    *'lock timeout on table "public.t"'*"process $holder_pid "*AccessExclusiveLock*) ;;
    *) fail "the recorded error does not name the table and the holder $holder_pid: $err" ;;
esac
ok "the recorded error names the table and the holding process: $(echo "$err" | tr '\n' ' ')"

# a synchronous run meets the same lock: 55P03, naming the table and the holder
out=$(q -c "\\set VERBOSITY verbose" -c "SET coco_target.lock_timeout = '200ms'" -c "SELECT coco.reconcile('lt')" 2>&1 || true)
echo "$out" | grep -q 'ERROR:  55P03: lock timeout on table "public.t"' ||
    fail "a synchronous run's lock timeout: $out"
echo "$out" | grep -q "DETAIL:  .*AccessExclusiveLock.*process $holder_pid (AccessExclusiveLock)" ||
    fail "a synchronous run's lock timeout does not name the holder $holder_pid: $out"
ok "a synchronous run fails with 55P03 naming the table and process $holder_pid"
[ "$(q -c "SELECT count(*) FROM information_schema.columns WHERE table_name = 't' AND column_name = 'w'")" = 0 ] ||
    fail "the column was added while the user held the table"

wait "$holder"
status=$(q -c "SELECT coco.wait($run, '60s') IS NOT NULL" >/dev/null; q -c "SELECT status || ' ' || attempts FROM coco.runs WHERE run_id = $run")
case "$status" in "succeeded "[2-9]*|"succeeded "[1-9][0-9]*) ;; *) fail "run $run: $status" ;; esac
[ "$(q -c "SELECT id || ',' || w FROM t")" = "1,5" ] || fail "target after retry: $(q -c "SELECT * FROM t")"
ok "retried after the user's transaction ended: $status attempts, column added, row updated"
