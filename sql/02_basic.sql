-- 02_basic: the basic life of rows and tables.  Rows are inserted, updated
-- and deleted; composite primary keys; a schema-qualified table whose schema
-- is created when missing; two tables in one app; two apps side by side
-- that do not disturb each other.
\set VERBOSITY default
\set SHOW_CONTEXT never

-- A compact rendering of a reconcile result: per provider
-- (+inserted ~updated -deleted =unchanged), the totals, stale components.
CREATE FUNCTION pg_temp.summary(r jsonb) RETURNS text LANGUAGE sql AS $$
  SELECT format('table(+%s ~%s -%s =%s) row(+%s ~%s -%s =%s) all(+%s ~%s -%s =%s) stale=%s passes=%s',
                r#>>'{providers,postgres.table,inserted}', r#>>'{providers,postgres.table,updated}',
                r#>>'{providers,postgres.table,deleted}', r#>>'{providers,postgres.table,unchanged}',
                r#>>'{providers,postgres.row,inserted}', r#>>'{providers,postgres.row,updated}',
                r#>>'{providers,postgres.row,deleted}', r#>>'{providers,postgres.row,unchanged}',
                r->>'inserted', r->>'updated', r->>'deleted', r->>'unchanged',
                r->>'stale_components', r->>'passes')
$$;

-- A new app: listed, no run yet, nothing pending.
SELECT coco.create_app('basic');
SELECT app, owner::text = current_user AS owned_by_caller, declare_fn, last_run IS NULL AS no_run_yet, pending_declarations
  FROM coco.apps WHERE app = 'basic';

-- Declare a table and three rows: staged, nothing created yet.
SELECT coco.declare_table('basic', 'basic_docs',
    '[{"name": "id", "type": "bigint"},
      {"name": "title", "type": "text"},
      {"name": "n", "type": "int"}]', '{id}');
SELECT coco.declare_row('basic', 'basic_docs', '{"id": 1, "title": "one", "n": 1}');
SELECT coco.declare_row('basic', 'basic_docs', '{"id": 2, "title": "two", "n": 2}');
SELECT coco.declare_row('basic', 'public.basic_docs', '{"id": 3, "title": "three"}');
SELECT pending_declarations FROM coco.apps WHERE app = 'basic';
SELECT to_regclass('public.basic_docs') IS NULL AS not_created_yet;

-- First reconcile: the table is created, the rows inserted.
SELECT pg_temp.summary(coco.reconcile('basic'));
SELECT * FROM basic_docs ORDER BY id;
-- The table is created as declared: types, NOT NULL on the key, the key.
SELECT attname, format_type(atttypid, atttypmod) AS type, attnotnull
  FROM pg_attribute WHERE attrelid = 'basic_docs'::regclass AND attnum > 0 AND NOT attisdropped
 ORDER BY attnum;
SELECT pg_get_constraintdef(oid) FROM pg_constraint
 WHERE conrelid = 'basic_docs'::regclass AND contype = 'p';
-- Staging was consumed; the run is recorded.
SELECT pending_declarations, last_run IS NOT NULL AS has_run FROM coco.apps WHERE app = 'basic';
SELECT app, "full", status, error, inserted, updated, deleted, unchanged, providers
  FROM coco.runs WHERE app = 'basic' ORDER BY run_id;

-- The shape of the result of reconcile.
CREATE TEMP TABLE last_result AS SELECT coco.reconcile('basic') AS r;
SELECT array_agg(k ORDER BY k) AS result_fields FROM last_result, jsonb_object_keys(r) k;
-- run_id names the run recorded in coco.runs.
SELECT (r->>'run_id')::bigint = (SELECT max(run_id) FROM coco.runs WHERE app = 'basic') AS run_id_recorded
  FROM last_result;

-- Declare again: row 1 unchanged, row 2 changed, row 3 gone, row 4 new.
SELECT coco.declare_table('basic', 'basic_docs',
    '[{"name": "id", "type": "bigint"},
      {"name": "title", "type": "text"},
      {"name": "n", "type": "int"}]', '{id}');
SELECT coco.declare_row('basic', 'basic_docs', '{"id": 1, "title": "one", "n": 1}');
SELECT coco.declare_row('basic', 'basic_docs', '{"id": 2, "title": "two!", "n": 2}');
SELECT coco.declare_row('basic', 'basic_docs', '{"id": 4, "title": "four", "n": 4}');
SELECT pg_temp.summary(coco.reconcile('basic'));
SELECT * FROM basic_docs ORDER BY id;

