#!/usr/bin/env bash
# Scenario: attacks by a role without superuser that may create apps and
# tables in its own schema (mallory), one class of defect each.  Every
# attack must end in a specific SQLSTATE, with no backend dead (the server
# log since the attack shows no signal and no crash-restart: the postmaster
# start time does not change on a crash-restart, so it is not enough), with
# nothing half-applied, and with no server memory written into any table.
#   1. relations swapped under a running reconcile (a view, other column
#      types, fewer columns) before the bulk load of a table the run made
#   2. declaration and SQL provider functions dropped, or temporary
#   3. a NOT NULL column without a value in a table the run creates
#   4. nested runs: coco.* calls from user code in the middle of a run
#   5. statements spliced into a generated CREATE INDEX
#   6. another role's runs and progress: nothing of them shows
#   7. localfs: a hard link planted where the temporary file goes
#   8. a provider named into a context's namespace cannot block drop_context
#   9. late failures that are refused when declared; NULL arguments
set -euo pipefail
source "$(dirname "$0")/../scripts/lib.sh"

# COCO_KEEP_GOING=1 lists every failing check instead of stopping at the first
if [ "${COCO_KEEP_GOING:-0}" = 1 ]; then fail() { echo "FAIL: $*"; }; fi


# expect NAME SQLSTATE: run stdin as mallory; the first error's SQLSTATE
# (or "ok") must be SQLSTATE, and no backend may have died.
expect() {
    local name=$1 want=$2 mark out got crash
    mark=$(coco_log_mark)
    out=$(coco_as_pg "$COCO_PGBIN/psql" -X -q -At -v ON_ERROR_STOP=1 -v VERBOSITY=sqlstate \
        -c "SET ROLE regress_mallory" -f - 2>&1) || true
    got=$(printf '%s\n' "$out" | sed -n 's/^.*ERROR:  \([0-9A-Z]\{5\}\).*$/\1/p' | head -n 1)
    [ -n "$got" ] || got=ok
    sleep 0.2
    crash=$(coco_crashed_since "$mark")
    if [ -n "$crash" ]; then
        coco_wait_up || true
        fail "$name: a backend died: $crash"
        return 0
    fi
    [ "$got" = "$want" ] || { fail "$name: expected $want, got $got: $(printf '%s' "$out" | head -c 400)"; return 0; }
    ok "$name: $want, the server alive"
}
# as_mallory: run stdin as mallory, stop at the first error (setup steps)
as_mallory() { coco_psql -qAt -c "SET ROLE regress_mallory" -f - >/dev/null; }
as_mallory_out() { coco_psql -qAt -c "SET ROLE regress_mallory" -f -; }

q -c "CREATE EXTENSION coco_target" \
  -c "CREATE ROLE regress_mallory" \
  -c "CREATE ROLE regress_alice" \
  -c "CREATE SCHEMA m AUTHORIZATION regress_mallory" \
  -c "CREATE SCHEMA a AUTHORIZATION regress_alice"

# ---------------------------------------------------------------------------
# 1. A relation swapped before the bulk load of a table the run made.
#    Table m.a loads first; its query swaps m.b (made by this run, not yet
#    loaded) for something else of the same name.
# ---------------------------------------------------------------------------
as_mallory <<'SQL'
CREATE FUNCTION m.swap(kind text) RETURNS int LANGUAGE plpgsql AS $$
BEGIN
  -- only during the run: at declare time m.b does not exist yet
  IF to_regclass('m.b') IS NOT NULL AND to_regclass('m.b_orig') IS NULL THEN
    ALTER TABLE m.b RENAME TO b_orig;
    IF kind = 'view' THEN
      EXECUTE 'CREATE VIEW m.b AS SELECT 1 AS id, ''x''::text AS v, 1::bigint AS w';
    ELSIF kind = 'types' THEN
      EXECUTE 'CREATE TABLE m.b (id int PRIMARY KEY, v bigint, w text)';
    ELSE
      EXECUTE 'CREATE TABLE m.b (id int PRIMARY KEY)';
    END IF;
  END IF;
  RETURN 1;
