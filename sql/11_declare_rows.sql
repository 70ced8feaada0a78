-- 11_declare_rows: a declare_rows query is staged and evaluated at
-- reconcile time, as the app owner, with the declaring session's
-- search_path; declare_rows returns the row count at declare time.
-- Several queries and single rows combine in one component; a query
-- returning nothing empties its component.
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

CREATE TABLE dr_src (id int, v text);
INSERT INTO dr_src VALUES (1, 'a'), (2, 'b');
SELECT coco.create_app('dr');
SELECT coco.declare_table('dr', 'dr_t', '[{"name": "id", "type": "int"}, {"name": "v", "type": "text"}]', '{id}');
SELECT pg_temp.summary(coco.reconcile('dr'));

-- The count is taken at declare time; the rows are read at reconcile time.
SELECT coco.declare_rows('dr', 'dr_t', 'SELECT id, v FROM dr_src', '{q}') AS declared;
INSERT INTO dr_src VALUES (3, 'c');
UPDATE dr_src SET v = 'B' WHERE id = 2;
SELECT pg_temp.summary(coco.reconcile('dr'));
SELECT * FROM dr_t ORDER BY id;

-- Declared while the source still matches the target, then the source
-- changes before the reconcile: the reconcile must see the change.
SELECT coco.declare_rows('dr', 'dr_t', 'SELECT id, v FROM dr_src', '{q}') AS declared;
UPDATE dr_src SET v = 'A' WHERE id = 1;
DELETE FROM dr_src WHERE id = 3;
INSERT INTO dr_src VALUES (4, 'd');
SELECT pg_temp.summary(coco.reconcile('dr'));
SELECT * FROM dr_t ORDER BY id;
-- And the next run with nothing changed writes nothing.
SELECT coco.declare_rows('dr', 'dr_t', 'SELECT id, v FROM dr_src', '{q}') AS declared;
SELECT pg_temp.summary(coco.reconcile('dr'));

-- Several queries and single rows in one component are one declared set.
SELECT coco.declare_rows('dr', 'dr_t', 'SELECT id, v FROM dr_src WHERE id < 2', '{q}') AS declared;
SELECT coco.declare_rows('dr', 'dr_t', 'SELECT id, v FROM dr_src WHERE id >= 2', '{q}') AS declared;
SELECT coco.declare_row('dr', 'dr_t', '{"id": 9, "v": "single"}', '{q}');
SELECT pg_temp.summary(coco.reconcile('dr'));
SELECT * FROM dr_t ORDER BY id;
-- A query may leave out non-key columns: they are NULL.
SELECT coco.declare_rows('dr', 'dr_t', 'SELECT id FROM dr_src', '{q}') AS declared;
SELECT pg_temp.summary(coco.reconcile('dr'));
SELECT * FROM dr_t ORDER BY id;
-- A query returning no rows empties its component.
SELECT coco.declare_rows('dr', 'dr_t', 'SELECT id, v FROM dr_src WHERE false', '{q}') AS declared;
SELECT pg_temp.summary(coco.reconcile('dr'));
SELECT count(*) AS rows_left FROM dr_t;

-- The declaring session's search_path: the query names an unqualified
-- table that resolves to dr_s.dr_src when declared; the reconcile runs in
-- a session whose search_path would find public.dr_src instead.
CREATE SCHEMA dr_s;
CREATE TABLE dr_s.dr_src (id int, v text);
INSERT INTO dr_s.dr_src VALUES (100, 'from dr_s');
SET search_path = dr_s, public;
SELECT coco.declare_rows('dr', 'dr_t', 'SELECT id, v FROM dr_src', '{q}') AS declared;
RESET search_path;
SELECT pg_temp.summary(coco.reconcile('dr'));
SELECT * FROM dr_t ORDER BY id;

-- The query runs with the app owner's rights, not the caller's.  The app of
-- regress_coco_owner reads dr_private; the owner loses the right to read it
-- before the reconcile, which then fails (42501) although it is run by a
-- superuser.  Nothing changes.
CREATE ROLE regress_coco_owner;
CREATE SCHEMA dr_own AUTHORIZATION regress_coco_owner;
CREATE TABLE dr_private (id int, v text);
INSERT INTO dr_private VALUES (1, 'secret');
GRANT SELECT ON dr_private TO regress_coco_owner;
SET ROLE regress_coco_owner;
SELECT coco.create_app('dr_owned');
SELECT coco.declare_table('dr_owned', 'dr_own.t', '[{"name": "id", "type": "int"}, {"name": "v", "type": "text"}]', '{id}');
SELECT coco.declare_rows('dr_owned', 'dr_own.t', 'SELECT id, v FROM public.dr_private') AS declared;
RESET ROLE;
REVOKE SELECT ON dr_private FROM regress_coco_owner;
SELECT coco.reconcile('dr_owned');
\echo :LAST_ERROR_SQLSTATE
SELECT to_regclass('dr_own.t') AS created;
-- With the right back, the same staged query reconciles.
GRANT SELECT ON dr_private TO regress_coco_owner;
SELECT pg_temp.summary(coco.reconcile('dr_owned'));
SELECT * FROM dr_own.t;
SELECT tableowner FROM pg_tables WHERE schemaname = 'dr_own' AND tablename = 't';

-- Clean up.
SELECT coco.drop_app('dr_owned');
SELECT coco.drop_app('dr');
DROP TABLE dr_private, dr_src, dr_s.dr_src;
DROP SCHEMA dr_s;
DROP SCHEMA dr_own;
DROP ROLE regress_coco_owner;
