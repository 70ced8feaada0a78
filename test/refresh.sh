#!/usr/bin/env bash
# Scenario: source-driven refresh (coco.set_app_option(app, refresh => true)):
# derived tables declared with coco.sync_table follow their sources' commits.
#   (a) burst: 200 source transactions committed as fast as 4 pgbench
#       clients can queue at most 20 executed runs of the app; the target
#       equals the source afterwards
#   (b) latency: on a 100,000-row source, a one-row change is in the target
#       within 2 s with the default settings (printed as a figure)
#   (c) the owner lacks TRIGGER on a source: switching refresh on is refused
#       with 42501 naming the table, and nothing is created
#   (d) the triggers follow the queries: through a view over a partitioned
#       table (a write straight into a partition refreshes), a replaced
#       query moves them, a hand-dropped one comes back at the next run,
#       off removes them, drop_app removes them
#   (e) a source write does not wait for a reconcile holding the app lock
#       (statement_timeout and lock_timeout 1 s)
#   (f) hostile: coco.refresh_trigger() called from a role's own triggers
#       with another app's id queues nothing (a row-level one is refused
#       with 39P01); a write by a role that is not the app's owner queues a
#       refresh run, which runs as the owner
#   (g) pg_dump and pg_restore into another database: the triggers come
#       back without their dependency on the extension, which the next run
#       of each app records again, so DROP EXTENSION stays clean there too
#   (h) DROP EXTENSION without CASCADE succeeds with triggers in place, and
#       takes them along
# The server never restarts. Measured figures are printed as "figure: ...".
# Runs against the throwaway cluster scripts/test.sh starts (PG* env set).
set -euo pipefail
source "$(dirname "$0")/../scripts/lib.sh"
export PGDATABASE=postgres

fail() {
    echo "FAIL: $*" >&2
    echo "--- server log (tail) ---" >&2
    tail -n 40 "$COCO_TMP/postgres.log" >&2
    exit 1
}
figure() { echo "figure: $*"; }
now_ms() { date +%s%3N; }

# Run `sql` as role $1, expecting an error: sets $err and $state (its SQLSTATE).
try_sql() {
    local role=$1 sql=$2
    err=$(q -U "$role" -c "\\set VERBOSITY verbose" -c "$sql" 2>&1 || true)
    state=$(printf '%s\n' "$err" | sed -n 's/^ERROR:  \([0-9A-Z]\{5\}\): .*/\1/p' | head -n 1)
}

# Wait until app $1 has no run queued or running.
quiet() {
    wait_for "SELECT count(*) FROM coco.run r JOIN coco.app a USING (app_id)
              WHERE a.name = '$1' AND r.status IN ('queued', 'running')" 0 postgres 60 ||
        fail "runs of app $1 did not finish"
}
# The table $1 has exactly the rows of query $2.
same() {
    [ "$(q -c "SELECT count(*) FROM ((TABLE $1 EXCEPT $2) UNION ALL ($2 EXCEPT TABLE $1)) d")" = 0 ] ||
        fail "$1 differs from its source: $(q -c "(TABLE $1 EXCEPT $2) UNION ALL ($2 EXCEPT TABLE $1) LIMIT 5")"
}
# The tables carrying app $1's refresh trigger, sorted, comma-separated.
watched() {
    q -c "SELECT coalesce(string_agg(t.tgrelid::regclass::text, ',' ORDER BY t.tgrelid::regclass::text), '')
          FROM pg_trigger t JOIN coco.app a ON t.tgname = 'coco_refresh_' || a.app_id
          WHERE a.name = '$1' AND t.tgfoid = 'coco.refresh_trigger()'::regprocedure"
}
registered() {
    q -c "SELECT coalesce(string_agg(s.source::text, ',' ORDER BY s.source::text), '')
          FROM coco.refresh_source s JOIN coco.app a USING (app_id) WHERE a.name = '$1'"
}
last_run() { q -c "SELECT coalesce(max(run_id), 0) FROM coco.run"; }