END $$;
SQL
for kind in view types narrow; do
    as_mallory <<SQL
SELECT coco.create_app('swap_$kind');
SELECT coco.declare_table('swap_$kind', 'm.a', '[{"name":"id","type":"integer"}]', '{id}');
SELECT coco.declare_rows('swap_$kind', 'm.a', 'SELECT m.swap(''$kind'') AS id');
SELECT coco.declare_table('swap_$kind', 'm.b',
  '[{"name":"id","type":"integer"},{"name":"v","type":"text"},{"name":"w","type":"bigint"}]', '{id}');
SELECT coco.declare_rows('swap_$kind', 'm.b',
  'SELECT g AS id, repeat(''v'', 100) || g AS v, 1000000007::bigint * g AS w FROM generate_series(1, 200) g');
SQL
    expect "1. m.b swapped for a $kind mid-run" 55000 <<SQL
SELECT coco.reconcile('swap_$kind');
SQL
    left=$(q -c "SELECT count(*) FROM pg_class WHERE relnamespace = 'm'::regnamespace")
    [ "$left" = 0 ] || fail "1. $kind: the failed run left $left relations in schema m"
    tracked=$(q -c "SELECT count(*) FROM coco.target_state t JOIN coco.app a USING (app_id)
                     WHERE a.name = 'swap_$kind'")
    [ "$tracked" = 0 ] || fail "1. $kind: the failed run left $tracked tracked targets"
    ok "1. $kind: nothing made, nothing tracked"
    q -c "SELECT coco.drop_app('swap_$kind')" >/dev/null
done

# A table the run made, altered by user code before its load (a column
# type changed, a trigger added): refused too, never written around.
as_mallory <<'SQL'
CREATE FUNCTION m.alter_b() RETURNS int LANGUAGE plpgsql AS $$
BEGIN
  IF to_regclass('m.b') IS NOT NULL AND NOT EXISTS (SELECT 1 FROM pg_trigger WHERE tgname = 'b_trg') THEN
    EXECUTE 'CREATE FUNCTION m.b_trg() RETURNS trigger LANGUAGE plpgsql AS $t$ BEGIN RETURN NEW; END $t$';
    EXECUTE 'CREATE TRIGGER b_trg BEFORE INSERT ON m.b FOR EACH ROW EXECUTE FUNCTION m.b_trg()';
  END IF;
  RETURN 1;
END $$;
SELECT coco.create_app('swap_trigger');
SELECT coco.declare_table('swap_trigger', 'm.a', '[{"name":"id","type":"integer"}]', '{id}');
SELECT coco.declare_rows('swap_trigger', 'm.a', 'SELECT m.alter_b() AS id');
SELECT coco.declare_table('swap_trigger', 'm.b', '[{"name":"id","type":"integer"},{"name":"v","type":"text"}]', '{id}');
SELECT coco.declare_rows('swap_trigger', 'm.b', 'SELECT g AS id, g::text AS v FROM generate_series(1, 10) g');
SQL
expect "1. a trigger added to m.b mid-run" 55000 <<'SQL'
SELECT coco.reconcile('swap_trigger');
SQL
q -c "SELECT coco.drop_app('swap_trigger')" >/dev/null

# A user-managed table is read back as its app's owner, never as the
# extension's: a view in its place runs nothing with more privilege.
as_mallory <<'SQL'
CREATE TABLE m.u (id int PRIMARY KEY, v text);
SELECT coco.create_app('user_read');
SELECT coco.declare_table('user_read', 'm.u', '[{"name":"id","type":"integer"},{"name":"v","type":"text"}]',
                          '{id}', managed_by => 'user');
SELECT coco.declare_rows('user_read', 'm.u', 'SELECT 1 AS id, current_user::text AS v');
SELECT coco.reconcile('user_read');
SQL
[ "$(q -c "SELECT v FROM m.u")" = regress_mallory ] || fail "1. user-managed rows not written as mallory"
ok "1. a user-managed table is loaded as its owner"
q -c "SELECT coco.drop_app('user_read')" -c "DROP TABLE m.u" >/dev/null

# ---------------------------------------------------------------------------
# 2. Functions that are gone.
# ---------------------------------------------------------------------------
as_mallory <<'SQL'
CREATE FUNCTION m.decl(app text) RETURNS void LANGUAGE sql AS 'SELECT';
SELECT coco.create_app('gone_fn', 'm.decl(text)'::regprocedure);
DROP FUNCTION m.decl(text);
SQL
expect "2. coco.update of an app whose declaration function was dropped" 42883 <<'SQL'
SELECT coco.update('gone_fn');
SQL
expect "2. a temporary function cannot be a declaration function" 42P17 <<'SQL'
CREATE FUNCTION pg_temp.decl(app text) RETURNS void LANGUAGE sql AS 'SELECT';
SELECT coco.create_app('temp_fn', 'pg_temp.decl(text)'::regprocedure);
SQL
[ "$(q -c "SELECT count(*) FROM coco.app WHERE name = 'temp_fn'")" = 0 ] || fail "2. temp_fn was created"

# A SQL provider whose functions its owner drops: other roles' apps fail
# cleanly instead of crashing.
as_mallory <<'SQL'
CREATE FUNCTION m.rec(key jsonb, desired jsonb, prev jsonb[], may_be_missing boolean) RETURNS jsonb
  LANGUAGE sql AS $$ SELECT '{"action": "upsert"}'::jsonb $$;
CREATE FUNCTION m.app(actions jsonb) RETURNS void LANGUAGE sql AS 'SELECT';
GRANT USAGE ON SCHEMA m TO PUBLIC;
SELECT coco.register_provider('mallory.kv', 'm.rec(jsonb,jsonb,jsonb[],boolean)', 'm.app(jsonb)');
SQL
q -c "SET ROLE regress_alice" \
  -c "SELECT coco.create_app('uses_kv')" \
  -c "SELECT coco.declare_target_state('uses_kv', 'mallory.kv', '\"k1\"', '{\"v\": 1}')" >/dev/null
as_mallory <<'SQL'
DROP FUNCTION m.rec(jsonb, jsonb, jsonb[], boolean);
SQL
mark=$(coco_log_mark)
if out=$(q -v VERBOSITY=sqlstate -c "SET ROLE regress_alice" -c "SELECT coco.reconcile('uses_kv')" 2>&1); then
    fail "2. alice's reconcile with a dropped provider function succeeded"
fi
[ -z "$(coco_crashed_since "$mark")" ] || fail "2. alice's reconcile crashed the server"
case "$out" in *42883*) ok "2. a provider's dropped reconcile function: 42883 for its user" ;;
*) fail "2. a provider's dropped function: $out" ;; esac
# the same run in the worker fails and is recorded; the worker lives on
mark=$(coco_log_mark)
run=$(q -c "SET ROLE regress_alice" -c "SELECT coco.submit('uses_kv')")
out=$(q -v VERBOSITY=sqlstate -c "SET ROLE regress_alice" -c "SELECT coco.wait($run, '60s')" 2>&1 || true)
case "$out" in *42883*) ;; *) fail "2. the worker run with a dropped provider function: $out" ;; esac
[ -z "$(coco_crashed_since "$mark")" ] || fail "2. the worker crashed"
case "$(q -c "SELECT error FROM coco.run WHERE run_id = $run")" in
*mallory.kv*) ok "2. the worker run failed, naming the provider" ;;
*) fail "2. the worker run's error: $(q -c "SELECT error FROM coco.run WHERE run_id = $run")" ;; esac
q -c "SELECT coco.drop_app('uses_kv', keep_targets => true)" >/dev/null

