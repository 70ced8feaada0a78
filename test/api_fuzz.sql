-- The SQL-level fuzzer of the API, loaded by test/api_fuzz.sh.
--
-- fz.run(seed, ops) makes `ops` random coco.* calls as the role that calls
-- it (a role without superuser), each in a subtransaction, with hostile
-- arguments: NULLs, wrong shapes, names of dropped, renamed and swapped
-- objects, another role's app, and user code (queries, declaration
-- functions, a SQL provider, SQL commands) that drops, renames and
-- replaces relations and functions in the middle of a run and calls the
-- API again.  It returns one row per SQLSTATE seen, with a count and one
-- example; the driver fails on XX000 and on any backend that died.

-- (schema fz is made by the driver, owned by the fuzzing role)

-- the pools arguments are drawn from
CREATE TABLE fz.pool (kind text, val text);
INSERT INTO fz.pool VALUES
  ('app', 'f1'), ('app', 'f2'), ('app', 'f3'), ('app', NULL), ('app', ''),
  ('app', 'no_such_app'), ('app', 'alice_app'), ('app', repeat('x', 300)),
  ('table', 'fz.t1'), ('table', 'fz.t2'), ('table', 'fz.t3'), ('table', NULL),
  ('table', 'fz.v1'), ('table', 'bad name'), ('table', 'fz."q'), ('table', 'pg_catalog.pg_class'),
  ('table', 'alice.t'), ('table', 'nosuchschema.t'), ('table', 'fz.' || repeat('y', 70)),
  ('columns', '[{"name":"id","type":"integer"},{"name":"v","type":"text"}]'),
  ('columns', '[{"name":"id","type":"integer","nullable":false},{"name":"v","type":"text","nullable":false}]'),
  ('columns', '[{"name":"id","type":"bigint"},{"name":"v","type":"integer"},{"name":"w","type":"text[]"}]'),
  ('columns', '[{"name":"id","type":"integer"},{"name":"v","type":"no_such_type"}]'),
  ('columns', '[{"name":"id","type":"integer"},{"name":"id","type":"text"}]'),
  ('columns', '[{"name":"id"}]'), ('columns', '{}'), ('columns', '[]'), ('columns', '"x"'),
  ('columns', NULL), ('columns', '[{"name":"k1","type":"text"},{"name":"k2","type":"date"},{"name":"v","type":"jsonb"}]'),
  ('columns', '[{"name":"id","type":"integer"},{"name":"v","type":"varchar(3)"}]'),
  ('pk', '{id}'), ('pk', '{k1,k2}'), ('pk', '{}'), ('pk', '{nope}'), ('pk', NULL), ('pk', '{id,id}'),
  ('pk', '{NULL}'),
  ('row', '{"id": 1, "v": "one"}'), ('row', '{"id": 2, "v": null}'), ('row', '{"id": null}'),
  ('row', '{"id": "x"}'), ('row', '{"id": 3, "v": "long", "w": ["a", null]}'), ('row', '[]'),
  ('row', NULL), ('row', '{"k1": "a", "k2": "2020-01-01", "v": {"a": 1}}'),
  ('row', '{"id": 99999999999, "v": 7}'), ('row', '{"id": 4, "v": "ab\u0000c"}'),
  ('query', 'SELECT g AS id, g::text AS v FROM generate_series(1, 50) g'),
  ('query', 'SELECT fz.h(1) AS id, ''x'' AS v'), ('query', 'SELECT fz.h(g) AS id, g::text AS v FROM generate_series(1, 5) g'),
  ('query', 'SELECT 1 AS id, fz.h(2)::text AS v UNION ALL SELECT 1, ''dup'''),
  ('query', 'DELETE FROM fz.src RETURNING 1 AS id'), ('query', 'SELECT 1; DROP TABLE fz.src'),
  ('query', 'SELECT NULL::int AS id, NULL::text AS v'), ('query', NULL), ('query', ''),
  ('query', 'SELECT id, v FROM fz.src'), ('query', 'SELECT * FROM alice.t'),
  ('query', 'SELECT id, v FROM fz.src WHERE fz.h(id) > 0'), ('query', 'VALUES (1, ''a'')'),
  ('comp', '{}'), ('comp', '{a}'), ('comp', '{a,b}'), ('comp', NULL), ('comp', '{NULL}'), ('comp', '{""}'),
  ('index_opts', '{}'), ('index_opts', '{"unique": true}'), ('index_opts', '{"where": "id > fz.h(3)"}'),
  ('index_opts', '{"expressions": ["lower(v)"]}'), ('index_opts', '{"expressions": ["fz.hi(id)"]}'),
  ('index_opts', '{"concurrently": true}'), ('index_opts', '{"where": "true) --"}'),
  ('index_opts', '{"expressions": ["id) --", "1 /*\n)); DROP TABLE fz.src; SELECT ((1 */"]}'),
  ('index_opts', '{"include": ["v"]}'), ('index_opts', '{"with": {"fillfactor": 0.5}}'), ('index_opts', NULL),
  ('index_cols', '{id}'), ('index_cols', '{v}'), ('index_cols', '{}'), ('index_cols', '{nope}'), ('index_cols', NULL),
  ('method', 'btree'), ('method', 'hash'), ('method', 'gin'), ('method', 'nope'), ('method', NULL),
  ('setup', 'SELECT fz.h(4)'), ('setup', 'CREATE OR REPLACE VIEW fz.vv AS SELECT 1 AS x'),
  ('setup', 'COMMIT'), ('setup', 'SELECT coco.reconcile(''f1'')'), ('setup', 'DROP TABLE fz.t1'),
  ('setup', NULL), ('setup', 'not sql'),
  ('teardown', 'DROP VIEW IF EXISTS fz.vv'), ('teardown', NULL), ('teardown', 'SELECT fz.h(5)'),
  ('key', '"k"'), ('key', '["a", 1]'), ('key', 'null'), ('key', '{"o": 1}'), ('key', NULL),
  ('key', '[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]'),
  ('provider', 'fz.kv'), ('provider', 'postgres.table'), ('provider', 'postgres.row'), ('provider', 'localfs.file'),
  ('provider', 'nope'), ('provider', NULL), ('provider', 'alice.kv'),
  ('fn', 'fz.decl(text)'), ('fn', 'fz.decl_gone(text)'), ('fn', 'fz.decl_nested(text)'), ('fn', NULL),
  ('fn', 'fz.kv_rec(jsonb,jsonb,jsonb[],boolean)'),
  ('sync_opts', '{}'), ('sync_opts', NULL), ('sync_opts', '[]'), ('sync_opts', '{"bogus": 1}'),
  ('sync_opts', '{"managed_by": "user"}'), ('sync_opts', '{"protect": true}'),
  ('sync_opts', '{"columns": {"v": {"type": "varchar(3)", "nullable": false}}}'),
  ('sync_opts', '{"columns": {"nope": {"type": "int"}}}'),
  ('sync_opts', '{"indexes": {"ix": {"columns": ["v"], "where": "id > fz.h(6)"}}}'),
  ('sync_opts', '{"indexes": {"ix": {"columns": ["id"], "method": "hash", "concurrently": true}}}'),
  ('sync_opts', '{"sql_commands": {"c": {"setup": "SELECT fz.h(7)", "teardown": "SELECT fz.h(8)"}}}'),
  ('sync_opts', '{"sql_commands": {"c": {"setup": "SELECT coco.sync_table(''f1'', ''fz.t2'', ''SELECT 1 AS id'', ''{id}'')"}}}');

