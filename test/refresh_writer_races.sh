#!/usr/bin/env bash
# Scenario (hostile/concurrency): source-driven refresh must never make a
# source write fail or wait on the app's maintenance.
#   1. a writer's transaction wrote a watched source and is about to commit
#      when the app's owner calls coco.drop_app: the writer's COMMIT must
#      succeed (today: deadlock detected, 40P01, the write is lost);
#   2. a writer that PREPAREs its transaction after writing a watched source
#      must not keep the app's owner from dropping the app longer than
#      coco_target.lock_timeout (today: drop_app waits for as long as the
#      prepared transaction lives — it holds a key-share lock on the app's
#      row through the refresh run it queued).
set -euo pipefail
source "$(dirname "$0")/../scripts/lib.sh"

q >/dev/null <<'SQL'
ALTER SYSTEM SET max_prepared_transactions = 5;
ALTER SYSTEM SET coco_target.lock_timeout = 3000;
SQL
coco_pg_ctl -w restart >/dev/null
q >/dev/null <<'SQL'
CREATE EXTENSION coco_target;
CREATE ROLE alice LOGIN;
CREATE ROLE writer LOGIN;
CREATE SCHEMA a AUTHORIZATION alice;
GRANT USAGE ON SCHEMA a TO writer;
SQL
as() { local r=$1; shift; coco_psql -qAt -U "$r" -d postgres -v ON_ERROR_STOP=0 "$@"; }
setup() {
    as alice >/dev/null <<SQL
CREATE TABLE IF NOT EXISTS a.src_$1 (id int PRIMARY KEY, v int NOT NULL);
GRANT SELECT, INSERT ON a.src_$1 TO writer;
SELECT coco.create_app('app_$1');
SELECT coco.sync_table('app_$1', 'a.t_$1', 'SELECT id, v FROM a.src_$1', '{id}');
SELECT coco.set_app_option('app_$1', refresh => true);
SELECT coco.reconcile('app_$1');
SQL
}

# --- 1. drop_app while a writer commits -------------------------------------
setup 1
as writer >"$COCO_TMP/w1.out" 2>&1 <<'SQL' &
BEGIN;
INSERT INTO a.src_1 VALUES (1, 1);
SELECT pg_sleep(2);
COMMIT;
SQL
wpid=$!
sleep 0.7
as alice -c "SELECT coco.drop_app('app_1')" >"$COCO_TMP/d1.out" 2>&1 || true
wait "$wpid" || true
if grep -q ERROR "$COCO_TMP/w1.out"; then
    cat "$COCO_TMP/w1.out" >&2
    fail "1. the writer's commit failed because the app was dropped meanwhile"
fi
[ "$(q -c "SELECT count(*) FROM a.src_1")" = 1 ] || fail "1. the writer's row is gone"
ok "1. a source write committed while its app was dropped"

# --- 2. a prepared writer and drop_app --------------------------------------
setup 2
as writer -c "BEGIN" -c "INSERT INTO a.src_2 VALUES (1, 1)" -c "PREPARE TRANSACTION 'w2'" >/dev/null
start=$SECONDS
out=$(as alice -c "SET statement_timeout = '15s'" -c "SELECT coco.drop_app('app_2')" 2>&1 || true)
took=$((SECONDS - start))
q -c "ROLLBACK PREPARED 'w2'" >/dev/null
[ "$took" -le 10 ] || fail "2. drop_app waited ${took}s for the prepared writer (lock_timeout 3s): $out"
ok "2. drop_app did not wait past lock_timeout for a prepared source writer (${took}s: $out)"