-- A second table in the same app, schema-qualified, in a schema that does
-- not exist yet; composite primary key; rows from a query.
SELECT count(*) AS schema_exists FROM pg_namespace WHERE nspname = 'basic_s';
CREATE TABLE basic_src (a int, b text, v text);
INSERT INTO basic_src VALUES (1, 'x', '1x'), (1, 'y', '1y'), (2, 'x', '2x');
-- Both tables are re-declared (both live in the root component).
SELECT coco.declare_table('basic', 'basic_docs',
    '[{"name": "id", "type": "bigint"},
      {"name": "title", "type": "text"},
      {"name": "n", "type": "int"}]', '{id}');
SELECT coco.declare_rows('basic', 'basic_docs', 'SELECT id, title, n FROM basic_docs');
SELECT coco.declare_table('basic', 'basic_s.pairs',
    '[{"name": "a", "type": "integer"},
      {"name": "b", "type": "text"},
      {"name": "v", "type": "text"}]', '{a,b}');
SELECT coco.declare_rows('basic', 'basic_s.pairs', 'SELECT a, b, v FROM basic_src');
SELECT pg_temp.summary(coco.reconcile('basic'));
SELECT count(*) AS schema_exists FROM pg_namespace WHERE nspname = 'basic_s';
SELECT * FROM basic_s.pairs ORDER BY a, b;
SELECT pg_get_constraintdef(oid) FROM pg_constraint
 WHERE conrelid = 'basic_s.pairs'::regclass AND contype = 'p';

-- Composite keys: an update and a delete that share one key part with
-- rows that stay.
UPDATE basic_src SET v = '1y!' WHERE a = 1 AND b = 'y';
DELETE FROM basic_src WHERE a = 1 AND b = 'x';
INSERT INTO basic_src VALUES (2, 'y', '2y');
SELECT coco.declare_table('basic', 'basic_docs',
    '[{"name": "id", "type": "bigint"},
      {"name": "title", "type": "text"},
      {"name": "n", "type": "int"}]', '{id}');
SELECT coco.declare_rows('basic', 'basic_docs', 'SELECT id, title, n FROM basic_docs');
SELECT coco.declare_table('basic', 'basic_s.pairs',
    '[{"name": "a", "type": "integer"},
      {"name": "b", "type": "text"},
      {"name": "v", "type": "text"}]', '{a,b}');
SELECT coco.declare_rows('basic', 'basic_s.pairs', 'SELECT a, b, v FROM basic_src');
SELECT pg_temp.summary(coco.reconcile('basic'));
SELECT * FROM basic_s.pairs ORDER BY a, b;
SELECT * FROM basic_docs ORDER BY id;

-- A second app side by side, with its own table.
SELECT coco.create_app('basic2');
SELECT coco.declare_table('basic2', 'basic2_items',
    '[{"name": "k", "type": "text"}, {"name": "qty", "type": "integer"}]', '{k}');
SELECT coco.declare_row('basic2', 'basic2_items', '{"k": "apple", "qty": 3}');
SELECT coco.declare_row('basic2', 'basic2_items', '{"k": "pear", "qty": 5}');
SELECT pg_temp.summary(coco.reconcile('basic2'));
SELECT * FROM basic2_items ORDER BY k;
-- Reconciling one app with nothing staged leaves the other's tables alone.
SELECT pg_temp.summary(coco.reconcile('basic'));
SELECT pg_temp.summary(coco.reconcile('basic2'));
SELECT (SELECT count(*) FROM basic_docs) AS docs, (SELECT count(*) FROM basic_s.pairs) AS pairs,
       (SELECT count(*) FROM basic2_items) AS items;
-- Each app tracks its own tables.
SELECT app, component, provider, key, name, generation, schema_version
  FROM coco.target_states WHERE app IN ('basic', 'basic2') ORDER BY app, name;
SELECT app, count(*) AS runs, bool_and(status = 'succeeded') AS all_succeeded
  FROM coco.runs WHERE app IN ('basic', 'basic2') GROUP BY app ORDER BY app;

-- Clean up: dropping the apps drops their tables.
SELECT coco.drop_app('basic');
SELECT coco.drop_app('basic2');
SELECT to_regclass('basic_docs') AS docs, to_regclass('basic_s.pairs') AS pairs,
       to_regclass('basic2_items') AS items;
SELECT count(*) AS apps_left FROM coco.apps WHERE app IN ('basic', 'basic2');
DROP TABLE basic_src;
DROP SCHEMA basic_s;
