-- 31_sync_table: coco.sync_table — a derived table declared once from its
-- query, kept by the app and re-evaluated by every run.
--   1. inference: types with typmods, a domain, NOT NULL only where provable;
--   2. the same table as declare_table + declare_rows would make it, through
--      a changed query: column added, type changed, column dropped, key changed;
--   3. every run re-evaluates: reconcile with nothing staged, update, worker;
--   4. indexes and sql_commands through options; column overrides;
--   5. unsync_table, plan, drop_app;
--   6. refusals and a hostile caller.
\set VERBOSITY default
SET client_min_messages = warning;
DROP ROLE IF EXISTS regress_sync_owner;
DROP ROLE IF EXISTS regress_sync_stranger;
RESET client_min_messages;
CREATE ROLE regress_sync_owner;
CREATE ROLE regress_sync_stranger;
CREATE SCHEMA sync AUTHORIZATION regress_sync_owner;
SET ROLE regress_sync_owner;
SET search_path = sync, public;

CREATE DOMAIN posint AS integer CHECK (VALUE > 0);
CREATE TABLE author (id bigint PRIMARY KEY, name text NOT NULL);
CREATE TABLE src (
    id        bigint PRIMARY KEY,
    price     numeric(10,2) NOT NULL,
    title     varchar(20),
    tags      text[],
    doc       jsonb,
    at        timestamptz NOT NULL DEFAULT '2026-01-01 00:00+00',
    n         posint,
    author_id bigint
);
INSERT INTO author VALUES (1, 'ann');
INSERT INTO src (id, price, title, tags, doc, n, author_id) VALUES
    (1, 1.50, 'one', '{a,b}', '{"k": 1}', 3, 1),
    (2, 2.25, NULL, NULL, NULL, NULL, NULL);

-- the columns of a table as the catalog has them
CREATE FUNCTION cols(t regclass) RETURNS TABLE (attname name, type text, notnull boolean)
LANGUAGE sql AS $$
  SELECT attname, format_type(atttypid, atttypmod), attnotnull FROM pg_attribute
   WHERE attrelid = t AND attnum > 0 AND NOT attisdropped ORDER BY attnum
$$;
-- the columns of two tables that differ (none: the same table)
CREATE FUNCTION cols_differ(a regclass, b regclass) RETURNS TABLE (side text, attname name, type text, notnull boolean)
LANGUAGE sql AS $$
  (SELECT 'only ' || a::text, * FROM cols(a) EXCEPT SELECT 'only ' || a::text, * FROM cols(b))
  UNION ALL
  (SELECT 'only ' || b::text, * FROM cols(b) EXCEPT SELECT 'only ' || b::text, * FROM cols(a))
$$;

-- 1. inference ----------------------------------------------------------------
SELECT coco.create_app('syncapp');
SELECT jsonb_pretty(coco.sync_table('syncapp', 'sync.docs', $q$
    SELECT d.id, d.price, d.title, d.tags, d.doc, d.at, d.n,
           a.name AS author,          -- NOT NULL in author, but through a LEFT JOIN
           d.price * 2 AS dbl         -- an expression
      FROM src d LEFT JOIN author a ON a.id = d.author_id
$q$, '{id}'));
-- a registration, nothing staged (every run stages it afresh)
SELECT app, "table", component, primary_key, options FROM coco.synced_tables;
SELECT count(*) AS staged FROM coco.staged WHERE app = 'syncapp';
SELECT coco.reconcile('syncapp')->'inserted' AS inserted;
SELECT * FROM cols('docs');
SELECT id, price, title, tags, doc, n, author, dbl FROM docs ORDER BY id;
-- a key from an expression is NOT NULL; a NOT NULL column through a view too
CREATE VIEW src_v AS SELECT id, price FROM src;
SELECT coco.sync_table('syncapp', 'sync.keyed', 'SELECT id + 0 AS k, price FROM src_v', '{k}');
SELECT coco.reconcile('syncapp')->'providers'->'postgres.table' AS tables;
SELECT * FROM cols('keyed');