# ---------------------------------------------------------------------------
# 3. A NOT NULL column without a value, in a table the run creates.
# ---------------------------------------------------------------------------
as_mallory <<'SQL'
SELECT coco.create_app('nn');
SELECT coco.declare_table('nn', 'm.nn',
  '[{"name":"id","type":"integer"},{"name":"v","type":"text","nullable":false}]', '{id}');
SELECT coco.declare_row('nn', 'm.nn', '{"id": 1}');
SQL
expect "3. a row without its NOT NULL column" 23502 <<'SQL'
SELECT coco.reconcile('nn');
SQL
[ "$(q -c "SELECT to_regclass('m.nn') IS NULL")" = t ] || fail "3. m.nn was left behind"
expect "3. the same in a SQL-declared query" 23502 <<'SQL'
SELECT coco.clear_component('nn', '{}');
SELECT coco.declare_table('nn', 'm.nn',
  '[{"name":"id","type":"integer"},{"name":"v","type":"text","nullable":false}]', '{id}');
SELECT coco.declare_rows('nn', 'm.nn', 'SELECT 1 AS id, NULL::text AS v FROM (SELECT 1) x WHERE random() >= 0');
SELECT coco.reconcile('nn');
SQL
q -c "SELECT coco.drop_app('nn')" >/dev/null

