-- 09_bad_input: bad input is refused with a specific SQLSTATE, and nothing
-- is staged or changed: identifiers (empty, leading digit, injection
-- attempts, trailing newline, 64 bytes), unknown types, a primary key
-- naming no column, rows missing a key or with an unknown column, values
-- not convertible to their column type, duplicates in one pending set,
-- unknown apps, declare_rows queries with wrong columns or that are not a
-- single SELECT.
\set VERBOSITY default
\set SHOW_CONTEXT never
-- The helpers below refer to bad_t before it exists.
SET check_function_bodies = off;

-- What must not change: the staged declarations, the target's rows, the
-- app's components, the tables in the database.
CREATE FUNCTION pg_temp.state() RETURNS TABLE (pending bigint, target_rows text, components bigint, tables bigint)
LANGUAGE sql AS $$
  SELECT (SELECT pending_declarations FROM coco.apps WHERE app = 'bad'),
         (SELECT string_agg(id || '=' || coalesce(v, 'NULL'), ',' ORDER BY id) FROM bad_t),
         (SELECT count(*) FROM coco.component c JOIN coco.app a USING (app_id) WHERE a.name = 'bad'),
         (SELECT count(*) FROM pg_class WHERE relname LIKE 'bad%' AND relkind = 'r')
$$;
-- The SQLSTATE of a failing statement (for errors whose message quotes the
-- reconciler's own SQL).
CREATE FUNCTION pg_temp.sqlstate_of(stmt text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
  EXECUTE stmt;
  RETURN 'no error';
EXCEPTION WHEN OTHERS THEN
  RETURN SQLSTATE;
END $$;

-- A reconciled app with one table and one row; nothing pending.
CREATE TABLE bad_src (id int, v text);
INSERT INTO bad_src VALUES (1, 'one');
SELECT coco.create_app('bad');
SELECT coco.declare_table('bad', 'bad_t', '[{"name": "id", "type": "int"}, {"name": "v", "type": "text"}]', '{id}');
SELECT coco.declare_row('bad', 'bad_t', '{"id": 1, "v": "one"}');
SELECT (coco.reconcile('bad'))->'inserted' AS inserted;
SELECT * FROM pg_temp.state();

--
-- Identifiers: table, schema and column names must match
-- [A-Za-z_][A-Za-z0-9_]* and have at most 63 bytes (42602, 42622).
--
SELECT coco.declare_table('bad', '', '[{"name": "id", "type": "int"}]', '{id}');
\echo :LAST_ERROR_SQLSTATE
SELECT coco.declare_table('bad', '1docs', '[{"name": "id", "type": "int"}]', '{id}');
\echo :LAST_ERROR_SQLSTATE
SELECT coco.declare_table('bad', 'docs"; DROP TABLE bad_src; --', '[{"name": "id", "type": "int"}]', '{id}');
\echo :LAST_ERROR_SQLSTATE
SELECT coco.declare_table('bad', E'docs\n', '[{"name": "id", "type": "int"}]', '{id}');
\echo :LAST_ERROR_SQLSTATE
SELECT coco.declare_table('bad', 'docs ', '[{"name": "id", "type": "int"}]', '{id}');
\echo :LAST_ERROR_SQLSTATE
SELECT coco.declare_table('bad', 'dôcs', '[{"name": "id", "type": "int"}]', '{id}');
\echo :LAST_ERROR_SQLSTATE
SELECT coco.declare_table('bad', repeat('d', 64), '[{"name": "id", "type": "int"}]', '{id}');
\echo :LAST_ERROR_SQLSTATE
-- the schema part too
SELECT coco.declare_table('bad', '.docs', '[{"name": "id", "type": "int"}]', '{id}');
\echo :LAST_ERROR_SQLSTATE
SELECT coco.declare_table('bad', 'a.b.c', '[{"name": "id", "type": "int"}]', '{id}');
\echo :LAST_ERROR_SQLSTATE
SELECT coco.declare_table('bad', 'my schema.docs', '[{"name": "id", "type": "int"}]', '{id}');
\echo :LAST_ERROR_SQLSTATE
SELECT coco.declare_table('bad', repeat('s', 64) || '.docs', '[{"name": "id", "type": "int"}]', '{id}');
\echo :LAST_ERROR_SQLSTATE
-- column names
SELECT coco.declare_table('bad', 'bad_x', '[{"name": "id", "type": "int"}, {"name": "", "type": "int"}]', '{id}');
\echo :LAST_ERROR_SQLSTATE
SELECT coco.declare_table('bad', 'bad_x', '[{"name": "id", "type": "int"}, {"name": "v\"; DROP TABLE bad_src; --", "type": "int"}]', '{id}');
\echo :LAST_ERROR_SQLSTATE
SELECT coco.declare_table('bad', 'bad_x', '[{"name": "id\n", "type": "int"}]', '{id\n}');
\echo :LAST_ERROR_SQLSTATE
SELECT coco.declare_table('bad', 'bad_x', jsonb_build_array(jsonb_build_object('name', repeat('c', 64), 'type', 'int')), ARRAY[repeat('c', 64)]);
\echo :LAST_ERROR_SQLSTATE
-- app names: 1 to 63 bytes
SELECT coco.create_app('');
\echo :LAST_ERROR_SQLSTATE
SELECT coco.create_app(repeat('a', 64));
\echo :LAST_ERROR_SQLSTATE
SELECT * FROM pg_temp.state();

--
-- Types: unknown (42704), not a type name (42601), pseudo-types (42P16).
--
SELECT coco.declare_table('bad', 'bad_x', '[{"name": "id", "type": "int"}, {"name": "v", "type": "no_such_type"}]', '{id}');
\echo :LAST_ERROR_SQLSTATE
SELECT coco.declare_table('bad', 'bad_x', '[{"name": "id", "type": "int"}, {"name": "v", "type": "public.no_such_type"}]', '{id}');
\echo :LAST_ERROR_SQLSTATE
SELECT pg_temp.sqlstate_of($$SELECT coco.declare_table('bad', 'bad_x',
    '[{"name": "id", "type": "int"}, {"name": "v", "type": "int; DROP TABLE bad_src"}]', '{id}')$$);
SELECT coco.declare_table('bad', 'bad_x', '[{"name": "id", "type": "int"}, {"name": "v", "type": "record"}]', '{id}');
\echo :LAST_ERROR_SQLSTATE
SELECT coco.declare_table('bad', 'bad_x', '[{"name": "id", "type": "int"}, {"name": "v", "type": "anyelement"}]', '{id}');
\echo :LAST_ERROR_SQLSTATE

--
-- Column lists and primary keys.
--
-- a primary key naming no column (42703)
SELECT coco.declare_table('bad', 'bad_x', '[{"name": "id", "type": "int"}]', '{ident}');
\echo :LAST_ERROR_SQLSTATE
-- no primary key, or a null in it (42P16)
SELECT coco.declare_table('bad', 'bad_x', '[{"name": "id", "type": "int"}]', '{}');
\echo :LAST_ERROR_SQLSTATE
SELECT coco.declare_table('bad', 'bad_x', '[{"name": "id", "type": "int"}]', '{id,NULL}');
\echo :LAST_ERROR_SQLSTATE
-- a key column named twice, a column declared twice (42701)
SELECT coco.declare_table('bad', 'bad_x', '[{"name": "id", "type": "int"}]', '{id,id}');
\echo :LAST_ERROR_SQLSTATE
SELECT coco.declare_table('bad', 'bad_x', '[{"name": "id", "type": "int"}, {"name": "id", "type": "text"}]', '{id}');
\echo :LAST_ERROR_SQLSTATE
-- a key column of a type that cannot be a stable key (0A000)
SELECT coco.declare_table('bad', 'bad_x', '[{"name": "id", "type": "float8"}]', '{id}');
\echo :LAST_ERROR_SQLSTATE
SELECT coco.declare_table('bad', 'bad_x', '[{"name": "id", "type": "interval"}]', '{id}');
\echo :LAST_ERROR_SQLSTATE
-- malformed column lists, unknown fields, bad managed_by (22023)
SELECT coco.declare_table('bad', 'bad_x', '[]', '{id}');
\echo :LAST_ERROR_SQLSTATE
SELECT coco.declare_table('bad', 'bad_x', '{"id": "int"}', '{id}');
\echo :LAST_ERROR_SQLSTATE
SELECT coco.declare_table('bad', 'bad_x', '["id"]', '{id}');
\echo :LAST_ERROR_SQLSTATE
SELECT coco.declare_table('bad', 'bad_x', '[{"name": "id"}]', '{id}');
\echo :LAST_ERROR_SQLSTATE
SELECT coco.declare_table('bad', 'bad_x', '[{"name": "id", "type": "int", "nulable": false}]', '{id}');
\echo :LAST_ERROR_SQLSTATE
SELECT coco.declare_table('bad', 'bad_x', '[{"name": "id", "type": "int", "nullable": "no"}]', '{id}');
\echo :LAST_ERROR_SQLSTATE
SELECT coco.declare_table('bad', 'bad_x', '[{"name": "id", "type": "int"}]', '{id}', managed_by => 'nobody');
\echo :LAST_ERROR_SQLSTATE
SELECT * FROM pg_temp.state();

--
-- Rows.
--
-- missing key column (23502), null key (23502)
SELECT coco.declare_row('bad', 'bad_t', '{"v": "no key"}');
\echo :LAST_ERROR_SQLSTATE
SELECT coco.declare_row('bad', 'bad_t', '{"id": null, "v": "null key"}');
\echo :LAST_ERROR_SQLSTATE
-- unknown column (42703)
SELECT coco.declare_row('bad', 'bad_t', '{"id": 2, "v": "x", "w": 1}');
\echo :LAST_ERROR_SQLSTATE
-- values not convertible to the column type (22P02, 22003)
SELECT coco.declare_row('bad', 'bad_t', '{"id": "two", "v": "x"}');
\echo :LAST_ERROR_SQLSTATE
SELECT coco.declare_row('bad', 'bad_t', '{"id": 1.5, "v": "x"}');
\echo :LAST_ERROR_SQLSTATE
SELECT coco.declare_row('bad', 'bad_t', '{"id": 99999999999, "v": "x"}');
\echo :LAST_ERROR_SQLSTATE
-- not an object (22023)
SELECT coco.declare_row('bad', 'bad_t', '[1, "x"]');
\echo :LAST_ERROR_SQLSTATE
-- a table the app does not declare (42P01)
SELECT coco.declare_row('bad', 'bad_nope', '{"id": 1}');
\echo :LAST_ERROR_SQLSTATE
-- null arguments (22004)
SELECT coco.declare_row('bad', 'bad_t', NULL);
\echo :LAST_ERROR_SQLSTATE
SELECT coco.declare_row('bad', 'bad_t', '{"id": 2}', NULL);
\echo :LAST_ERROR_SQLSTATE
SELECT coco.declare_row('bad', 'bad_t', '{"id": 2}', '{a,NULL}');
\echo :LAST_ERROR_SQLSTATE
SELECT * FROM pg_temp.state();

--
-- Duplicates in one pending set: declared again in the same component, the
-- later declaration replaces the earlier one; declared by another component,
-- refused (23505) and the first declaration stays.
--
SELECT coco.declare_table('bad', 'bad_t', '[{"name": "id", "type": "int"}, {"name": "v", "type": "text"}]', '{id}');
SELECT coco.declare_table('bad', 'bad_t', '[{"name": "id", "type": "int"}, {"name": "v", "type": "text"}]', '{id}');
SELECT coco.declare_table('bad', 'public.bad_t', '[{"name": "id", "type": "int"}]', '{id}', 'system', '{other}');
\echo :LAST_ERROR_SQLSTATE
SELECT coco.declare_row('bad', 'bad_t', '{"id": 1, "v": "one"}');
SELECT coco.declare_row('bad', 'bad_t', '{"id": 1, "v": "uno"}');
SELECT coco.declare_row('bad', 'bad_t', '{"id": 1, "v": "one"}', '{other}');
\echo :LAST_ERROR_SQLSTATE
SELECT * FROM pg_temp.state();
-- Two queries of one component declaring the same key: the later one's row.
SELECT coco.declare_rows('bad', 'bad_t', $$SELECT 5 AS id, 'five' AS v$$);
SELECT coco.declare_rows('bad', 'bad_t', $$SELECT 5 AS id, 'cinq' AS v$$);
SELECT (coco.reconcile('bad'))->'inserted' AS inserted;
SELECT * FROM pg_temp.state();
-- A query declaring a key twice is refused by the run (23505), which
-- changes nothing.
SELECT coco.clear_component('bad', '{}');
SELECT coco.declare_table('bad', 'bad_t', '[{"name": "id", "type": "int"}, {"name": "v", "type": "text"}]', '{id}');
SELECT coco.declare_rows('bad', 'bad_t', $$SELECT 1 AS id, 'one' AS v UNION ALL SELECT 6, 'a' UNION ALL SELECT 6, 'b'$$);
SELECT coco.reconcile('bad');
\echo :LAST_ERROR_SQLSTATE
SELECT * FROM pg_temp.state();
SELECT coco.clear_component('bad', '{}');
SELECT coco.declare_table('bad', 'bad_t', '[{"name": "id", "type": "int"}, {"name": "v", "type": "text"}]', '{id}');
SELECT coco.declare_row('bad', 'bad_t', '{"id": 1, "v": "one"}');
SELECT (coco.reconcile('bad'))->'unchanged' AS unchanged;
SELECT * FROM pg_temp.state();

--
-- Unknown app (42704) for every function; an app created twice (42710).
--
SELECT coco.declare_table('nope', 'bad_t', '[{"name": "id", "type": "int"}]', '{id}');
\echo :LAST_ERROR_SQLSTATE
SELECT coco.declare_row('nope', 'bad_t', '{"id": 1}');
\echo :LAST_ERROR_SQLSTATE
SELECT coco.declare_rows('nope', 'bad_t', 'SELECT 1 AS id');
\echo :LAST_ERROR_SQLSTATE
SELECT coco.clear_component('nope', '{}');
\echo :LAST_ERROR_SQLSTATE
SELECT coco.reconcile('nope');
\echo :LAST_ERROR_SQLSTATE
SELECT coco.drop_app('nope');
\echo :LAST_ERROR_SQLSTATE
SELECT coco.create_app('bad');
\echo :LAST_ERROR_SQLSTATE
SELECT coco.create_app(NULL);
\echo :LAST_ERROR_SQLSTATE
SELECT coco.reconcile(NULL);
\echo :LAST_ERROR_SQLSTATE

--
-- declare_rows queries.
--
-- a column the table does not have (42703)
SELECT coco.declare_rows('bad', 'bad_t', 'SELECT id, v, v AS w FROM bad_src');
\echo :LAST_ERROR_SQLSTATE
SELECT coco.declare_rows('bad', 'bad_t', 'VALUES (1, ''x'')');
\echo :LAST_ERROR_SQLSTATE
-- the key column missing (42P10)
SELECT coco.declare_rows('bad', 'bad_t', 'SELECT v FROM bad_src');
\echo :LAST_ERROR_SQLSTATE
-- a column returned twice (42701)
SELECT coco.declare_rows('bad', 'bad_t', 'SELECT id, v, v FROM bad_src');
\echo :LAST_ERROR_SQLSTATE
-- a value that does not convert (22P02), a NULL key (23502)
SELECT coco.declare_rows('bad', 'bad_t', $$SELECT 'x' AS id, v FROM bad_src$$);
\echo :LAST_ERROR_SQLSTATE
SELECT coco.declare_rows('bad', 'bad_t', 'SELECT NULL::int AS id, v FROM bad_src');
\echo :LAST_ERROR_SQLSTATE
-- a type with no cast to the column's (42846)
SELECT pg_temp.sqlstate_of($$SELECT coco.declare_rows('bad', 'bad_t', 'SELECT point(1, 2) AS id')$$);
-- not a single SELECT: DML, DDL, several statements (42809)
SELECT coco.declare_rows('bad', 'bad_t', 'DELETE FROM bad_src');
\echo :LAST_ERROR_SQLSTATE
SELECT coco.declare_rows('bad', 'bad_t', 'DROP TABLE bad_src');
\echo :LAST_ERROR_SQLSTATE
SELECT coco.declare_rows('bad', 'bad_t', 'SELECT 1 AS id; DROP TABLE bad_src');
\echo :LAST_ERROR_SQLSTATE
SELECT coco.declare_rows('bad', 'bad_t', 'INSERT INTO bad_src VALUES (9, ''nine'')');
\echo :LAST_ERROR_SQLSTATE
-- statements that return rows but modify data are refused too
SELECT pg_temp.sqlstate_of($$SELECT coco.declare_rows('bad', 'bad_t', 'DELETE FROM bad_src RETURNING id, v')$$);
SELECT pg_temp.sqlstate_of($$SELECT coco.declare_rows('bad', 'bad_t',
    'WITH d AS (DELETE FROM bad_src RETURNING id, v) SELECT id, v FROM d')$$);
-- empty, and not SQL (22023, 42601)
SELECT coco.declare_rows('bad', 'bad_t', ' ; ');
\echo :LAST_ERROR_SQLSTATE
SELECT pg_temp.sqlstate_of($$SELECT coco.declare_rows('bad', 'bad_t', 'SELEC id FROM bad_src')$$);
-- a relation that does not exist (42P01)
SELECT pg_temp.sqlstate_of($$SELECT coco.declare_rows('bad', 'bad_t', 'SELECT id, v FROM bad_nowhere')$$);
-- the source is intact and nothing was staged
SELECT * FROM bad_src;
SELECT * FROM pg_temp.state();

-- Names of 63 bytes are fine (declared in a component that is cleared right after).
SELECT coco.declare_table('bad', repeat('s', 63) || '.' || repeat('t', 63),
    jsonb_build_array(jsonb_build_object('name', repeat('c', 63), 'type', 'int')), ARRAY[repeat('c', 63)],
    'system', '{long}');
SELECT coco.clear_component('bad', '{long}');

-- coco.chunk_rows unpacks a chunk of coco.tracked_chunk (a flag byte, a
-- 16-byte fingerprint, the key's length in 7-bit groups, the key); bytes
-- that are not one are refused (22P03), whatever length they claim.
SELECT encode(key, 'hex') AS key, fp = '' AS marked, length(fp) AS fp_bytes
  FROM coco.chunk_rows(decode('00' || repeat('ab', 16) || '02' || 'cafe' ||
                              '01' || repeat('cd', 16) || '01' || '07', 'hex'));
SELECT count(*) AS none FROM coco.chunk_rows(''::bytea);
SELECT * FROM coco.chunk_rows('\x01'::bytea);
\echo :LAST_ERROR_SQLSTATE
SELECT * FROM coco.chunk_rows(decode('00' || repeat('00', 16) || 'ffffffff0f', 'hex'));
\echo :LAST_ERROR_SQLSTATE
SELECT * FROM coco.chunk_rows(decode('00' || repeat('00', 16) || 'ffffffffff01', 'hex'));
\echo :LAST_ERROR_SQLSTATE

-- Clean up.
SELECT coco.drop_app('bad');
DROP TABLE bad_src;