-- 2. the same as declare_table + declare_rows, through every change -------------
SELECT coco.create_app('handapp');
SELECT coco.declare_table('handapp', 'sync.docs_hand', $j$[
    {"name": "id", "type": "bigint", "nullable": false},
    {"name": "price", "type": "numeric(10,2)", "nullable": false},
    {"name": "title", "type": "varchar(20)"},
    {"name": "tags", "type": "text[]"},
    {"name": "doc", "type": "jsonb"},
    {"name": "at", "type": "timestamptz", "nullable": false},
    {"name": "n", "type": "sync.posint"},
    {"name": "author", "type": "text"},
    {"name": "dbl", "type": "numeric"}]$j$, '{id}');
SELECT coco.declare_rows('handapp', 'sync.docs_hand', $q$
    SELECT d.id, d.price, d.title, d.tags, d.doc, d.at, d.n, a.name AS author, d.price * 2 AS dbl
      FROM src d LEFT JOIN author a ON a.id = d.author_id$q$);
SELECT coco.reconcile('handapp')->'inserted' AS inserted;
SELECT * FROM cols_differ('docs', 'docs_hand');
SELECT 'docs'::regclass::oid AS docs_oid \gset

-- 2a. a column added: ALTER TABLE ADD, same table, rows kept
SELECT coco.sync_table('syncapp', 'sync.docs', $q$
    SELECT d.id, d.price, d.title, d.tags, d.doc, d.at, d.n, a.name AS author, d.price * 2 AS dbl,
           d.author_id
      FROM src d LEFT JOIN author a ON a.id = d.author_id$q$, '{id}') -> -1 AS added;
SELECT coco.reconcile('syncapp')->'providers'->'postgres.table' AS tables;
SELECT 'docs'::regclass::oid = :docs_oid AS same_table, count(*) AS rows FROM docs;
SELECT coco.declare_table('handapp', 'sync.docs_hand', $j$[
    {"name": "id", "type": "bigint", "nullable": false},
    {"name": "price", "type": "numeric(10,2)", "nullable": false},
    {"name": "title", "type": "varchar(20)"},
    {"name": "tags", "type": "text[]"},
    {"name": "doc", "type": "jsonb"},
    {"name": "at", "type": "timestamptz", "nullable": false},
    {"name": "n", "type": "sync.posint"},
    {"name": "author", "type": "text"},
    {"name": "dbl", "type": "numeric"},
    {"name": "author_id", "type": "bigint"}]$j$, '{id}');
SELECT coco.declare_rows('handapp', 'sync.docs_hand', $q$
    SELECT d.id, d.price, d.title, d.tags, d.doc, d.at, d.n, a.name AS author, d.price * 2 AS dbl,
           d.author_id
      FROM src d LEFT JOIN author a ON a.id = d.author_id$q$);
SELECT coco.reconcile('handapp')->'providers'->'postgres.table' AS tables;
SELECT * FROM cols_differ('docs', 'docs_hand');

-- 2b. a type changed (numeric(10,2) -> numeric(12,3)), 2c. a column dropped (tags)
SELECT coco.sync_table('syncapp', 'sync.docs', $q$
    SELECT d.id, d.price::numeric(12,3) AS price, d.title, d.doc, d.at, d.n, a.name AS author,
           d.price * 2 AS dbl, d.author_id
      FROM src d LEFT JOIN author a ON a.id = d.author_id$q$, '{id}') -> 1 AS price;
SELECT coco.reconcile('syncapp')->'providers'->'postgres.table' AS tables;
SELECT 'docs'::regclass::oid = :docs_oid AS same_table;
SELECT id, price FROM docs ORDER BY id;
SELECT coco.declare_table('handapp', 'sync.docs_hand', $j$[
    {"name": "id", "type": "bigint", "nullable": false},
    {"name": "price", "type": "numeric(12,3)"},
    {"name": "title", "type": "varchar(20)"},
    {"name": "doc", "type": "jsonb"},
    {"name": "at", "type": "timestamptz", "nullable": false},
    {"name": "n", "type": "sync.posint"},
    {"name": "author", "type": "text"},
    {"name": "dbl", "type": "numeric"},
    {"name": "author_id", "type": "bigint"}]$j$, '{id}');