# ---------------------------------------------------------------------------
# 4. Nested runs: user code of a run calls the API on its own app.
# ---------------------------------------------------------------------------
as_mallory <<'SQL'
CREATE FUNCTION m.nest(what text) RETURNS int LANGUAGE plpgsql AS $$
BEGIN
  IF to_regclass('m.ne') IS NOT NULL THEN       -- during the run only
    EXECUTE what;
  END IF;
  RETURN 1;
END $$;
CREATE FUNCTION m.nest_caught(what text) RETURNS int LANGUAGE plpgsql AS $$
BEGIN
  IF to_regclass('m.ne') IS NOT NULL THEN
    BEGIN
      EXECUTE what;
    EXCEPTION WHEN object_in_use THEN
      RETURN 2;
    END;
  END IF;
  RETURN 1;
END $$;
SQL
for call in "SELECT coco.reconcile('ne')" "SELECT coco.reconcile('ne', true)" \
            "SELECT coco.update('ne')" "SELECT coco.drop_app('ne')" \
            "SELECT * FROM coco.plan('ne')" "SELECT coco.verify('ne')" \
            "SELECT coco.clear_component('ne', '{}')" \
            "SELECT coco.declare_row('ne', 'm.ne', '{\"id\": 9}')" ; do
    as_mallory <<SQL
SELECT coco.create_app('ne');
SELECT coco.declare_table('ne', 'm.ne', '[{"name":"id","type":"integer"}]', '{id}');
SELECT coco.declare_table('ne', 'm.ne2', '[{"name":"id","type":"integer"}]', '{id}');
SELECT coco.declare_rows('ne', 'm.ne2', \$d\$SELECT m.nest(\$q\$$call\$q\$) AS id\$d\$);
SQL
    expect "4. nested: $call" 55006 <<'SQL'
SELECT coco.reconcile('ne');
SQL
    [ "$(q -c "SELECT count(*) FROM pg_class WHERE relnamespace = 'm'::regnamespace AND relkind = 'r'")" = 0 ] ||
        fail "4. $call: tables left behind"
    q -c "SELECT coco.drop_app('ne')" >/dev/null
done
# the refusal caught by user code: the outer run goes on and is right
as_mallory <<'SQL'
SELECT coco.create_app('ne');
SELECT coco.declare_table('ne', 'm.ne', '[{"name":"id","type":"integer"}]', '{id}');
SELECT coco.declare_table('ne', 'm.ne2', '[{"name":"id","type":"integer"}]', '{id}');
SELECT coco.declare_rows('ne', 'm.ne2', $q$SELECT m.nest_caught('SELECT coco.reconcile(''ne'')') AS id$q$);
SQL
expect "4. a nested call caught by user code: the outer run completes" ok <<'SQL'
SELECT coco.reconcile('ne');
SQL
[ "$(q -c "SELECT id FROM m.ne2")" = 2 ] || fail "4. the outer run did not write the caught result"
# and a run in the same session afterwards works: nothing stuck
expect "4. the next run in the session" ok <<'SQL'
SELECT coco.reconcile('ne');
SELECT coco.reconcile('ne');
SQL
q -c "SELECT coco.drop_app('ne')" >/dev/null

