#!/usr/bin/env bash
# Scenario: the localfs connector against a real directory tree.
# - create, update, delete and no-op of files and directories, checked on
#   disk; a directory no longer declared is removed with what is in it;
# - a symbolic link planted below the root is not followed (the run fails
#   with 42501, recorded, and nothing is written outside the root);
# - a context's root moved (new settings, same key): tracked states stay
#   attached and the next run is a no-op;
# - files deleted or changed behind the reconciler's back are written
#   again when declared (drift);
# - the worker killed between writing a file and pruning its records
#   leaves the multi-record state visible in coco.target_states; after
#   crash recovery the run completes and the tree equals the declaration;
# - coco.drop_context is refused (2BP01) while states are tracked under
#   the key;
# - coco.drop_app removes what the app wrote.
set -euo pipefail
source "$(dirname "$0")/../scripts/lib.sh"

# reconcile, then wait for the worker to complete what it deferred
sync_app() {
    local app=$1 r run
    r=$(q -c "SELECT coco.reconcile('$app')")
    run=$(q -c "SELECT ('$r'::jsonb ->> 'completion_run_id')")
    if [ -n "$run" ]; then
        q -c "SELECT coco.wait($run, '60s') ->> 'completed'" >/dev/null
        status=$(q -c "SELECT status FROM coco.runs WHERE run_id = $run")
        [ "$status" = succeeded ] || fail "completion run $run of $app: $status"
    fi
    echo "$r"
}

# the tree below a directory, one "path:content" line per file
tree_of() {
    (cd "$1" && find . -type f | sort | while read -r f; do echo "$f:$(cat "$f")"; done)
}

ROOT="$COCO_TMP/root"
OUTSIDE="$COCO_TMP/outside"
mkdir -p "$ROOT" "$OUTSIDE"
chown postgres: "$ROOT" "$OUTSIDE"

# one attempt per run: a refused write fails its run at once
q -c "ALTER SYSTEM SET coco_target.max_attempts = 1" -c "SELECT pg_reload_conf()" >/dev/null
q -c "CREATE EXTENSION coco_target" \
  -c "SELECT coco.provide_context('exports', 'localfs', jsonb_build_object('root', '$ROOT'))" \
  -c "SELECT coco.create_app('fs')" >/dev/null

# 1. create: two directories, three files
declare_v1() {
    q -c "SELECT coco.declare_dir('fs', 'exports', 'reports/2026')" \
      -c "SELECT coco.declare_file('fs', 'exports', 'reports/2026', 'jan.csv', 'a,1')" \
      -c "SELECT coco.declare_file('fs', 'exports', 'reports/2026', 'feb.csv', 'b,2')" \
      -c "SELECT coco.declare_dir('fs', 'exports', 'tmp')" \
      -c "SELECT coco.declare_file('fs', 'exports', 'tmp', 'scratch', 'x')" >/dev/null
}
declare_v1
r=$(sync_app fs)
[ "$(q -c "SELECT '$r'::jsonb -> 'deferred'")" = 5 ] || fail "first run deferred: $r"
want="./reports/2026/feb.csv:b,2
./reports/2026/jan.csv:a,1
./tmp/scratch:x"
[ "$(tree_of "$ROOT")" = "$want" ] || fail "after create: $(tree_of "$ROOT")"
[ "$(q -c "SELECT count(*) FROM coco.target_states WHERE pending_action IS NOT NULL OR jsonb_array_length(records) <> 1")" = 0 ] ||
    fail "records not pruned after completion"
ok "create: directories and files written, records pruned"

# 2. no-op: the same declaration writes nothing and queues no completion
before=$(stat -c %Y.%i "$ROOT/reports/2026/jan.csv")
declare_v1
r=$(sync_app fs)
[ "$(q -c "SELECT '$r'::jsonb ->> 'unchanged'")" = 5 ] || fail "no-op: $r"
[ "$(q -c "SELECT '$r'::jsonb ? 'completion_run_id'")" = f ] || fail "no-op queued a completion: $r"
[ "$(stat -c %Y.%i "$ROOT/reports/2026/jan.csv")" = "$before" ] || fail "no-op rewrote jan.csv"
ok "no-op: nothing deferred, nothing rewritten"

# 3. update one file, delete another, drop a directory with its file (the
#    file goes with it: forgotten, not deleted one by one)
q -c "SELECT coco.declare_dir('fs', 'exports', 'reports/2026')" \
  -c "SELECT coco.declare_file('fs', 'exports', 'reports/2026', 'jan.csv', 'a,10')" >/dev/null
