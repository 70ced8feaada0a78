#!/usr/bin/env bash
# Scenario: coco.progress shows a reconcile while it runs — its app, its
# phase and, while rows are written, the table and the rows written so far —
# and nothing once it ended (also after it failed); another role sees
# nothing of it.
set -euo pipefail
source "$(dirname "$0")/../scripts/lib.sh"

fail() { echo "FAIL: $*" >&2; exit 1; }

q <<'SQL' >/dev/null
CREATE EXTENSION coco_target;
CREATE ROLE regress_coco_onlooker LOGIN;
CREATE TABLE prog_src (id int PRIMARY KEY, v text);
INSERT INTO prog_src SELECT g, md5(g::text) FROM generate_series(1, 200000) g;
-- a source that is slow to read, so the run is caught writing rows
CREATE FUNCTION slow_rows() RETURNS SETOF prog_src LANGUAGE sql AS
  $$ SELECT * FROM prog_src UNION ALL SELECT 0, pg_sleep(3)::text $$;
SELECT coco.create_app('prog');
SELECT coco.declare_table('prog', 'public.prog_t',
    '[{"name":"id","type":"integer","nullable":false},{"name":"v","type":"text"}]', '{id}');
SELECT coco.reconcile('prog');
SELECT coco.declare_table('prog', 'public.prog_t',
    '[{"name":"id","type":"integer","nullable":false},{"name":"v","type":"text"}]', '{id}');
SELECT coco.declare_rows('prog', 'public.prog_t', 'SELECT id, v FROM public.slow_rows()');
SQL

(q -c "SET coco_target.batch_size = 10000" -c "SELECT coco.reconcile('prog')" >/dev/null) &
seen=""
for _ in $(seq 1 200); do
    seen=$(q -c "SELECT phase || '|' || coalesce(target, '') || '|' || done FROM coco.progress WHERE app = 'prog'")
    case "$seen" in "writing rows|public.prog_t|"[1-9]*) break;; esac
    sleep 0.05
done
case "$seen" in
    "writing rows|public.prog_t|"[1-9]*) ok "coco.progress showed the running reconcile: $seen" ;;
    *) fail "coco.progress did not show rows being written (last: '$seen')" ;;
esac
[ "$(coco_psql -qAt -c "SET ROLE regress_coco_onlooker" -c "SELECT count(*) FROM coco.progress")" = 0 ] \
    || fail "another role saw the run in coco.progress"
ok "another role sees nothing of it"
wait
[ "$(q -c "SELECT count(*) FROM coco.progress")" = 0 ] || fail "a finished run left a progress row"
ok "nothing left after the run"

# a failing run leaves nothing either
# (v declared NOT NULL while the declared rows have no v: SET NOT NULL fails)
q -c "SELECT coco.declare_table('prog', 'public.prog_t', '[{\"name\":\"id\",\"type\":\"integer\",\"nullable\":false},{\"name\":\"v\",\"type\":\"text\",\"nullable\":false}]', '{id}')" \
  -c "SELECT coco.declare_rows('prog', 'public.prog_t', 'SELECT id, NULL::text AS v FROM public.prog_src')" >/dev/null
if q -c "SELECT coco.reconcile('prog')" >/dev/null 2>&1; then fail "the failing run succeeded"; fi
[ "$(q -c "SELECT count(*) FROM coco.progress")" = 0 ] || fail "a failed run left a progress row"
ok "nothing left after a failed run"
# a run waiting for a lock shows the relation and the process holding it
holder_pid_file=$(mktemp)
chmod 666 "$holder_pid_file"
(q -c "BEGIN" -c "LOCK TABLE prog_t IN ACCESS EXCLUSIVE MODE" \
   -c "\\o $holder_pid_file" -c "SELECT pg_backend_pid()" -c "\\o" -c "SELECT pg_sleep(4)" -c "COMMIT" >/dev/null) &
holder=$!
sleep 1
(q -c "SELECT coco.clear_component('prog', '{}')" -c "SELECT coco.declare_table('prog', 'public.prog_t', '[{\"name\":\"id\",\"type\":\"integer\",\"nullable\":false},{\"name\":\"v\",\"type\":\"text\"},{\"name\":\"w\",\"type\":\"text\"}]', '{id}')" \
   -c "SELECT coco.reconcile('prog')" >/dev/null) &
runner=$!
seen=""
for _ in $(seq 1 60); do
    seen=$(q -c "SELECT phase || '|' || waiting_for || '|' || array_to_string(blocked_by, ',') FROM coco.progress WHERE app = 'prog'")
    case "$seen" in "waiting for lock|prog_t|"[1-9]*) break;; esac
    sleep 0.05
done
[ "$seen" = "waiting for lock|prog_t|$(cat "$holder_pid_file")" ] ||
    fail "coco.progress did not show the run waiting for the holder's lock (last: '$seen', holder $(cat "$holder_pid_file"))"
ok "coco.progress showed the run waiting for a lock: $seen"
wait "$holder" "$runner"
rm -f "$holder_pid_file"
echo "progress scenario passed"
