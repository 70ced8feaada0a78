-- 12_identifiers: every name that passes validation works end to end and
-- is used exactly as given (quoted): mixed-case schema, table and column
-- names, SQL keywords as column names, and column names that look like
-- the reconciler's own (coco_k, coco_f, coco_c, coco_op, key, fp, comp_id).
-- Rows are inserted, updated and deleted, and a column is retyped.
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

-- Mixed case and keywords: "Idn_Mixed"."Docs" with "Id", "order", "select", "user".
SELECT coco.create_app('idn');
CREATE FUNCTION pg_temp.declare_mixed(select_type text) RETURNS void LANGUAGE sql AS $$
  SELECT coco.declare_table('idn', 'Idn_Mixed.Docs',
      jsonb_build_array(jsonb_build_object('name', 'Id', 'type', 'int'),
                        jsonb_build_object('name', 'order', 'type', 'text'),
                        jsonb_build_object('name', 'select', 'type', select_type),
                        jsonb_build_object('name', 'user', 'type', 'int')), '{Id,order}');
$$;
SELECT pg_temp.declare_mixed('text');
SELECT coco.declare_row('idn', 'Idn_Mixed.Docs', '{"Id": 1, "order": "a", "select": "10", "user": 1}');
SELECT coco.declare_row('idn', 'Idn_Mixed.Docs', '{"Id": 2, "order": "a", "select": "20", "user": 2}');
SELECT coco.declare_row('idn', 'Idn_Mixed.Docs', '{"Id": 2, "order": "b", "select": "30", "user": 3}');
SELECT pg_temp.summary(coco.reconcile('idn'));
SELECT * FROM "Idn_Mixed"."Docs" ORDER BY "Id", "order";
-- A lower-case spelling is another table (not declared).
SELECT to_regclass('idn_mixed.docs') AS lower_case;
-- Retype "select" (text -> int, convertible), update one row, delete one.
SELECT pg_temp.declare_mixed('int');
SELECT coco.declare_row('idn', 'Idn_Mixed.Docs', '{"Id": 1, "order": "a", "select": 10, "user": 1}');
SELECT coco.declare_row('idn', 'Idn_Mixed.Docs', '{"Id": 2, "order": "a", "select": 21, "user": 2}');
SELECT pg_temp.summary(coco.reconcile('idn'));
SELECT "Id", "order", "select", pg_typeof("select") AS type, "user" FROM "Idn_Mixed"."Docs" ORDER BY "Id", "order";

-- Column names like the reconciler's own: the table idn_internal with key
-- (coco_k, key) and columns coco_f, coco_c, coco_op, fp, comp_id.
CREATE FUNCTION pg_temp.declare_internal() RETURNS void LANGUAGE sql AS $$
  SELECT coco.declare_table('idn', 'idn_internal',
      '[{"name": "coco_k", "type": "int"}, {"name": "key", "type": "text"},
        {"name": "coco_f", "type": "text"}, {"name": "coco_c", "type": "int"},
        {"name": "coco_op", "type": "int"}, {"name": "fp", "type": "bytea"},
        {"name": "comp_id", "type": "int"}]', '{coco_k,key}', 'system', '{internal}');
$$;
SELECT pg_temp.declare_internal();
SELECT coco.declare_row('idn', 'idn_internal',
    '{"coco_k": 1, "key": "k1", "coco_f": "f", "coco_c": 7, "coco_op": 3, "fp": "\\x01", "comp_id": 99}', '{internal}');
SELECT coco.declare_rows('idn', 'idn_internal',
    $$SELECT 2 AS coco_k, 'k2' AS key, 'g' AS coco_f, 8 AS coco_c, 4 AS coco_op, '\x02'::bytea AS fp, 98 AS comp_id$$,
    '{internal}');
SELECT pg_temp.summary(coco.reconcile('idn'));
SELECT * FROM idn_internal ORDER BY coco_k;
-- update row 1, delete row 2
SELECT pg_temp.declare_internal();
SELECT coco.declare_row('idn', 'idn_internal',
    '{"coco_k": 1, "key": "k1", "coco_f": "F", "coco_c": 70, "coco_op": 30, "fp": "\\x10", "comp_id": 990}', '{internal}');
SELECT pg_temp.summary(coco.reconcile('idn'));
SELECT * FROM idn_internal ORDER BY coco_k;

-- Clean up.
SELECT coco.drop_app('idn');
SELECT to_regclass('"Idn_Mixed"."Docs"') AS docs, to_regclass('idn_internal') AS internal;
DROP SCHEMA "Idn_Mixed";
