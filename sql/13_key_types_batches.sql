-- 13_key_types_batches: primary keys of every supported key type (boolean,
-- smallint, integer, bigint, text, varchar, bytea, uuid, a domain) go
-- through insert, update and delete (a delete finds the row from its
-- stable key alone); and changes are applied correctly when they are split
-- into many small batches (coco_target.batch_size), duplicates included.
\set VERBOSITY default
\set SHOW_CONTEXT never

CREATE FUNCTION pg_temp.summary(r jsonb) RETURNS text LANGUAGE sql AS $$
  SELECT format('table(+%s ~%s -%s =%s) row(+%s ~%s -%s =%s) stale=%s',
                r#>>'{providers,postgres.table,inserted}', r#>>'{providers,postgres.table,updated}',
                r#>>'{providers,postgres.table,deleted}', r#>>'{providers,postgres.table,unchanged}',
                r#>>'{providers,postgres.row,inserted}', r#>>'{providers,postgres.row,updated}',
                r#>>'{providers,postgres.row,deleted}', r#>>'{providers,postgres.row,unchanged}',
                r->>'stale_components')
$$;
CREATE FUNCTION pg_temp.sqlstate_of(stmt text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
  EXECUTE stmt;
  RETURN 'no error';
EXCEPTION WHEN OTHERS THEN
  RETURN SQLSTATE;
END $$;
CREATE DOMAIN kt_pos AS integer CHECK (VALUE > 0);

-- One table keyed by all of them at once.
CREATE FUNCTION pg_temp.declare_all() RETURNS void LANGUAGE sql AS $$
  SELECT coco.declare_table('kt', 'kt_all',
      '[{"name": "kb", "type": "boolean"}, {"name": "ks", "type": "smallint"},
        {"name": "ki", "type": "integer"}, {"name": "kl", "type": "bigint"},
        {"name": "kt", "type": "text"}, {"name": "kv", "type": "varchar(5)"},
        {"name": "kby", "type": "bytea"}, {"name": "ku", "type": "uuid"},
        {"name": "kd", "type": "kt_pos"}, {"name": "v", "type": "text"}]',
      '{kb,ks,ki,kl,kt,kv,kby,ku,kd}');
$$;
CREATE TABLE kt_src (kb boolean, ks smallint, ki integer, kl bigint, kt text, kv varchar(5),
                     kby bytea, ku uuid, kd kt_pos, v text);