SELECT coco.declare_rows('handapp', 'sync.docs_hand', $q$
    SELECT d.id, d.price::numeric(12,3) AS price, d.title, d.doc, d.at, d.n, a.name AS author,
           d.price * 2 AS dbl, d.author_id
      FROM src d LEFT JOIN author a ON a.id = d.author_id$q$);
SELECT coco.reconcile('handapp')->'providers'->'postgres.table' AS tables;
SELECT * FROM cols_differ('docs', 'docs_hand');

-- 2d. the key changed: the table is rebuilt
SELECT coco.sync_table('syncapp', 'sync.docs', $q$
    SELECT d.id, d.price::numeric(12,3) AS price, d.title, d.doc, d.at, d.n, a.name AS author,
           d.price * 2 AS dbl, d.author_id
      FROM src d LEFT JOIN author a ON a.id = d.author_id$q$, '{id,at}') -> 4 AS at;
SELECT coco.reconcile('syncapp')->'providers'->'postgres.table' AS tables;
SELECT 'docs'::regclass::oid = :docs_oid AS same_table, count(*) AS rows FROM docs;
SELECT coco.declare_table('handapp', 'sync.docs_hand', $j$[
    {"name": "id", "type": "bigint", "nullable": false},
    {"name": "price", "type": "numeric(12,3)"},
    {"name": "title", "type": "varchar(20)"},
    {"name": "doc", "type": "jsonb"},
    {"name": "at", "type": "timestamptz", "nullable": false},
    {"name": "n", "type": "sync.posint"},
    {"name": "author", "type": "text"},
    {"name": "dbl", "type": "numeric"},
    {"name": "author_id", "type": "bigint"}]$j$, '{id,at}');
SELECT coco.declare_rows('handapp', 'sync.docs_hand', $q$
    SELECT d.id, d.price::numeric(12,3) AS price, d.title, d.doc, d.at, d.n, a.name AS author,
           d.price * 2 AS dbl, d.author_id
      FROM src d LEFT JOIN author a ON a.id = d.author_id$q$);
SELECT coco.reconcile('handapp')->'providers'->'postgres.table' AS tables;
SELECT * FROM cols_differ('docs', 'docs_hand');
SELECT (SELECT array_agg(attname ORDER BY attname) FROM pg_index i
          JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY (i.indkey)
         WHERE i.indrelid = 'docs'::regclass AND i.indisprimary) AS docs_key;
SELECT coco.drop_app('handapp');

-- 3. every run re-evaluates the query ----------------------------------------
-- a source change, and a reconcile with nothing staged
UPDATE src SET title = 'uno' WHERE id = 1;
SELECT count(*) AS staged FROM coco.staged WHERE app = 'syncapp';
SELECT coco.reconcile('syncapp')->'providers'->'postgres.row' AS rows;
SELECT title FROM docs WHERE id = 1;
-- a source column's type changed: the derived table follows
ALTER TABLE src ALTER COLUMN title TYPE varchar(40);
SELECT coco.reconcile('syncapp')->'providers'->'postgres.table' AS tables;
SELECT type FROM cols('docs') WHERE attname = 'title';
-- coco.plan shows what the next run does, and stages nothing
INSERT INTO src (id, price) VALUES (3, 3);
SELECT provider, action, detail->'insert' AS inserts FROM coco.plan('syncapp') WHERE provider = 'postgres.row';
SELECT count(*) AS staged FROM coco.staged WHERE app = 'syncapp';
-- a worker run
SELECT coco.submit('syncapp') AS run_id \gset
SELECT coco.wait(:run_id, '60s') - 'targets' AS status;  -- the breakdown's times vary
SELECT count(*) AS rows FROM docs;
-- coco.update of an app of synced tables alone: they are all it declares
-- (a full run), no declaration function needed
UPDATE src SET title = 'one again' WHERE id = 1;
SELECT coco.update('syncapp')->'providers'->'postgres.row'->'updated' AS updated;
SELECT title FROM docs WHERE id = 1;
-- coco.update of an app with a declaration function: both
CREATE TABLE note (id int PRIMARY KEY, body text);
INSERT INTO note VALUES (1, 'n1');
CREATE FUNCTION declare_notes(app text) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    PERFORM coco.declare_table(app, 'sync.notes_out', '[{"name": "id", "type": "integer"}, {"name": "body", "type": "text"}]', '{id}');
    PERFORM coco.declare_rows(app, 'sync.notes_out', 'SELECT id, body FROM sync.note');
