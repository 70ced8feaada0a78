#!/usr/bin/env bash
# Scenario (hostile): the ring of failed synchronous runs is shared by every
# role and database. A role that floods it while the worker is busy must
# neither see another role's failed run (its app name, run id, SQLSTATE and
# error message, which may carry that role's data) nor make that run's record
# disappear from coco.runs.
#   mallory keeps the one worker busy with a slow run of her own app; alice
#   fails 100 runs, then mallory 130 of her own app: all of alice's records
#   must still reach coco.runs, and mallory's session must get no WARNING
#   naming alice's app or quoting alice's error.
set -euo pipefail
source "$(dirname "$0")/../scripts/lib.sh"

q >/dev/null <<'SQL'
ALTER SYSTEM SET coco_target.max_attempts = 1;
ALTER SYSTEM SET coco_target.workers_per_database = 1;
SELECT pg_reload_conf();
CREATE EXTENSION coco_target;
CREATE ROLE alice LOGIN;
CREATE ROLE mallory LOGIN;
CREATE SCHEMA a AUTHORIZATION alice;
CREATE SCHEMA m AUTHORIZATION mallory;
SQL
as() { local r=$1; shift; coco_psql -qAt -U "$r" -d postgres -v ON_ERROR_STOP=0 "$@"; }

as alice >/dev/null <<'SQL'
CREATE TABLE a.src (id int PRIMARY KEY, v text NOT NULL);
INSERT INTO a.src VALUES (1, '1');
SELECT coco.create_app('alice_app');
SELECT coco.sync_table('alice_app', 'a.t', 'SELECT id, v::int AS n FROM a.src', '{id}');
SELECT coco.reconcile('alice_app');
SQL
as mallory >/dev/null <<'SQL'
CREATE TABLE m.src (id int PRIMARY KEY, v text NOT NULL);
INSERT INTO m.src VALUES (1, 'x');
SELECT coco.create_app('mallory_app');
SELECT coco.sync_table('mallory_app', 'm.t', 'SELECT id, v::int AS n FROM m.src', '{id}');
SELECT coco.create_app('mallory_slow');
SELECT coco.sync_table('mallory_slow', 'm.slow', 'SELECT 1 AS id, (SELECT 1 FROM pg_sleep(12)) AS z', '{id}');
SQL
slow=$(as mallory -c "SELECT coco.submit('mallory_slow')")
wait_for "SELECT status FROM coco.runs WHERE run_id = $slow" running || fail "the slow run did not start"

# alice's runs fail, 100 of them waiting; their error quotes her data
as alice -c "UPDATE a.src SET v = 'alice-secret-42'" >/dev/null
as alice -c "DO \$\$ BEGIN FOR i IN 1..100 LOOP
        BEGIN PERFORM coco.reconcile('alice_app'); EXCEPTION WHEN others THEN NULL; END;
      END LOOP; END \$\$" >/dev/null 2>&1 || true
# mallory floods the ring with failures of her own app
out=$(as mallory -c "DO \$\$ BEGIN FOR i IN 1..130 LOOP
        BEGIN PERFORM coco.reconcile('mallory_app'); EXCEPTION WHEN others THEN NULL; END;
      END LOOP; END \$\$" 2>&1 || true)
[ "$(q -c "SELECT status FROM coco.runs WHERE run_id = $slow")" = running ] ||
    fail "the worker was free before the flood ended: the test proves nothing"

if echo "$out" | grep -q 'alice'; then
    echo "$out" | grep -B1 -A1 'alice' | head -n 6 >&2
    fail "mallory's session was told about alice's failed run"
fi
ok "mallory's session saw nothing of alice's run"
wait_for "SELECT status FROM coco.runs WHERE run_id = $slow" succeeded postgres 30 || fail "the slow run did not end"
wait_for "SELECT count(*) FROM coco.runs WHERE app = 'alice_app' AND status = 'failed'" 100 postgres 30 ||
    fail "alice's failed runs are not all in coco.runs ($(q -c "SELECT count(*) FROM coco.runs WHERE app = 'alice_app' AND status = 'failed'") of 100): another role's flood evicted some"
ok "alice's 100 failed runs were all recorded despite mallory's flood of 130"
