-- Attachments: @index and @sql_command on a declared table.
-- Proves: create, change (drop and re-create; previous teardown before the
-- new setup, observed in a log table), no-op, removal, re-making after the
-- table is rebuilt (also for an attachment of a component that was not
-- re-declared), forgetting when the table is dropped, and bad input.
\set VERBOSITY default
\set SHOW_CONTEXT never
CREATE TABLE att_src (id int PRIMARY KEY, v text);
INSERT INTO att_src VALUES (1, 'a'), (2, 'b');
CREATE TABLE att_log (n serial PRIMARY KEY, msg text);
SELECT coco.create_app('att');
\set T '[{"name":"id","type":"integer","nullable":false},{"name":"v","type":"text"}]'
\set T2 '[{"name":"id","type":"integer","nullable":false},{"name":"v","type":"text","nullable":false}]'
CREATE FUNCTION pg_temp.providers(r jsonb) RETURNS TABLE(provider text, ins int, upd int, del int, unch int)
LANGUAGE sql AS $$
  SELECT key, (value->>'inserted')::int, (value->>'updated')::int, (value->>'deleted')::int,
         (value->>'unchanged')::int
    FROM jsonb_each(r->'providers') ORDER BY key
$$;
CREATE FUNCTION pg_temp.indexes() RETURNS TABLE(indexname name, indexdef text)
LANGUAGE sql AS $$
  SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'att_t' ORDER BY 1
$$;

-- create: the table, its rows, an index and a command (the index is
-- named after the table, so two tables may use the same index name)
SELECT coco.declare_table('att', 'att_t', :'T', '{id}');
SELECT coco.declare_rows('att', 'att_t', 'SELECT id, v FROM att_src');
SELECT coco.declare_index('att', 'att_t', 'v_idx', '{v}');
SELECT coco.declare_sql_command('att', 'att_t', 'note',
    $$INSERT INTO public.att_log (msg) VALUES ('setup 1')$$,
    $$INSERT INTO public.att_log (msg) VALUES ('teardown 1')$$);
SELECT * FROM pg_temp.providers(coco.reconcile('att'));
SELECT * FROM pg_temp.indexes();
SELECT msg FROM att_log ORDER BY n;

-- change both: the index is re-created unique; the previous teardown runs
-- before the new setup
SELECT coco.declare_table('att', 'att_t', :'T', '{id}');
SELECT coco.declare_rows('att', 'att_t', 'SELECT id, v FROM att_src');
SELECT coco.declare_index('att', 'att_t', 'v_idx', '{v}', 'btree', '{"unique": true}');
SELECT coco.declare_sql_command('att', 'att_t', 'note',
    $$INSERT INTO public.att_log (msg) VALUES ('setup 2')$$,
    $$INSERT INTO public.att_log (msg) VALUES ('teardown 2')$$);
SELECT * FROM pg_temp.providers(coco.reconcile('att'));
SELECT * FROM pg_temp.indexes();
SELECT msg FROM att_log ORDER BY n;

-- the same again: nothing happens
SELECT coco.declare_table('att', 'att_t', :'T', '{id}');
SELECT coco.declare_rows('att', 'att_t', 'SELECT id, v FROM att_src');
SELECT coco.declare_index('att', 'att_t', 'v_idx', '{v}', 'btree', '{"unique": true}');
SELECT coco.declare_sql_command('att', 'att_t', 'note',
    $$INSERT INTO public.att_log (msg) VALUES ('setup 2')$$,
    $$INSERT INTO public.att_log (msg) VALUES ('teardown 2')$$);
SELECT * FROM pg_temp.providers(coco.reconcile('att'));
SELECT msg FROM att_log ORDER BY n;

-- an index declared by another component, then a primary-key change that
-- rebuilds the table while that component is not re-declared: the index
-- is made again from its record; the root component's attachments were
-- re-declared and are re-made too (teardown, then setup)
SELECT coco.declare_index('att', 'att_t', 'id_v_idx', '{id,v}', 'btree', '{}', '{other}');
SELECT * FROM pg_temp.providers(coco.reconcile('att'));
SELECT coco.declare_table('att', 'att_t', :'T2', '{id,v}');
SELECT coco.declare_rows('att', 'att_t', 'SELECT id, v FROM att_src');
SELECT coco.declare_index('att', 'att_t', 'v_idx', '{v}', 'btree', '{"unique": true}');
SELECT coco.declare_sql_command('att', 'att_t', 'note',
    $$INSERT INTO public.att_log (msg) VALUES ('setup 2')$$,
    $$INSERT INTO public.att_log (msg) VALUES ('teardown 2')$$);
SELECT * FROM pg_temp.providers(coco.reconcile('att'));
SELECT * FROM pg_temp.indexes();
SELECT msg FROM att_log ORDER BY n;
SELECT count(*) AS stale FROM coco.stale_components WHERE app = 'att';

-- the root component without its attachments: they are removed
SELECT coco.declare_table('att', 'att_t', :'T2', '{id,v}');
SELECT coco.declare_rows('att', 'att_t', 'SELECT id, v FROM att_src');
SELECT * FROM pg_temp.providers(coco.reconcile('att'));
SELECT * FROM pg_temp.indexes();
SELECT msg FROM att_log ORDER BY n;

-- bad input
SELECT coco.declare_index('att', 'att_t', 'x', '{v}', 'nosuchmethod');
\echo :LAST_ERROR_SQLSTATE
SELECT coco.declare_index('att', 'att_t', 'x', '{v}', 'btree', '{"uniq": true}');
\echo :LAST_ERROR_SQLSTATE
SELECT coco.declare_index('att', 'att_t', 'x', '{"v; DROP TABLE att_src"}');
\echo :LAST_ERROR_SQLSTATE
SELECT coco.declare_index('att', 'att_t', repeat('i', 60), '{v}');
\echo :LAST_ERROR_SQLSTATE
SELECT coco.declare_index('att', 'att_nosuch', 'x', '{v}');
\echo :LAST_ERROR_SQLSTATE
SELECT coco.declare_sql_command('att', 'att_t', 'n', NULL);
\echo :LAST_ERROR_SQLSTATE
SELECT coco.declare_index('att', 'att_t', 'twice', '{v}', 'btree', '{}', '{other}');
-- declared again by its component: replaced; by another component: 23505
SELECT coco.declare_index('att', 'att_t', 'twice', '{v}', 'btree', '{}', '{other}');
SELECT coco.declare_index('att', 'att_t', 'twice', '{v}', 'btree', '{}', '{elsewhere}');
\echo :LAST_ERROR_SQLSTATE

-- dropping the app drops the table; its attachments go with it (no teardown)
SELECT coco.drop_app('att');
SELECT to_regclass('att_t') AS att_t;
SELECT msg FROM att_log ORDER BY n;
DROP TABLE att_src, att_log;