END $$;
SELECT coco.create_app('updapp', 'declare_notes(text)'::regprocedure);
SELECT coco.sync_table('updapp', 'sync.note_copy', 'SELECT id, upper(body) AS body FROM note', '{id}') IS NOT NULL AS synced;
SELECT coco.update('updapp')->'providers'->'postgres.table' AS tables;
UPDATE note SET body = 'n1 changed';
SELECT coco.update('updapp')->'providers'->'postgres.row' AS rows;
SELECT (SELECT body FROM notes_out) AS declared, (SELECT body FROM note_copy) AS synced;
SELECT coco.drop_app('updapp');
SELECT to_regclass('sync.note_copy') AS note_copy_after_drop, count(*) AS registrations
  FROM coco.synced_tables WHERE app = 'updapp';

-- a run that leaves components stale: its second pass (the declaration
-- function, and the synced tables again) gives them their values back
CREATE TABLE stale_src (id int PRIMARY KEY, v text);
INSERT INTO stale_src VALUES (1, 'a');
CREATE FUNCTION declare_extra(app text) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    PERFORM coco.declare_row(app, 'sync.staler', '{"id": 100, "v": "extra"}', '{extra}');
END $$;
SELECT coco.create_app('staleapp', 'declare_extra(text)'::regprocedure);
SELECT coco.sync_table('staleapp', 'sync.staler', 'SELECT id, v FROM stale_src', '{id}') IS NOT NULL AS synced;
SELECT coco.update('staleapp')->'providers'->'postgres.row'->'inserted' AS inserted;
-- the plan of the next coco.update: the synced table and the declaration
-- function's rows, nothing staged afterwards
UPDATE stale_src SET v = 'b';
SELECT provider, action, detail->'update' AS updates
  FROM coco.plan('staleapp', "update" => true) WHERE provider = 'postgres.row';
SELECT count(*) AS staged FROM coco.staged WHERE app = 'staleapp';
-- a lossy change (a type changed) declared by the synced table alone
SELECT coco.sync_table('staleapp', 'sync.staler', 'SELECT id, v::varchar(10) AS v FROM stale_src', '{id}') IS NOT NULL AS synced;
SELECT r->'passes' AS passes, r->'stale_components' AS stale, r->'providers'->'postgres.row' AS rows
  FROM coco.reconcile('staleapp') r;
SELECT * FROM staler ORDER BY id;
SELECT type FROM cols('staler') WHERE attname = 'v';
SELECT coco.drop_app('staleapp');

-- 4. indexes, sql_commands and column overrides -------------------------------
SELECT coco.sync_table('syncapp', 'sync.docs', 'SELECT id, price, title, n FROM src', '{id}', $o$
    {"indexes": {"by_title": {"columns": ["title"]},
                 "by_price": {"columns": ["price"], "unique": true, "where": "price > 0"}},
     "sql_commands": {"view": {"setup": "CREATE VIEW sync.docs_v AS SELECT id FROM sync.docs",
                               "teardown": "DROP VIEW sync.docs_v"}},
     "columns": {"n": {"type": "bigint", "nullable": true}, "title": {"type": "text"}}}$o$) AS columns;
SELECT coco.reconcile('syncapp')->'providers' ? 'postgres.index' AS has_indexes;
SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'docs' ORDER BY 1;
SELECT to_regclass('sync.docs_v') IS NOT NULL AS view_made;
SELECT * FROM cols('docs');
-- an index changed, one removed, the sql_command removed
SELECT coco.sync_table('syncapp', 'sync.docs', 'SELECT id, price, title, n FROM src', '{id}', $o$
    {"indexes": {"by_title": {"columns": ["title"], "method": "hash"}}}$o$) IS NOT NULL AS synced;
