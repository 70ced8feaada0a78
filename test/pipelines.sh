#!/usr/bin/env bash
# Scenario: pipelines that keep themselves in sync, replayed as a data
# engineer builds them (docs/pipelines.md).
#   (a) stray staging does not stall coco.update: declarations of the same
#       table and query, staged into the components the declaration function
#       declares and committed without a reconcile (a failed auto-submit, a
#       committed manual preview), are replaced by the function's
#       declarations; coco.update succeeds and the target equals the source
#   (b) a statement-level trigger re-declaring the derived table on every
#       source write, with auto_submit: 4 concurrent sessions commit 240
#       source transactions, none fails, and once the worker has caught up
#       the target equals the source
# Runs against the throwaway cluster scripts/test.sh starts (PG* env set).
set -euo pipefail
source "$(dirname "$0")/../scripts/lib.sh"

fail() {
    echo "FAIL: $*" >&2
    echo "--- server log (tail) ---" >&2
    tail -n 40 "$COCO_TMP/postgres.log" >&2
    exit 1
}

q >/dev/null <<'SQL'
CREATE EXTENSION coco_target;
SQL

# --- (a) stray staging does not stall coco.update -------------------------
q >/dev/null <<'SQL'
CREATE TABLE docs (id int PRIMARY KEY, body text NOT NULL);
INSERT INTO docs SELECT g, 'doc ' || g FROM generate_series(1, 500) g;
CREATE FUNCTION chunks_declare(app text) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    PERFORM coco.declare_table(app, 'public.chunks',
        '[{"name": "id", "type": "integer"}, {"name": "body", "type": "text"}]', '{id}',
        component => '{tables}');
    PERFORM coco.declare_rows(app, 'public.chunks', 'SELECT id, body FROM public.docs', '{rows}');
END $$;
SELECT coco.create_app('stray', 'chunks_declare(text)');
SELECT coco.update('stray');
SQL
# another version of the same declarations, staged and committed, never
# reconciled: another column, another query of the same keys
q >/dev/null <<'SQL'
BEGIN;
SELECT coco.declare_table('stray', 'public.chunks',
    '[{"name": "id", "type": "integer"}, {"name": "body", "type": "text"}, {"name": "draft", "type": "text"}]',
    '{id}', component => '{tables}');
SELECT coco.declare_rows('stray', 'public.chunks',
    'SELECT id, upper(body) AS body, ''draft'' AS draft FROM public.docs', '{rows}');