# ---------------------------------------------------------------------------
# 5. Statements spliced into CREATE INDEX through expressions or where.
# ---------------------------------------------------------------------------
as_mallory <<'SQL'
CREATE TABLE m.victim (x int);
SELECT coco.create_app('ix');
SELECT coco.declare_table('ix', 'm.ix', '[{"name":"id","type":"integer"},{"name":"v","type":"text"}]', '{id}');
SQL
i=0
while IFS= read -r opts; do
    i=$((i + 1))
    expect "5. index options spliced ($i)" 42601 <<SQL
SELECT coco.declare_index('ix', 'm.ix', 'ix$i', '{}', options => \$o\$$opts\$o\$::jsonb);
SQL
done <<'OPTS'
{"expressions": ["id) --", "1 /*\n)); DROP TABLE m.victim; SELECT ((1 */"]}
{"expressions": ["id) /*", "*/ (1"]}
{"where": "true) /*", "expressions": ["v"]}
{"where": "id > 0) --\n; DROP TABLE m.victim; --"}
{"where": "true /* */ ) ; DROP TABLE m.victim ; SELECT ( true"}
OPTS
expect "5. a legitimate expression index is still accepted" ok <<'SQL'
SELECT coco.declare_index('ix', 'm.ix', 'ix_ok', '{}', options => '{"expressions": ["lower(v)"], "where": "id > 0 -- positive\n"}');
SELECT coco.reconcile('ix');
SQL
[ "$(q -c "SELECT to_regclass('m.victim') IS NOT NULL")" = t ] || fail "5. m.victim was dropped"
q -c "SELECT coco.drop_app('ix')" >/dev/null

# ---------------------------------------------------------------------------
# 6. Another role's runs and progress.
# ---------------------------------------------------------------------------
q -c "SET ROLE regress_alice" \
  -c "CREATE TABLE a.src (id int)" \
  -c "CREATE FUNCTION a.slow() RETURNS int LANGUAGE sql AS 'SELECT 1 FROM pg_sleep(3)'" \
  -c "SELECT coco.create_app('alice_secret')" \
  -c "SELECT coco.declare_table('alice_secret', 'a.t', '[{\"name\":\"id\",\"type\":\"integer\"}]', '{id}')" \
  -c "SELECT coco.declare_rows('alice_secret', 'a.t', 'SELECT id FROM a.src UNION ALL SELECT a.slow()')" \
  >/dev/null
q -c "SET ROLE regress_alice" -c "SELECT coco.reconcile('alice_secret')" >/dev/null &
slow=$!
sleep 1.5
seen=$(q -c "SET ROLE regress_mallory" -c "SELECT count(*) FROM coco.progress_slots()")
[ "$seen" = 0 ] || fail "6. mallory sees $seen progress slots of alice's run"
seen=$(q -c "SELECT count(*) FROM coco.progress_slots()")
[ "$seen" = 1 ] || fail "6. a superuser sees $seen progress slots, not 1"
wait "$slow"
ok "6. progress of alice's run hidden from mallory, shown to a superuser"
arun=$(q -c "SET ROLE regress_alice" -c "SELECT coco.submit('alice_secret')")
out=$(q -v VERBOSITY=verbose -c "SET ROLE regress_mallory" -c "SELECT coco.wait($arun, '1s')" 2>&1 || true)
case "$out" in *42704*) ;; *) fail "6. mallory waiting on alice's run: $out" ;; esac
case "$out" in *alice_secret*) fail "6. the refusal names alice's app: $out" ;; esac
out2=$(q -v VERBOSITY=verbose -c "SET ROLE regress_mallory" -c "SELECT coco.wait(987654321, '1s')" 2>&1 || true)
[ "$(printf '%s' "$out" | sed "s/run $arun /run N /" | grep -v LOCATION)" = \
  "$(printf '%s' "$out2" | sed "s/run 987654321 /run N /" | grep -v LOCATION)" ] ||
    fail "6. a run of another role and a missing run are told apart: $out / $out2"