SELECT coco.reconcile('syncapp') IS NOT NULL AS reconciled;
SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'docs' ORDER BY 1;
SELECT to_regclass('sync.docs_v') AS view_after;
-- managed_by user: the table is the user's, the rows the app's
CREATE TABLE mine (id bigint PRIMARY KEY, price numeric(10,2) NOT NULL);
SELECT coco.sync_table('syncapp', 'sync.mine', 'SELECT id, price FROM src', '{id}', '{"managed_by": "user"}') IS NOT NULL AS synced;
SELECT coco.reconcile('syncapp') IS NOT NULL AS reconciled;
SELECT count(*) AS mine_rows FROM mine;

-- 5. unsync_table: the next run drops the table -------------------------------
SELECT coco.unsync_table('syncapp', 'sync.keyed');
SELECT component, cleared FROM coco.staged WHERE app = 'syncapp';
SELECT to_regclass('sync.keyed') IS NOT NULL AS keyed_before_run;
SELECT coco.reconcile('syncapp')->'providers'->'postgres.table'->'deleted' AS tables_deleted;
SELECT to_regclass('sync.keyed') AS keyed_after_run;
SELECT "table" FROM coco.synced_tables ORDER BY 1;

-- 6. refusals ----------------------------------------------------------------
\set VERBOSITY sqlstate
-- the synced component takes nothing else
SELECT coco.declare_table('syncapp', 'sync.x', '[{"name": "id", "type": "integer"}]', '{id}', 'system', '{sync.docs}');
SELECT coco.declare_row('syncapp', 'sync.docs', '{"id": 9, "price": 1}', '{sync.docs}');
SELECT coco.declare_rows('syncapp', 'sync.docs', 'SELECT 9::bigint AS id', '{sync.docs}');
SELECT coco.declare_index('syncapp', 'sync.docs', 'i', '{id}', 'btree', NULL, '{sync.docs}');
SELECT coco.declare_sql_command('syncapp', 'sync.docs', 'c', 'SELECT 1', NULL, '{sync.docs}');
SELECT coco.clear_component('syncapp', '{sync.docs}');
\set VERBOSITY default
SELECT coco.clear_component('syncapp', '{sync.docs}');
\set VERBOSITY sqlstate
-- a component that holds something else cannot be taken
SELECT coco.declare_table('syncapp', 'sync.other', '[{"name": "id", "type": "integer"}]', '{id}', 'system', '{busy}');
SELECT coco.sync_table('syncapp', 'sync.taker', 'SELECT 1 AS id', '{id}', '{}', '{busy}');
SELECT coco.sync_table('syncapp', 'sync.taker', 'SELECT 1 AS id', '{id}', '{}', '{sync.docs}');
\set VERBOSITY default
SELECT coco.sync_table('syncapp', 'sync.taker', 'SELECT 1 AS id', '{id}', '{}', '{busy}');
SELECT coco.clear_component('syncapp', '{busy}');
\set VERBOSITY sqlstate
-- from a declaration function
CREATE FUNCTION declare_sync(app text) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    PERFORM coco.sync_table(app, 'sync.nested', 'SELECT 1 AS id', '{id}');
END $$;
CREATE FUNCTION declare_unsync(app text) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    PERFORM coco.unsync_table(app, 'sync.docs');
END $$;
SELECT coco.create_app('nestapp', 'declare_sync(text)'::regprocedure);
SELECT coco.update('nestapp');
\set VERBOSITY default
SELECT coco.update('nestapp');
SELECT coco.create_app('nestapp2', 'declare_unsync(text)'::regprocedure);
SELECT coco.update('nestapp2');
\set VERBOSITY sqlstate
-- the query: not a read-only SELECT, no name, a pseudo-type, empty
SELECT coco.sync_table('syncapp', 'sync.bad', 'DELETE FROM src RETURNING id', '{id}');
SELECT coco.sync_table('syncapp', 'sync.bad', 'SELECT id FROM src FOR UPDATE', '{id}');
SELECT coco.sync_table('syncapp', 'sync.bad', 'WITH d AS (DELETE FROM src RETURNING id) SELECT id FROM d', '{id}');
SELECT coco.sync_table('syncapp', 'sync.bad', 'SELECT id FROM src; SELECT 1', '{id}');
SELECT coco.sync_table('syncapp', 'sync.bad', 'SELECT id, 1 FROM src', '{id}');
SELECT coco.sync_table('syncapp', 'sync.bad', 'SELECT id, row(1, 2) AS r FROM src', '{id}');
SELECT coco.sync_table('syncapp', 'sync.bad', '  ;  ', '{id}');
SELECT coco.sync_table('syncapp', 'sync.bad', 'SELECT id FROM no_such_table', '{id}');
-- the key: absent, twice, empty, a type that cannot be a key
SELECT coco.sync_table('syncapp', 'sync.bad', 'SELECT id FROM src', '{nope}');
SELECT coco.sync_table('syncapp', 'sync.bad', 'SELECT id FROM src', '{id,id}');
SELECT coco.sync_table('syncapp', 'sync.bad', 'SELECT id FROM src', '{}');
SELECT coco.sync_table('syncapp', 'sync.bad', 'SELECT id, doc FROM src', '{doc}');
-- options
SELECT coco.sync_table('syncapp', 'sync.bad', 'SELECT id FROM src', '{id}', '{"bogus": 1}');
SELECT coco.sync_table('syncapp', 'sync.bad', 'SELECT id FROM src', '{id}', '[]');
SELECT coco.sync_table('syncapp', 'sync.bad', 'SELECT id FROM src', '{id}', '{"managed_by": "nobody"}');
SELECT coco.sync_table('syncapp', 'sync.bad', 'SELECT id FROM src', '{id}', '{"protect": "yes"}');
SELECT coco.sync_table('syncapp', 'sync.bad', 'SELECT id FROM src', '{id}', '{"columns": {"zz": {"type": "int"}}}');
SELECT coco.sync_table('syncapp', 'sync.bad', 'SELECT id FROM src', '{id}', '{"columns": {"id": {"typo": "int"}}}');
SELECT coco.sync_table('syncapp', 'sync.bad', 'SELECT id FROM src', '{id}', '{"columns": {"id": {"type": "no_such_type"}}}');
SELECT coco.sync_table('syncapp', 'sync.bad', 'SELECT id FROM src', '{id}', '{"indexes": {"i": {"columns": ["nope"]}}}');
SELECT coco.sync_table('syncapp', 'sync.bad', 'SELECT id FROM src', '{id}', '{"indexes": {"i": {"columns": ["id"], "method": "nope"}}}');
SELECT coco.sync_table('syncapp', 'sync.bad', 'SELECT id FROM src', '{id}', '{"indexes": {"i": {"columns": ["id"], "bogus": 1}}}');
SELECT coco.sync_table('syncapp', 'sync.bad', 'SELECT id FROM src', '{id}', '{"indexes": {"i": 1}}');
SELECT coco.sync_table('syncapp', 'sync.bad', 'SELECT id FROM src', '{id}', '{"sql_commands": {"c": {"teardown": "SELECT 1"}}}');
SELECT coco.sync_table('syncapp', 'sync.bad', 'SELECT id FROM src', '{id}', '{"sql_commands": {"c": {"setup": "NOT SQL"}}}');
-- NULL arguments
SELECT coco.sync_table(NULL, 'sync.bad', 'SELECT id FROM src', '{id}');
SELECT coco.sync_table('syncapp', NULL, 'SELECT id FROM src', '{id}');
SELECT coco.sync_table('syncapp', 'sync.bad', NULL, '{id}');
SELECT coco.sync_table('syncapp', 'sync.bad', 'SELECT id FROM src', NULL);
SELECT coco.sync_table('syncapp', 'sync.bad', 'SELECT id FROM src', '{id}', NULL);
SELECT coco.sync_table('syncapp', 'sync.bad', 'SELECT id FROM src', '{NULL}');
SELECT coco.sync_table('syncapp', 'sync.bad', 'SELECT id FROM src', '{id}', '{}', '{NULL}');
SELECT coco.unsync_table(NULL, 'sync.docs');
SELECT coco.unsync_table('syncapp', NULL);
SELECT coco.unsync_table('syncapp', 'sync.never_synced');
SELECT coco.sync_table('syncapp', 'bad name', 'SELECT id FROM src', '{id}');
-- none of the refused calls registered anything
SELECT "table" FROM coco.synced_tables ORDER BY 1;
\set VERBOSITY default
-- the source dropped before the run: the run fails with a clear error
CREATE TABLE gone (id int PRIMARY KEY);
SELECT coco.sync_table('syncapp', 'sync.from_gone', 'SELECT id FROM gone', '{id}') IS NOT NULL AS synced;
DROP TABLE gone;
SELECT coco.reconcile('syncapp');
SELECT coco.unsync_table('syncapp', 'sync.from_gone');
SELECT coco.reconcile('syncapp') IS NOT NULL AS reconciled;

