-- 06_user_managed: managed_by = 'user'.  The table belongs to the user: the
-- reconciler never creates, alters or drops it, but manages the rows the
-- app declares (insert, update, delete); undeclaring it leaves the table
-- and the user's own rows, and removes the rows the app wrote.  A
-- system-managed table that already exists (made by hand) is refused at
-- reconcile with 42P07.
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

-- The SQLSTATE of a statement that fails inside the reconciler's own SQL
-- (whose text is not part of the contract).
CREATE FUNCTION pg_temp.sqlstate_of(stmt text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
  EXECUTE stmt;
  RETURN 'no error';
EXCEPTION WHEN OTHERS THEN
  RETURN SQLSTATE;
END $$;

-- The user's table: an extra column with a default, and a row of its own.
CREATE TABLE usr_t (id int PRIMARY KEY, v text, extra text DEFAULT 'dflt');
INSERT INTO usr_t VALUES (100, 'mine', 'own');
CREATE TEMP TABLE usr_cat AS
  SELECT oid, xmin::text AS x, relfilenode FROM pg_class WHERE oid = 'usr_t'::regclass;
CREATE FUNCTION pg_temp.table_untouched() RETURNS boolean LANGUAGE sql AS $$
  SELECT c.oid = u.oid AND c.xmin::text = u.x AND c.relfilenode = u.relfilenode
     AND (SELECT count(*) FROM pg_attribute
           WHERE attrelid = c.oid AND attnum > 0 AND NOT attisdropped) = 3
    FROM pg_class c, usr_cat u WHERE c.relname = 'usr_t'
$$;

-- Declare it as the user's, with only some of its columns, and two rows.
SELECT coco.create_app('usr');
SELECT coco.declare_table('usr', 'usr_t',
    '[{"name": "id", "type": "int"}, {"name": "v", "type": "text"}]', '{id}', managed_by => 'user');
SELECT coco.declare_row('usr', 'usr_t', '{"id": 1, "v": "a"}');
SELECT coco.declare_row('usr', 'usr_t', '{"id": 2, "v": "b"}');
SELECT pg_temp.summary(coco.reconcile('usr'));
SELECT * FROM usr_t ORDER BY id;
SELECT pg_temp.table_untouched();

-- Rows are managed: one updated, one deleted, one inserted; the user's row
-- is left alone.
SELECT coco.declare_table('usr', 'usr_t',
    '[{"name": "id", "type": "int"}, {"name": "v", "type": "text"}]', '{id}', managed_by => 'user');
SELECT coco.declare_row('usr', 'usr_t', '{"id": 1, "v": "a!"}');
SELECT coco.declare_row('usr', 'usr_t', '{"id": 3, "v": "c"}');
SELECT pg_temp.summary(coco.reconcile('usr'));
SELECT * FROM usr_t ORDER BY id;
SELECT pg_temp.table_untouched();

-- A changed declaration never alters the user's table: the primary key type
-- changes (int -> bigint; destructive for a system table) and a declared
-- column is dropped.  The table is neither re-created nor altered; the rows
-- are still managed.
SELECT coco.declare_table('usr', 'usr_t', '[{"name": "id", "type": "bigint"}]', '{id}', managed_by => 'user');
SELECT coco.declare_row('usr', 'usr_t', '{"id": 1}');
SELECT coco.declare_row('usr', 'usr_t', '{"id": 3}');
SELECT pg_temp.summary(coco.reconcile('usr'));
SELECT * FROM usr_t ORDER BY id;
SELECT pg_temp.table_untouched();
SELECT * FROM coco.stale_components WHERE app = 'usr';

-- A declared column the user's table does not have is not added: writing
-- the rows fails (42703) and nothing changes.
SELECT coco.declare_table('usr', 'usr_t',
    '[{"name": "id", "type": "int"}, {"name": "v", "type": "text"}, {"name": "note", "type": "text"}]',
    '{id}', managed_by => 'user');
SELECT coco.declare_row('usr', 'usr_t', '{"id": 1, "v": "a", "note": "n"}');
SELECT pg_temp.sqlstate_of($$SELECT coco.reconcile('usr')$$);
SELECT * FROM usr_t ORDER BY id;
SELECT pg_temp.table_untouched();
SELECT coco.clear_component('usr', '{}');
SELECT pending_declarations FROM coco.apps WHERE app = 'usr';

-- Re-declare rows (the staged set was cleared), then undeclare: clearing
-- the component deletes the rows the app wrote and leaves the table and
-- the user's own row.
SELECT coco.declare_table('usr', 'usr_t',
    '[{"name": "id", "type": "int"}, {"name": "v", "type": "text"}]', '{id}', managed_by => 'user');
SELECT coco.declare_row('usr', 'usr_t', '{"id": 1, "v": "a"}');
SELECT coco.declare_row('usr', 'usr_t', '{"id": 2, "v": "b"}');
SELECT pg_temp.summary(coco.reconcile('usr'));
SELECT * FROM usr_t ORDER BY id;
SELECT coco.clear_component('usr', '{}');
SELECT pg_temp.summary(coco.reconcile('usr'));
SELECT * FROM usr_t ORDER BY id;
SELECT pg_temp.table_untouched();
SELECT count(*) AS tracked FROM coco.target_states WHERE app = 'usr';

-- Dropping the app does not drop a user's table either; the app's rows go.
SELECT coco.declare_table('usr', 'usr_t',
    '[{"name": "id", "type": "int"}, {"name": "v", "type": "text"}]', '{id}', managed_by => 'user');
SELECT coco.declare_row('usr', 'usr_t', '{"id": 5, "v": "e"}');
SELECT pg_temp.summary(coco.reconcile('usr'));
SELECT coco.drop_app('usr');
SELECT * FROM usr_t ORDER BY id;
SELECT pg_temp.table_untouched();

-- The reconciler never creates a user's table: declaring one that does not
-- exist fails at reconcile (42P01) and creates nothing.
SELECT coco.create_app('usr2');
SELECT coco.declare_table('usr2', 'usr_missing', '[{"name": "id", "type": "int"}]', '{id}', managed_by => 'user');
SELECT coco.declare_row('usr2', 'usr_missing', '{"id": 1}');
SELECT pg_temp.sqlstate_of($$SELECT coco.reconcile('usr2')$$);
SELECT to_regclass('usr_missing') AS usr_missing;
SELECT count(*) AS tracked FROM coco.target_states WHERE app = 'usr2';
SELECT coco.drop_app('usr2');

-- A system-managed declaration of a table made by hand is refused with
-- 42P07 at reconcile; the table, its rows and the staged declarations are
-- left as they were.
CREATE TABLE usr_hand (id int PRIMARY KEY, v text);
INSERT INTO usr_hand VALUES (1, 'by hand');
SELECT coco.create_app('usr3');
SELECT coco.declare_table('usr3', 'usr_hand', '[{"name": "id", "type": "int"}, {"name": "v", "type": "text"}]', '{id}');
SELECT coco.declare_row('usr3', 'usr_hand', '{"id": 2, "v": "declared"}');
SELECT coco.reconcile('usr3');
\echo :LAST_ERROR_SQLSTATE
SELECT * FROM usr_hand ORDER BY id;
SELECT pending_declarations FROM coco.apps WHERE app = 'usr3';
SELECT count(*) AS tracked FROM coco.target_states WHERE app = 'usr3';
-- Declared as the user's instead, its rows are managed.
SELECT coco.clear_component('usr3', '{}');
SELECT coco.declare_table('usr3', 'usr_hand', '[{"name": "id", "type": "int"}, {"name": "v", "type": "text"}]', '{id}', 'user');
SELECT coco.declare_row('usr3', 'usr_hand', '{"id": 2, "v": "declared"}');
SELECT pg_temp.summary(coco.reconcile('usr3'));
SELECT * FROM usr_hand ORDER BY id;
SELECT coco.drop_app('usr3');
SELECT * FROM usr_hand ORDER BY id;

-- system -> user: a table the app created and then hands over to the user
-- is not altered by the switch, nor dropped when undeclared.
SELECT coco.create_app('usr4');
SELECT coco.declare_table('usr4', 'usr_handover', '[{"name": "id", "type": "int"}, {"name": "v", "type": "text"}]', '{id}');
SELECT coco.declare_row('usr4', 'usr_handover', '{"id": 1, "v": "x"}');
SELECT pg_temp.summary(coco.reconcile('usr4'));
SELECT coco.declare_table('usr4', 'usr_handover', '[{"name": "id", "type": "int"}]', '{id}', 'user');
SELECT coco.declare_row('usr4', 'usr_handover', '{"id": 1}');
SELECT pg_temp.summary(coco.reconcile('usr4'));
SELECT attname FROM pg_attribute WHERE attrelid = 'usr_handover'::regclass AND attnum > 0 AND NOT attisdropped ORDER BY attnum;
SELECT * FROM usr_handover ORDER BY id;
SELECT coco.clear_component('usr4', '{}');
SELECT pg_temp.summary(coco.reconcile('usr4'));
SELECT to_regclass('usr_handover') AS usr_handover, (SELECT count(*) FROM usr_handover) AS rows_left;
SELECT coco.drop_app('usr4');

-- A first load that writes one key twice.  Into a user's table without a
-- unique index on the key, the load goes in (no index refuses it) and the
-- table is read back: the key is found there and named (23505), and the
-- run leaves nothing.  Into a table the run creates, its primary key's
-- build refuses it, and the key is named the same way.
CREATE TABLE usr_nokey (id int, v text);
SELECT coco.create_app('usr5');
SELECT coco.declare_table('usr5', 'usr_nokey', '[{"name": "id", "type": "int"}, {"name": "v", "type": "text"}]', '{id}', 'user');
SELECT coco.declare_rows('usr5', 'usr_nokey', 'SELECT g AS id, ''v'' AS v FROM generate_series(1, 3) g UNION ALL SELECT 2, ''again''');
SELECT coco.reconcile('usr5');
\echo :LAST_ERROR_SQLSTATE
SELECT count(*) AS rows_left FROM usr_nokey;
SELECT coco.drop_app('usr5');
SELECT coco.create_app('usr6');
SELECT coco.declare_table('usr6', 'usr_made', '[{"name": "id", "type": "int"}, {"name": "v", "type": "text"}]', '{id}');
SELECT coco.declare_rows('usr6', 'usr_made', 'SELECT g AS id, ''v'' AS v FROM generate_series(1, 3000) g UNION ALL SELECT 2999, ''again''');
SELECT coco.reconcile('usr6');
\echo :LAST_ERROR_SQLSTATE
SELECT to_regclass('usr_made') AS usr_made,
       (SELECT count(*) FROM coco.tracked_row t JOIN coco.app a USING (app_id) WHERE a.name = 'usr6') AS tracked;
SELECT coco.drop_app('usr6');

-- Clean up.
DROP TABLE usr_t, usr_hand, usr_handover, usr_nokey;