ok "6. another role's run and a missing run look the same (42704)"

# ---------------------------------------------------------------------------
# 7. localfs: a hard link planted at the temporary file's name.
# ---------------------------------------------------------------------------
root="$COCO_TMP/fsroot"
mkdir -p "$root/out"
echo "precious" >"$COCO_TMP/victim.txt"
chown -R postgres: "$root" "$COCO_TMP/victim.txt"
ln "$COCO_TMP/victim.txt" "$root/out/.coco-tmp-f.txt"
q -c "SELECT coco.provide_context('files', 'localfs', '{\"root\": \"$root\"}', '{regress_mallory}')" >/dev/null
as_mallory <<'SQL'
SELECT coco.create_app('fs');
SELECT coco.declare_dir('fs', 'files', 'out');
SELECT coco.declare_file('fs', 'files', 'out', 'f.txt', 'overwritten?');
SELECT coco.reconcile('fs');
SQL
for _ in $(seq 1 60); do
    [ -f "$root/out/f.txt" ] && break
    sleep 0.5
done
[ "$(cat "$root/out/f.txt" 2>/dev/null)" = "overwritten?" ] || fail "7. the file was not written"
[ "$(cat "$COCO_TMP/victim.txt")" = precious ] || fail "7. the hard-linked file was overwritten"
ok "7. a planted hard link is not followed"

# ---------------------------------------------------------------------------
# 8. A provider named into the localfs namespace: refused, and cannot
#    block coco.drop_context.
# ---------------------------------------------------------------------------
expect "8. a SQL provider named localfs.*" 42939 <<'SQL'
SELECT coco.register_provider('localfs.evil', 'm.app(jsonb)'::regprocedure::oid::regprocedure, 'm.app(jsonb)');
SQL
expect "8. a SQL provider named postgres.*" 42939 <<'SQL'
CREATE FUNCTION m.rec2(key jsonb, desired jsonb, prev jsonb[], may_be_missing boolean) RETURNS jsonb
  LANGUAGE sql AS $$ SELECT '{"action": "upsert"}'::jsonb $$;
SELECT coco.register_provider('postgres.evil', 'm.rec2(jsonb,jsonb,jsonb[],boolean)', 'm.app(jsonb)');
SQL
as_mallory <<'SQL'
CREATE FUNCTION m.rec3(key jsonb, desired jsonb, prev jsonb[], may_be_missing boolean) RETURNS jsonb
  LANGUAGE sql AS $$ SELECT '{"action": "upsert"}'::jsonb $$;
SELECT coco.register_provider('mallory.ctx', 'm.rec3(jsonb,jsonb,jsonb[],boolean)', 'm.app(jsonb)');
SELECT coco.create_app('blocker');
SELECT coco.declare_target_state('blocker', 'mallory.ctx', '["other", "x"]', '{}');
SELECT coco.reconcile('blocker');
SQL
q -c "SELECT coco.provide_context('other', 'localfs', '{\"root\": \"$root\"}', '{}')" \
  -c "SELECT coco.drop_context('other')" >/dev/null || fail "8. mallory's provider blocked drop_context"
ok "8. drop_context is not blocked by another provider's keys"