-- a query that calls the API in the middle of the run
CREATE FUNCTION sneaky() RETURNS int LANGUAGE plpgsql AS $$
BEGIN
    PERFORM coco.sync_table('syncapp', 'sync.sneak', 'SELECT 1 AS id', '{id}');
    RETURN 1;
END $$;
SELECT coco.sync_table('syncapp', 'sync.sneaky', 'SELECT id, sync.sneaky() AS s FROM src', '{id}') IS NOT NULL AS synced;
\set VERBOSITY sqlstate
SELECT coco.reconcile('syncapp');
\set VERBOSITY default
SELECT coco.unsync_table('syncapp', 'sync.sneaky');
-- a query reading what the owner may not read: refused when declared
RESET ROLE;
CREATE TABLE public.sync_secret (id int PRIMARY KEY);
SET ROLE regress_sync_owner;
\set VERBOSITY sqlstate
SELECT coco.sync_table('syncapp', 'sync.peek', 'SELECT id FROM public.sync_secret', '{id}');
\set VERBOSITY default
RESET ROLE;
DROP TABLE public.sync_secret;

-- another role: not its app, not its registrations
RESET ROLE;
SET ROLE regress_sync_stranger;
\set VERBOSITY sqlstate
SELECT coco.sync_table('syncapp', 'public.stolen', 'SELECT 1 AS id', '{id}');
SELECT coco.unsync_table('syncapp', 'sync.docs');
\set VERBOSITY default
SELECT count(*) AS seen FROM coco.synced_tables;
RESET ROLE;