mark=$(coco_log_mark)
q <<'SQL' >/dev/null || fail "setup"
CREATE EXTENSION coco_target;
CREATE ROLE alice LOGIN;
CREATE ROLE bob LOGIN;
CREATE ROLE mallory LOGIN;
GRANT CREATE ON SCHEMA public TO alice;
CREATE SCHEMA mallory AUTHORIZATION mallory;
-- the sources are postgres's: alice may read them and put triggers on them,
-- bob may write them
CREATE TABLE src_a (id int PRIMARY KEY, v text NOT NULL);
CREATE TABLE src_b (id int PRIMARY KEY, v text NOT NULL);
INSERT INTO src_b SELECT g, 'row ' || g FROM generate_series(1, 100000) g;
CREATE TABLE src_c (id int PRIMARY KEY);
CREATE TABLE src_d1 (id int PRIMARY KEY, v text);
CREATE TABLE src_d2 (id int NOT NULL, v text) PARTITION BY RANGE (id);
CREATE TABLE src_d2_low PARTITION OF src_d2 FOR VALUES FROM (0) TO (100);
CREATE TABLE src_d2_high PARTITION OF src_d2 FOR VALUES FROM (100) TO (200);
CREATE VIEW src_d2_view AS SELECT id, v FROM src_d2 WHERE v IS NOT NULL;
CREATE TABLE src_e (id int PRIMARY KEY);
CREATE TABLE src_f (id int PRIMARY KEY);
GRANT SELECT, TRIGGER ON src_a, src_b, src_d1, src_d2, src_d2_low, src_d2_high, src_e, src_f TO alice;
GRANT SELECT ON src_c, src_d2_view TO alice;
GRANT SELECT, INSERT, UPDATE, DELETE ON src_a, src_b, src_d2, src_d2_low, src_e, src_f TO bob;
SQL
app_id() { q -c "SELECT app_id FROM coco.app WHERE name = '$1'"; }

# --- (a) a burst of 200 source commits ---------------------------------------
q -U alice <<'SQL' >/dev/null || fail "(a) setup"
SELECT coco.create_app('burst');
SELECT coco.sync_table('burst', 'public.tgt_a', 'SELECT id, v FROM src_a', '{id}');
SELECT coco.reconcile('burst', false);
SELECT coco.set_app_option('burst', refresh => true);
SQL
[ "$(watched burst)" = src_a ] || fail "(a) src_a is not watched: '$(watched burst)'"
[ "$(registered burst)" = src_a ] || fail "(a) src_a is not registered: '$(registered burst)'"
before=$(last_run)
cat >"$COCO_TMP/burst.sql" <<'SQL'
\set id random(1, 500)
INSERT INTO src_a VALUES (:id, 'v' || :id) ON CONFLICT (id) DO UPDATE SET v = src_a.v || '+';
SQL
chown postgres: "$COCO_TMP/burst.sql"
t0=$(now_ms)
runuser -u postgres -- "$COCO_PGBIN/pgbench" -n -U bob -c 4 -j 2 -t 50 -f "$COCO_TMP/burst.sql" postgres \
    >"$COCO_TMP/pgbench.out" 2>&1 || { cat "$COCO_TMP/pgbench.out"; fail "(a) pgbench"; }
burst_ms=$(($(now_ms) - t0))
grep -q "number of transactions actually processed: 200/200" "$COCO_TMP/pgbench.out" ||
    { cat "$COCO_TMP/pgbench.out"; fail "(a) pgbench did not commit 200 transactions"; }
quiet burst
read -r executed coalesced other <<<"$(q -F ' ' -c "
    SELECT count(*) FILTER (WHERE status = 'succeeded'), count(*) FILTER (WHERE status = 'coalesced'),
           count(*) FILTER (WHERE status NOT IN ('succeeded', 'coalesced') OR origin IS DISTINCT FROM 'refresh')
    FROM coco.run r JOIN coco.app a USING (app_id) WHERE a.name = 'burst' AND run_id > $before")"
figure "(a) 200 source commits in ${burst_ms} ms: $executed refresh runs executed, $coalesced coalesced"
[ "$other" = 0 ] || fail "(a) $other runs failed or were not refresh runs"
[ "$executed" -ge 1 ] && [ "$executed" -le 20 ] || fail "(a) $executed runs executed, wanted 1..20"
same tgt_a "SELECT id, v FROM src_a"
ok "(a) 200 source commits: $executed runs (at most 20), target equals source"