COMMIT;
UPDATE docs SET body = body || ' (edited)' WHERE id % 7 = 0;
DELETE FROM docs WHERE id > 490;
INSERT INTO docs VALUES (1000, 'a new doc');
SQL
staged=$(q -c "SELECT count(*) FROM coco.staged WHERE app = 'stray'")
[ "$staged" = 2 ] || fail "(a) the stray staging is not there: $staged staged targets, wanted 2"
out=$(q -c "SELECT coco.update('stray')->>'run_id'" 2>&1) || fail "(a) coco.update failed on stray staging: $out"
diff=$(q -c "SELECT (SELECT count(*) FROM (SELECT * FROM docs EXCEPT SELECT * FROM chunks) x)
               + (SELECT count(*) FROM (SELECT * FROM chunks EXCEPT SELECT * FROM docs) x)")
[ "$diff" = 0 ] || fail "(a) after coco.update, chunks differs from docs by $diff rows"
cols=$(q -c "SELECT string_agg(attname, ',' ORDER BY attnum) FROM pg_attribute
             WHERE attrelid = 'chunks'::regclass AND attnum > 0 AND NOT attisdropped")
[ "$cols" = "id,body" ] || fail "(a) chunks has columns '$cols', wanted the function's 'id,body'"
left=$(q -c "SELECT count(*) FROM coco.staged WHERE app = 'stray'")
[ "$left" = 0 ] || fail "(a) $left staged targets left after coco.update"
# and the same once more, the stray staging in the very transaction
out=$(q -c "BEGIN" \
        -c "SELECT coco.declare_table('stray', 'public.chunks', '[{\"name\": \"id\", \"type\": \"integer\"}]', '{id}', component => '{tables}')" \
        -c "SELECT coco.update('stray')->>'run_id'" -c "COMMIT" 2>&1) ||
    fail "(a) coco.update after a declaration in its own transaction failed: $out"
ok "(a) coco.update ran (run $(echo "$out" | tail -n 1)) over stray declarations of the same table and query committed earlier and staged in the same transaction; the target equals the source ($(q -c 'SELECT count(*) FROM chunks') rows, columns $cols), nothing left staged"

# --- (b) a statement trigger re-declaring on every source write -------------
q >/dev/null <<'SQL'
CREATE TABLE src_b (id int PRIMARY KEY, v text NOT NULL);
INSERT INTO src_b SELECT g, 'v' || g FROM generate_series(1, 200) g;
SELECT coco.create_app('trig');
SELECT coco.set_app_option('trig', auto_submit => true);
CREATE FUNCTION src_b_declare() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM coco.declare_table('trig', 'public.tgt_b',
        '[{"name": "id", "type": "integer"}, {"name": "v", "type": "text"}]', '{id}',
        component => '{b}');
    PERFORM coco.declare_rows('trig', 'public.tgt_b', 'SELECT id, v FROM public.src_b', '{b}');
    RETURN NULL;
END $$;
CREATE TRIGGER src_b_coco AFTER INSERT OR UPDATE OR DELETE ON src_b
    FOR EACH STATEMENT EXECUTE FUNCTION src_b_declare();
SQL
# random inserts, updates and deletes, paced so that runs of the worker
# consume staging while writes re-declare it
cat >"$COCO_TMP/writes.sql" <<'SQL'
\set id random(1, 300)
\set op random(1, 3)
\if :op = 1
INSERT INTO src_b VALUES (:id, 'i' || :id) ON CONFLICT (id) DO UPDATE SET v = EXCLUDED.v || '+';
\elif :op = 2
UPDATE src_b SET v = v || '.' WHERE id = :id;
\else
DELETE FROM src_b WHERE id = :id;
\endif
\sleep 10 ms
SQL
chown postgres: "$COCO_TMP/writes.sql"
# a first write declares the table; the commit submits it
q -c "UPDATE src_b SET v = v WHERE id = 1" >/dev/null
wait_for "SELECT to_regclass('public.tgt_b') IS NOT NULL" t || fail "(b) the first write's commit did not create tgt_b"
set +e
bench=$(coco_as_pg "$COCO_PGBIN/pgbench" -n -c 4 -j 4 -t 60 -f "$COCO_TMP/writes.sql" postgres 2>&1)
rc=$?
set -e
[ "$rc" = 0 ] || fail "(b) pgbench exited $rc: $bench"
done_tx=$(echo "$bench" | sed -n 's/^number of transactions actually processed: \([0-9]*\)\/\([0-9]*\).*/\1\/\2/p')
[ "$done_tx" = "240/240" ] || fail "(b) source writes: processed $done_tx, wanted 240/240: $bench"
failed_tx=$(echo "$bench" | sed -n 's/^number of failed transactions: \([0-9]*\).*/\1/p')
[ -z "$failed_tx" ] || [ "$failed_tx" = 0 ] || fail "(b) $failed_tx source transactions failed: $bench"
tps=$(echo "$bench" | sed -n 's/^tps = \([0-9.]*\).*/\1/p' | head -n 1)
same="SELECT (SELECT count(*) FROM (SELECT * FROM src_b EXCEPT SELECT * FROM tgt_b) x)
           + (SELECT count(*) FROM (SELECT * FROM tgt_b EXCEPT SELECT * FROM src_b) x)"
wait_for "SELECT count(*) FROM coco.runs WHERE app = 'trig' AND status IN ('queued', 'running')" 0 postgres 60 ||
    fail "(b) the worker did not catch up"
wait_for "$same" 0 postgres 60 || fail "(b) once caught up, tgt_b differs from src_b"
row=$(q -c "SELECT count(*), count(*) FILTER (WHERE status <> 'succeeded') FROM coco.runs WHERE app = 'trig'")
[ "${row#*|}" = 0 ] || fail "(b) runs of trig that did not succeed: $row"
staged=$(q -c "SELECT count(*) FROM coco.staged_query s JOIN coco.app a USING (app_id) WHERE a.name = 'trig'")
[ "$staged" = 0 ] || fail "(b) $staged queries left staged"
ok "(b) 240 source write transactions from 4 concurrent sessions re-declared the target in a statement trigger, none failed ($tps tps); with auto_submit the worker caught up through ${row%|*} runs, all succeeded, and tgt_b equals src_b ($(q -c 'SELECT count(*) FROM tgt_b') rows)"