# ---------------------------------------------------------------------------
# 9. What can never succeed is refused when declared; NULL arguments.
# ---------------------------------------------------------------------------
long=$(printf 'd%.0s' $(seq 1 300))
expect "9. a directory component longer than a file name" 42622 <<SQL
SELECT coco.declare_dir('fs', 'files', 'out/$long');
SQL
as_mallory <<'SQL'
SELECT coco.create_app('cmd');
SELECT coco.declare_table('cmd', 'm.cmd', '[{"name":"id","type":"integer"}]', '{id}');
SELECT coco.declare_row('cmd', 'm.cmd', '{"id": 1}');
SELECT coco.reconcile('cmd');
SQL
expect "9. a sql_command of COMMIT" 0A000 <<'SQL'
SELECT coco.declare_sql_command('cmd', 'm.cmd', 'c', 'SELECT 1; COMMIT');
SQL
expect "9. a sql_command of ROLLBACK as teardown" 0A000 <<'SQL'
SELECT coco.declare_sql_command('cmd', 'm.cmd', 'c', 'SELECT 1', 'ROLLBACK');
SQL
expect "9. a sql_command of COPY FROM STDIN" 0A000 <<'SQL'
SELECT coco.declare_sql_command('cmd', 'm.cmd', 'c', 'COPY m.cmd FROM STDIN');
SQL
expect "9. a sql_command that is not SQL" 42601 <<'SQL'
SELECT coco.declare_sql_command('cmd', 'm.cmd', 'c', 'SELEC 1');
SQL
expect "9. coco.drop_app(app, NULL)" 22004 <<'SQL'
SELECT coco.drop_app('cmd', NULL);
SQL
[ "$(q -c "SELECT to_regclass('m.cmd') IS NOT NULL")" = t ] || fail "9. drop_app(app, NULL) dropped the table"
as_mallory <<'SQL'
CREATE FUNCTION m.drop_it() RETURNS int LANGUAGE plpgsql AS $$
BEGIN
  -- only in the run (its progress shows), not when declared
  IF EXISTS (SELECT 1 FROM coco.progress_slots() WHERE pid = pg_backend_pid()) THEN
    EXECUTE 'DROP TABLE m.cmd';
  END IF;
  RETURN 2;
END $$;
SELECT coco.declare_table('cmd', 'm.cmd', '[{"name":"id","type":"integer"}]', '{id}');
SELECT coco.declare_row('cmd', 'm.cmd', '{"id": 1}');
SELECT coco.declare_row('cmd', 'm.cmd', '{"id": 3}', '{third}');
SELECT coco.declare_rows('cmd', 'm.cmd', 'SELECT m.drop_it() AS id', '{other}');
SQL
expect "9. the target table dropped by user code mid-run" 42P01 <<'SQL'
SELECT coco.reconcile('cmd');
SQL
[ "$(q -c "SELECT count(*) FROM m.cmd")" = 1 ] || fail "9. the failed run changed m.cmd"
ok "9. the failed run left m.cmd as it was"

# ---------------------------------------------------------------------------
# 10. What the API caches, changed by user code while a caller uses it.
# ---------------------------------------------------------------------------
# a) a run's app, replaced in the app cache by a lookup of another role's
#    app (refused, and caught): the run must go on with its own app, and
#    alice's staged row must stay staged, not be applied as alice.
q -c "SET ROLE regress_alice" \
  -c "SELECT coco.create_app('alice_cached')" \
  -c "SELECT coco.declare_table('alice_cached', 'a.c', '[{\"name\":\"id\",\"type\":\"integer\"}]', '{id}')" \
  -c "SELECT coco.declare_row('alice_cached', 'a.c', '{\"id\": 1}')" \
  -c "SELECT coco.reconcile('alice_cached')" \
  -c "SELECT coco.declare_table('alice_cached', 'a.c', '[{\"name\":\"id\",\"type\":\"integer\"}]', '{id}')" \
  -c "SELECT coco.declare_row('alice_cached', 'a.c', '{\"id\": 1}')" \
  -c "SELECT coco.declare_row('alice_cached', 'a.c', '{\"id\": 2}')" >/dev/null
as_mallory <<'SQL'
CREATE FUNCTION m.peek() RETURNS int LANGUAGE plpgsql AS $$
BEGIN
  IF EXISTS (SELECT 1 FROM coco.progress_slots() WHERE pid = pg_backend_pid()) THEN
    BEGIN
      PERFORM coco.declare_row('alice_cached', 'a.c', '{"id": 3}');
    EXCEPTION WHEN insufficient_privilege THEN NULL;
    END;
  END IF;
  RETURN 1;