# --- (b) latency of a one-row change on a 100k-row source --------------------
q -U alice <<'SQL' >/dev/null || fail "(b) setup"
SELECT coco.create_app('big');
SELECT coco.sync_table('big', 'public.tgt_b', 'SELECT id, v FROM src_b', '{id}');
SELECT coco.reconcile('big', false);
SELECT coco.set_app_option('big', refresh => true);
SQL
[ "$(q -c "SELECT count(*) FROM tgt_b")" = 100000 ] || fail "(b) initial load"
best=""
for i in 1 2 3; do
    t0=$(now_ms)
    q -U bob -c "UPDATE src_b SET v = 'changed $i' WHERE id = 4242" >/dev/null
    seen=""
    while [ $(($(now_ms) - t0)) -lt 10000 ]; do
        if [ "$(q -c "SELECT v FROM tgt_b WHERE id = 4242")" = "changed $i" ]; then
            seen=$(($(now_ms) - t0))
            break
        fi
        sleep 0.02
    done
    [ -n "$seen" ] || fail "(b) the change did not reach the target within 10 s"
    echo "refresh latency: $seen ms"
    [ "$seen" -lt 2000 ] || fail "(b) a one-row change took $seen ms (more than 2 s)"
    quiet big
done
figure "(b) one-row change of a 100,000-row source visible in the target within 2 s"
same tgt_b "SELECT id, v FROM src_b"
ok "(b) one-row change visible within 2 s on a 100k-row source"

# --- (c) the owner lacks TRIGGER on a source ---------------------------------
q -U alice <<'SQL' >/dev/null || fail "(c) setup"
SELECT coco.create_app('nopriv');
SELECT coco.sync_table('nopriv', 'public.tgt_c1', 'SELECT id, v FROM src_a', '{id}');
SELECT coco.sync_table('nopriv', 'public.tgt_c2', 'SELECT id FROM src_c', '{id}');
SQL
try_sql alice "SELECT coco.set_app_option('nopriv', refresh => true)"
[ "$state" = 42501 ] || fail "(c) wanted 42501, got: $err"
printf '%s\n' "$err" | grep -q 'lacks the TRIGGER privilege on table public.src_c' ||
    fail "(c) the error does not name the table: $err"
[ "$(watched nopriv)" = "" ] || fail "(c) triggers were created: $(watched nopriv)"
[ "$(registered nopriv)" = "" ] || fail "(c) sources were registered: $(registered nopriv)"
[ "$(q -c "SELECT refresh FROM coco.app WHERE name = 'nopriv'")" = f ] || fail "(c) the option was switched on"
ok "(c) no TRIGGER privilege: 42501 naming the table, nothing created"

# --- (d) the triggers follow the queries --------------------------------------
q -U alice <<'SQL' >/dev/null || fail "(d) setup"
SELECT coco.create_app('follow');
SELECT coco.sync_table('follow', 'public.tgt_d', 'SELECT id, v FROM src_d1', '{id}');
SELECT coco.reconcile('follow', false);
SELECT coco.set_app_option('follow', refresh => true);
SQL
[ "$(watched follow)" = src_d1 ] || fail "(d) watched: '$(watched follow)'"
# the query now reads a view over a partitioned table, in a sublink too
q -U alice -c "SELECT coco.sync_table('follow', 'public.tgt_d',
    'SELECT id, v FROM src_d2_view WHERE id IN (SELECT id FROM src_d2_view)', '{id}')" >/dev/null ||
    fail "(d) replacing the query"
q -U alice -c "SELECT coco.reconcile('follow', false)" >/dev/null || fail "(d) reconcile"
want="src_d2,src_d2_high,src_d2_low"
[ "$(watched follow)" = "$want" ] || fail "(d) after the new query, watched: '$(watched follow)', wanted $want"
[ "$(registered follow)" = "$want" ] || fail "(d) registered: '$(registered follow)'"
ok "(d) a replaced query moves the triggers (view over a partitioned table: parent and partitions)"
# a write straight into a partition refreshes
q -U bob -c "INSERT INTO src_d2_low VALUES (7, 'seven')" >/dev/null
wait_for "SELECT v FROM tgt_d WHERE id = 7" seven postgres 10 || fail "(d) a write into a partition did not refresh"
ok "(d) a write straight into a partition refreshes"
# a trigger dropped by hand comes back at the next run
q -c "DROP TRIGGER coco_refresh_$(app_id follow) ON src_d2_high" >/dev/null
[ "$(watched follow)" = "src_d2,src_d2_low" ] || fail "(d) the trigger was not dropped"
q -U alice -c "SELECT coco.reconcile('follow', false)" >/dev/null
[ "$(watched follow)" = "$want" ] || fail "(d) the dropped trigger did not come back: '$(watched follow)'"
ok "(d) a hand-dropped trigger is created again at the next run"
q -U alice -c "SELECT coco.set_app_option('follow', refresh => false)" >/dev/null
[ "$(watched follow)" = "" ] || fail "(d) off left triggers: '$(watched follow)'"
[ "$(registered follow)" = "" ] || fail "(d) off left registrations: '$(registered follow)'"
[ "$(q -c "SELECT count(*) FROM pg_trigger WHERE tgname LIKE 'coco_refresh_%' AND tgrelid::regclass::text LIKE 'src_d%'")" = 0 ] ||
    fail "(d) off left triggers on the sources"