r=$(sync_app fs)
[ "$(q -c "SELECT format('%s/%s/%s', '$r'::jsonb->'providers'->'localfs.file'->>'updated', '$r'::jsonb->'providers'->'localfs.file'->>'deleted', '$r'::jsonb->'providers'->'localfs.dir'->>'deleted')")" = "1/1/1" ] ||
    fail "update/delete counts: $r"
[ "$(tree_of "$ROOT")" = "./reports/2026/jan.csv:a,10" ] || fail "after update: $(tree_of "$ROOT")"
[ ! -e "$ROOT/tmp" ] || fail "undeclared directory tmp still exists"
ok "update and delete: jan.csv rewritten, feb.csv and tmp/ removed"

# 4. a symbolic link below the root is not followed
ln -s "$OUTSIDE" "$ROOT/escape"
q -c "SELECT coco.declare_dir('fs', 'exports', 'reports/2026')" \
  -c "SELECT coco.declare_file('fs', 'exports', 'reports/2026', 'jan.csv', 'a,10')" \
  -c "SELECT coco.declare_dir('fs', 'exports', 'escape/sub')" \
  -c "SELECT coco.declare_file('fs', 'exports', 'escape/sub', 'pwned', 'x')" >/dev/null
r=$(q -c "SELECT coco.reconcile('fs')")
run=$(q -c "SELECT '$r'::jsonb ->> 'completion_run_id'")
# coco.wait raises the failure: the run's row says what it was
q -c "SELECT coco.wait($run, '60s')" >/dev/null 2>&1 && fail "the escaping run succeeded"
status=$(q -c "SELECT status FROM coco.runs WHERE run_id = $run")
err=$(q -c "SELECT error FROM coco.runs WHERE run_id = $run")
case "$status:$err" in
    *"symbolic link"*) ;;
    *) fail "symlink run: $status $err" ;;
esac
[ -z "$(ls -A "$OUTSIDE")" ] || fail "something was written outside the root: $(ls -A "$OUTSIDE")"
[ "$(q -c "SELECT count(*) FROM coco.target_states WHERE name LIKE 'exports:escape%' AND pending_action IS NOT NULL")" = 2 ] ||
    fail "the refused intents are not pending"
ok "symlink below the root refused ($err), nothing written outside"
# undeclare the escape: its pending creations become removals, which
# leave the symbolic link and what it points to alone
touch "$OUTSIDE/keep"
chown postgres: "$OUTSIDE/keep"
q -c "SELECT coco.declare_dir('fs', 'exports', 'reports/2026')" \
  -c "SELECT coco.declare_file('fs', 'exports', 'reports/2026', 'jan.csv', 'a,10')" >/dev/null
sync_app fs >/dev/null
for _ in $(seq 1 60); do
    [ "$(q -c "SELECT count(*) FROM coco.target_states WHERE pending_action IS NOT NULL")" = 0 ] && break
    sleep 0.5
done
[ "$(q -c "SELECT count(*) FROM coco.target_states WHERE name LIKE 'exports:escape%'")" = 0 ] || fail "escape states remain"
[ -e "$OUTSIDE/keep" ] || fail "a file outside the root was removed"
ok "undeclared escape forgotten; the link's target untouched"
rm -f "$ROOT/escape"

# 5. the root moves: same key, new settings, states stay attached
ROOT2="$COCO_TMP/root2"
mv "$ROOT" "$ROOT2"
q -c "SELECT coco.provide_context('exports', 'localfs', jsonb_build_object('root', '$ROOT2'))" >/dev/null
q -c "SELECT coco.declare_dir('fs', 'exports', 'reports/2026')" \
  -c "SELECT coco.declare_file('fs', 'exports', 'reports/2026', 'jan.csv', 'a,10')" >/dev/null
r=$(sync_app fs)
[ "$(q -c "SELECT format('%s/%s', '$r'::jsonb->>'unchanged', '$r'::jsonb ? 'deferred')")" = "2/f" ] ||
    fail "after the move: $r"
ok "root moved: tracked states stay attached, nothing rewritten"
ROOT=$ROOT2

# 6. drift: a file deleted and another changed by hand are written again
q -c "SELECT coco.declare_dir('fs', 'exports', 'reports/2026')" \
  -c "SELECT coco.declare_file('fs', 'exports', 'reports/2026', 'jan.csv', 'a,10')" \
  -c "SELECT coco.declare_file('fs', 'exports', 'reports/2026', 'mar.csv', 'c,3')" >/dev/null
