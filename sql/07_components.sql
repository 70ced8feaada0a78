-- 07_components: components scope declarations.  Two (and more) components
-- write rows into one table; re-declaring one replaces only its rows;
-- clear_component removes only its rows, at the next reconcile; a full run
-- (full => true) clears every component that was not declared again.
\set VERBOSITY default
\set SHOW_CONTEXT never
-- The helpers below refer to cmp_t before it exists.
SET check_function_bodies = off;

CREATE FUNCTION pg_temp.summary(r jsonb) RETURNS text LANGUAGE sql AS $$
  SELECT format('table(+%s ~%s -%s =%s) row(+%s ~%s -%s =%s) stale=%s',
                r#>>'{providers,postgres.table,inserted}', r#>>'{providers,postgres.table,updated}',
                r#>>'{providers,postgres.table,deleted}', r#>>'{providers,postgres.table,unchanged}',
                r#>>'{providers,postgres.row,inserted}', r#>>'{providers,postgres.row,updated}',
                r#>>'{providers,postgres.row,deleted}', r#>>'{providers,postgres.row,unchanged}',
                r->>'stale_components')
$$;
-- The SQLSTATE of a failing statement (or 'no error').
CREATE FUNCTION pg_temp.sqlstate_of(stmt text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
  EXECUTE stmt;
  RETURN 'no error';
EXCEPTION WHEN OTHERS THEN
  RETURN SQLSTATE;
END $$;
CREATE FUNCTION pg_temp.declare_table() RETURNS void LANGUAGE sql AS $$
  SELECT coco.declare_table('cmp', 'cmp_t',
      '[{"name": "id", "type": "int"}, {"name": "src", "type": "text"}, {"name": "v", "type": "text"}]', '{id}');
$$;
-- A row of component comp; src defaults to the component's path.
CREATE FUNCTION pg_temp.row(comp text[], id int, v text, src text DEFAULT NULL) RETURNS void
LANGUAGE sql AS $$
  SELECT coco.declare_row('cmp', 'cmp_t',
      jsonb_build_object('id', id, 'src', coalesce(src, array_to_string(comp, '/')), 'v', v), comp);
$$;
-- xmin of every row, to see which rows a run wrote.
CREATE TEMP TABLE snap (id int PRIMARY KEY, x text);
CREATE FUNCTION pg_temp.snap() RETURNS void LANGUAGE sql AS $$
  DELETE FROM snap; INSERT INTO snap SELECT id, xmin::text FROM cmp_t;
$$;
CREATE FUNCTION pg_temp.show() RETURNS TABLE (id int, src text, v text, written text) LANGUAGE sql AS $$
  SELECT t.id, t.src, t.v,
         CASE WHEN s.x IS NULL THEN 'new' WHEN s.x <> t.xmin::text THEN 'rewritten' ELSE '' END
    FROM cmp_t t LEFT JOIN snap s USING (id) ORDER BY t.id
$$;

-- The table in the root component; rows in {a}, {b} and {a,sub}.
SELECT coco.create_app('cmp');
SELECT pg_temp.declare_table();
SELECT pg_temp.row('{a}', 1, 'x'), pg_temp.row('{a}', 2, 'x'), pg_temp.row('{a}', 3, 'x');
SELECT pg_temp.row('{b}', 10, 'x'), pg_temp.row('{b}', 11, 'x');
SELECT pg_temp.row('{a,sub}', 20, 'x');
SELECT pg_temp.summary(coco.reconcile('cmp'));
SELECT pg_temp.snap();
SELECT * FROM pg_temp.show();

-- Re-declaring {a} replaces {a}'s rows only: 1 changed, 2 the same, 3 gone,
-- 4 new.  {b} and {a,sub} (a distinct path) are not touched.
SELECT pg_temp.row('{a}', 1, 'y'), pg_temp.row('{a}', 2, 'x'), pg_temp.row('{a}', 4, 'x');
SELECT pg_temp.summary(coco.reconcile('cmp'));
SELECT * FROM pg_temp.show();

-- clear_component stages the removal: nothing happens until the reconcile,
-- which then deletes {b}'s rows only.
SELECT pg_temp.snap();
SELECT coco.clear_component('cmp', '{b}');
SELECT count(*) AS rows_before_reconcile FROM cmp_t;
SELECT pg_temp.summary(coco.reconcile('cmp'));
SELECT * FROM pg_temp.show();

-- Clearing a component and declaring into it again before the reconcile:
-- the new declarations replace the old ones.
SELECT coco.clear_component('cmp', '{a,sub}');
SELECT pg_temp.row('{a,sub}', 21, 'x');
SELECT pg_temp.summary(coco.reconcile('cmp'));
SELECT * FROM pg_temp.show();

-- clear_component discards what was staged for that component before.
SELECT pg_temp.row('{b}', 12, 'x');
SELECT pending_declarations FROM coco.apps WHERE app = 'cmp';
SELECT coco.clear_component('cmp', '{b}');
SELECT pending_declarations FROM coco.apps WHERE app = 'cmp';
SELECT pg_temp.summary(coco.reconcile('cmp'));
SELECT * FROM pg_temp.show();

-- A row moving between components with the same values is not written:
-- {a} is declared without row 4, {b} declares it (same values).
SELECT pg_temp.snap();
SELECT pg_temp.row('{a}', 1, 'y'), pg_temp.row('{a}', 2, 'x');
SELECT pg_temp.row('{b}', 4, 'x', src => 'a');
SELECT pg_temp.summary(coco.reconcile('cmp'));
SELECT * FROM pg_temp.show();
-- Row 4 now belongs to {b}: declaring {a} without it keeps it, clearing {b}
-- deletes it.
SELECT pg_temp.row('{a}', 1, 'y'), pg_temp.row('{a}', 2, 'x');
SELECT pg_temp.summary(coco.reconcile('cmp'));
SELECT coco.clear_component('cmp', '{b}');
SELECT pg_temp.summary(coco.reconcile('cmp'));
SELECT * FROM pg_temp.show();

-- The same key declared by two components before one reconcile is refused:
-- by declare_row at once (23505), by the run when a query declares it
-- (23505, nothing changes).
SELECT pg_temp.snap();
SELECT pg_temp.row('{a}', 1, 'y'), pg_temp.row('{a}', 2, 'x');
SELECT pg_temp.row('{b}', 2, 'z');
\echo :LAST_ERROR_SQLSTATE
SELECT coco.declare_rows('cmp', 'cmp_t', $$SELECT 2 AS id, 'b' AS src, 'z' AS v$$, '{b}');
SELECT pg_temp.sqlstate_of($$SELECT coco.reconcile('cmp')$$);
SELECT * FROM pg_temp.show();
SELECT coco.clear_component('cmp', '{b}');
SELECT pg_temp.summary(coco.reconcile('cmp'));
SELECT * FROM pg_temp.show();

-- A full run: {a} and the root are declared again; every other component
-- ({a,sub}, {c}) is cleared although it received nothing.
SELECT pg_temp.row('{c}', 30, 'x');
SELECT pg_temp.summary(coco.reconcile('cmp'));
SELECT pg_temp.snap();
SELECT * FROM pg_temp.show();
SELECT pg_temp.declare_table();
SELECT pg_temp.row('{a}', 1, 'y'), pg_temp.row('{a}', 2, 'x');
SELECT pg_temp.summary(coco.reconcile('cmp', "full" => true));
SELECT * FROM pg_temp.show();
SELECT "full" FROM coco.runs WHERE app = 'cmp' ORDER BY run_id DESC LIMIT 1;

-- A full run that does not declare the root component again drops the
-- table, and its rows with it.
SELECT coco.reconcile('cmp', true, allow_drop_all => true) #> '{providers,postgres.table}' AS tables;
SELECT to_regclass('cmp_t') AS cmp_t;

-- Clean up.
SELECT coco.drop_app('cmp');
