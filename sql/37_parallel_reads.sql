-- 37_parallel_reads: declarations read under parallel plans.
--   1. the initial load of a created table writes rows as it reads them:
--      its statement is planned without parallel workers, where a parallel
--      plan could assign no transaction id;
--   2. a run whose components changed reads the changed rows again: by
--      the ctids of their source rows (a query of one table, whose first
--      read gave them from parallel workers), or by their places in the
--      first read (a query of a view); a parallel plan returns rows in
--      another order each time, and the rows not found where they were are
--      read by key.  Either way the tables end equal to their source; the
--      first read's entries stay in memory while coco_target.work_mem
--      lasts, and go to temporary files past it;
--   3. what may not repeat (a sample) is read once;
--   4. a created table's primary key, built after the load, is checked.
\set VERBOSITY default
\set SHOW_CONTEXT never
SET parallel_setup_cost = 0;
SET parallel_tuple_cost = 0;
SET min_parallel_table_scan_size = 0;
SET max_parallel_workers_per_gather = 2;

CREATE TABLE pr_src AS
  SELECT g::bigint AS id, md5(g::text) AS title, g % 7 AS n FROM generate_series(1, 20000) g;
ALTER TABLE pr_src ADD PRIMARY KEY (id);
ANALYZE pr_src;
CREATE VIEW pr_v AS SELECT * FROM pr_src;
SELECT coco.create_app('pr');
CREATE FUNCTION pr_declare() RETURNS void LANGUAGE sql AS $$
  SELECT coco.declare_table('pr', 'public.pr_t',
    '[{"name": "id", "type": "bigint"}, {"name": "title", "type": "text"}, {"name": "n", "type": "int"}]', '{id}');
  SELECT coco.declare_rows('pr', 'public.pr_t', 'SELECT id, title, n FROM pr_src WHERE n >= 0');
  SELECT coco.declare_table('pr', 'public.pr_vt',
    '[{"name": "id", "type": "bigint"}, {"name": "title", "type": "text"}, {"name": "n", "type": "int"}]', '{id}');
  SELECT coco.declare_rows('pr', 'public.pr_vt', 'SELECT id, title, n FROM pr_v WHERE n >= 0');
$$;
CREATE FUNCTION pr_differences() RETURNS TABLE (t text, missing bigint, extra bigint) LANGUAGE plpgsql AS $$
BEGIN
  RETURN QUERY
    SELECT 'pr_t', (SELECT count(*) FROM (SELECT * FROM pr_src EXCEPT SELECT * FROM pr_t) x),
           (SELECT count(*) FROM (SELECT * FROM pr_t EXCEPT SELECT * FROM pr_src) x)
    UNION ALL
    SELECT 'pr_vt', (SELECT count(*) FROM (SELECT * FROM pr_src EXCEPT SELECT * FROM pr_vt) x),
           (SELECT count(*) FROM (SELECT * FROM pr_vt EXCEPT SELECT * FROM pr_src) x)
    ORDER BY 1;
END $$;
-- the query's plan is parallel
EXPLAIN (COSTS OFF) SELECT id, title, n FROM pr_src WHERE n >= 0;

SELECT pr_declare();
SELECT (coco.reconcile('pr'))->'providers'->'postgres.row' AS initial_load;

UPDATE pr_src SET title = 'changed' WHERE id % 50 = 0;
DELETE FROM pr_src WHERE id % 77 = 0;
INSERT INTO pr_src SELECT g, 'new', 1 FROM generate_series(20001, 20100) g;
SELECT pr_declare();
SELECT (coco.reconcile('pr'))->'providers'->'postgres.row' AS changed;
SELECT * FROM pr_differences();

UPDATE pr_src SET n = n + 10 WHERE id % 3 = 0;
SELECT pr_declare();
SELECT (coco.reconcile('pr'))->'providers'->'postgres.row' AS changed_again;
SELECT * FROM pr_differences();