CREATE FUNCTION fz.pick(k text) RETURNS text LANGUAGE sql AS
  $$ SELECT val FROM fz.pool WHERE kind = k ORDER BY random() LIMIT 1 $$;
CREATE FUNCTION fz.lit(v text) RETURNS text LANGUAGE sql AS
  $$ SELECT coalesce(quote_literal(v), 'NULL') $$;
CREATE FUNCTION fz.bool() RETURNS text LANGUAGE sql AS
  $$ SELECT (ARRAY['true', 'false', 'NULL'])[1 + floor(random() * 3)::int] $$;

CREATE TABLE fz.src (id int PRIMARY KEY, v text);
INSERT INTO fz.src SELECT g, 'v' || g FROM generate_series(1, 100) g;

-- User code that a run calls: one random act of sabotage, its own errors
-- caught so that the run goes on (or not) past it.
CREATE FUNCTION fz.h(x int) RETURNS int LANGUAGE plpgsql AS $$
DECLARE
  acts text[] := ARRAY[
    'DROP TABLE IF EXISTS fz.t1 CASCADE',
    'ALTER TABLE fz.t2 RENAME TO t2_old',
    'ALTER TABLE IF EXISTS fz.t2_old RENAME TO t2',
    'CREATE VIEW fz.t1 AS SELECT 1 AS id, ''x''::text AS v',
    'CREATE TABLE fz.t3 (id int PRIMARY KEY)',
    'ALTER TABLE fz.t2 ADD COLUMN zz int',
    'ALTER TABLE fz.t1 ALTER COLUMN v TYPE bigint USING NULL',
    'ALTER TABLE fz.t2 DROP COLUMN v',
    'CREATE TRIGGER trg BEFORE INSERT ON fz.t1 FOR EACH ROW EXECUTE FUNCTION fz.trg()',
    'CREATE INDEX ON fz.t2 (fz.hi(id))',
    'DROP FUNCTION IF EXISTS fz.decl(text)',
    'CREATE OR REPLACE FUNCTION fz.decl(app text) RETURNS void LANGUAGE sql AS ''SELECT''',
    'DROP FUNCTION IF EXISTS fz.kv_rec(jsonb, jsonb, jsonb[], boolean)',
    'SELECT coco.reconcile(''f1'')', 'SELECT coco.update(''f2'')', 'SELECT coco.drop_app(''f3'')',
    'SELECT coco.declare_row(''f1'', ''fz.t1'', ''{"id": 7}'')', 'SELECT coco.clear_component(''f2'', ''{}'')',
    'SELECT * FROM coco.plan(''f1'')', 'SELECT coco.verify(''f1'')', 'SELECT coco.submit(''f1'')',
    'SELECT coco.sync_table(''f1'', ''fz.t2'', ''SELECT id, v FROM fz.src'', ''{id}'')',
    'SELECT coco.unsync_table(''f2'', ''fz.t2'')', 'ALTER TABLE fz.src ALTER COLUMN v TYPE varchar(10)',
    'SELECT coco.create_app(''f3'')', 'TRUNCATE fz.src', 'INSERT INTO fz.src VALUES (1000 + $1, NULL)',
    'DROP SCHEMA IF EXISTS fz_tmp CASCADE', 'SET LOCAL coco_target.batch_size = 1'];
  a text := acts[1 + floor(random() * array_length(acts, 1))::int];