ok "(d) refresh off removes the triggers"
q -U alice -c "SELECT coco.set_app_option('follow', refresh => true)" >/dev/null
[ "$(watched follow)" = "$want" ] || fail "(d) on again: '$(watched follow)'"
fid=$(app_id follow)
q -U alice -c "SELECT coco.drop_app('follow', false)" >/dev/null || fail "(d) drop_app"
[ "$(q -c "SELECT count(*) FROM pg_trigger WHERE tgname = 'coco_refresh_$fid'")" = 0 ] ||
    fail "(d) drop_app left triggers"
[ "$(q -c "SELECT count(*) FROM coco.refresh_source WHERE app_id = $fid")" = 0 ] || fail "(d) drop_app left registrations"
ok "(d) drop_app removes the triggers"

# --- (e) a source write never waits for a reconcile ---------------------------
q -U alice <<'SQL' >/dev/null || fail "(e) setup"
SELECT coco.create_app('busy');
SELECT coco.sync_table('busy', 'public.tgt_e', 'SELECT id FROM src_e', '{id}');
SELECT coco.reconcile('busy', false);
SELECT coco.set_app_option('busy', refresh => true);
SQL
quiet busy
# a reconcile holding the app lock, not committed for 6 s
q -U alice -c "BEGIN" -c "SELECT coco.reconcile('busy', false)" -c "SELECT pg_sleep(6)" -c "COMMIT" \
    >/dev/null 2>&1 &
holder=$!
wait_for "SELECT count(*) FROM pg_stat_activity WHERE usename = 'alice' AND query LIKE '%pg_sleep(6)%'" 1 ||
    fail "(e) the holding session did not start"
t0=$(now_ms)
q -U bob -c "SET statement_timeout = '1s'" -c "SET lock_timeout = '1s'" \
    -c "INSERT INTO src_e VALUES (1)" -c "UPDATE src_e SET id = 2 WHERE id = 1" >/dev/null ||
    fail "(e) the source write failed while a reconcile held the app lock"
write_ms=$(($(now_ms) - t0))
figure "(e) source write while a reconcile holds the app lock: $write_ms ms"
[ "$write_ms" -lt 1000 ] || fail "(e) the source write took $write_ms ms"
[ "$(q -c "SELECT count(*) FROM pg_locks l JOIN pg_stat_activity a USING (pid)
            WHERE a.usename = 'alice' AND l.locktype = 'advisory' AND l.granted")" -ge 1 ] ||
    fail "(e) the reconcile no longer held its lock during the write"
wait "$holder" || fail "(e) the holding session failed"
wait_for "SELECT string_agg(id::text, ',') FROM tgt_e" 2 postgres 15 || fail "(e) the write was not refreshed afterwards"
ok "(e) a source write does not wait for a reconcile holding the app lock; it is refreshed afterwards"

# --- (f) hostile roles, and a writer that is not the owner ---------------------
busy=$(app_id busy)
quiet busy
before=$(last_run)
q -U mallory <<SQL >/dev/null || fail "(f) mallory's own triggers"
CREATE TABLE mallory.t (x int);
CREATE TRIGGER coco_refresh_$busy AFTER INSERT OR UPDATE ON mallory.t
    FOR EACH STATEMENT EXECUTE FUNCTION coco.refresh_trigger('$busy');
CREATE TRIGGER other_name AFTER INSERT ON mallory.t
    FOR EACH STATEMENT EXECUTE FUNCTION coco.refresh_trigger('$busy');
INSERT INTO mallory.t VALUES (1);
UPDATE mallory.t SET x = 2;
SQL
sleep 1
[ "$(last_run)" = "$before" ] || fail "(f) mallory's triggers queued a run: $(q -c "SELECT * FROM coco.run WHERE run_id > $before")"
try_sql mallory "CREATE TRIGGER by_row AFTER INSERT ON mallory.t FOR EACH ROW EXECUTE FUNCTION coco.refresh_trigger('$busy');
                 INSERT INTO mallory.t VALUES (3)"