-- 7. auto_submit: registering a synced table submits the app, whose
-- worker run makes the table (sync_table stages nothing itself)
SET ROLE regress_sync_owner;
SELECT coco.create_app('autoapp');
SELECT coco.set_app_option('autoapp', auto_submit => true);
SELECT coco.sync_table('autoapp', 'sync.auto_copy', 'SELECT id, title FROM src', '{id}') IS NOT NULL AS synced;
DO $$
BEGIN
    FOR i IN 1..200 LOOP
        EXIT WHEN EXISTS (SELECT FROM coco.runs WHERE app = 'autoapp' AND status = 'succeeded');
        PERFORM pg_sleep(0.05);
    END LOOP;
END $$;
SELECT origin, status FROM coco.runs WHERE app = 'autoapp';
SELECT count(*) = (SELECT count(*) FROM src) AS copied FROM sync.auto_copy;
SELECT coco.drop_app('autoapp');

-- 8. drop_app: the tables go with the app, and the registrations
SELECT coco.drop_app('syncapp');
SELECT to_regclass('sync.docs') AS docs_after_drop, count(*) AS registrations FROM coco.synced_tables;
SELECT coco.drop_app('nestapp');
SELECT coco.drop_app('nestapp2');
RESET ROLE;
RESET search_path;
DROP SCHEMA sync CASCADE;
DROP ROLE regress_sync_owner;
DROP ROLE regress_sync_stranger;
