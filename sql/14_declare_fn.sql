-- 14_declare_fn: an app's declaration function.  create_app checks its
-- signature (app text) -> void.  When a lossy change leaves a component
-- stale, the reconciler runs the declaration function (with the
-- search_path of the session that created the app) and a second, full pass
-- re-writes the stale rows, so nothing is left stale.
\set VERBOSITY default
\set SHOW_CONTEXT never

CREATE FUNCTION pg_temp.summary(r jsonb) RETURNS text LANGUAGE sql AS $$
  SELECT format('table(+%s ~%s -%s =%s) row(+%s ~%s -%s =%s) stale=%s passes=%s',
                r#>>'{providers,postgres.table,inserted}', r#>>'{providers,postgres.table,updated}',
                r#>>'{providers,postgres.table,deleted}', r#>>'{providers,postgres.table,unchanged}',
                r#>>'{providers,postgres.row,inserted}', r#>>'{providers,postgres.row,updated}',
                r#>>'{providers,postgres.row,deleted}', r#>>'{providers,postgres.row,unchanged}',
                r->>'stale_components', r->>'passes')
$$;

-- Signatures are checked: wrong argument or return type (42P13), unknown
-- function (42883).
CREATE FUNCTION dfn_wrong_arg(int) RETURNS void LANGUAGE sql AS 'SELECT';
CREATE FUNCTION dfn_wrong_ret(text) RETURNS int LANGUAGE sql AS 'SELECT 1';
SELECT coco.create_app('dfn_bad', 'dfn_wrong_arg(int)');
\echo :LAST_ERROR_SQLSTATE
SELECT coco.create_app('dfn_bad', 'dfn_wrong_ret(text)');
\echo :LAST_ERROR_SQLSTATE
SELECT coco.create_app('dfn_bad', 'dfn_nowhere(text)');
\echo :LAST_ERROR_SQLSTATE
SELECT count(*) AS apps FROM coco.apps WHERE app = 'dfn_bad';

-- The source lives in schema dfn_s, which the function names unqualified;
-- the type of column v is read from dfn_typ.
CREATE SCHEMA dfn_s;
CREATE TABLE dfn_s.dfn_src (id int, v text);
INSERT INTO dfn_s.dfn_src VALUES (1, '42'), (2, '7');
CREATE TABLE dfn_typ (vtype text);
INSERT INTO dfn_typ VALUES ('text');
CREATE FUNCTION dfn_declare(app text) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
  PERFORM coco.declare_table(app, 'dfn_t',
      jsonb_build_array(jsonb_build_object('name', 'id', 'type', 'int'),
                        jsonb_build_object('name', 'v', 'type', (SELECT vtype FROM public.dfn_typ))),
      '{id}');
  PERFORM coco.declare_rows(app, 'dfn_t', 'SELECT id, v FROM dfn_src', '{rows}');
END $$;

-- The app is created in a session whose search_path finds dfn_src.
SET search_path = dfn_s, public;
SELECT coco.create_app('dfn', 'public.dfn_declare(text)');
SELECT public.dfn_declare('dfn');
RESET search_path;
SELECT app, declare_fn FROM coco.apps WHERE app = 'dfn';
SELECT pg_temp.summary(coco.reconcile('dfn'));
SELECT id, v, pg_typeof(v) FROM dfn_t ORDER BY id;

-- v becomes an integer: the table alone is declared (lossy), {rows} would
-- be stale; the declaration function is run and a second pass re-writes
-- the rows.
UPDATE dfn_typ SET vtype = 'int';
SELECT coco.declare_table('dfn', 'dfn_t', '[{"name": "id", "type": "int"}, {"name": "v", "type": "int"}]', '{id}');
SELECT pg_temp.summary(coco.reconcile('dfn'));
SELECT id, v, pg_typeof(v) FROM dfn_t ORDER BY id;
SELECT * FROM coco.stale_components WHERE app = 'dfn';
SELECT pending_declarations FROM coco.apps WHERE app = 'dfn';

-- Without a lossy change the function is not run: one pass.
SELECT coco.declare_table('dfn', 'dfn_t', '[{"name": "id", "type": "int"}, {"name": "v", "type": "int"}]', '{id}');
SELECT pg_temp.summary(coco.reconcile('dfn'));

-- Clean up.
SELECT coco.drop_app('dfn');
DROP FUNCTION dfn_declare(text), dfn_wrong_arg(int), dfn_wrong_ret(text);
DROP TABLE dfn_s.dfn_src, dfn_typ;
DROP SCHEMA dfn_s;