sync_app fs >/dev/null
rm "$ROOT/reports/2026/jan.csv"
echo "tampered" > "$ROOT/reports/2026/mar.csv"
q -c "SELECT coco.declare_dir('fs', 'exports', 'reports/2026')" \
  -c "SELECT coco.declare_file('fs', 'exports', 'reports/2026', 'jan.csv', 'a,10')" \
  -c "SELECT coco.declare_file('fs', 'exports', 'reports/2026', 'mar.csv', 'c,3')" >/dev/null
r=$(sync_app fs)
[ "$(q -c "SELECT '$r'::jsonb ->> 'drift'")" = 2 ] || fail "drift not found: $r"
want="./reports/2026/jan.csv:a,10
./reports/2026/mar.csv:c,3"
[ "$(tree_of "$ROOT")" = "$want" ] || fail "after drift repair: $(tree_of "$ROOT")"
ok "drift: a deleted and a changed file written again"

# 7. the worker dies after writing a file, before pruning its records
q -c "ALTER SYSTEM RESET coco_target.max_attempts" \
  -c "ALTER SYSTEM SET coco_target.fault_point = 'after_outside_write'" -c "SELECT pg_reload_conf()" >/dev/null
q -c "SELECT coco.declare_dir('fs', 'exports', 'reports/2026')" \
  -c "SELECT coco.declare_file('fs', 'exports', 'reports/2026', 'jan.csv', 'a,100')" \
  -c "SELECT coco.declare_file('fs', 'exports', 'reports/2026', 'mar.csv', 'c,3')" \
  -c "SELECT coco.declare_file('fs', 'exports', 'reports/2026', 'apr.csv', 'd,4')" >/dev/null
q -c "SELECT coco.reconcile('fs')" >/dev/null
coco_await_fault after_outside_write || fail "the fault point was not reached"
# look at the state the crash left before the worker goes on
coco_stop_fault_and_worker || fail "server did not come back"
multi=$(q -c "SELECT name || ' ' || jsonb_array_length(records) || ' ' || pending_action
              FROM coco.target_states WHERE provider = 'localfs.file' AND pending_action IS NOT NULL ORDER BY name")
want="exports:reports/2026/apr.csv 1 insert
exports:reports/2026/jan.csv 2 upsert"
[ "$multi" = "$want" ] || fail "multi-record state: $multi"
[ "$(q -c "SELECT (records -> 0 ->> 'size') || ',' || (records -> 1 ->> 'size') FROM coco.target_states WHERE name = 'exports:reports/2026/jan.csv'")" = "4,5" ] ||
    fail "jan.csv records are not the old and the intended one"
[ "$(cat "$ROOT/reports/2026/jan.csv")" = "a,100" ] || fail "jan.csv was not written before the crash"
ok "interrupted: jan.csv written, its old and intended records both kept; apr.csv pending"
coco_start_worker_again || fail "server did not come back"
# The interrupted run is queued again, unless its crashes used up its
# attempts; then the next run of the app queues the completion.
sync_app fs >/dev/null
for _ in $(seq 1 120); do
    [ "$(q -c "SELECT count(*) FROM coco.target_states WHERE pending_action IS NOT NULL")" = 0 ] && break
    sleep 0.5
done
want="./reports/2026/apr.csv:d,4
./reports/2026/jan.csv:a,100
./reports/2026/mar.csv:c,3"
[ "$(tree_of "$ROOT")" = "$want" ] || fail "after recovery: $(tree_of "$ROOT")"
[ "$(q -c "SELECT count(*) FROM coco.target_states WHERE jsonb_array_length(records) <> 1 OR may_be_missing")" = 0 ] ||
    fail "records not pruned after recovery"
[ -z "$(find "$ROOT" -name '.coco-tmp-*')" ] || fail "temporary files left: $(find "$ROOT" -name '.coco-tmp-*')"
ok "recovered: the interrupted run completed, tree = declaration, records pruned"

# 8. the context cannot be dropped while states are tracked under it
state=$(q -c "DO \$\$ BEGIN PERFORM coco.drop_context('exports');
  EXCEPTION WHEN OTHERS THEN RAISE NOTICE 'sqlstate %', SQLSTATE; END \$\$" 2>&1)
case "$state" in
    *"sqlstate 2BP01"*) ;;
    *) fail "drop_context with tracked states: $state" ;;
esac
[ "$(q -c "SELECT count(*) FROM coco.contexts WHERE key = 'exports'")" = 1 ] || fail "the context went"
ok "drop_context refused while the app tracks states under the key (2BP01)"

# 9. drop_app removes what the app wrote
q -c "SELECT coco.drop_app('fs')" >/dev/null
[ ! -e "$ROOT/reports/2026" ] || fail "drop_app left $(tree_of "$ROOT")"
ok "drop_app removed the app's directories"