-- a no-op: nothing written; the declarations, cheap to read again, are
-- read before the tracked rows (which are then never loaded), and their
-- entries, kept in memory, make no temporary file (the database's count
-- of them, its statistics flushed at once)
CREATE FUNCTION pr_temp_files() RETURNS bigint LANGUAGE sql AS $$
  SELECT temp_files FROM pg_stat_database WHERE datname = current_database()
$$;
SELECT pg_stat_force_next_flush();
SELECT pr_temp_files() AS temp_files_before \gset
SELECT pr_declare();
SET client_min_messages = debug1;
SELECT (coco.reconcile('pr'))->'providers'->'postgres.row' AS noop;
RESET client_min_messages;
SELECT pg_stat_force_next_flush();
SELECT pr_temp_files() - :temp_files_before AS temp_files_of_noop;

-- past coco_target.work_mem (64 kB holds 1024 entries), they go to
-- temporary files: the same no-op, and a changed run diffed from those
-- files ends equal to its source
SET coco_target.work_mem = 64;
SELECT pr_declare();
SET client_min_messages = debug1;
SELECT (coco.reconcile('pr'))->'providers'->'postgres.row' AS noop_past_work_mem;
RESET client_min_messages;
SELECT pg_stat_force_next_flush();
SELECT pr_temp_files() - :temp_files_before > 0 AS temp_files_past_work_mem;
UPDATE pr_src SET title = 'again' WHERE id % 40 = 0;
DELETE FROM pr_src WHERE id % 91 = 0;
SELECT pr_declare();
SELECT (coco.reconcile('pr'))->'providers'->'postgres.row' AS changed_past_work_mem;
SELECT * FROM pr_differences();
RESET coco_target.work_mem;

SELECT coco.drop_app('pr');
DROP FUNCTION pr_declare();
DROP FUNCTION pr_differences();
DROP FUNCTION pr_temp_files();
DROP VIEW pr_v;
DROP TABLE pr_src;

-- Only declarations that repeat exactly are read twice: a sample is read
-- once, so a changed run of it succeeds.
CREATE TABLE pr_s AS SELECT g AS id, g AS v FROM generate_series(1, 1000) g;
SELECT coco.create_app('pr_sample');
CREATE FUNCTION pr_sample_declare() RETURNS void LANGUAGE sql AS $$
  SELECT coco.declare_table('pr_sample', 'public.pr_st', '[{"name": "id", "type": "int"}, {"name": "v", "type": "int"}]', '{id}');
  SELECT coco.declare_rows('pr_sample', 'public.pr_st', 'SELECT id, v FROM pr_s TABLESAMPLE BERNOULLI (50)');
$$;
SELECT pr_sample_declare();
SELECT ((coco.reconcile('pr_sample'))->'providers'->'postgres.row'->>'inserted')::int > 0 AS loaded;
SELECT pr_sample_declare();
SET client_min_messages = debug1;
SELECT ((coco.reconcile('pr_sample'))->'providers'->'postgres.row'->>'inserted')::int > 0 AS resampled;
RESET client_min_messages;
SELECT coco.drop_app('pr_sample');
DROP FUNCTION pr_sample_declare();
DROP TABLE pr_s;

-- The initial load builds a created table's indexes after its rows, and
-- the build checks the primary key: two keys equal under a
-- nondeterministic collation (different as bytes) are refused (23505).
CREATE COLLATION pr_ci (provider = icu, locale = 'und-u-ks-level2', deterministic = false);
CREATE DOMAIN pr_citext AS text COLLATE pr_ci;
SELECT coco.create_app('pr_ci');
SELECT coco.declare_table('pr_ci', 'public.pr_ct', '[{"name": "id", "type": "pr_citext"}, {"name": "v", "type": "int"}]', '{id}');
SELECT coco.declare_row('pr_ci', 'public.pr_ct', '{"id": "a", "v": 1}');
SELECT coco.declare_row('pr_ci', 'public.pr_ct', '{"id": "A", "v": 2}');
SELECT coco.reconcile('pr_ci');
SELECT to_regclass('public.pr_ct') IS NULL AS not_created;
SELECT coco.drop_app('pr_ci');
DROP DOMAIN pr_citext;
DROP COLLATION pr_ci;