END $$;
SELECT coco.create_app('cache_run');
SELECT coco.declare_table('cache_run', 'm.cr', '[{"name":"id","type":"integer"}]', '{id}');
SELECT coco.declare_rows('cache_run', 'm.cr', 'SELECT m.peek() AS id');
SQL
expect "10a. another role's app looked up in the middle of a run" ok <<'SQL'
SELECT coco.reconcile('cache_run');
SQL
[ "$(q -c "SELECT string_agg(id::text, ',' ORDER BY id) FROM a.c")" = 1 ] ||
    fail "10a. alice's table was changed by mallory's run: $(q -c "SELECT string_agg(id::text, ',') FROM a.c")"
[ "$(q -c "SELECT count(*) FROM coco.staged_row s JOIN coco.app a USING (app_id) WHERE a.name = 'alice_cached'")" = 2 ] ||
    fail "10a. alice's staging was consumed by mallory's run"
[ "$(q -c "SELECT count(*) FROM m.cr")" = 1 ] || fail "10a. mallory's own run did not load m.cr"
ok "10a. the run kept its own app; alice's app untouched"

# b) a SQL provider registered by user code in the middle of a run that
#    holds the providers it looked up
as_mallory <<'SQL'
CREATE FUNCTION m.rereg(key jsonb, desired jsonb, prev jsonb[], may_be_missing boolean) RETURNS jsonb
  LANGUAGE plpgsql AS $$
BEGIN
  BEGIN
    PERFORM coco.register_provider('mallory.other', 'm.rereg(jsonb,jsonb,jsonb[],boolean)', 'm.app(jsonb)');
  EXCEPTION WHEN object_in_use THEN NULL;
  END;
  RETURN '{"action": "upsert"}';
END $$;
SELECT coco.register_provider('mallory.rereg', 'm.rereg(jsonb,jsonb,jsonb[],boolean)', 'm.app(jsonb)');
SELECT coco.create_app('rereg');
SELECT coco.declare_target_state('rereg', 'mallory.rereg', '"k1"', '{"v": 1}');
SELECT coco.declare_target_state('rereg', 'mallory.rereg', '"k2"', '{"v": 2}');
SQL
expect "10b. a provider registered in the middle of a run" ok <<'SQL'
SELECT coco.reconcile('rereg');
SQL
[ "$(q -c "SELECT count(*) FROM coco.provider WHERE name = 'mallory.other'")" = 0 ] ||
    fail "10b. the provider was registered in the middle of the run"
expect "10b. outside a run it can be registered" ok <<'SQL'
SELECT coco.register_provider('mallory.other', 'm.rereg(jsonb,jsonb,jsonb[],boolean)', 'm.app(jsonb)');
SQL

# c) a declared row whose conversion (a domain's CHECK) declares again
as_mallory <<'SQL'
CREATE FUNCTION m.reenter(v int) RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN
  PERFORM coco.declare_row('reenter', 'm.r2', '{"id": 1, "v": "x"}');
  RETURN true;
END $$;
CREATE DOMAIN m.checked AS int CHECK (m.reenter(VALUE));
SELECT coco.create_app('reenter');
SELECT coco.declare_table('reenter', 'm.r1', '[{"name":"id","type":"integer"},{"name":"v","type":"m.checked"}]', '{id}');
SELECT coco.declare_table('reenter', 'm.r2', '[{"name":"id","type":"integer"},{"name":"v","type":"text"}]', '{id}');
SQL
expect "10c. a domain check that declares while a row is converted" 55006 <<'SQL'
SELECT coco.declare_row('reenter', 'm.r1', '{"id": 1, "v": 5}');
SQL
expect "10c. the next declarations work" ok <<'SQL'
SELECT coco.declare_row('reenter', 'm.r2', '{"id": 2, "v": "y"}');
SELECT coco.declare_row('reenter', 'm.r2', '{"id": 3, "v": "z"}');
SQL

[ -z "$(coco_crashed_since 0)" ] || fail "a backend died during the test"
echo "hostile scenario passed"
