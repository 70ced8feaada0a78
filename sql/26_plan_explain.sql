-- coco.plan predicts the failures a run would hit.  Each case below is
-- planned, then run: where the run fails, the plan has said so with a row
-- whose action is 'error'.
\set VERBOSITY sqlstate
-- (errors show their SQLSTATE alone: the plan's rows carry the messages)
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

-- the error rows name the table, the key, the components and the column
SELECT coco.declare_row('px', 'px_t', '{"id": 1, "v": "b"}', '{b}');
SELECT coco.declare_rows('px', 'px_t', 'SELECT id % 3 + 10 AS id, ''x'' AS v FROM px_src', '{c}');
SELECT provider, key, action, detail FROM coco.plan('px') ORDER BY action, key::text, detail::text;
SELECT coco.clear_component('px', '{b}');
SELECT coco.clear_component('px', '{c}');

-- a column missing from a user-managed table, and one of a type the
-- declared one does not convert to: 42703 and 42804 at the run
CREATE TABLE px_user (id int PRIMARY KEY, v text, d date);
\set U '[{"name":"id","type":"integer","nullable":false},{"name":"v","type":"text"},{"name":"w","type":"integer"},{"name":"d","type":"integer"}]'
SELECT coco.declare_table('px', 'px_user', :'U', '{id}', 'user', '{u}');
SELECT coco.declare_row('px', 'px_user', '{"id": 1, "v": "a", "w": 2, "d": 3}', '{u}');
SELECT provider, key, action, detail FROM coco.plan('px') WHERE action = 'error' ORDER BY detail->>'column';
SELECT coco.reconcile('px');
\echo :LAST_ERROR_SQLSTATE
SELECT coco.clear_component('px', '{u}');

-- a declared value that does not convert to its column's type: the run
-- fails (22P02); the plan names the row, the column and the value
CREATE TABLE px_num (id int, n text);
INSERT INTO px_num SELECT g, CASE WHEN g = 1234 THEN 'many' ELSE g::text END FROM generate_series(1, 3000) g;
\set N '[{"name":"id","type":"integer","nullable":false},{"name":"n","type":"integer"}]'
SELECT coco.declare_table('px', 'px_n', :'N', '{id}', component => '{n}');
SELECT coco.declare_rows('px', 'px_n', 'SELECT id, n FROM px_num', '{n}');
SELECT provider, key, action, detail FROM coco.plan('px') ORDER BY provider, action;
SELECT coco.reconcile('px');
\echo :LAST_ERROR_SQLSTATE
-- a key that does not convert (its source changed since it was declared):
-- no key to name, the value is
SELECT coco.clear_component('px', '{n}');
SELECT coco.declare_table('px', 'px_n', :'N', '{id}', component => '{n}');
SELECT coco.declare_rows('px', 'px_n', 'SELECT n AS id, id AS n FROM px_num WHERE id <= 10', '{n}');
UPDATE px_num SET n = 'five' WHERE id = 5;
SELECT provider, key, action, detail FROM coco.plan('px') WHERE action = 'error';
SELECT coco.reconcile('px');
\echo :LAST_ERROR_SQLSTATE
UPDATE px_num SET n = '5' WHERE id = 5;
-- a query that fails on its own (a division by zero): the table's error
SELECT coco.clear_component('px', '{n}');
CREATE TABLE px_div AS SELECT g AS id, g AS d FROM generate_series(1, 4) g;
SELECT coco.declare_table('px', 'px_n', :'N', '{id}', component => '{n}');
SELECT coco.declare_rows('px', 'px_n', 'SELECT id, 100 / d AS n FROM px_div', '{n}');
UPDATE px_div SET d = 0 WHERE id = 2;
SELECT provider, key, action, detail FROM coco.plan('px') WHERE action = 'error';
SELECT coco.reconcile('px');
\echo :LAST_ERROR_SQLSTATE
DROP TABLE px_div;
SELECT coco.clear_component('px', '{n}');
SELECT coco.declare_table('px', 'px_n', :'N', '{id}', component => '{n}');
SELECT coco.declare_rows('px', 'px_n', 'SELECT id, id AS n FROM px_num WHERE id <= 20', '{n}');
SELECT (coco.reconcile('px'))->'inserted' AS inserted;

-- the rows that would change, with the columns that change, up to row_limit
UPDATE px_num SET n = '0' WHERE id IN (2, 3);
SELECT coco.declare_table('px', 'px_n', :'N', '{id}', component => '{n}');
SELECT coco.declare_rows('px', 'px_n', 'SELECT id, n FROM px_num WHERE id BETWEEN 2 AND 21', '{n}');
SELECT provider, key, action, detail FROM coco.plan('px', rows => true) WHERE provider = 'postgres.row'
 ORDER BY action, key;
SELECT key, action FROM coco.plan('px', rows => true, row_limit => 2) WHERE provider = 'postgres.row';
SELECT count(*) AS listed_without_rows FROM coco.plan('px', row_limit => 5) WHERE action IN ('insert', 'update', 'delete');

-- the plan is read-only: the target, the tracking and the staging are as they were
CREATE FUNCTION pg_temp.world() RETURNS text LANGUAGE sql AS $$
  SELECT md5(concat(
    (SELECT string_agg(t::text, ',' ORDER BY id) FROM px_n t),
    (SELECT string_agg(concat(key, fp, comp_id), ',' ORDER BY key) FROM coco.tracked_row),
    (SELECT string_agg(ctid::text, ',' ORDER BY ctid) FROM coco.tracked_chunk),
    (SELECT string_agg(concat(ts_id, records, comp_id), ',' ORDER BY ts_id) FROM coco.target_state),
    (SELECT pending_declarations FROM coco.apps WHERE app = 'px')))
$$;
SELECT pg_temp.world() AS before \gset
SELECT count(*) > 0 AS planned FROM coco.plan('px', true, rows => true);
SELECT pg_temp.world() = :'before' AS unchanged;
SELECT coco.clear_component('px', '{n}');
SELECT (coco.reconcile('px'))->'deleted' AS deleted;

-- the next coco.update, previewed: its declaration function runs in a
-- subtransaction that is rolled back, so nothing it declares stays staged
CREATE FUNCTION px_declare(app text) RETURNS void LANGUAGE sql AS $$
  SELECT coco.declare_table(app, 'px_upd', '[{"name":"id","type":"integer","nullable":false},{"name":"n","type":"integer"}]', '{id}');
  SELECT coco.declare_rows(app, 'px_upd', 'SELECT id, id * 10 AS n FROM px_num WHERE id <= 3');
$$;
SELECT coco.create_app('pxu', 'px_declare(text)'::regprocedure);
CREATE FUNCTION pg_temp.staged(app text) RETURNS bigint LANGUAGE sql AS $$
  SELECT pending_declarations FROM coco.apps WHERE apps.app = staged.app
$$;
SELECT pg_temp.staged('pxu') AS staged_before;
SELECT provider, key, action, detail FROM coco.plan('pxu', update => true, rows => true) ORDER BY provider, key;
SELECT pg_temp.staged('pxu') AS staged_after, to_regclass('px_upd') IS NULL AS nothing_created;
SELECT (coco.update('pxu'))->'inserted' AS inserted;
UPDATE px_num SET id = id + 100 WHERE id = 3;
SELECT key, action, detail->'columns' AS columns FROM coco.plan('pxu', update => true, rows => true)
 WHERE provider = 'postgres.row' AND action <> 'sync' ORDER BY key;
SELECT pg_temp.staged('pxu') AS staged_after;
SELECT (coco.update('pxu'))->'deleted' AS deleted;

-- refusals: another role's app, NULL arguments, a limit out of range, a
-- preview of an app without a declaration function
CREATE ROLE regress_coco_px;
SET ROLE regress_coco_px;
SELECT * FROM coco.plan('px');
SELECT * FROM coco.plan('pxu', update => true);
RESET ROLE;
DROP ROLE regress_coco_px;
SELECT * FROM coco.plan(NULL);
SELECT * FROM coco.plan('px', NULL);
SELECT * FROM coco.plan('px', rows => NULL);
SELECT * FROM coco.plan('px', update => NULL);
SELECT * FROM coco.plan('px', row_limit => NULL);
SELECT * FROM coco.plan('px', rows => true, row_limit => -1);
SELECT * FROM coco.plan('px', rows => true, row_limit => 2147483647);
SELECT * FROM coco.plan('px', update => true);
SELECT * FROM coco.plan('no_such_app');
-- the calls of 0.3 still work
SELECT count(*) FROM coco.plan('px');
SELECT count(*) FROM coco.plan('px', true);

SELECT coco.drop_app('pxu');
SELECT coco.drop_app('px');
DROP FUNCTION px_declare(text);
DROP TABLE px_src, px_user, px_num;
