-- 27_errors: errors name the things the user declared — the table, the
-- column, the key, the components — keep their SQLSTATE, and show no text
-- of the statements the extension runs internally (no such CONTEXT).
\set VERBOSITY default
SELECT coco.create_app('err');

-- A value that does not convert to its column's type, in declare_row.
BEGIN;
SELECT coco.declare_table('err', 'public.err_t',
  '[{"name":"id","type":"integer"},{"name":"n","type":"integer"}]', '{id}');
SELECT coco.declare_row('err', 'public.err_t', '{"id": 4, "n": "Document 4"}');
ROLLBACK;

-- In a declare_rows query, found when the run converts it: the table's
-- first load (the table is created by the run) ...
BEGIN;
SELECT coco.declare_table('err', 'public.err_t',
  '[{"name":"id","type":"integer"},{"name":"n","type":"integer"}]', '{id}');
SELECT coco.declare_rows('err', 'public.err_t',
  $$SELECT g AS id, CASE WHEN g = 4 THEN 'Document 4' ELSE g::text END AS n
      FROM generate_series(1, 10) g$$);
SELECT coco.reconcile('err');
ROLLBACK;
SELECT count(*) AS err_t_exists FROM pg_class WHERE relname = 'err_t';

-- ... and an existing table, whose rows are diffed.
SELECT coco.declare_table('err', 'public.err_t',
  '[{"name":"id","type":"integer"},{"name":"n","type":"integer"}]', '{id}');
SELECT coco.declare_rows('err', 'public.err_t', $$SELECT g AS id, g AS n FROM generate_series(1, 10) g$$);
SELECT coco.reconcile('err')->'inserted' AS inserted;
BEGIN;
SELECT coco.declare_table('err', 'public.err_t',
  '[{"name":"id","type":"integer"},{"name":"n","type":"integer"}]', '{id}');
SELECT coco.declare_rows('err', 'public.err_t',
  $$SELECT g AS id, CASE WHEN g = 7 THEN 'Document 7' ELSE g::text END AS n
      FROM generate_series(1, 10) g$$);
SELECT coco.reconcile('err');
ROLLBACK;
SELECT count(*), sum(n) FROM err_t;

-- A user-managed table whose declared column type changes after rows were
-- declared for it.
CREATE TABLE err_u (id integer PRIMARY KEY, n text);
SELECT coco.declare_table('err', 'public.err_u',
  '[{"name":"id","type":"integer"},{"name":"n","type":"text"}]', '{id}', 'user', '{u}');
SELECT coco.reconcile('err')->'inserted' AS inserted;
BEGIN;
SELECT coco.declare_row('err', 'public.err_u', '{"id": 5, "n": "five"}', '{r}');
SELECT coco.declare_table('err', 'public.err_u',
  '[{"name":"id","type":"integer"},{"name":"n","type":"integer"}]', '{id}', 'user', '{u}');
SELECT coco.reconcile('err');
ROLLBACK;

-- An error of the user's own query: its message as it was, the table named
-- in the context, no internal statement.
BEGIN;
SELECT coco.declare_table('err', 'public.err_t',
  '[{"name":"id","type":"integer"},{"name":"n","type":"integer"}]', '{id}');
SELECT coco.declare_rows('err', 'public.err_t', $$SELECT g AS id, 10 / (g - 3) AS n FROM generate_series(1, 5) g$$);
SELECT coco.reconcile('err');
ROLLBACK;

-- An unknown type names the column.
SELECT coco.declare_table('err', 'public.err_v',
  '[{"name":"id","type":"integer"},{"name":"n","type":"no_such_type"}]', '{id}');

-- A target declared twice names the component that declared it first.
BEGIN;
SELECT coco.declare_table('err', 'public.err_w', '[{"name":"id","type":"integer"}]', '{id}', 'system', '{a}');
SELECT coco.declare_table('err', 'public.err_w', '[{"name":"id","type":"integer"}]', '{id}', 'system', '{b}');
ROLLBACK;
BEGIN;
SELECT coco.declare_table('err', 'public.err_w', '[{"name":"id","type":"integer"}]', '{id}', 'system', '{a}');
SELECT coco.declare_row('err', 'public.err_w', '{"id": 1}', '{a}');
SELECT coco.declare_row('err', 'public.err_w', '{"id": 1}', '{b}');
ROLLBACK;

-- Rows whose keys another component holds name a key and both components.
SELECT coco.declare_table('err', 'public.err_w', '[{"name":"id","type":"integer"}]', '{id}', 'system', '{a}');
SELECT coco.declare_row('err', 'public.err_w', '{"id": 1}', '{a}');
SELECT coco.reconcile('err')->'inserted' AS inserted;
SELECT coco.declare_row('err', 'public.err_w', '{"id": 1}', '{b}');
SELECT coco.reconcile('err');
-- ... also when the diff meets the key in a temporary file, past
-- coco_target.work_mem (the declarations are read again for its bytes);
-- nothing of the failed run is written.
SELECT coco.create_app('err_file');
SET coco_target.work_mem = 64;
SELECT coco.declare_table('err_file', 'public.err_v', '[{"name":"id","type":"integer"}]', '{id}', 'system', '{a}');
SELECT coco.declare_rows('err_file', 'public.err_v', 'SELECT g AS id FROM generate_series(1, 3000) g', '{a}');
SELECT coco.reconcile('err_file')->'inserted' AS inserted;
SELECT coco.declare_rows('err_file', 'public.err_v',
  'SELECT g AS id FROM generate_series(3001, 6000) g UNION ALL SELECT 1234', '{b}');
SELECT coco.reconcile('err_file');
SELECT count(*) AS rows, max(id) AS max_id FROM err_v;
RESET coco_target.work_mem;
SELECT coco.drop_app('err_file');

SELECT coco.drop_app('err');
DROP TABLE err_u;
