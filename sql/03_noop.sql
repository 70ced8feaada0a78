-- 03_noop: re-declaring identical rows performs zero writes.  The rows'
-- xmin does not move, the table is not altered, and the run reports the
-- rows as unchanged.  Holds for rows from declare_row, from declare_rows,
-- and when switching from one to the other with the same values.
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

-- Both tables are declared in the root component with their rows, so every
-- round re-declares everything.  Types whose text form could wobble
-- (numeric scale, float8, jsonb, timestamptz, arrays) are included.
CREATE FUNCTION pg_temp.declare_tables() RETURNS void LANGUAGE sql AS $$
  SELECT coco.declare_table('noop', 'noop_a',
      '[{"name": "id", "type": "integer"}, {"name": "v", "type": "text"},
        {"name": "amount", "type": "numeric"}, {"name": "f", "type": "float8"},
        {"name": "j", "type": "jsonb"}, {"name": "at", "type": "timestamptz"},
        {"name": "tags", "type": "text[]"}]', '{id}');
  SELECT coco.declare_table('noop', 'noop_b',
      '[{"name": "id", "type": "bigint"}, {"name": "v", "type": "text"}]', '{id}');
$$;
CREATE FUNCTION pg_temp.declare_a_rows() RETURNS void LANGUAGE sql AS $$
  SELECT coco.declare_row('noop', 'noop_a',
      '{"id": 1, "v": "one", "amount": 1.50, "f": 0.1, "j": {"b": [1, 2], "a": null},
        "at": "2024-01-02 03:04:05.678+00", "tags": ["x", "y"]}');
  SELECT coco.declare_row('noop', 'noop_a',
      '{"id": 2, "v": "two", "amount": -0.000, "f": 1e300, "j": "s", "at": null, "tags": []}');
  SELECT coco.declare_row('noop', 'noop_a', '{"id": 3}');
$$;
CREATE TABLE noop_src AS SELECT g::bigint AS id, 'v' || g AS v FROM generate_series(1, 1000) g;

SELECT coco.create_app('noop');
SELECT pg_temp.declare_tables();
SELECT pg_temp.declare_a_rows();
SELECT coco.declare_rows('noop', 'noop_b', 'SELECT id, v FROM noop_src');
SELECT pg_temp.summary(coco.reconcile('noop'));

-- Remember every row's xmin, and the tables' catalog rows.
CREATE TEMP TABLE before AS
  SELECT 'a' AS t, id::bigint AS id, xmin::text AS x FROM noop_a
  UNION ALL SELECT 'b', id, xmin::text FROM noop_b;
CREATE TEMP TABLE before_cat AS
  SELECT relname, xmin::text AS x, relfilenode FROM pg_class WHERE relname IN ('noop_a', 'noop_b');
CREATE FUNCTION pg_temp.rewritten() RETURNS TABLE (t text, rows_rewritten bigint, rows_now bigint)
LANGUAGE sql AS $$
  SELECT n.t, count(*) FILTER (WHERE b.x IS DISTINCT FROM n.x), count(*)
    FROM (SELECT 'a' AS t, id::bigint AS id, xmin::text AS x FROM noop_a
          UNION ALL SELECT 'b', id, xmin::text FROM noop_b) n
    LEFT JOIN before b USING (t, id)
   GROUP BY n.t ORDER BY n.t
$$;
CREATE FUNCTION pg_temp.catalog_untouched() RETURNS boolean LANGUAGE sql AS $$
  SELECT bool_and(c.xmin::text = b.x AND c.relfilenode = b.relfilenode)
    FROM pg_class c JOIN before_cat b USING (relname)
$$;

-- Round 2: identical declarations.  Nothing is written.
SELECT pg_temp.declare_tables();
SELECT pg_temp.declare_a_rows();
SELECT coco.declare_rows('noop', 'noop_b', 'SELECT id, v FROM noop_src');
SELECT pg_temp.summary(coco.reconcile('noop'));
SELECT * FROM pg_temp.rewritten();
SELECT pg_temp.catalog_untouched();
SELECT inserted, updated, deleted, unchanged FROM coco.runs
 WHERE app = 'noop' ORDER BY run_id DESC LIMIT 1;

-- Round 3: the same rows, declared in another order, and noop_a's rows now
-- from a query (same values, other path): still nothing is written.
SELECT pg_temp.declare_tables();
SELECT coco.declare_rows('noop', 'noop_a', $q$
  SELECT * FROM (VALUES
    (3, NULL::text, NULL::numeric, NULL::float8, NULL::jsonb, NULL::timestamptz, NULL::text[]),
    (2, 'two', -0.000, 1e300, '"s"', NULL, '{}'),
    (1, 'one', 1.50, 0.1, '{"a": null, "b": [1, 2]}', '2024-01-02 03:04:05.678+00', '{x,y}')
  ) AS v(id, v, amount, f, j, at, tags)$q$);
SELECT coco.declare_rows('noop', 'noop_b', 'SELECT id, v FROM noop_src ORDER BY id DESC');
SELECT pg_temp.summary(coco.reconcile('noop'));
SELECT * FROM pg_temp.rewritten();
SELECT pg_temp.catalog_untouched();

-- Round 4: one source row changed out of 1000: exactly one row is written.
UPDATE noop_src SET v = 'changed' WHERE id = 500;
SELECT pg_temp.declare_tables();
SELECT pg_temp.declare_a_rows();
SELECT coco.declare_rows('noop', 'noop_b', 'SELECT id, v FROM noop_src');
SELECT pg_temp.summary(coco.reconcile('noop'));
SELECT * FROM pg_temp.rewritten();
SELECT n.id, n.v FROM noop_b n JOIN before b ON b.t = 'b' AND b.id = n.id WHERE n.xmin::text <> b.x;
SELECT pg_temp.catalog_untouched();

-- A reconcile with nothing declared at all touches nothing either.
SELECT pg_temp.summary(coco.reconcile('noop'));
SELECT * FROM pg_temp.rewritten();

SELECT * FROM noop_a ORDER BY id;

-- Clean up.
SELECT coco.drop_app('noop');
SELECT to_regclass('noop_a') AS a, to_regclass('noop_b') AS b;
DROP TABLE noop_src;
