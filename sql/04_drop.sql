-- 04_drop: what is no longer declared is removed.  A table no longer
-- declared is dropped (its rows go with it, without one DELETE per row);
-- dropping an app drops its tables; drop_app(keep_targets => true) keeps
-- them and only forgets them.
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
CREATE FUNCTION pg_temp.declare_keep() RETURNS void LANGUAGE sql AS $$
  SELECT coco.declare_table('drp', 'drp_keep', '[{"name": "id", "type": "int"}]', '{id}');
  SELECT coco.declare_row('drp', 'drp_keep', '{"id": 1}');
$$;

-- Two tables with rows, both in the root component.
SELECT coco.create_app('drp');
SELECT pg_temp.declare_keep();
SELECT coco.declare_table('drp', 'drp_gone', '[{"name": "id", "type": "int"}, {"name": "v", "type": "text"}]', '{id}');
SELECT coco.declare_rows('drp', 'drp_gone', $$SELECT g AS id, 'v' || g AS v FROM generate_series(1, 5) g$$);
SELECT pg_temp.summary(coco.reconcile('drp'));
SELECT name FROM coco.target_states WHERE app = 'drp' ORDER BY name;

-- The root component is declared again without drp_gone: it is dropped.
-- Its five rows go with the table: no row deletes are counted.
SELECT pg_temp.declare_keep();
SELECT pg_temp.summary(coco.reconcile('drp'));
SELECT to_regclass('drp_gone') AS drp_gone, to_regclass('drp_keep') AS drp_keep;
SELECT name FROM coco.target_states WHERE app = 'drp' ORDER BY name;
SELECT * FROM drp_keep;

-- A table declared in one component, its rows in another.  Clearing the
-- table's component drops the table; the other component's rows go with it.
SELECT coco.declare_table('drp', 'drp_s.split', '[{"name": "id", "type": "int"}]', '{id}', 'system', '{tables}');
SELECT coco.declare_row('drp', 'drp_s.split', '{"id": 1}', '{rows}');
SELECT coco.declare_row('drp', 'drp_s.split', '{"id": 2}', '{rows}');
SELECT pg_temp.summary(coco.reconcile('drp'));
SELECT * FROM drp_s.split ORDER BY id;
SELECT app, component, table_name FROM coco.stale_components WHERE app = 'drp';

-- Rows declared for a table that this run stops declaring are refused at
-- reconcile (42P01); nothing is changed and the declarations stay staged.
SELECT coco.clear_component('drp', '{tables}');
SELECT coco.declare_row('drp', 'drp_s.split', '{"id": 3}', '{rows}');
SELECT coco.reconcile('drp');
\echo :LAST_ERROR_SQLSTATE
SELECT * FROM drp_s.split ORDER BY id;
SELECT pending_declarations FROM coco.apps WHERE app = 'drp';

-- Clearing the rows' component too makes the run consistent: the table is
-- dropped, with its rows (no per-row deletes).
SELECT coco.clear_component('drp', '{rows}');
SELECT pg_temp.summary(coco.reconcile('drp'));
SELECT to_regclass('drp_s.split') AS split;
SELECT name FROM coco.target_states WHERE app = 'drp' ORDER BY name;
-- Rows cannot be declared for a table that is neither staged nor tracked.
SELECT coco.declare_row('drp', 'drp_s.split', '{"id": 1}', '{rows}');
\echo :LAST_ERROR_SQLSTATE

-- Dropping the app drops its tables.
SELECT coco.declare_table('drp', 'drp_s.more', '[{"name": "id", "type": "int"}]', '{id}', 'system', '{more}');
SELECT coco.declare_row('drp', 'drp_s.more', '{"id": 7}', '{more}');
SELECT pg_temp.summary(coco.reconcile('drp'));
SELECT to_regclass('drp_keep') AS drp_keep, to_regclass('drp_s.more') AS more;
SELECT coco.drop_app('drp');
SELECT to_regclass('drp_keep') AS drp_keep, to_regclass('drp_s.more') AS more;
SELECT count(*) AS apps FROM coco.apps WHERE app = 'drp';
SELECT count(*) AS tracked FROM coco.target_states WHERE app = 'drp';
-- The schema the reconciler created stays (it may hold other things).
SELECT count(*) AS schema_exists FROM pg_namespace WHERE nspname = 'drp_s';

-- Dropping an app that never reconciled, with declarations pending,
-- creates nothing and leaves nothing behind.
SELECT coco.create_app('drp_pending');
SELECT coco.declare_table('drp_pending', 'drp_never', '[{"name": "id", "type": "int"}]', '{id}');
SELECT coco.declare_row('drp_pending', 'drp_never', '{"id": 1}');
SELECT coco.drop_app('drp_pending');
SELECT to_regclass('drp_never') AS drp_never;
SELECT count(*) AS apps FROM coco.apps WHERE app = 'drp_pending';

-- drop_app(keep_targets => true): the tables and their rows stay, the app
-- and its tracking are gone.
SELECT coco.create_app('drp_keep');
SELECT coco.declare_table('drp_keep', 'drp_kept', '[{"name": "id", "type": "int"}, {"name": "v", "type": "text"}]', '{id}');
SELECT coco.declare_row('drp_keep', 'drp_kept', '{"id": 1, "v": "a"}');
SELECT coco.declare_row('drp_keep', 'drp_kept', '{"id": 2, "v": "b"}');
SELECT pg_temp.summary(coco.reconcile('drp_keep'));
SELECT coco.drop_app('drp_keep', keep_targets => true);
SELECT * FROM drp_kept ORDER BY id;
SELECT count(*) AS apps FROM coco.apps WHERE app = 'drp_keep';
SELECT count(*) AS tracked FROM coco.target_states WHERE app = 'drp_keep';
-- A new app of the same name does not own the kept table: declaring it as a
-- system table is refused at reconcile (42P07), and the table is untouched.
SELECT coco.create_app('drp_keep');
SELECT coco.declare_table('drp_keep', 'drp_kept', '[{"name": "id", "type": "int"}, {"name": "v", "type": "text"}]', '{id}');
SELECT coco.reconcile('drp_keep');
\echo :LAST_ERROR_SQLSTATE
SELECT * FROM drp_kept ORDER BY id;
SELECT coco.drop_app('drp_keep');
SELECT * FROM drp_kept ORDER BY id;

-- Clean up.
DROP TABLE drp_kept;
DROP SCHEMA drp_s;
