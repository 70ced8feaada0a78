-- 37_parallel_reads: declarations read under parallel plans.
--   1. the initial load of a created table writes rows as it reads them:
--      its statement is planned without parallel workers, where a parallel
--      plan could assign no transaction id;
--   2. a run whose components changed reads the changed rows again, first
--      by their places in the first read; a parallel plan returns rows in
--      another order each time, and the rows not found where they were are
--      read by key.  Either way the table ends equal to its source.
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
SELECT coco.create_app('pr');
CREATE FUNCTION pr_declare() RETURNS void LANGUAGE sql AS $$
  SELECT coco.declare_table('pr', 'public.pr_t',
    '[{"name": "id", "type": "bigint"}, {"name": "title", "type": "text"}, {"name": "n", "type": "int"}]', '{id}');
  SELECT coco.declare_rows('pr', 'public.pr_t', 'SELECT id, title, n FROM pr_src WHERE n >= 0');
$$;
-- the query's plan is parallel
EXPLAIN (COSTS OFF) SELECT id, title, n FROM pr_src WHERE n >= 0;

SELECT pr_declare();
SELECT (coco.reconcile('pr'))->'providers'->'postgres.row' AS initial_load;

UPDATE pr_src SET title = 'changed' WHERE id % 50 = 0;
DELETE FROM pr_src WHERE id % 77 = 0;
INSERT INTO pr_src SELECT g, 'new', 1 FROM generate_series(20001, 20100) g;
SELECT pr_declare();
SELECT (coco.reconcile('pr'))->'providers'->'postgres.row' AS changed;
SELECT (SELECT count(*) FROM (SELECT * FROM pr_src EXCEPT SELECT * FROM pr_t) x) AS missing,
       (SELECT count(*) FROM (SELECT * FROM pr_t EXCEPT SELECT * FROM pr_src) x) AS extra;

UPDATE pr_src SET n = n + 10 WHERE id % 3 = 0;
SELECT pr_declare();
SELECT (coco.reconcile('pr'))->'providers'->'postgres.row' AS changed_again;
SELECT (SELECT count(*) FROM (SELECT * FROM pr_src EXCEPT SELECT * FROM pr_t) x) AS missing,
       (SELECT count(*) FROM (SELECT * FROM pr_t EXCEPT SELECT * FROM pr_src) x) AS extra;

-- a no-op: nothing written
SELECT pr_declare();
SELECT (coco.reconcile('pr'))->'providers'->'postgres.row' AS noop;

SELECT coco.drop_app('pr');
DROP FUNCTION pr_declare();
DROP TABLE pr_src;
