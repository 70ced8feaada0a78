-- 23_spill: the row diff past its memory (coco_target.work_mem).  With the
-- smallest setting, a few thousand rows are split by key hash into
-- partition files and diffed one partition at a time; the results must be
-- those of the in-memory diff: inserts, updates, deletes and no-ops, a
-- key declared twice, rows coco.verify marked, two components, and a query
-- that returns other rows when read a second time.  And a lossy bitmap of
-- a table's tracked rows (the smallest work_mem) on pages another table's
-- rows share.
\set VERBOSITY default
\set SHOW_CONTEXT never

CREATE FUNCTION pg_temp.rows(r jsonb) RETURNS text LANGUAGE sql AS $$
  SELECT format('+%s ~%s -%s =%s', r#>>'{providers,postgres.row,inserted}',
                r#>>'{providers,postgres.row,updated}', r#>>'{providers,postgres.row,deleted}',
                r#>>'{providers,postgres.row,unchanged}')
$$;
-- rows of a target (id, v) and of its source (id, v, …) that differ
CREATE FUNCTION pg_temp.same(target text DEFAULT 'sp_t', source text DEFAULT 'sp_src')
RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
  n bigint;
BEGIN
  EXECUTE format('SELECT (SELECT count(*) FROM (SELECT * FROM %1$I EXCEPT SELECT id, v FROM %2$I) a)
                       + (SELECT count(*) FROM (SELECT id, v FROM %2$I EXCEPT SELECT * FROM %1$I) b)',
                 target, source) INTO n;
  RETURN n;
END $$;
CREATE FUNCTION pg_temp.sync() RETURNS text LANGUAGE sql AS $$
  SELECT coco.declare_table('sp', 'sp_t', '[{"name": "id", "type": "int"}, {"name": "v", "type": "text"}]', '{id}');
  SELECT coco.declare_rows('sp', 'sp_t', 'SELECT id, v FROM sp_src WHERE id <= 4000', '{low}');
  SELECT coco.declare_rows('sp', 'sp_t', 'SELECT id, v FROM sp_src WHERE id > 4000', '{high}');
  SELECT pg_temp.rows(coco.reconcile('sp'));
$$;

SELECT coco.create_app('sp');
CREATE TABLE sp_src (id int PRIMARY KEY, v text);
INSERT INTO sp_src SELECT g, 'v' || g FROM generate_series(1, 6000) g;

SET coco_target.work_mem = '64kB';
SELECT pg_temp.sync() AS first_load;
SELECT pg_temp.same() AS differences;

-- nothing changed: the summary pass finds every component clean
SELECT pg_temp.sync() AS noop;

-- 1 % updated, 1 % deleted, 1 % inserted, in both components
UPDATE sp_src SET v = v || '!' WHERE id % 100 = 1;
DELETE FROM sp_src WHERE id % 100 = 2;
INSERT INTO sp_src SELECT g, 'new' || g FROM generate_series(6001, 6060) g;
SELECT pg_temp.sync() AS changed;
SELECT pg_temp.same() AS differences;

-- the same changes diffed in memory give the same counts
RESET coco_target.work_mem;
UPDATE sp_src SET v = v || '?' WHERE id % 100 = 3;
DELETE FROM sp_src WHERE id % 100 = 4;
INSERT INTO sp_src SELECT g, 'new' || g FROM generate_series(6061, 6120) g;
SELECT pg_temp.sync() AS changed_in_memory;
SELECT pg_temp.same() AS differences;
SET coco_target.work_mem = '64kB';

-- rows marked by coco.verify are written again, found in their partitions
DELETE FROM sp_t WHERE id IN (10, 5000);
SELECT coco.verify('sp') -> 'drifted' AS drifted;
SELECT pg_temp.sync() AS repaired;
SELECT pg_temp.same() AS differences;

-- a key declared twice in one component is refused, with the key named
-- (23505), and nothing is written
INSERT INTO sp_src VALUES (6500, 'x');
SELECT coco.declare_table('sp', 'sp_t', '[{"name": "id", "type": "int"}, {"name": "v", "type": "text"}]', '{id}');
SELECT coco.declare_rows('sp', 'sp_t', 'SELECT id, v FROM sp_src UNION ALL SELECT 4242, ''again''', '{all}');
SELECT coco.reconcile('sp');
SELECT count(*) AS not_written FROM sp_t WHERE id = 6500;
SELECT coco.clear_component('sp', '{all}');

-- a component moved wholesale to another one: the rows stay, only tracking
-- moves (the table's declaration is still staged from the failed run)
SELECT coco.declare_rows('sp', 'sp_t', 'SELECT id, v FROM sp_src', '{low}');
SELECT coco.declare_rows('sp', 'sp_t', 'SELECT id, v FROM sp_src WHERE false', '{high}');
SELECT pg_temp.rows(coco.reconcile('sp')) AS moved;
SELECT pg_temp.same() AS differences;
SELECT c.path AS component, count(*) FROM coco.tracked_row r JOIN coco.component c USING (comp_id)
 WHERE r.app_id = (SELECT app_id FROM coco.app WHERE name = 'sp') GROUP BY 1 ORDER BY 1;

-- rows of partitions on disk are read a second time for their values; a
-- query that then returns other rows is refused (55000), nothing written.
-- The sequence makes every row's key move on the second read.
CREATE SEQUENCE sp_seq;
SELECT coco.declare_rows('sp', 'sp_t',
  $$SELECT id + CASE WHEN nextval('sp_seq') > (SELECT count(*) + 1 FROM sp_src) THEN 100000 ELSE 0 END AS id,
           v || '*' AS v FROM sp_src$$, '{low}') > 0 AS declared;
SELECT setval('sp_seq', 1);
SELECT coco.reconcile('sp');
\echo :LAST_ERROR_SQLSTATE
SELECT count(*) AS written FROM sp_t WHERE v LIKE '%*' OR id > 100000;
SELECT pg_temp.same() AS differences;

SELECT coco.drop_app('sp');

-- Two tables one component declares share the tracking table's pages (the
-- rows of one freed by a delete and a VACUUM, then taken by the other's).
-- With the smallest work_mem the bitmap of one table's tracked rows is
-- lossy: every row of its pages comes back, the other table's too, and
-- only its own are its tracked rows (none of the other's deleted).
SET work_mem = '64kB';
CREATE FUNCTION pg_temp.lossy(target text) RETURNS boolean LANGUAGE plpgsql AS $$
DECLARE
  line text;
BEGIN
  SET LOCAL enable_seqscan = off;
  SET LOCAL enable_indexscan = off;
  FOR line IN EXECUTE format('EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY OFF) SELECT * FROM coco.tracked_row
                              WHERE target_id = (SELECT ts_id FROM coco.target_state
                                                  WHERE provider = %L AND name = %L)',
                             'postgres.table', 'public.' || target) LOOP
    IF line LIKE '%lossy=%' THEN
      RETURN true;
    END IF;
  END LOOP;
  RETURN false;
END $$;
CREATE FUNCTION pg_temp.sync2() RETURNS text LANGUAGE sql AS $$
  SELECT coco.declare_table('sp2', 'sp2_a', '[{"name": "k", "type": "text"}, {"name": "v", "type": "int"}]', '{k}');
  SELECT coco.declare_table('sp2', 'sp2_b', '[{"name": "k", "type": "text"}, {"name": "v", "type": "int"}]', '{k}');
  SELECT coco.declare_rows('sp2', 'sp2_a', 'SELECT k, v FROM sp2_src WHERE v % 2 = 0');
  SELECT coco.declare_rows('sp2', 'sp2_b', 'SELECT k, v FROM sp2_src WHERE v % 2 = 1');
  SELECT pg_temp.rows(coco.reconcile('sp2'));
$$;
CREATE FUNCTION pg_temp.same2() RETURNS bigint LANGUAGE plpgsql AS $$
BEGIN
  RETURN (SELECT count(*) FROM (SELECT * FROM sp2_a UNION ALL SELECT * FROM sp2_b
                                EXCEPT ALL SELECT k, v FROM sp2_src) x)
       + (SELECT count(*) FROM (SELECT k, v FROM sp2_src
                                EXCEPT ALL SELECT * FROM (SELECT * FROM sp2_a UNION ALL SELECT * FROM sp2_b) y) z);
END $$;
SELECT coco.create_app('sp2');
-- long keys: few tracked rows to a page, many pages
CREATE TABLE sp2_src (k text PRIMARY KEY, v int);
INSERT INTO sp2_src SELECT repeat('k', 900) || g, g FROM generate_series(1, 16000) g;
SELECT pg_temp.sync2() AS first_load;
DELETE FROM sp2_src WHERE v % 4 = 0;
SELECT pg_temp.sync2() AS a_halved;
VACUUM coco.tracked_chunk;
INSERT INTO sp2_src SELECT repeat('k', 900) || g, g FROM generate_series(100001, 108000) g WHERE g % 2 = 1;
SELECT pg_temp.sync2() AS b_grown;
SELECT pg_temp.lossy('sp2_a') AS lossy;
UPDATE sp2_src SET v = v + 1000000 WHERE v % 4 = 2 AND v < 16000;
SELECT pg_temp.sync2() AS a_changed;
SELECT pg_temp.same2() AS differences;
SELECT (SELECT count(*) FROM sp2_a) AS a_rows, (SELECT count(*) FROM sp2_b) AS b_rows,
       (SELECT count(*) FROM coco.tracked_row WHERE app_id = (SELECT app_id FROM coco.app WHERE name = 'sp2')) AS tracked;
SELECT coco.drop_app('sp2');
DROP TABLE sp2_src;
RESET work_mem;

-- Within coco_target.work_mem, a changed run's tracked rows are looked up
-- among the declared rows as they are read: in the order of the first
-- load (each found right after the one before), and in the reverse order
-- (each found by its hash); updates, deletions, insertions and rows moved
-- to the other component without a change, each counted once.  The
-- tracking heap is read whole while the table's rows fill most of it
-- (once compacted), and through its primary key once another table's do.
RESET coco_target.work_mem;
SELECT count(*) < 300 AS few_tracked_rows_before FROM coco.tracked_row;
CREATE TABLE pb_src (id int PRIMARY KEY, v text, c int);
INSERT INTO pb_src SELECT g, 'v' || g, g % 2 FROM generate_series(1, 3000) g;
SELECT coco.create_app('pb');
CREATE FUNCTION pg_temp.pb_sync(dir text) RETURNS text LANGUAGE sql AS $$
  SELECT coco.declare_table('pb', 'pb_t', '[{"name": "id", "type": "int"}, {"name": "v", "type": "text"}]', '{id}');
  SELECT coco.declare_rows('pb', 'pb_t', format('SELECT id, v FROM pb_src WHERE c = 0 ORDER BY id %s', dir), '{even}');
  SELECT coco.declare_rows('pb', 'pb_t', format('SELECT id, v FROM pb_src WHERE c = 1 ORDER BY id %s', dir), '{odd}');
  SELECT pg_temp.rows(coco.reconcile('pb'));
$$;
SELECT pg_temp.pb_sync('ASC') AS pb_first_load;
UPDATE pb_src SET v = v || '!' WHERE id % 10 = 1;
DELETE FROM pb_src WHERE id % 10 = 2;
UPDATE pb_src SET c = 1 - c WHERE id % 10 = 3;
INSERT INTO pb_src SELECT g, 'n' || g, g % 2 FROM generate_series(5001, 5200) g;
VACUUM FULL coco.tracked_chunk;
SET client_min_messages = debug1;
SELECT pg_temp.pb_sync('DESC') AS pb_reversed;
RESET client_min_messages;
SELECT pg_temp.same('pb_t', 'pb_src') AS differences;
UPDATE pb_src SET v = v || '?' WHERE id % 10 = 4;
DELETE FROM pb_src WHERE id % 10 = 5;
-- another table's rows, five times as many
SELECT coco.create_app('pb_other');
SELECT coco.declare_table('pb_other', 'pb_other_t', '[{"name": "id", "type": "int"}]', '{id}');
SELECT coco.declare_rows('pb_other', 'pb_other_t', 'SELECT g AS id FROM generate_series(1, 15000) g');
SELECT pg_temp.rows(coco.reconcile('pb_other')) AS other_load;
SET client_min_messages = debug1;
SELECT pg_temp.pb_sync('ASC') AS pb_in_order;
RESET client_min_messages;
SELECT pg_temp.same('pb_t', 'pb_src') AS differences;
SELECT (SELECT count(*) FROM pb_t) AS rows,
       (SELECT count(*) FROM coco.tracked_row WHERE app_id = (SELECT app_id FROM coco.app WHERE name = 'pb')) AS tracked;
-- a key declared twice in a changed run is refused, with the key named
INSERT INTO pb_src VALUES (7001, 'x', 0);
CREATE TABLE pb_twice (id int, v text);
INSERT INTO pb_twice VALUES (7001, 'twice');
SELECT coco.declare_table('pb', 'pb_t', '[{"name": "id", "type": "int"}, {"name": "v", "type": "text"}]', '{id}');
SELECT coco.declare_rows('pb', 'pb_t', 'SELECT id, v FROM pb_src WHERE c = 0', '{even}');
SELECT coco.declare_rows('pb', 'pb_t', 'SELECT id, v FROM pb_src WHERE c = 1 UNION ALL SELECT id, v FROM pb_twice', '{odd}');
SELECT coco.reconcile('pb');
SELECT coco.discard_staged('pb');
SELECT pg_temp.pb_sync('ASC') AS pb_fixed;
SELECT pg_temp.same('pb_t', 'pb_src') AS differences;
SELECT coco.drop_app('pb');
SELECT coco.drop_app('pb_other');
DROP TABLE pb_src, pb_twice;
