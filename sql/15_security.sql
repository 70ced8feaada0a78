-- 15_security: the privilege model, as an attacker sees it.
--   1. mallory (no privileges) cannot act on alice's app (42501), sees none
--      of its bookkeeping (RLS on the tables and the security_invoker views),
--      and cannot write any coco.* table directly (42501).
--   2. mallory's own app cannot create a table where mallory may not (42501);
--      nothing is created and her staging is intact.
--   3. user SQL of mallory's app (a declare_rows query, a declaration
--      function) runs as mallory in a security-restricted context, even when
--      a superuser reconciles or updates her app.
--   4. a hostile search_path (tables, functions and operators shadowing
--      pg_catalog's) is never used by the reconciler's own statements.
--   5. hostile input: each refused with a specific SQLSTATE, nothing staged,
--      the server alive.
\set VERBOSITY default
\set SHOW_CONTEXT never

SET client_min_messages = warning;
DROP ROLE IF EXISTS regress_coco_alice;
DROP ROLE IF EXISTS regress_coco_bob;
DROP ROLE IF EXISTS regress_coco_mallory;
RESET client_min_messages;
CREATE ROLE regress_coco_alice;
CREATE ROLE regress_coco_bob IN ROLE regress_coco_alice;   -- a member of alice
CREATE ROLE regress_coco_mallory;
CREATE SCHEMA sec_alice AUTHORIZATION regress_coco_alice;
CREATE SCHEMA sec_mallory AUTHORIZATION regress_coco_mallory;
CREATE SCHEMA regress_coco_evil AUTHORIZATION regress_coco_mallory;

-- The SQLSTATE of a statement, without printing its (possibly huge) error.
CREATE FUNCTION public.sec_sqlstate_of(stmt text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
  EXECUTE stmt;
  RETURN 'no error';
EXCEPTION WHEN OTHERS THEN
  RETURN SQLSTATE;
END $$;

-- How many rows of each bookkeeping table and view the current role sees.
CREATE FUNCTION public.sec_visible() RETURNS TABLE (rel text, n bigint) LANGUAGE plpgsql AS $$
DECLARE t text;
BEGIN
  FOREACH t IN ARRAY ARRAY['app', 'component', 'staged_state', 'staged_row', 'staged_query',
                           'cleared_component', 'target_state', 'tracked_chunk', 'tracked_row',
                           'row_set', 'run', 'apps', 'runs', 'target_states', 'stale_components']
  LOOP
    rel := t;
    EXECUTE format('SELECT count(*) FROM coco.%I', t) INTO n;
    RETURN NEXT;
  END LOOP;
END $$;

-- ===========================================================================
-- 1. alice's app, and what mallory can do to it
-- ===========================================================================
SET ROLE regress_coco_alice;
SELECT coco.create_app('sec_alice_app');
SELECT coco.declare_table('sec_alice_app', 'sec_alice.t',
  '[{"name": "id", "type": "int"}, {"name": "v", "type": "text"}]', '{id}');
SELECT coco.declare_row('sec_alice_app', 'sec_alice.t', '{"id": 1, "v": "one"}', '{r}');
SELECT coco.declare_rows('sec_alice_app', 'sec_alice.t', 'SELECT 2 AS id, ''two'' AS v', '{q}');
SELECT r->'inserted' AS inserted FROM coco.reconcile('sec_alice_app') r;
-- a lossy change of the table leaves components {r} and {q} stale
SELECT coco.declare_table('sec_alice_app', 'sec_alice.t',
  '[{"name": "id", "type": "int"}, {"name": "v", "type": "varchar(20)"}]', '{id}');
SELECT r->'updated' AS updated FROM coco.reconcile('sec_alice_app') r;
-- and something pending: a row, a query, a clear marker
SELECT coco.declare_row('sec_alice_app', 'sec_alice.t', '{"id": 3, "v": "three"}', '{later}');
SELECT coco.declare_rows('sec_alice_app', 'sec_alice.t', 'SELECT 4 AS id', '{q2}');
SELECT coco.clear_component('sec_alice_app', '{gone}');
-- what alice (the owner) sees
SELECT * FROM public.sec_visible();
SELECT app, owner, pending_declarations FROM coco.apps;
RESET ROLE;

-- bob is a member of alice: he sees (and may act on) alice's app
SET ROLE regress_coco_bob;
SELECT app, owner, pending_declarations FROM coco.apps;
SELECT count(*) AS bob_target_states FROM coco.target_states;
RESET ROLE;

-- (the number of alice's last run, for coco.wait below)
SELECT max(r.run_id) AS alice_run FROM coco.run r JOIN coco.app a USING (app_id) WHERE a.name = 'sec_alice_app' \gset
SET ROLE regress_coco_mallory;
-- every API call on alice's app is refused with 42501
SELECT coco.declare_table('sec_alice_app', 'sec_alice.t2', '[{"name": "id", "type": "int"}]', '{id}');
\echo :LAST_ERROR_SQLSTATE
SELECT coco.declare_table('sec_alice_app', 'sec_mallory.t2', '[{"name": "id", "type": "int"}]', '{id}');
\echo :LAST_ERROR_SQLSTATE
SELECT coco.declare_row('sec_alice_app', 'sec_alice.t', '{"id": 9, "v": "evil"}');
\echo :LAST_ERROR_SQLSTATE
SELECT coco.declare_rows('sec_alice_app', 'sec_alice.t', 'SELECT 9 AS id');
\echo :LAST_ERROR_SQLSTATE
SELECT coco.reconcile('sec_alice_app');
\echo :LAST_ERROR_SQLSTATE
SELECT coco.reconcile('sec_alice_app', true);
\echo :LAST_ERROR_SQLSTATE
SELECT coco.update('sec_alice_app');
\echo :LAST_ERROR_SQLSTATE
SELECT coco.clear_component('sec_alice_app', '{}');
\echo :LAST_ERROR_SQLSTATE
SELECT coco.clear_component('sec_alice_app', '{r}');
\echo :LAST_ERROR_SQLSTATE
SELECT coco.drop_app('sec_alice_app');
\echo :LAST_ERROR_SQLSTATE
SELECT coco.drop_app('sec_alice_app', keep_targets => true);
\echo :LAST_ERROR_SQLSTATE
SELECT coco.submit('sec_alice_app');
\echo :LAST_ERROR_SQLSTATE
-- another role's run looks like one that does not exist (42704)
SELECT public.sec_sqlstate_of(format('SELECT coco.wait(%s, %L)', :alice_run, '0s')) AS wait_on_alice_run;
-- creating an app with alice's name is a duplicate, not a takeover
SELECT coco.create_app('sec_alice_app');
\echo :LAST_ERROR_SQLSTATE

-- mallory sees nothing of alice's app: raw tables and views alike
SELECT * FROM public.sec_visible();
SELECT count(*) AS alice_rows_in_apps FROM coco.apps WHERE app = 'sec_alice_app';
SELECT count(*) AS alice_rows_in_app FROM coco.app WHERE name = 'sec_alice_app';

-- mallory cannot write any bookkeeping table directly
INSERT INTO coco.app (name, owner, search_path) VALUES ('sec_evil', 'regress_coco_mallory'::regrole, '');
\echo :LAST_ERROR_SQLSTATE
UPDATE coco.app SET owner = 'regress_coco_mallory'::regrole;
\echo :LAST_ERROR_SQLSTATE
DELETE FROM coco.app;
\echo :LAST_ERROR_SQLSTATE
INSERT INTO coco.staged_row VALUES (1, 1, 'sec_alice.t', '\x00', '{}');
\echo :LAST_ERROR_SQLSTATE
UPDATE coco.tracked_chunk SET rows = '\x00';
\echo :LAST_ERROR_SQLSTATE
DELETE FROM coco.target_state;
\echo :LAST_ERROR_SQLSTATE
TRUNCATE coco.run;
\echo :LAST_ERROR_SQLSTATE
SELECT nextval('coco.pass_seq');
\echo :LAST_ERROR_SQLSTATE
-- every table, every kind of write
DO $$
DECLARE
  t text;
  c text;
  stmt text;
  res text;
BEGIN
  FOREACH t IN ARRAY ARRAY['app', 'component', 'staged_state', 'staged_row', 'staged_query',
                           'cleared_component', 'target_state', 'tracked_chunk', 'row_set', 'run']
  LOOP
    SELECT attname INTO c FROM pg_attribute
     WHERE attrelid = ('coco.' || t)::regclass AND attnum > 0 AND attidentity = ''
     ORDER BY attnum LIMIT 1;
    FOREACH stmt IN ARRAY ARRAY[
        format('INSERT INTO coco.%I DEFAULT VALUES', t),
        format('INSERT INTO coco.%I OVERRIDING SYSTEM VALUE SELECT * FROM coco.%I', t, t),
        format('UPDATE coco.%I SET %I = %I', t, c, c),
        format('DELETE FROM coco.%I', t),
        format('TRUNCATE coco.%I', t),
        format('ALTER TABLE coco.%I DISABLE ROW LEVEL SECURITY', t),
        format('CREATE POLICY sec_evil ON coco.%I USING (true)', t)]
    LOOP
      res := public.sec_sqlstate_of(stmt);
      IF res <> '42501' THEN
        RAISE NOTICE '%: %', stmt, res;
      END IF;
    END LOOP;
  END LOOP;
  RAISE NOTICE 'direct writes checked';
END $$;
-- nor redefine the API or the views
CREATE OR REPLACE VIEW coco.apps AS SELECT 1 AS app;
\echo :LAST_ERROR_SQLSTATE
CREATE FUNCTION coco.sec_evil() RETURNS int LANGUAGE sql AS 'SELECT 1';
\echo :LAST_ERROR_SQLSTATE
RESET ROLE;

-- The app cache must not carry one role's privilege check over to another
-- role in the same transaction.  alice offers a SECURITY DEFINER helper
-- that declares a row into her app; mallory calls it, then, in the same
-- transaction, acts on alice's app herself.  (At the time of writing the
-- app cache in coco_app_lookup() skips the privilege check on a cache hit,
-- so these three succeed.)
CREATE FUNCTION sec_alice.add_row(id int) RETURNS void LANGUAGE sql SECURITY DEFINER
  SET search_path = pg_catalog
  AS $$ SELECT coco.declare_row('sec_alice_app', 'sec_alice.t', pg_catalog.jsonb_build_object('id', id), '{helper}') $$;
ALTER FUNCTION sec_alice.add_row(int) OWNER TO regress_coco_alice;
GRANT USAGE ON SCHEMA sec_alice TO regress_coco_mallory;
SET ROLE regress_coco_mallory;
BEGIN;
SELECT sec_alice.add_row(5);
SELECT coco.clear_component('sec_alice_app', '{}');
\echo :LAST_ERROR_SQLSTATE
ROLLBACK;
BEGIN;
SELECT sec_alice.add_row(5);
SELECT coco.drop_app('sec_alice_app');
\echo :LAST_ERROR_SQLSTATE
ROLLBACK;
BEGIN;
SELECT sec_alice.add_row(5);
SELECT coco.declare_row('sec_alice_app', 'sec_alice.t', '{"id": 666, "v": "evil"}', '{evil}');
\echo :LAST_ERROR_SQLSTATE
ROLLBACK;
RESET ROLE;

-- alice's app is as she left it
SET ROLE regress_coco_alice;
SELECT * FROM public.sec_visible();
SELECT app, pending_declarations FROM coco.apps;
SELECT * FROM sec_alice.t ORDER BY id;
RESET ROLE;

-- ===========================================================================
-- 2. mallory's own app, declaring where mallory may not create
-- ===========================================================================
SET ROLE regress_coco_mallory;
SELECT coco.create_app('sec_mallory_app');
-- alice's schema (mallory has USAGE, not CREATE)
SELECT coco.declare_table('sec_mallory_app', 'sec_alice.m', '[{"name": "id", "type": "int"}]', '{id}');
SELECT coco.declare_row('sec_mallory_app', 'sec_alice.m', '{"id": 1}');
SELECT app, pending_declarations FROM coco.apps;
SELECT coco.reconcile('sec_mallory_app');
\echo :LAST_ERROR_SQLSTATE
SELECT app, pending_declarations FROM coco.apps;
SELECT count(*) AS mallory_target_states FROM coco.target_states;
-- a schema that does not exist (mallory may not create schemas)
SELECT coco.clear_component('sec_mallory_app', '{}');
SELECT coco.declare_table('sec_mallory_app', 'sec_nowhere.m', '[{"name": "id", "type": "int"}]', '{id}');
SELECT coco.reconcile('sec_mallory_app');
\echo :LAST_ERROR_SQLSTATE
SELECT app, pending_declarations FROM coco.apps;
-- a table alice already has, "adopted" as user-managed: its rows cannot be written
SELECT coco.clear_component('sec_mallory_app', '{}');
SELECT coco.declare_table('sec_mallory_app', 'sec_alice.t',
  '[{"name": "id", "type": "int"}, {"name": "v", "type": "varchar(20)"}]', '{id}', 'user');
SELECT coco.declare_row('sec_mallory_app', 'sec_alice.t', '{"id": 1, "v": "pwned"}');
SELECT coco.reconcile('sec_mallory_app');
\echo :LAST_ERROR_SQLSTATE
SELECT app, pending_declarations FROM coco.apps;
RESET ROLE;
SELECT to_regclass('sec_alice.m') AS m, to_regclass('sec_nowhere.m') AS nowhere,
       (SELECT count(*) FROM pg_namespace WHERE nspname = 'sec_nowhere') AS nowhere_schema;
SELECT * FROM sec_alice.t ORDER BY id;
SET ROLE regress_coco_mallory;
SELECT coco.drop_app('sec_mallory_app');
RESET ROLE;

-- ===========================================================================
-- 3. mallory's SQL runs as mallory, even when a superuser runs it
-- ===========================================================================
-- attack() does what regress_coco.attack says, when the run evaluates it.
CREATE FUNCTION sec_mallory.attack() RETURNS int LANGUAGE plpgsql AS $$
BEGIN
  CASE current_setting('regress_coco.attack', true)
    WHEN 'write' THEN INSERT INTO sec_alice.t VALUES (666, 'pwned');
    WHEN 'superuser' THEN EXECUTE 'ALTER ROLE regress_coco_mallory SUPERUSER';
    WHEN 'program' THEN EXECUTE 'COPY (SELECT 1) TO PROGRAM ''true''';
    WHEN 'temp' THEN EXECUTE 'CREATE TEMP TABLE sec_evil_temp (x int)';
    WHEN 'setrole' THEN EXECUTE 'SET ROLE regress_coco_alice';
    ELSE NULL;
  END CASE;
  RETURN 1;
END $$;
CREATE FUNCTION sec_mallory.decl(app text) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
  PERFORM coco.declare_table(app, 'sec_mallory.fn_out', '[{"name": "id", "type": "int"}]', '{id}');
  PERFORM coco.declare_row(app, 'sec_mallory.fn_out', pg_catalog.jsonb_build_object('id', sec_mallory.attack()));
END $$;
ALTER FUNCTION sec_mallory.attack() OWNER TO regress_coco_mallory;
ALTER FUNCTION sec_mallory.decl(text) OWNER TO regress_coco_mallory;
SET ROLE regress_coco_mallory;
SELECT coco.create_app('sec_m_query');
SELECT coco.declare_table('sec_m_query', 'sec_mallory.q_out', '[{"name": "id", "type": "int"}]', '{id}');
SELECT coco.declare_rows('sec_m_query', 'sec_mallory.q_out', 'SELECT sec_mallory.attack() AS id');
SELECT coco.create_app('sec_m_fn', 'sec_mallory.decl(text)');
-- mallory herself: the write is refused
SET regress_coco.attack = 'write';
SELECT coco.reconcile('sec_m_query');
\echo :LAST_ERROR_SQLSTATE
SELECT coco.update('sec_m_fn');
\echo :LAST_ERROR_SQLSTATE
RESET regress_coco.attack;
RESET ROLE;

-- a superuser reconciles mallory's apps: the work still runs as mallory
SET regress_coco.attack = 'write';
SELECT coco.reconcile('sec_m_query');
\echo :LAST_ERROR_SQLSTATE
SELECT coco.update('sec_m_fn');
\echo :LAST_ERROR_SQLSTATE
SET regress_coco.attack = 'superuser';
SELECT coco.reconcile('sec_m_query');
\echo :LAST_ERROR_SQLSTATE
SELECT coco.update('sec_m_fn');
\echo :LAST_ERROR_SQLSTATE
SET regress_coco.attack = 'program';
SELECT coco.reconcile('sec_m_query');
\echo :LAST_ERROR_SQLSTATE
SELECT coco.update('sec_m_fn');
\echo :LAST_ERROR_SQLSTATE
SET regress_coco.attack = 'temp';
SELECT coco.reconcile('sec_m_query');
\echo :LAST_ERROR_SQLSTATE
SELECT coco.update('sec_m_fn');
\echo :LAST_ERROR_SQLSTATE
SET regress_coco.attack = 'setrole';
SELECT coco.reconcile('sec_m_query');
\echo :LAST_ERROR_SQLSTATE
SELECT coco.update('sec_m_fn');
\echo :LAST_ERROR_SQLSTATE
RESET regress_coco.attack;
-- nothing happened: mallory is no superuser, alice's table is untouched,
-- no temp table, and the runs, harmless now, succeed
SELECT rolsuper FROM pg_roles WHERE rolname = 'regress_coco_mallory';
SELECT * FROM sec_alice.t ORDER BY id;
SELECT to_regclass('pg_temp.sec_evil_temp') AS evil_temp;
SELECT r->'inserted' AS inserted FROM coco.reconcile('sec_m_query') r;
SELECT r->'inserted' AS inserted FROM coco.update('sec_m_fn') r;
SELECT (SELECT count(*) FROM sec_mallory.q_out) AS q_rows, (SELECT count(*) FROM sec_mallory.fn_out) AS fn_rows,
       (SELECT tableowner FROM pg_tables WHERE schemaname = 'sec_mallory' AND tablename = 'q_out') AS q_owner,
       (SELECT tableowner FROM pg_tables WHERE schemaname = 'sec_mallory' AND tablename = 'fn_out') AS fn_owner;
-- the declaration function runs as the app owner even when called through
-- a superuser's coco.update: current_user inside is mallory
CREATE FUNCTION sec_mallory.whoami(app text) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
  PERFORM coco.declare_table(app, 'sec_mallory.who', '[{"name": "u", "type": "text"}]', '{u}');
  PERFORM coco.declare_row(app, 'sec_mallory.who', pg_catalog.jsonb_build_object('u', current_user));
END $$;
ALTER FUNCTION sec_mallory.whoami(text) OWNER TO regress_coco_mallory;
SET ROLE regress_coco_mallory;
SELECT coco.create_app('sec_m_who', 'sec_mallory.whoami(text)');
SELECT coco.declare_table('sec_m_query', 'sec_mallory.q_who', '[{"name": "u", "type": "text"}]', '{u}', component => '{who}');
SELECT coco.declare_rows('sec_m_query', 'sec_mallory.q_who', 'SELECT current_user::text AS u', '{who}');
RESET ROLE;
SELECT r->'inserted' AS inserted FROM coco.update('sec_m_who') r;
SELECT r->'inserted' AS inserted FROM coco.reconcile('sec_m_query') r;
SELECT * FROM sec_mallory.who;
SELECT * FROM sec_mallory.q_who;

-- ===========================================================================
-- 4. a hostile search_path is never used by the reconciler's statements
-- ===========================================================================
CREATE TABLE sec_mallory.called (what text);
CREATE TABLE sec_mallory.src (id int, v text, b bytea);
INSERT INTO sec_mallory.src VALUES (1, 'one', '\x01'), (2, 'two', '\x02');
ALTER TABLE sec_mallory.called OWNER TO regress_coco_mallory;
ALTER TABLE sec_mallory.src OWNER TO regress_coco_mallory;
SET ROLE regress_coco_mallory;
-- tables named like the bookkeeping
CREATE TABLE regress_coco_evil.app (x int);
CREATE TABLE regress_coco_evil.staged_row (x int);
CREATE TABLE regress_coco_evil.staged_state (x int);
CREATE TABLE regress_coco_evil.tracked_row (x int);
CREATE TABLE regress_coco_evil.target_state (x int);
-- functions named like the ones the reconciler uses; each records its call
CREATE FUNCTION regress_coco_evil.quote_ident(text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN INSERT INTO sec_mallory.called VALUES ('quote_ident'); RETURN pg_catalog.quote_ident($1); END $$;
CREATE FUNCTION regress_coco_evil.nextval(regclass) RETURNS bigint LANGUAGE plpgsql AS $$
BEGIN INSERT INTO sec_mallory.called VALUES ('nextval'); RETURN pg_catalog.nextval($1); END $$;
CREATE FUNCTION regress_coco_evil.jsonb_to_record(jsonb) RETURNS record LANGUAGE plpgsql AS $$
BEGIN INSERT INTO sec_mallory.called VALUES ('jsonb_to_record'); RAISE EXCEPTION 'evil jsonb_to_record'; END $$;
CREATE FUNCTION regress_coco_evil.row_key(VARIADIC int[]) RETURNS bytea LANGUAGE plpgsql AS $$
BEGIN INSERT INTO sec_mallory.called VALUES ('row_key'); RETURN '\x00'; END $$;
CREATE FUNCTION regress_coco_evil.count(anyelement) RETURNS bigint LANGUAGE plpgsql AS $$
BEGIN INSERT INTO sec_mallory.called VALUES ('count'); RETURN 0; END $$;
-- operators = and <> for bytea and integer (results correct, calls recorded)
CREATE FUNCTION regress_coco_evil.byteaeq(bytea, bytea) RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN INSERT INTO sec_mallory.called VALUES ('=(bytea,bytea)'); RETURN pg_catalog.byteaeq($1, $2); END $$;
CREATE FUNCTION regress_coco_evil.byteane(bytea, bytea) RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN INSERT INTO sec_mallory.called VALUES ('<>(bytea,bytea)'); RETURN pg_catalog.byteane($1, $2); END $$;
CREATE FUNCTION regress_coco_evil.int4eq(integer, integer) RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN INSERT INTO sec_mallory.called VALUES ('=(int,int)'); RETURN pg_catalog.int4eq($1, $2); END $$;
CREATE FUNCTION regress_coco_evil.int4ne(integer, integer) RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN INSERT INTO sec_mallory.called VALUES ('<>(int,int)'); RETURN pg_catalog.int4ne($1, $2); END $$;
CREATE FUNCTION regress_coco_evil.texteq(text, text) RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN INSERT INTO sec_mallory.called VALUES ('=(text,text)'); RETURN pg_catalog.texteq($1, $2); END $$;
CREATE OPERATOR regress_coco_evil.= (LEFTARG = bytea, RIGHTARG = bytea, FUNCTION = regress_coco_evil.byteaeq);
CREATE OPERATOR regress_coco_evil.<> (LEFTARG = bytea, RIGHTARG = bytea, FUNCTION = regress_coco_evil.byteane);
CREATE OPERATOR regress_coco_evil.= (LEFTARG = integer, RIGHTARG = integer, FUNCTION = regress_coco_evil.int4eq);
CREATE OPERATOR regress_coco_evil.<> (LEFTARG = integer, RIGHTARG = integer, FUNCTION = regress_coco_evil.int4ne);
CREATE OPERATOR regress_coco_evil.= (LEFTARG = text, RIGHTARG = text, FUNCTION = regress_coco_evil.texteq);

SET search_path = regress_coco_evil, public, pg_catalog;
SELECT coco.create_app('sec_m_evil');
-- round 1: a new table, rows from declare_row and from a query
SELECT coco.declare_table('sec_m_evil', 'sec_mallory.e',
  '[{"name": "id", "type": "int"}, {"name": "v", "type": "text"}, {"name": "b", "type": "bytea"}]', '{id}');
SELECT coco.declare_row('sec_m_evil', 'sec_mallory.e', '{"id": 10, "v": "ten", "b": "\\x0a"}', '{r}');
SELECT coco.declare_rows('sec_m_evil', 'sec_mallory.e', 'SELECT id, v, b FROM sec_mallory.src', '{q}');
SELECT r->'inserted' AS inserted FROM coco.reconcile('sec_m_evil') r;
-- round 2: the source changes, the rows are re-declared: the diff runs
TRUNCATE sec_mallory.src;
INSERT INTO sec_mallory.src VALUES (1, 'one', '\x01'), (2, 'TWO', '\x22'), (3, 'three', '\x03');
SELECT coco.declare_row('sec_m_evil', 'sec_mallory.e', '{"id": 10, "v": "TEN", "b": "\\x0a"}', '{r}');
SELECT coco.declare_rows('sec_m_evil', 'sec_mallory.e', 'SELECT id, v, b FROM sec_mallory.src', '{q}');
SELECT r->'inserted' AS inserted, r->'updated' AS updated, r->'unchanged' AS unchanged
  FROM coco.reconcile('sec_m_evil') r;
-- round 3: a lossy change (column type), one component cleared
SELECT coco.declare_table('sec_m_evil', 'sec_mallory.e',
  '[{"name": "id", "type": "int"}, {"name": "v", "type": "varchar(10)"}, {"name": "b", "type": "bytea"}]', '{id}');
SELECT coco.clear_component('sec_m_evil', '{r}');
SELECT coco.declare_rows('sec_m_evil', 'sec_mallory.e', 'SELECT id, v, b FROM sec_mallory.src', '{q}');
SELECT r->'inserted' AS inserted, r->'updated' AS updated, r->'deleted' AS deleted
  FROM coco.reconcile('sec_m_evil') r;
SELECT app, pending_declarations FROM coco.apps WHERE app OPERATOR(pg_catalog.=) 'sec_m_evil';
RESET search_path;
-- the results are right
SELECT * FROM sec_mallory.e ORDER BY id;
SELECT name, generation, schema_version FROM coco.target_states WHERE app OPERATOR(pg_catalog.=) 'sec_m_evil';
-- and none of mallory's objects was called.  (At the time of writing the
-- diff statement's "IS DISTINCT FROM" resolves = by search_path and calls
-- regress_coco_evil.=(bytea,bytea).)
SELECT what, count(*) FROM sec_mallory.called GROUP BY what ORDER BY what;
SELECT count(*) AS evil_calls FROM sec_mallory.called;
SET search_path = regress_coco_evil, public, pg_catalog;
SELECT coco.drop_app('sec_m_evil');
RESET search_path;
SELECT to_regclass('sec_mallory.e') AS e_after_drop;
SELECT count(*) AS evil_calls FROM sec_mallory.called;
RESET ROLE;

-- ===========================================================================
-- 5. hostile input
-- ===========================================================================
SET ROLE regress_coco_alice;
SELECT coco.create_app('sec_hostile');
SELECT coco.declare_table('sec_hostile', 'sec_alice.h',
  '[{"name": "id", "type": "int"}, {"name": "v", "type": "text"}]', '{id}');
SELECT coco.declare_row('sec_hostile', 'sec_alice.h', '{"id": 1, "v": "one"}');
SELECT r->'inserted' AS inserted FROM coco.reconcile('sec_hostile') r;
CREATE FUNCTION pg_temp.hostile_state() RETURNS TABLE (pending bigint, components bigint, cleared bigint, h_rows text)
LANGUAGE sql AS $$
  SELECT (SELECT pending_declarations FROM coco.apps WHERE app = 'sec_hostile'),
         (SELECT count(*) FROM coco.component c JOIN coco.app a USING (app_id) WHERE a.name = 'sec_hostile'),
         (SELECT count(*) FROM coco.cleared_component c JOIN coco.app a USING (app_id) WHERE a.name = 'sec_hostile'),
         (SELECT string_agg(id || '=' || v, ',' ORDER BY id) FROM sec_alice.h)
$$;
SELECT * FROM pg_temp.hostile_state();

-- app names
-- 1. empty: 42602
SELECT coco.create_app('');
\echo :LAST_ERROR_SQLSTATE
-- 2. 64 bytes: 42602
SELECT coco.create_app(repeat('a', 64));
\echo :LAST_ERROR_SQLSTATE
-- 3. 64 bytes (multibyte: 32 x 2 bytes): 42602
SELECT coco.create_app(repeat('é', 32));
\echo :LAST_ERROR_SQLSTATE
-- 4. 64 bytes, as the app of a declaration: 42602
SELECT coco.declare_row(repeat('a', 64), 'sec_alice.h', '{"id": 2}');
\echo :LAST_ERROR_SQLSTATE
-- 5. NULL: 22004
SELECT coco.create_app(NULL);
\echo :LAST_ERROR_SQLSTATE
-- 6. an app that does not exist: 42704
SELECT coco.reconcile('sec_hostile ');
\echo :LAST_ERROR_SQLSTATE

-- table names
-- 7. quotes and an injection: 42602
SELECT coco.declare_table('sec_hostile', 'sec_alice.h"; DROP TABLE sec_alice.h; --', '[{"name": "id", "type": "int"}]', '{id}');
\echo :LAST_ERROR_SQLSTATE
-- 8. a semicolon: 42602
SELECT coco.declare_row('sec_hostile', 'sec_alice.h;', '{"id": 2}');
\echo :LAST_ERROR_SQLSTATE
-- 9. a unicode look-alike (Cyrillic a): 42602
SELECT coco.declare_table('sec_hostile', 'sec_alice.tаble', '[{"name": "id", "type": "int"}]', '{id}');
\echo :LAST_ERROR_SQLSTATE
-- 10. NUL-ish escapes (a literal backslash-zero, a \u0000 spelling): 42602
SELECT coco.declare_table('sec_hostile', E'sec_alice.h\\0', '[{"name": "id", "type": "int"}]', '{id}');
\echo :LAST_ERROR_SQLSTATE
SELECT coco.declare_table('sec_hostile', 'sec_alice.h\u0000', '[{"name": "id", "type": "int"}]', '{id}');
\echo :LAST_ERROR_SQLSTATE
-- 11. a 64-byte table name: 42622
SELECT coco.declare_table('sec_hostile', 'sec_alice.' || repeat('t', 64), '[{"name": "id", "type": "int"}]', '{id}');
\echo :LAST_ERROR_SQLSTATE
-- 12. a 64-byte schema name: 42622
SELECT coco.declare_table('sec_hostile', repeat('s', 64) || '.h', '[{"name": "id", "type": "int"}]', '{id}');
\echo :LAST_ERROR_SQLSTATE
-- 13. a trailing newline: 42602
SELECT coco.declare_table('sec_hostile', E'sec_alice.h\n', '[{"name": "id", "type": "int"}]', '{id}');
\echo :LAST_ERROR_SQLSTATE
-- 14. a trailing space: 42602
SELECT coco.declare_row('sec_hostile', 'sec_alice.h ', '{"id": 2}');
\echo :LAST_ERROR_SQLSTATE
-- 15. dots: a.b.c, a leading dot, a trailing dot: 42602
SELECT coco.declare_table('sec_hostile', 'a.b.c', '[{"name": "id", "type": "int"}]', '{id}');
\echo :LAST_ERROR_SQLSTATE
SELECT coco.declare_table('sec_hostile', '.h', '[{"name": "id", "type": "int"}]', '{id}');
\echo :LAST_ERROR_SQLSTATE
SELECT coco.declare_table('sec_hostile', 'sec_alice.', '[{"name": "id", "type": "int"}]', '{id}');
\echo :LAST_ERROR_SQLSTATE
-- 16. already quoted: 42602
SELECT coco.declare_table('sec_hostile', '"sec_alice"."h"', '[{"name": "id", "type": "int"}]', '{id}');
\echo :LAST_ERROR_SQLSTATE

-- column names
-- 17. an injection: 42602
SELECT coco.declare_table('sec_hostile', 'sec_alice.h2', '[{"name": "id\"; DROP TABLE sec_alice.h; --", "type": "int"}]', '{id}');
\echo :LAST_ERROR_SQLSTATE
-- 18. a look-alike (dotless i): 42602
SELECT coco.declare_table('sec_hostile', 'sec_alice.h2', '[{"name": "ıd", "type": "int"}]', '{ıd}');
\echo :LAST_ERROR_SQLSTATE
-- 19. 64 bytes: 42622
SELECT coco.declare_table('sec_hostile', 'sec_alice.h2', jsonb_build_array(jsonb_build_object('name', repeat('c', 64), 'type', 'int')), ARRAY[repeat('c', 64)]);
\echo :LAST_ERROR_SQLSTATE
-- 20. 10 MB: 42622 (the error is not printed)
SELECT public.sec_sqlstate_of($$SELECT coco.declare_table('sec_hostile', 'sec_alice.h2', jsonb_build_array(jsonb_build_object('name', repeat('a', 10000000), 'type', 'int')), '{a}')$$) AS huge_column_name;
-- 21. NUL in a JSON string: jsonb refuses it, 22P05
SELECT coco.declare_table('sec_hostile', 'sec_alice.h2', '[{"name": "i\u0000d", "type": "int"}]', '{id}');
\echo :LAST_ERROR_SQLSTATE

-- type names
-- 22. an injection: 42601
SELECT coco.declare_table('sec_hostile', 'sec_alice.h2', '[{"name": "id", "type": "int; DROP TABLE sec_alice.h"}]', '{id}');
\echo :LAST_ERROR_SQLSTATE
-- 23. a stray parenthesis: 42601
SELECT coco.declare_table('sec_hostile', 'sec_alice.h2', '[{"name": "id", "type": "text)"}]', '{id}');
\echo :LAST_ERROR_SQLSTATE
-- 24. broken array brackets: 42601
SELECT coco.declare_table('sec_hostile', 'sec_alice.h2', '[{"name": "id", "type": "pg_catalog.int4[]]["}]', '{id}');
\echo :LAST_ERROR_SQLSTATE
-- 25. an unknown type: 42704
SELECT coco.declare_table('sec_hostile', 'sec_alice.h2', '[{"name": "id", "type": "no_such_type"}]', '{id}');
\echo :LAST_ERROR_SQLSTATE
-- 26. pseudo-types anyelement, record, trigger: 42P16
SELECT coco.declare_table('sec_hostile', 'sec_alice.h2', '[{"name": "id", "type": "anyelement"}]', '{id}');
\echo :LAST_ERROR_SQLSTATE
SELECT coco.declare_table('sec_hostile', 'sec_alice.h2', '[{"name": "id", "type": "record"}]', '{id}');
\echo :LAST_ERROR_SQLSTATE
SELECT coco.declare_table('sec_hostile', 'sec_alice.h2', '[{"name": "id", "type": "trigger"}]', '{id}');
\echo :LAST_ERROR_SQLSTATE
-- 27. a type given as a number: 22023
SELECT coco.declare_table('sec_hostile', 'sec_alice.h2', '[{"name": "id", "type": 23}]', '{id}');
\echo :LAST_ERROR_SQLSTATE

-- the shape of columns
-- 28. an object, not an array: 22023
SELECT coco.declare_table('sec_hostile', 'sec_alice.h2', '{"name": "id", "type": "int"}', '{id}');
\echo :LAST_ERROR_SQLSTATE
-- 29. a scalar: 22023
SELECT coco.declare_table('sec_hostile', 'sec_alice.h2', '"id int"', '{id}');
\echo :LAST_ERROR_SQLSTATE
-- 30. empty: 22023
SELECT coco.declare_table('sec_hostile', 'sec_alice.h2', '[]', '{id}');
\echo :LAST_ERROR_SQLSTATE
-- 31. nested 200 levels deep: 22023
SELECT coco.declare_table('sec_hostile', 'sec_alice.h2', (repeat('[', 200) || repeat(']', 200))::jsonb, '{id}');
\echo :LAST_ERROR_SQLSTATE
-- 32. an object nested 200 levels deep as the column: 22023
SELECT coco.declare_table('sec_hostile', 'sec_alice.h2', ('[' || repeat('{"name": ', 200) || '"id"' || repeat('}', 200) || ']')::jsonb, '{id}');
\echo :LAST_ERROR_SQLSTATE
-- 33. nullable not a boolean: 22023
SELECT coco.declare_table('sec_hostile', 'sec_alice.h2', '[{"name": "id", "type": "int", "nullable": "yes"}]', '{id}');
\echo :LAST_ERROR_SQLSTATE
-- 34. an unknown field: 22023
SELECT coco.declare_table('sec_hostile', 'sec_alice.h2', '[{"name": "id", "type": "int", "default": "now()"}]', '{id}');
\echo :LAST_ERROR_SQLSTATE
-- 35. managed_by neither system nor user: 22023
SELECT coco.declare_table('sec_hostile', 'sec_alice.h2', '[{"name": "id", "type": "int"}]', '{id}', 'superuser');
\echo :LAST_ERROR_SQLSTATE
-- 36. a primary key naming no column: 42703
SELECT coco.declare_table('sec_hostile', 'sec_alice.h2', '[{"name": "id", "type": "int"}]', '{"id; DROP TABLE sec_alice.h"}');
\echo :LAST_ERROR_SQLSTATE
-- 37. a primary key with a NULL, two-dimensional: 42P16
SELECT coco.declare_table('sec_hostile', 'sec_alice.h2', '[{"name": "id", "type": "int"}]', '{id,NULL}');
\echo :LAST_ERROR_SQLSTATE
SELECT coco.declare_table('sec_hostile', 'sec_alice.h2', '[{"name": "id", "type": "int"}]', '{{id},{id}}');
\echo :LAST_ERROR_SQLSTATE
-- 38. duplicate keys in a column object: jsonb keeps the last one, so this
-- declares column "k" (and "id" is no column): sane, and checked as usual
SELECT '[{"name": "id", "name": "k", "type": "int"}]'::jsonb AS dup_keys;
SELECT coco.declare_table('sec_hostile', 'sec_alice.h2', '[{"name": "id", "name": "k", "type": "int"}]', '{id}');
\echo :LAST_ERROR_SQLSTATE
BEGIN;
SELECT coco.declare_table('sec_hostile', 'sec_alice.h2', '[{"name": "id", "name": "k", "type": "int"}]', '{k}');
SELECT s.spec->'columns' AS columns, s.spec->'primary_key' AS pk
  FROM coco.staged_state s JOIN coco.app a USING (app_id) WHERE a.name = 'sec_hostile';
ROLLBACK;

-- rows
-- 39. not an object: 22023
SELECT coco.declare_row('sec_hostile', 'sec_alice.h', '[2, "two"]');
\echo :LAST_ERROR_SQLSTATE
-- 40. a string for an integer: 22P02
SELECT coco.declare_row('sec_hostile', 'sec_alice.h', '{"id": "abc"}');
\echo :LAST_ERROR_SQLSTATE
-- 41. an array for an integer: 22P02
SELECT coco.declare_row('sec_hostile', 'sec_alice.h', '{"id": [2]}');
\echo :LAST_ERROR_SQLSTATE
-- 42. an object for an integer: 22P02
SELECT coco.declare_row('sec_hostile', 'sec_alice.h', '{"id": {"x": 2}}');
\echo :LAST_ERROR_SQLSTATE
-- 43. a boolean for an integer: 22P02
SELECT coco.declare_row('sec_hostile', 'sec_alice.h', '{"id": true}');
\echo :LAST_ERROR_SQLSTATE
-- 44. a fraction for an integer: 22P02
SELECT coco.declare_row('sec_hostile', 'sec_alice.h', '{"id": 1.5}');
\echo :LAST_ERROR_SQLSTATE
-- 45. out of range: 22003
SELECT coco.declare_row('sec_hostile', 'sec_alice.h', '{"id": 99999999999}');
\echo :LAST_ERROR_SQLSTATE
-- 46. a null key: 23502
SELECT coco.declare_row('sec_hostile', 'sec_alice.h', '{"id": null, "v": "x"}');
\echo :LAST_ERROR_SQLSTATE
-- 47. an unknown column with an injection in its name: 42703
SELECT coco.declare_row('sec_hostile', 'sec_alice.h', '{"id": 2, "v\"; DROP TABLE sec_alice.h; --": 1}');
\echo :LAST_ERROR_SQLSTATE
-- 48. a row deeply nested in a text column is a value, not structure: fine
-- (staged in a transaction rolled back)
BEGIN;
SELECT coco.declare_row('sec_hostile', 'sec_alice.h', jsonb_build_object('id', 2, 'v', (repeat('[', 200) || repeat(']', 200))::jsonb));
ROLLBACK;

-- declare_rows queries
-- 49. two statements: 42809
SELECT coco.declare_rows('sec_hostile', 'sec_alice.h', 'SELECT 2 AS id; DROP TABLE sec_alice.h');
\echo :LAST_ERROR_SQLSTATE
-- 50. breaking out of the subquery: 42601
SELECT coco.declare_rows('sec_hostile', 'sec_alice.h', 'SELECT 2 AS id) u) x; DROP TABLE sec_alice.h; --');
\echo :LAST_ERROR_SQLSTATE
-- 51. a write, a data-modifying WITH, a row lock: 42809
SELECT coco.declare_rows('sec_hostile', 'sec_alice.h', 'DELETE FROM sec_alice.h RETURNING id');
\echo :LAST_ERROR_SQLSTATE
SELECT coco.declare_rows('sec_hostile', 'sec_alice.h', 'WITH d AS (DELETE FROM sec_alice.h RETURNING id) SELECT id FROM d');
\echo :LAST_ERROR_SQLSTATE
SELECT coco.declare_rows('sec_hostile', 'sec_alice.h', 'SELECT id FROM sec_alice.h FOR UPDATE');
\echo :LAST_ERROR_SQLSTATE
-- 52. empty, or only semicolons: 22023
SELECT coco.declare_rows('sec_hostile', 'sec_alice.h', ' ;; ');
\echo :LAST_ERROR_SQLSTATE
-- 53. a trailing comment cannot swallow the reconciler's SQL: fine
-- (staged in a transaction rolled back)
BEGIN;
SELECT coco.declare_rows('sec_hostile', 'sec_alice.h', 'SELECT 2 AS id -- ) x WHERE false');
ROLLBACK;

-- components
-- 54. a NULL element: 22004
SELECT coco.declare_row('sec_hostile', 'sec_alice.h', '{"id": 2}', '{a,NULL}');
\echo :LAST_ERROR_SQLSTATE
-- 55. two dimensions: 2202E
SELECT coco.declare_row('sec_hostile', 'sec_alice.h', '{"id": 2}', '{{a},{b}}');
\echo :LAST_ERROR_SQLSTATE
SELECT coco.clear_component('sec_hostile', '{{a},{b}}');
\echo :LAST_ERROR_SQLSTATE
-- 56. NULL: 22004
SELECT coco.clear_component('sec_hostile', NULL);
\echo :LAST_ERROR_SQLSTATE

-- stable keys
-- 57. nested 100 levels deep: 22023
SELECT coco.key_from_jsonb((repeat('[', 100) || repeat(']', 100))::jsonb);
\echo :LAST_ERROR_SQLSTATE
-- 58. not an integer: 22023
SELECT coco.key_from_jsonb('1.5');
\echo :LAST_ERROR_SQLSTATE
SELECT coco.key_from_jsonb('[1, 1e-3]');
\echo :LAST_ERROR_SQLSTATE
-- 59. out of bigint range: 22003
SELECT coco.key_from_jsonb('1e30');
\echo :LAST_ERROR_SQLSTATE
-- 60. an object with two fields: 22023
SELECT coco.key_from_jsonb('{"uuid": "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11", "bytes": "\\x00"}');
\echo :LAST_ERROR_SQLSTATE
-- 61. an unknown tag: 22023
SELECT coco.key_from_jsonb('{"table": "sec_alice.h"}');
\echo :LAST_ERROR_SQLSTATE
-- 62. a tag whose value is not a string: 22023
SELECT coco.key_from_jsonb('{"uuid": 42}');
\echo :LAST_ERROR_SQLSTATE
-- 63. an invalid uuid: 22P02
SELECT coco.key_from_jsonb('{"uuid": "not-a-uuid"}');
\echo :LAST_ERROR_SQLSTATE
-- 64. invalid bytes text: 22023 (bytea's own error)
SELECT coco.key_from_jsonb('{"bytes": "\\xZZ"}');
\echo :LAST_ERROR_SQLSTATE
-- 65. undecodable bytes: 22P03 (invalid binary representation), never a crash
SELECT coco.key_to_jsonb(decode('ff00ff', 'hex'));
\echo :LAST_ERROR_SQLSTATE
SELECT coco.key_to_jsonb('\x');
\echo :LAST_ERROR_SQLSTATE
SELECT coco.key_to_jsonb('\x10');
\echo :LAST_ERROR_SQLSTATE
SELECT coco.key_to_jsonb('\x2061');
\echo :LAST_ERROR_SQLSTATE
SELECT coco.key_to_jsonb('\x6001');
\echo :LAST_ERROR_SQLSTATE
SELECT coco.key_to_jsonb('\x0100');
\echo :LAST_ERROR_SQLSTATE
SELECT coco.key_to_jsonb(decode(repeat('60', 100) || repeat('00', 100), 'hex'));
\echo :LAST_ERROR_SQLSTATE
-- 66. a string item that is not valid UTF-8 is not a valid encoding
-- either: 22P03, not a jsonb holding invalid text.  (At the time of writing
-- both are accepted.)
SELECT public.sec_sqlstate_of($$SELECT coco.key_to_jsonb('\x20ff0000'::bytea)$$) AS invalid_utf8_key;
-- nor is a string item holding a NUL (text cannot): 22P03, not the
-- spelling of another key ("" is the empty string's)
SELECT public.sec_sqlstate_of($$SELECT coco.key_to_jsonb('\x2000ff0000'::bytea)$$) AS nul_in_string_key;
-- 67. every prefix of a valid key, and 300 pseudo-random byte strings:
-- each decodes or is refused with 22P03
SELECT public.sec_sqlstate_of(format('SELECT coco.key_to_jsonb(%L::bytea)',
         substr(coco.row_key(42, 'abc'::text, '\x00ff'::bytea, 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11'::uuid, true), 1, n))) AS sqlstate,
       count(*)
  FROM generate_series(0, length(coco.row_key(42, 'abc'::text, '\x00ff'::bytea, 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11'::uuid, true)) - 1) n
 GROUP BY 1 ORDER BY 1;
SELECT public.sec_sqlstate_of(format('SELECT coco.key_to_jsonb(%L::bytea)',
         decode(substr(md5(i::text) || md5((i * 7)::text), 1, 2 + (i % 15) * 2), 'hex'))) AS sqlstate,
       count(*) > 0 AS seen
  FROM generate_series(1, 300) i
 GROUP BY 1 ORDER BY 1;

-- nothing was staged, nothing changed, the server is alive
SELECT * FROM pg_temp.hostile_state();
SELECT 1 AS alive;
SELECT coco.drop_app('sec_hostile');
SELECT coco.drop_app('sec_alice_app');
RESET ROLE;

-- ===========================================================================
-- clean up
-- ===========================================================================
SELECT coco.drop_app('sec_m_query');
SELECT coco.drop_app('sec_m_fn');
SELECT coco.drop_app('sec_m_who');
SELECT count(*) AS apps_left FROM coco.app a JOIN pg_roles r ON r.oid = a.owner
 WHERE r.rolname IN ('regress_coco_alice', 'regress_coco_bob', 'regress_coco_mallory');
DROP FUNCTION public.sec_sqlstate_of(text);
DROP FUNCTION public.sec_visible();
DROP SCHEMA sec_alice, sec_mallory, regress_coco_evil CASCADE;
DROP OWNED BY regress_coco_alice, regress_coco_bob, regress_coco_mallory;
DROP ROLE regress_coco_bob;
DROP ROLE regress_coco_alice;
DROP ROLE regress_coco_mallory;