BEGIN
  BEGIN
    EXECUTE a USING x;
  EXCEPTION WHEN OTHERS THEN
    IF SQLSTATE = 'XX000' THEN RAISE; END IF;  -- a finding: never swallow it
  END;
  RETURN x;
END $$;
CREATE FUNCTION fz.hi(x int) RETURNS int LANGUAGE sql IMMUTABLE AS 'SELECT x';
CREATE FUNCTION fz.trg() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN PERFORM fz.h(9); RETURN NEW; END $$;

-- declaration functions and a SQL provider whose code sabotages too
CREATE FUNCTION fz.decl(app text) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
  PERFORM coco.declare_table(app, 'fz.t1', '[{"name":"id","type":"integer"},{"name":"v","type":"text"}]', '{id}');
  PERFORM coco.declare_rows(app, 'fz.t1', 'SELECT id, v FROM fz.src WHERE fz.h(id) IS NOT NULL');
END $$;
CREATE FUNCTION fz.decl_gone(app text) RETURNS void LANGUAGE sql AS 'SELECT';
CREATE FUNCTION fz.decl_nested(app text) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
  PERFORM fz.h(11);
  PERFORM coco.update(app);
END $$;
CREATE FUNCTION fz.kv_rec(key jsonb, desired jsonb, prev jsonb[], may_be_missing boolean) RETURNS jsonb
  LANGUAGE plpgsql AS $$ BEGIN PERFORM fz.h(12); RETURN '{"action": "upsert"}'; END $$;
