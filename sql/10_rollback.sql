-- 10_rollback: staging is transactional.  A rolled-back declaring
-- transaction leaves nothing staged; a rolled-back reconcile, clear or
-- drop leaves everything as it was; a rolled-back savepoint (or a caught
-- error in a PL/pgSQL block) undoes only its own declarations, and the
-- transaction can go on declaring, into the same component too.
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
CREATE FUNCTION pg_temp.declare_table() RETURNS void LANGUAGE sql AS $$
  SELECT coco.declare_table('rb', 'rb_t', '[{"name": "id", "type": "int"}, {"name": "v", "type": "text"}]', '{id}');
$$;
CREATE FUNCTION pg_temp.pending() RETURNS bigint LANGUAGE sql AS $$
  SELECT pending_declarations FROM coco.apps WHERE app = 'rb'
$$;

-- A rolled-back create_app leaves no app.
BEGIN;
SELECT coco.create_app('rb');
ROLLBACK;
SELECT count(*) AS apps FROM coco.apps WHERE app = 'rb';

SELECT coco.create_app('rb');

-- A rolled-back declaring transaction stages nothing: the next reconcile
-- has nothing to do and creates nothing.
BEGIN;
SELECT pg_temp.declare_table();
SELECT coco.declare_row('rb', 'rb_t', '{"id": 1, "v": "a"}');
SELECT coco.declare_rows('rb', 'rb_t', $$SELECT 2 AS id, 'b' AS v$$, '{q}');
SELECT coco.clear_component('rb', '{c}');
SELECT pg_temp.pending();
ROLLBACK;
SELECT pg_temp.pending();
SELECT pg_temp.summary(coco.reconcile('rb'));
SELECT to_regclass('rb_t') AS rb_t;
SELECT count(*) AS tracked FROM coco.target_states WHERE app = 'rb';

-- A committed declaring transaction, then a reconcile.
BEGIN;
SELECT pg_temp.declare_table();
SELECT coco.declare_row('rb', 'rb_t', '{"id": 1, "v": "a"}');
SELECT coco.declare_row('rb', 'rb_t', '{"id": 2, "v": "b"}', '{c}');
COMMIT;
SELECT pg_temp.pending();
SELECT pg_temp.summary(coco.reconcile('rb'));
SELECT * FROM rb_t ORDER BY id;
SELECT count(*) AS runs FROM coco.runs WHERE app = 'rb';

-- A reconcile rolled back with its transaction: the table is unchanged, the
-- declarations are still staged, no run is recorded.
BEGIN;
SELECT pg_temp.declare_table();
SELECT coco.declare_row('rb', 'rb_t', '{"id": 1, "v": "A"}');
SELECT coco.declare_row('rb', 'rb_t', '{"id": 3, "v": "c"}');
COMMIT;
BEGIN;
SELECT pg_temp.summary(coco.reconcile('rb'));
SELECT * FROM rb_t ORDER BY id;
ROLLBACK;
SELECT * FROM rb_t ORDER BY id;
SELECT pg_temp.pending();
SELECT count(*) AS runs FROM coco.runs WHERE app = 'rb';
SELECT pg_temp.summary(coco.reconcile('rb'));
SELECT * FROM rb_t ORDER BY id;

-- A rolled-back clear_component clears nothing.
BEGIN;
SELECT coco.clear_component('rb', '{c}');
ROLLBACK;
SELECT pg_temp.summary(coco.reconcile('rb'));
SELECT * FROM rb_t ORDER BY id;

-- A rolled-back drop_app drops nothing.
BEGIN;
SELECT coco.drop_app('rb');
SELECT to_regclass('rb_t') AS rb_t;
ROLLBACK;
SELECT to_regclass('rb_t') AS rb_t, (SELECT count(*) FROM coco.apps WHERE app = 'rb') AS apps;

-- Savepoints: what was declared inside a rolled-back savepoint is gone,
-- what was declared around it stays.
BEGIN;
SELECT coco.declare_row('rb', 'rb_t', '{"id": 10, "v": "kept"}', '{sp}');
SAVEPOINT s1;
SELECT coco.declare_row('rb', 'rb_t', '{"id": 11, "v": "undone"}', '{sp}');
ROLLBACK TO SAVEPOINT s1;
SELECT coco.declare_row('rb', 'rb_t', '{"id": 12, "v": "kept"}', '{sp}');
COMMIT;
SELECT pg_temp.pending();
SELECT pg_temp.summary(coco.reconcile('rb'));
SELECT * FROM rb_t WHERE id >= 10 ORDER BY id;

-- A savepoint that first used a component, rolled back: the transaction
-- can still declare into that component afterwards.
BEGIN;
SAVEPOINT s1;
SELECT coco.declare_row('rb', 'rb_t', '{"id": 20, "v": "undone"}', '{sp2}');
ROLLBACK TO SAVEPOINT s1;
SELECT coco.declare_row('rb', 'rb_t', '{"id": 21, "v": "kept"}', '{sp2}');
COMMIT;
SELECT pg_temp.pending();
SELECT pg_temp.summary(coco.reconcile('rb'));
SELECT * FROM rb_t WHERE id >= 20 ORDER BY id;

-- The same with a bad declaration caught in a PL/pgSQL block (which runs
-- in a subtransaction): the good declarations that follow are staged.
DO $$
BEGIN
  BEGIN
    PERFORM coco.declare_row('rb', 'rb_t', '{"id": "not a number"}', '{sp3}');
  EXCEPTION WHEN invalid_text_representation THEN
    RAISE NOTICE 'refused: %', SQLSTATE;
  END;
  PERFORM coco.declare_row('rb', 'rb_t', '{"id": 30, "v": "kept"}', '{sp3}');
END $$;
SELECT pg_temp.pending();
SELECT pg_temp.summary(coco.reconcile('rb'));
SELECT * FROM rb_t WHERE id >= 30 ORDER BY id;

-- A table declared inside a rolled-back savepoint is not declared any more:
-- rows for it are refused afterwards (42P01).
BEGIN;
SAVEPOINT s1;
SELECT coco.declare_table('rb', 'rb_sp', '[{"name": "id", "type": "int"}]', '{id}', 'system', '{sp4}');
SELECT coco.declare_row('rb', 'rb_sp', '{"id": 1}', '{sp4}');
ROLLBACK TO SAVEPOINT s1;
SELECT coco.declare_row('rb', 'rb_sp', '{"id": 2}', '{sp4}');
\echo :LAST_ERROR_SQLSTATE
ROLLBACK;

-- An app created inside a rolled-back savepoint does not exist any more
-- (42704).
BEGIN;
SAVEPOINT s1;
SELECT coco.create_app('rb_sp');
SELECT coco.declare_table('rb_sp', 'rb_sp', '[{"name": "id", "type": "int"}]', '{id}');
ROLLBACK TO SAVEPOINT s1;
SELECT coco.declare_table('rb_sp', 'rb_sp', '[{"name": "id", "type": "int"}]', '{id}');
\echo :LAST_ERROR_SQLSTATE
ROLLBACK;
SELECT pg_temp.pending();

-- Clean up.
SELECT coco.drop_app('rb');
SELECT to_regclass('rb_t') AS rb_t;