INSERT INTO kt_src VALUES
  (false, -32768, -2147483648, -9223372036854775808, '', '', '\x', '00000000-0000-0000-0000-000000000000', 1, 'min'),
  (true, 32767, 2147483647, 9223372036854775807, 'ünï ✓', 'abcde', '\x00ff00', 'ffffffff-ffff-ffff-ffff-ffffffffffff', 2147483647, 'max'),
  (true, 0, 0, 0, E'a\nb', 'x y', '\x0000', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', 5, 'mid'),
  (true, 0, 0, 0, E'a\nb', 'x y', '\x0000', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', 6, 'mid, other kd');

SELECT coco.create_app('kt');
SELECT pg_temp.declare_all();
SELECT coco.declare_rows('kt', 'kt_all', 'SELECT * FROM kt_src') AS declared;
SELECT pg_temp.summary(coco.reconcile('kt'));
SELECT kb, ks, ki, kl, kt, kv, kby, ku, kd, v FROM kt_all ORDER BY v;
SELECT format_type(atttypid, atttypmod) AS kd_type FROM pg_attribute
 WHERE attrelid = 'kt_all'::regclass AND attname = 'kd';
-- The row keys as tracked, in their jsonb spelling.
SELECT coco.key_to_jsonb(coco.row_key(kb, ks, ki, kl, kt, kv, kby, ku, kd::integer)) AS key
  FROM kt_all ORDER BY coco.row_key(kb, ks, ki, kl, kt, kv, kby, ku, kd::integer);

-- Update 'max', delete 'min' and 'mid' (by key), keep 'mid, other kd'.
UPDATE kt_src SET v = 'max!' WHERE v = 'max';
DELETE FROM kt_src WHERE v IN ('min', 'mid');
SELECT pg_temp.declare_all();
SELECT coco.declare_rows('kt', 'kt_all', 'SELECT * FROM kt_src') AS declared;
SELECT pg_temp.summary(coco.reconcile('kt'));
SELECT kb, ks, ki, kl, kt, kv, kby, ku, kd, v FROM kt_all ORDER BY v;

-- Rows declared with declare_row and keys given as JSON: same keys, so
-- nothing changes.
SELECT pg_temp.declare_all();
SELECT count(coco.declare_row('kt', 'kt_all', to_jsonb(s))) AS declared FROM kt_src s;
SELECT pg_temp.summary(coco.reconcile('kt'));

-- Batches of 2 rows: 11 rows inserted, then 3 updated, 3 deleted, 2
-- inserted, 3 unchanged; the result is the same as in one batch.
SET coco_target.batch_size = 2;
CREATE TABLE kt_bsrc AS SELECT g AS id, 'v' || g AS v FROM generate_series(1, 11) g;
CREATE FUNCTION pg_temp.declare_b() RETURNS void LANGUAGE sql AS $$
  SELECT coco.declare_table('kt', 'kt_b', '[{"name": "id", "type": "int"}, {"name": "v", "type": "text"}]',
                            '{id}', 'system', '{b}');
  SELECT coco.declare_rows('kt', 'kt_b', 'SELECT id, v FROM kt_bsrc', '{b}');
$$;
SELECT pg_temp.declare_b();
SELECT pg_temp.summary(coco.reconcile('kt'));
SELECT count(*), min(id), max(id) FROM kt_b;
UPDATE kt_bsrc SET v = v || '!' WHERE id IN (2, 5, 9);
DELETE FROM kt_bsrc WHERE id IN (3, 7, 11);
INSERT INTO kt_bsrc VALUES (20, 'v20'), (21, 'v21');
SELECT pg_temp.declare_b();
SELECT pg_temp.summary(coco.reconcile('kt'));
SELECT (SELECT count(*) FROM (SELECT * FROM kt_bsrc EXCEPT SELECT * FROM kt_b) x) AS missing,
       (SELECT count(*) FROM (SELECT * FROM kt_b EXCEPT SELECT * FROM kt_bsrc) x) AS extra;
-- A key declared twice, the two in different batches: refused (23505), and
-- nothing changes.
INSERT INTO kt_bsrc VALUES (1, 'duplicate of 1');
SELECT pg_temp.declare_b();
SELECT pg_temp.sqlstate_of($$SELECT coco.reconcile('kt')$$);
SELECT v FROM kt_b WHERE id = 1;
SELECT coco.clear_component('kt', '{b}');
SELECT pg_temp.summary(coco.reconcile('kt'));
SELECT to_regclass('kt_b') AS kt_b;
-- The same into a table created by the same run.
SELECT pg_temp.declare_b();
SELECT pg_temp.sqlstate_of($$SELECT coco.reconcile('kt')$$);
SELECT to_regclass('kt_b') AS kt_b;
SELECT coco.clear_component('kt', '{b}');
RESET coco_target.batch_size;

-- 1000 rows changed, in batches of 100, declared in an order unlike the
-- one their chunks hold them in: the batches are written by chunk, so each
-- chunk is rewritten about once, not once per batch (about 10 times).
CREATE TABLE kt_osrc AS SELECT g AS id, 0 AS v FROM generate_series(1, 1000) g;
CREATE FUNCTION pg_temp.declare_o(src text) RETURNS void LANGUAGE sql AS $$
  SELECT coco.declare_table('kt', 'kt_o', '[{"name": "id", "type": "int"}, {"name": "v", "type": "int"}]',
                            '{id}', 'system', '{o}');
  SELECT coco.declare_rows('kt', 'kt_o', format('SELECT id, v FROM %s', src), '{o}');
$$;
SELECT pg_temp.declare_o('kt_osrc');
SELECT pg_temp.summary(coco.reconcile('kt'));
SELECT count(*) AS chunks FROM coco.tracked_chunk
 WHERE target_id = (SELECT ts_id FROM coco.target_state
                     WHERE provider = 'postgres.table' AND name = 'public.kt_o') \gset
CREATE TABLE kt_osrc2 AS SELECT id, v + 1 AS v FROM kt_osrc ORDER BY md5(id::text);
SET coco_target.batch_size = 100;
BEGIN;
SELECT n_tup_upd + n_tup_del AS w0 FROM pg_stat_xact_all_tables
 WHERE relid = 'coco.tracked_chunk'::regclass \gset
SELECT pg_temp.declare_o('kt_osrc2');
SELECT pg_temp.summary(coco.reconcile('kt'));
SELECT :chunks > 5 AS several_chunks,
       n_tup_upd + n_tup_del - :w0 <= :chunks + 10 AS each_chunk_about_once
  FROM pg_stat_xact_all_tables WHERE relid = 'coco.tracked_chunk'::regclass;
COMMIT;
SELECT (SELECT count(*) FROM (SELECT * FROM kt_osrc2 EXCEPT SELECT * FROM kt_o) x) AS missing,
       (SELECT count(*) FROM (SELECT * FROM kt_o EXCEPT SELECT * FROM kt_osrc2) x) AS extra;
-- Deletions, changes and 300 new rows together, in batches of 100: the
-- new rows come after the others, in the order they were read, which is
-- the order the next run reads them in: so they are in each chunk they
-- top up, and across the chunks the run adds.
DELETE FROM kt_osrc2 WHERE id % 10 = 1;
UPDATE kt_osrc2 SET v = v + 1 WHERE id % 10 = 2;
INSERT INTO kt_osrc2 SELECT g, 0 FROM generate_series(1001, 1300) g;
SELECT max(chunk_id) AS last_chunk FROM coco.tracked_chunk
 WHERE target_id = (SELECT ts_id FROM coco.target_state
                     WHERE provider = 'postgres.table' AND name = 'public.kt_o') \gset
SELECT pg_temp.declare_o('kt_osrc2');
SELECT pg_temp.summary(coco.reconcile('kt'));
RESET coco_target.batch_size;
SELECT (SELECT count(*) FROM (SELECT * FROM kt_osrc2 EXCEPT SELECT * FROM kt_o) x) AS missing,
       (SELECT count(*) FROM (SELECT * FROM kt_o EXCEPT SELECT * FROM kt_osrc2) x) AS extra;
WITH new_rows AS (
  SELECT c.chunk_id, r.ord, g.id
    FROM coco.tracked_chunk c, coco.chunk_rows(c.rows) WITH ORDINALITY r(key, fp, ord),
         generate_series(1001, 1300) g(id)
   WHERE c.target_id = (SELECT ts_id FROM coco.target_state
                         WHERE provider = 'postgres.table' AND name = 'public.kt_o')
     AND r.key = coco.row_key(g.id)),
ordered AS (
  SELECT id, lag(id) OVER (PARTITION BY CASE WHEN chunk_id > :last_chunk THEN 0 ELSE chunk_id END
                           ORDER BY chunk_id, ord) AS before
    FROM new_rows)
SELECT count(*) AS new_rows, bool_and(before IS NULL OR id > before) AS in_read_order
  FROM ordered;
SELECT pg_temp.declare_o('kt_osrc2');
SELECT pg_temp.summary(coco.reconcile('kt'));
SELECT coco.clear_component('kt', '{o}');
SELECT pg_temp.summary(coco.reconcile('kt'));

-- Tracked rows rewritten by five runs in one transaction, every row
-- changed and moved to the other component each time: each run empties
-- the chunks of both components and packs their rows into new ones, and
-- no version can be pruned.  Every row is still tracked once, packed, and
-- found by its key, and a run after them changes nothing.
CREATE TABLE kt_hsrc AS SELECT g AS id, 0 AS v FROM generate_series(1, 2000) g;
CREATE FUNCTION pg_temp.declare_h() RETURNS void LANGUAGE sql AS $$
  SELECT coco.declare_table('kt', 'kt_h', '[{"name": "id", "type": "int"}, {"name": "v", "type": "int"}]',
                            '{id}', 'system', '{h}');
  SELECT coco.declare_rows('kt', 'kt_h', 'SELECT id, v FROM kt_hsrc WHERE (id + v) % 2 = 0', '{h_even}');
  SELECT coco.declare_rows('kt', 'kt_h', 'SELECT id, v FROM kt_hsrc WHERE (id + v) % 2 = 1', '{h_odd}');
$$;
-- every row's value changes, and with it the row's component
CREATE FUNCTION pg_temp.change_h() RETURNS text LANGUAGE sql AS $$
  UPDATE kt_hsrc SET v = v + 1;
  SELECT pg_temp.declare_h();
  SELECT pg_temp.summary(coco.reconcile('kt'));
$$;
SELECT pg_temp.declare_h();
SELECT pg_temp.summary(coco.reconcile('kt'));
BEGIN;
SELECT n_tup_ins AS ins0, n_tup_del AS del0 FROM pg_stat_xact_all_tables
 WHERE relid = 'coco.tracked_chunk'::regclass \gset
SELECT i AS run, pg_temp.change_h() FROM generate_series(1, 5) i;
SELECT n_tup_ins - :ins0 >= 5 * 2 AS chunks_written, n_tup_del - :del0 >= 5 * 2 AS chunks_emptied
  FROM pg_stat_xact_all_tables WHERE relid = 'coco.tracked_chunk'::regclass;
COMMIT;
SELECT sum(nrows) AS tracked, count(*) <= 2000 / 50 + 2 AS packed FROM coco.tracked_chunk
 WHERE target_id = (SELECT ts_id FROM coco.target_state
                     WHERE provider = 'postgres.table' AND name = 'public.kt_h');
SET enable_seqscan = off; SET enable_bitmapscan = off;
SELECT count(*) AS found_by_key FROM kt_hsrc s
 WHERE EXISTS (SELECT FROM coco.tracked_row t
                WHERE t.target_id = (SELECT ts_id FROM coco.target_state
                                       WHERE provider = 'postgres.table' AND name = 'public.kt_h')
                  AND t.key = coco.row_key(s.id));
RESET enable_seqscan; RESET enable_bitmapscan;
SELECT (SELECT count(*) FROM (SELECT * FROM kt_hsrc EXCEPT SELECT * FROM kt_h) x) AS missing,
       (SELECT count(*) FROM (SELECT * FROM kt_h EXCEPT SELECT * FROM kt_hsrc) x) AS extra;
SELECT pg_temp.declare_h();
SELECT pg_temp.summary(coco.reconcile('kt')) AS after;

-- Runs that each add a few rows top up a chunk that has room: ten runs of
-- five new rows each leave their fifty rows in one chunk; a run after them
-- changes nothing, and one that deletes a row rewrites that chunk.
SELECT coco.create_app('kt_inc');
CREATE FUNCTION pg_temp.declare_inc(n int) RETURNS jsonb LANGUAGE sql AS $$
  SELECT coco.declare_table('kt_inc', 'kt_inc_t', '[{"name": "id", "type": "int"}]', '{id}');
  SELECT coco.declare_rows('kt_inc', 'kt_inc_t', format('SELECT g AS id FROM generate_series(1, %s) g WHERE g <> 7 OR %s < 60', n, n));
  SELECT coco.reconcile('kt_inc');
$$;
SELECT string_agg((pg_temp.declare_inc(5 * i))->>'inserted', ' ' ORDER BY i) AS inserted FROM generate_series(1, 10) i;
SELECT count(*) AS chunks, sum(nrows) AS tracked FROM coco.tracked_chunk c
  JOIN coco.app a USING (app_id) WHERE a.name = 'kt_inc';
SELECT (pg_temp.declare_inc(50))->>'unchanged' AS unchanged;
SELECT (pg_temp.declare_inc(60))->>'deleted' AS deleted;
SELECT count(*) AS chunks, sum(nrows) AS tracked FROM coco.tracked_chunk c
  JOIN coco.app a USING (app_id) WHERE a.name = 'kt_inc';
SELECT count(*) AS rows, bool_and(id <> 7) AS without_7 FROM kt_inc_t;
SELECT coco.drop_app('kt_inc');

-- Clean up.
SELECT coco.drop_app('kt');
DROP TABLE kt_src, kt_bsrc, kt_hsrc;
DROP DOMAIN kt_pos;