CREATE FUNCTION fz.kv_apply(actions jsonb) RETURNS void LANGUAGE plpgsql AS
  $$ BEGIN PERFORM fz.h(13); END $$;

-- One random call.
CREATE FUNCTION fz.call() RETURNS text LANGUAGE plpgsql AS $$
DECLARE
  n int := floor(random() * 28)::int;
BEGIN
  RETURN CASE
    WHEN n IN (0) THEN format('SELECT coco.create_app(%s, %s::regprocedure)', fz.lit(fz.pick('app')),
                       CASE WHEN random() < 0.5 THEN 'NULL' ELSE fz.lit(fz.pick('fn')) END)
    WHEN n IN (1) THEN format('SELECT coco.drop_app(%s, %s)', fz.lit(fz.pick('app')), fz.bool())
    WHEN n IN (2) THEN format('SELECT coco.declare_table(%s, %s, %s, %s, %s, %s)', fz.lit(fz.pick('app')),
                       fz.lit(fz.pick('table')), fz.lit(fz.pick('columns')), fz.lit(fz.pick('pk')),
                       fz.lit((ARRAY['system', 'user', 'nobody', NULL])[1 + floor(random() * 4)::int]),
                       fz.lit(fz.pick('comp')))
    WHEN n IN (3, 4) THEN format('SELECT coco.declare_row(%s, %s, %s, %s)', fz.lit(fz.pick('app')),
                       fz.lit(fz.pick('table')), fz.lit(fz.pick('row')), fz.lit(fz.pick('comp')))
    WHEN n IN (5, 6) THEN format('SELECT coco.declare_rows(%s, %s, %s, %s)', fz.lit(fz.pick('app')),
                       fz.lit(fz.pick('table')), fz.lit(fz.pick('query')), fz.lit(fz.pick('comp')))
    WHEN n IN (7) THEN format('SELECT coco.declare_index(%s, %s, %s, %s, %s, %s, %s)', fz.lit(fz.pick('app')),
                       fz.lit(fz.pick('table')), fz.lit((ARRAY['ix', 'ix2', NULL, 'bad name'])[1 + floor(random() * 4)::int]),
                       fz.lit(fz.pick('index_cols')), fz.lit(fz.pick('method')), fz.lit(fz.pick('index_opts')),
                       fz.lit(fz.pick('comp')))
    WHEN n IN (8) THEN format('SELECT coco.declare_sql_command(%s, %s, %s, %s, %s, %s)', fz.lit(fz.pick('app')),
                       fz.lit(fz.pick('table')), fz.lit((ARRAY['c1', 'c2', NULL])[1 + floor(random() * 3)::int]),
                       fz.lit(fz.pick('setup')), fz.lit(fz.pick('teardown')), fz.lit(fz.pick('comp')))
    WHEN n IN (9) THEN format('SELECT coco.clear_component(%s, %s)', fz.lit(fz.pick('app')), fz.lit(fz.pick('comp')))
    WHEN n IN (10, 11, 12) THEN format('SELECT coco.reconcile(%s, %s)', fz.lit(fz.pick('app')), fz.bool())
    WHEN n IN (13) THEN format('SELECT coco.update(%s)', fz.lit(fz.pick('app')))
    WHEN n IN (14) THEN format('SELECT count(*) FROM coco.plan(%s, %s, rows => %s, "update" => %s, row_limit => %s)',
                       fz.lit(fz.pick('app')), fz.bool(), fz.bool(), fz.bool(),
                       (ARRAY['NULL', '-1', '0', '1', '100', '1000000', '1000001', '2147483647'])[1 + floor(random() * 8)::int])
    WHEN n IN (15) THEN format('SELECT coco.verify(%s, %s)', fz.lit(fz.pick('app')), fz.bool())
    WHEN n IN (16) THEN format('SELECT coco.submit(%s, %s)', fz.lit(fz.pick('app')), fz.bool())
    WHEN n IN (17) THEN format('SELECT coco.wait(%s, %L)',
                       (ARRAY['NULL', '-1', '0', '1', '2', '3', '99999999999'])[1 + floor(random() * 7)::int],
                       (ARRAY['0s', '10ms', '-1s'])[1 + floor(random() * 3)::int])
    WHEN n IN (18) THEN format('SELECT coco.register_provider(%s, %s, %s)', fz.lit(fz.pick('provider')),
                       fz.lit(fz.pick('fn')), fz.lit((ARRAY['fz.kv_apply(jsonb)', NULL, 'fz.decl(text)'])[1 + floor(random() * 3)::int]))
    WHEN n IN (19) THEN format('SELECT coco.declare_target_state(%s, %s, %s, %s, %s)', fz.lit(fz.pick('app')),
                       fz.lit(fz.pick('provider')), fz.lit(fz.pick('key')), fz.lit(fz.pick('row')), fz.lit(fz.pick('comp')))
    WHEN n IN (20) THEN format('SELECT coco.set_app_option(%s, %s)', fz.lit(fz.pick('app')), fz.bool())
    WHEN n IN (21) THEN format('SELECT coco.key_to_jsonb(%L::bytea)',
                       '\x' || substr(md5(random()::text) || md5(random()::text), 1, 2 * (1 + floor(random() * 24)::int)))
    WHEN n IN (22) THEN format('SELECT coco.key_from_jsonb(%s)', fz.lit(fz.pick('key')))
    WHEN n IN (23) THEN format('SELECT coco.diff(%L::bytea, ARRAY[%L::bytea], %s)',
                       '\x' || substr(md5(random()::text), 1, 2 * floor(random() * 16)::int),
                       '\x' || substr(md5(random()::text), 1, 2 * floor(random() * 16)::int), fz.bool())
    WHEN n IN (24) THEN format('SELECT coco.declare_dir(%s, %L, %L)', fz.lit(fz.pick('app')),
                       (ARRAY['files', 'local', 'nope'])[1 + floor(random() * 3)::int],
                       (ARRAY['d', '../x', '/abs', 'a/.coco-tmp-x', repeat('n', 300)])[1 + floor(random() * 5)::int])
    WHEN n IN (25) THEN format('SELECT coco.sync_table(%s, %s, %s, %s, %s, %s)', fz.lit(fz.pick('app')),
                       fz.lit(fz.pick('table')), fz.lit(fz.pick('query')), fz.lit(fz.pick('pk')),
                       fz.lit(fz.pick('sync_opts')), CASE WHEN random() < 0.5 THEN 'NULL' ELSE fz.lit(fz.pick('comp')) END)
    WHEN n IN (26) THEN format('SELECT coco.unsync_table(%s, %s)', fz.lit(fz.pick('app')), fz.lit(fz.pick('table')))
    ELSE (ARRAY['SELECT fz.h(0)', 'DROP TABLE IF EXISTS fz.t2 CASCADE',
                'CREATE TABLE IF NOT EXISTS fz.t2 (id int PRIMARY KEY, v text)',
                'DROP VIEW IF EXISTS fz.t1', 'ALTER TABLE IF EXISTS fz.t2_old RENAME TO t2'])[1 + floor(random() * 5)::int]
  END;
END $$;

CREATE FUNCTION fz.run(seed float8, ops int)
  RETURNS TABLE (sqlstate text, n bigint, example text) LANGUAGE plpgsql AS $$
DECLARE
  stmt text;
  st text;
  msg text;
BEGIN
  PERFORM setseed(seed);
  CREATE TEMP TABLE IF NOT EXISTS fz_seen (sqlstate text, stmt text, msg text);
  FOR i IN 1 .. ops LOOP
    stmt := fz.call();
    BEGIN
      EXECUTE stmt;
      st := '00000';
      msg := NULL;
    EXCEPTION WHEN OTHERS THEN
      GET STACKED DIAGNOSTICS st = RETURNED_SQLSTATE, msg = MESSAGE_TEXT;
    END;
    INSERT INTO fz_seen VALUES (st, stmt, msg);
  END LOOP;
  RETURN QUERY SELECT s.sqlstate, count(*), min(left(s.stmt || ' -> ' || coalesce(s.msg, ''), 300))
    FROM fz_seen s GROUP BY 1 ORDER BY 1;
END $$;