[ "$state" = 39P01 ] || fail "(f) a row-level refresh trigger: wanted 39P01, got: $err"
[ "$(last_run)" = "$before" ] || fail "(f) a run was queued"
ok "(f) coco.refresh_trigger() from a role's own triggers queues nothing (39P01 at row level)"
q -U alice <<'SQL' >/dev/null || fail "(f) setup"
SELECT coco.create_app('asowner');
SELECT coco.sync_table('asowner', 'public.tgt_f', 'SELECT id, current_user::text AS by FROM src_f', '{id}');
SELECT coco.reconcile('asowner', false);
SELECT coco.set_app_option('asowner', refresh => true);
SQL
before=$(last_run)
q -U bob -c "INSERT INTO src_f VALUES (1), (2)" >/dev/null
wait_for "SELECT string_agg(id || ':' || by, ',' ORDER BY id) FROM tgt_f" "1:alice,2:alice" postgres 10 ||
    fail "(f) bob's write was not refreshed as alice"
[ "$(q -c "SELECT string_agg(DISTINCT origin, ',') FROM coco.run WHERE run_id > $before")" = refresh ] ||
    fail "(f) runs: $(q -c "SELECT run_id, status, origin FROM coco.run WHERE run_id > $before")"
ok "(f) a write by a role that is not the owner queues a refresh run, which runs as the owner"

q -U mallory -c "DROP TABLE mallory.t" >/dev/null

# --- (g) dump and restore -------------------------------------------------------
# The triggers are restored as ordinary triggers, without their dependency
# on the extension; the next run of each app records it again.
refresh_triggers="SELECT count(*) FROM pg_trigger WHERE tgfoid = 'coco.refresh_trigger()'::regprocedure"
on_extension="SELECT count(*) FROM pg_depend d JOIN pg_trigger t ON t.oid = d.objid
               WHERE d.classid = 'pg_trigger'::regclass AND d.refclassid = 'pg_extension'::regclass
                 AND d.deptype = 'a' AND t.tgfoid = 'coco.refresh_trigger()'::regprocedure"
n=$(q -c "$refresh_triggers")
q -c "CREATE DATABASE restored" >/dev/null
coco_as_pg "$COCO_PGBIN/pg_dump" -Fc -f "$COCO_TMP/refresh.dump" postgres || fail "(g) pg_dump"
coco_as_pg "$COCO_PGBIN/pg_restore" -d restored "$COCO_TMP/refresh.dump" || fail "(g) pg_restore"
[ "$(q -d restored -c "$refresh_triggers")" = "$n" ] || fail "(g) the restored database has $(q -d restored -c "$refresh_triggers") refresh triggers, wanted $n"
[ "$(q -d restored -c "$on_extension")" = 0 ] || fail "(g) expected the dependencies to be lost by the dump"
q -U alice -d restored -c "SELECT count(coco.reconcile(name, false)) FROM coco.app WHERE refresh" >/dev/null ||
    fail "(g) reconciling the restored apps"
[ "$(q -d restored -c "$on_extension")" = "$n" ] ||
    fail "(g) after a run of each app, $(q -d restored -c "$on_extension") of $n triggers depend on the extension"
q -d restored -c "DROP EXTENSION coco_target" >/dev/null || fail "(g) DROP EXTENSION in the restored database"
ok "(g) restored from a dump, the triggers regain their dependency on the extension at the next run"

# --- (h) DROP EXTENSION with triggers in place --------------------------------
[ "$n" -ge 4 ] || fail "(h) expected refresh triggers in place, found $n"
q -c "DROP EXTENSION coco_target" >/dev/null || fail "(h) DROP EXTENSION without CASCADE failed"
[ "$(q -c "SELECT count(*) FROM pg_trigger WHERE tgname LIKE 'coco_refresh_%'")" = 0 ] ||
    fail "(h) triggers outlived the extension"
q -U bob -c "INSERT INTO src_a VALUES (9999, 'after')" >/dev/null || fail "(h) a source write after DROP EXTENSION"
ok "(h) DROP EXTENSION without CASCADE takes the triggers along; sources stay writable"

[ -z "$(coco_crashed_since "$mark")" ] || fail "the server restarted: $(coco_crashed_since "$mark")"
echo "refresh: all ok"
