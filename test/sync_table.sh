#!/usr/bin/env bash
# Scenario: coco.sync_table with the worker and with pgvector.
#   (a) a batched worker run (coco_target.commit_every) of a synced table:
#       every transaction of the run expands the registration again, and
#       the target equals the source at the end
#   (b) a source change alone (nothing staged) is picked up by the next
#       worker run
#   (c) pgvector: a vector(3) column is inferred with its dimension, and an
#       hnsw index declared through the options is built; skipped (with a
#       visible SKIP line) when the server has no pgvector
# No backend dies on the way.
# Runs against the throwaway cluster scripts/test.sh starts (PG* env set).
set -euo pipefail
source "$(dirname "$0")/../scripts/lib.sh"

mark=$(coco_log_mark)
q >/dev/null <<'SQL'
ALTER SYSTEM SET coco_target.commit_every = 3000;
SELECT pg_reload_conf();
CREATE EXTENSION coco_target;
CREATE TABLE src (id bigint PRIMARY KEY, body text NOT NULL, score numeric(8,3));
INSERT INTO src SELECT g, 'body ' || g, g / 7.0 FROM generate_series(1, 20000) g;
SELECT coco.create_app('s');
SQL

# --- (a) a batched worker run --------------------------------------------------
columns=$(q -c "SELECT coco.sync_table('s', 'public.derived',
    'SELECT id, body, score, length(body) AS len FROM src', '{id}')")
[ "$columns" = '[{"name": "id", "type": "bigint", "nullable": false}, {"name": "body", "type": "text", "nullable": false}, {"name": "score", "type": "numeric(8,3)", "nullable": true}, {"name": "len", "type": "integer", "nullable": true}]' ] ||
    fail "(a) inferred columns: $columns"
run=$(q -c "SELECT coco.submit('s')")
q -c "SELECT coco.wait($run, '120s')" >/dev/null
got=$(q -c "SELECT status, (stats->>'transactions')::int > 1, stats->>'inserted' FROM coco.run WHERE run_id = $run")
[ "$got" = "succeeded|t|20001" ] || fail "(a) batched run: $got"
diff=$(q -c "SELECT count(*) FROM ((SELECT id, body, score, length(body) FROM src EXCEPT SELECT * FROM derived)
             UNION ALL (SELECT * FROM derived EXCEPT SELECT id, body, score, length(body) FROM src)) d")
[ "$diff" = 0 ] || fail "(a) target differs from source in $diff rows"
ok "(a) a 20,000-row synced table loaded by a batched worker run ($(q -c "SELECT stats->>'transactions' FROM coco.run WHERE run_id = $run") transactions)"

# --- (b) a source change, nothing staged ------------------------------------------
staged=$(q -c "SELECT count(*) FROM coco.staged WHERE app = 's'")
[ "$staged" = 0 ] || fail "(b) staging left behind: $staged"
# 20 rows changed, one of them (20000) deleted too
q -c "UPDATE src SET body = body || '!' WHERE id % 1000 = 0; DELETE FROM src WHERE id > 19990" >/dev/null
run=$(q -c "SELECT coco.submit('s')")
q -c "SELECT coco.wait($run, '60s')" >/dev/null
got=$(q -c "SELECT status, stats->'providers'->'postgres.row'->>'updated', stats->'providers'->'postgres.row'->>'deleted' FROM coco.run WHERE run_id = $run")
[ "$got" = "succeeded|19|10" ] || fail "(b) run after a source change: $got"
got=$(q -c "SELECT count(*), count(*) FILTER (WHERE body LIKE '%!') FROM derived")
[ "$got" = "19990|19" ] || fail "(b) target after the source change: $got"
ok "(b) a source change alone is picked up by the next worker run"

# --- (c) pgvector ------------------------------------------------------------------
if [ "$(q -c "SELECT count(*) FROM pg_available_extensions WHERE name = 'vector'")" = 0 ]; then
    echo "SKIP: pgvector not installed (the vector(n) inference of coco.sync_table was not tested)"
else
    q >/dev/null <<'SQL'
CREATE EXTENSION vector;
CREATE TABLE emb_src (id int PRIMARY KEY, embedding vector(3) NOT NULL, note text);
INSERT INTO emb_src VALUES (1, '[1,2,3]', 'a'), (2, '[0,0,1]', NULL);
SQL
    columns=$(q -c "SELECT coco.sync_table('s', 'public.emb',
        'SELECT id, embedding, embedding AS copy FROM emb_src', '{id}',
        '{\"indexes\": {\"nn\": {\"columns\": [\"embedding\"], \"method\": \"hnsw\", \"metric\": \"cosine\"}}}')")
    [ "$columns" = '[{"name": "id", "type": "integer", "nullable": false}, {"name": "embedding", "type": "public.vector(3)", "nullable": false}, {"name": "copy", "type": "public.vector(3)", "nullable": false}]' ] ||
        fail "(c) inferred vector columns: $columns"
    q -c "SELECT coco.reconcile('s')" >/dev/null
    got=$(q -c "SELECT string_agg(format_type(atttypid, atttypmod) || ':' || attnotnull, ',' ORDER BY attnum)
                  FROM pg_attribute WHERE attrelid = 'emb'::regclass AND attnum > 0")
    [ "$got" = "integer:true,vector(3):true,vector(3):true" ] || fail "(c) emb columns: $got"
    got=$(q -c "SELECT indexdef FROM pg_indexes WHERE indexname = 'emb_nn'")
    case "$got" in *"USING hnsw (embedding vector_cosine_ops)"*) ;; *) fail "(c) hnsw index: $got" ;; esac
    got=$(q -c "SELECT id FROM emb ORDER BY embedding <=> '[1,2,3]' LIMIT 1")
    [ "$got" = 1 ] || fail "(c) nearest neighbour: $got"
    # a changed dimension evolves the column as declare_table would
    q -c "ALTER TABLE emb_src ALTER COLUMN embedding TYPE vector(4) USING (embedding::real[] || 0::real)::vector(4)" >/dev/null
    q -c "SELECT coco.sync_table('s', 'public.emb', 'SELECT id, embedding FROM emb_src', '{id}')" >/dev/null
    q -c "SELECT coco.reconcile('s')" >/dev/null
    got=$(q -c "SELECT format_type(atttypid, atttypmod) FROM pg_attribute WHERE attrelid = 'emb'::regclass AND attname = 'embedding'")
    [ "$got" = "vector(4)" ] || fail "(c) emb after a dimension change: $got"
    ok "(c) pgvector: vector(3) inferred, an hnsw index built, a dimension change followed"
fi

crashed=$(coco_crashed_since "$mark")
[ -z "$crashed" ] || fail "a backend died: $crashed"
ok "no backend died"
