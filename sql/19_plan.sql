-- coco.plan: a dry run of the next reconcile.  Proves that it shows table,
-- attachment and row steps with the hazards a reviewer cares about — a
-- new table, a dropped column (lossy: rows rewritten), a primary-key change
-- (the table rebuilt), deletions — and that it applies nothing and leaves
-- staging as it was.
\set VERBOSITY default
\set SHOW_CONTEXT never
CREATE TABLE plan_src (id int PRIMARY KEY, v text, n int);
INSERT INTO plan_src SELECT g, 'v' || g, g FROM generate_series(1, 100) g;
SELECT coco.create_app('plan');
\set T1 '[{"name":"id","type":"integer","nullable":false},{"name":"v","type":"text"},{"name":"n","type":"integer"}]'
\set T2 '[{"name":"id","type":"integer","nullable":false},{"name":"v","type":"text"}]'
\set T3 '[{"name":"id","type":"integer","nullable":false},{"name":"v","type":"text","nullable":false}]'
CREATE FUNCTION pg_temp.staged() RETURNS bigint LANGUAGE sql AS $$
  SELECT pending_declarations FROM coco.apps WHERE app = 'plan'
$$;

-- a new table with its rows and an index
SELECT coco.declare_table('plan', 'plan_t', :'T1', '{id}');
SELECT coco.declare_rows('plan', 'plan_t', 'SELECT id, v, n FROM plan_src');
SELECT coco.declare_index('plan', 'plan_t', 'v_idx', '{v}');
SELECT pg_temp.staged() AS staged_before;
SELECT provider, key, action, detail FROM coco.plan('plan') ORDER BY provider;
SELECT pg_temp.staged() AS staged_after, to_regclass('plan_t') IS NULL AS nothing_created;
SELECT (coco.reconcile('plan'))->'inserted' AS inserted;

-- an added column: the rows are written again (they get its values), no invalidation
\set T1b '[{"name":"id","type":"integer","nullable":false},{"name":"v","type":"text"},{"name":"n","type":"integer"},{"name":"m","type":"integer"}]'
SELECT coco.declare_table('plan', 'plan_t', :'T1b', '{id}');
SELECT coco.declare_rows('plan', 'plan_t', 'SELECT id, v, n, n AS m FROM plan_src');
SELECT coco.declare_index('plan', 'plan_t', 'v_idx', '{v}');
SELECT provider, action, detail->'hazards' AS hazards, detail->'invalidation' AS invalidation,
       detail#>'{detail,columns}' AS columns, detail->'update' AS upd
  FROM coco.plan('plan') ORDER BY provider;
SELECT coco.clear_component('plan', '{}');

-- a dropped column, deleted and updated rows, a changed index
DELETE FROM plan_src WHERE id <= 10;
UPDATE plan_src SET v = 'x' || id WHERE id BETWEEN 11 AND 15;
SELECT coco.declare_table('plan', 'plan_t', :'T2', '{id}');
SELECT coco.declare_rows('plan', 'plan_t', 'SELECT id, v FROM plan_src');
SELECT coco.declare_index('plan', 'plan_t', 'v_idx', '{v}', 'btree', '{"unique": true}');
SELECT provider, action, detail->'hazards' AS hazards, detail->'invalidation' AS invalidation,
       detail->'insert' AS ins, detail->'update' AS upd, detail->'delete' AS del
  FROM coco.plan('plan') ORDER BY provider;
SELECT count(*) AS rows_untouched FROM plan_t WHERE n IS NOT NULL;

-- a primary-key change instead: the table is rebuilt, the index goes
SELECT coco.clear_component('plan', '{}');
SELECT coco.declare_table('plan', 'plan_t', :'T3', '{id,v}');
SELECT coco.declare_rows('plan', 'plan_t', 'SELECT id, v FROM plan_src');
SELECT provider, action, detail->'hazards' AS hazards, detail->'insert' AS ins
  FROM coco.plan('plan') ORDER BY provider;

-- a full run with nothing declared would drop the table
SELECT coco.clear_component('plan', '{}');
SELECT provider, action, detail->'hazards' AS hazards FROM coco.plan('plan', true) ORDER BY provider;

-- someone else's app
CREATE ROLE regress_coco_planner;
SET ROLE regress_coco_planner;
SELECT * FROM coco.plan('plan');
\echo :LAST_ERROR_SQLSTATE
RESET ROLE;
DROP ROLE regress_coco_planner;

SELECT coco.drop_app('plan');
DROP TABLE plan_src;
