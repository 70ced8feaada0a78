#!/usr/bin/env bash
# Scenario: coco.progress shows a reconcile while it runs — its app, its
# phase and, while rows are written, the table and the rows written so far —
# and nothing once it ended (also after it failed); another role sees
# nothing of it.  The initial load of a table the run creates shows the
# rows loaded against the count declare_rows took.
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
# the initial load of a table the run creates shows the rows loaded so far
# against the rows declare_rows counted (it counts with
# coco_target.declare_rows_count on; otherwise the total is not known)
declared=$(q <<'SQL'
SET coco_target.declare_rows_count = on;
SELECT coco.create_app('load');
SELECT coco.declare_table('load', 'public.load_t',
    '[{"name":"id","type":"integer","nullable":false},{"name":"v","type":"text"}]', '{id}');
-- slow to read: a pause every 30,000 rows
SELECT coco.declare_rows('load', 'public.load_t',
    $q$SELECT g AS id, md5(g::text) || CASE WHEN g % 30000 = 0 THEN pg_sleep(0.3)::text ELSE '' END AS v
         FROM generate_series(1, 300000) g$q$);
SQL
)
declared=$(echo "$declared" | tail -n 1)
[ "$declared" = 300000 ] || fail "declare_rows counted $declared rows"
(q -c "SELECT coco.reconcile('load')" >/dev/null) &
loader=$!
samples=()
for _ in $(seq 1 300); do
    s=$(q -c "SELECT phase || '|' || coalesce(target, '') || '|' || done || '|' || coalesce(total::text, '') FROM coco.progress WHERE app = 'load'")
    case "$s" in "loading rows|public.load_t|"[1-9]*) samples+=("$s") ;; esac
    # until done has grown since the first sample
    [ "${#samples[@]}" -ge 2 ] && [ "${samples[0]}" != "$s" ] && break
    sleep 0.1
done
wait "$loader"
[ "${#samples[@]}" -ge 2 ] || fail "coco.progress did not show the load (samples: ${samples[*]:-none})"
first=${samples[0]}
last=${samples[${#samples[@]}-1]}
IFS='|' read -r _ _ done1 total1 <<<"$first"
IFS='|' read -r _ _ done2 total2 <<<"$last"
[ "$total1" = 300000 ] && [ "$total2" = 300000 ] ||
    fail "the load's total is not the declared count: ${samples[*]}"
[ "$done2" -gt "$done1" ] && [ "$done2" -lt 300000 ] ||
    fail "the load's done did not grow while it ran: ${samples[*]}"
[ "$(q -c "SELECT count(*) FROM load_t")" = 300000 ] || fail "the load did not write every row"
ok "coco.progress showed the initial load growing against the declared total: ${samples[*]}"
echo "progress scenario passed"
