-- coco.plan predicts the failures a run would hit.  Each case below is
-- planned, then run: where the run fails, the plan has said so with a row
-- whose action is 'error'.
\set VERBOSITY sqlstate
\set SHOW_CONTEXT never
SELECT coco.create_app('px');
\set T '[{"name":"id","type":"integer","nullable":false},{"name":"v","type":"text"}]'
CREATE FUNCTION pg_temp.plan_errors(app text) RETURNS bigint LANGUAGE sql AS $$
  SELECT count(*) FROM coco.plan(app) WHERE action = 'error'
$$;

-- rows that another component already declares: the run fails (23505)
SELECT coco.declare_table('px', 'px_t', :'T', '{id}', component => '{a}');
SELECT coco.declare_row('px', 'px_t', '{"id": 1, "v": "a"}', '{a}');
SELECT (coco.reconcile('px'))->'inserted' AS inserted;
SELECT coco.declare_row('px', 'px_t', '{"id": 1, "v": "b"}', '{b}');
SELECT pg_temp.plan_errors('px') > 0 AS plan_foresees_failure;
SELECT coco.reconcile('px');
\echo :LAST_ERROR_SQLSTATE
SELECT coco.clear_component('px', '{b}');
SELECT (coco.reconcile('px'))->'deleted' AS deleted;

-- a declare_rows query whose keys collide: the run fails (23505)
CREATE TABLE px_src AS SELECT g AS id FROM generate_series(1, 50) g;
SELECT coco.declare_rows('px', 'px_t', 'SELECT id % 10 AS id, ''x'' AS v FROM px_src', '{c}');
SELECT pg_temp.plan_errors('px') > 0 AS plan_foresees_failure;
SELECT coco.reconcile('px');
\echo :LAST_ERROR_SQLSTATE
SELECT coco.clear_component('px', '{c}');
SELECT (coco.reconcile('px'))->'deleted' AS deleted;

SELECT coco.drop_app('px');
DROP TABLE px_src;
