-- 34_refresh: source-driven refresh, the SQL side — which tables the
-- option watches for a query (views, CTEs, sublinks, partitions,
-- inheritance children; NOTICEs for what cannot be watched), the triggers
-- and their registry, the refusals of coco.set_app_option and of
-- coco.refresh_trigger(), and what a write queues.  Timing, the worker's
-- runs, coalescing and the hostile scenarios are test/refresh.sh's.
\set VERBOSITY default
SET client_min_messages = warning;
DROP ROLE IF EXISTS regress_refresh_owner;
DROP ROLE IF EXISTS regress_refresh_writer;
DROP ROLE IF EXISTS regress_refresh_stranger;
RESET client_min_messages;
CREATE ROLE regress_refresh_owner;
CREATE ROLE regress_refresh_writer;
CREATE ROLE regress_refresh_stranger;
CREATE SCHEMA refresh AUTHORIZATION regress_refresh_owner;
GRANT USAGE ON SCHEMA refresh TO regress_refresh_writer, regress_refresh_stranger;
SET ROLE regress_refresh_owner;
SET search_path = refresh, public;

CREATE TABLE author (id int PRIMARY KEY, name text NOT NULL);
CREATE TABLE book (id int PRIMARY KEY, author int NOT NULL, title text NOT NULL);
CREATE TABLE sale (book int NOT NULL, at int NOT NULL, n int NOT NULL) PARTITION BY RANGE (at);
CREATE TABLE sale_old PARTITION OF sale FOR VALUES FROM (0) TO (100);
CREATE TABLE sale_new PARTITION OF sale FOR VALUES FROM (100) TO (200);
CREATE TABLE note (id int PRIMARY KEY, body text);
CREATE TABLE note_extra (extra text) INHERITS (note);
CREATE TABLE banned (book int PRIMARY KEY);
CREATE VIEW book_author AS SELECT b.id, b.title, a.name FROM book b JOIN author a ON a.id = b.author;
CREATE MATERIALIZED VIEW top_author AS SELECT 1 AS id;
CREATE FUNCTION lucky() RETURNS SETOF int LANGUAGE sql AS 'SELECT 7';
INSERT INTO author VALUES (1, 'ann');
INSERT INTO book VALUES (10, 1, 'rain'), (11, 1, 'snow');
INSERT INTO sale VALUES (10, 5, 2), (11, 150, 3);
GRANT SELECT, INSERT, UPDATE, DELETE, TRUNCATE ON book, sale, sale_new TO regress_refresh_writer;

SELECT coco.create_app('shop');
SELECT coco.sync_table('shop', 'refresh.totals', $$
    WITH s AS (SELECT book, sum(n) AS n FROM sale GROUP BY book)
    SELECT ba.id, ba.title, ba.name, s.n
      FROM book_author ba JOIN s ON s.book = ba.id
     WHERE ba.id NOT IN (SELECT book FROM banned)
       AND EXISTS (SELECT FROM note WHERE note.id = ba.id) IS NOT NULL$$, '{id}') IS NOT NULL AS synced;
SELECT coco.reconcile('shop', false)->'inserted' AS inserted;
-- the worker leaves the app's runs queued, so that they can be looked at
RESET ROLE;
UPDATE coco.app SET flagged = 'held by the test' WHERE name = 'shop';
SET ROLE regress_refresh_owner;

-- 1. Switched on: every table behind the view, the CTE and the sublinks,
--    the partitioned table with its partitions, the inheritance parent with
--    its child; one statement trigger each, registered.
SELECT coco.set_app_option('shop', refresh => true);
SELECT refresh FROM coco.app WHERE name = 'shop';
SELECT source FROM coco.refresh_source ORDER BY source::text;
-- the view: app names, the trigger of each source and that it is there
SELECT app, source, trigger ~ '^coco_refresh_[0-9]+$' AS named, trigger_exists, trigger_enabled
  FROM coco.refresh_sources ORDER BY source::text;
SELECT tgrelid::regclass AS "table", tgname ~ '^coco_refresh_[0-9]+$' AS named,
       tgtype, pg_get_triggerdef(oid) ~ 'AFTER INSERT OR DELETE OR UPDATE OR TRUNCATE .* FOR EACH STATEMENT EXECUTE FUNCTION coco.refresh_trigger' AS def
  FROM pg_trigger WHERE tgfoid = 'coco.refresh_trigger()'::regprocedure ORDER BY tgrelid::regclass::text;
-- each depends on the extension (DROP EXTENSION takes them)
SELECT count(*) AS on_extension FROM pg_depend d JOIN pg_trigger t ON t.oid = d.objid
 WHERE d.classid = 'pg_trigger'::regclass AND d.refclassid = 'pg_extension'::regclass
   AND d.deptype = 'a' AND t.tgfoid = 'coco.refresh_trigger()'::regprocedure;
-- switching on again changes nothing
SELECT coco.set_app_option('shop', refresh => true);
SELECT count(*) FROM pg_trigger WHERE tgfoid = 'coco.refresh_trigger()'::regprocedure;

-- 2. What cannot be watched is named, and the rest is still watched.
SELECT coco.sync_table('shop', 'refresh.odd', $$
    SELECT t.id, l AS lucky, c.relname::text AS rel
      FROM top_author t, lucky() l, pg_catalog.pg_class c
     WHERE c.oid = 'refresh.book'::regclass$$, '{id}') IS NOT NULL AS synced;
SELECT coco.set_app_option('shop', refresh => true);
SELECT coco.unsync_table('shop', 'refresh.odd');

-- 3. A write commits a run of the app, queued with origin 'refresh', by a
--    role that may write the source but has no right on the app; several
--    writes in one transaction, or in later ones while it waits, one run.
SET ROLE regress_refresh_writer;
SELECT count(*) FROM coco.runs WHERE app = 'shop';   -- not the writer's app: invisible
INSERT INTO refresh.sale VALUES (10, 6, 1);
BEGIN;
UPDATE refresh.book SET title = 'storm' WHERE id = 11;
INSERT INTO refresh.sale_new VALUES (11, 151, 1);
COMMIT;
TRUNCATE refresh.sale_new;
RESET ROLE;
SELECT origin, status, "full" FROM coco.run r JOIN coco.app a USING (app_id)
 WHERE a.name = 'shop' AND r.status = 'queued';
-- rolled back (also to a savepoint): nothing noted
DELETE FROM coco.run WHERE app_id = (SELECT app_id FROM coco.app WHERE name = 'shop') AND status = 'queued';
SET ROLE regress_refresh_writer;
BEGIN;
INSERT INTO refresh.sale VALUES (10, 7, 1);
ROLLBACK;
BEGIN;
SAVEPOINT s;
INSERT INTO refresh.sale VALUES (10, 8, 1);
ROLLBACK TO s;
COMMIT;
RESET ROLE;
SELECT count(*) AS queued FROM coco.run r JOIN coco.app a USING (app_id) WHERE a.name = 'shop' AND r.status = 'queued';

-- 4. coco.refresh_trigger() from a stranger's own triggers: 39P01 where it
--    cannot be a refresh trigger; otherwise nothing is queued, even with the
--    extension's name for the trigger.
SET ROLE regress_refresh_stranger;
CREATE TEMP TABLE mine (x int);
-- (the stranger cannot see the app's row: its id is looked up here; a guess does as well)
RESET ROLE;
SELECT set_config('my.shop_id', app_id::text, false) IS NOT NULL AS noted FROM coco.app WHERE name = 'shop';
SET ROLE regress_refresh_stranger;
DO $$
BEGIN
    EXECUTE format('CREATE TRIGGER %I AFTER INSERT ON mine FOR EACH STATEMENT '
                   'EXECUTE FUNCTION coco.refresh_trigger(%L)', 'coco_refresh_' || current_setting('my.shop_id'),
                   current_setting('my.shop_id'));
    EXECUTE format('CREATE TRIGGER other AFTER INSERT ON mine FOR EACH STATEMENT '
                   'EXECUTE FUNCTION coco.refresh_trigger(%L)', current_setting('my.shop_id'));
END $$;
INSERT INTO mine VALUES (1);
CREATE TRIGGER by_row AFTER INSERT ON mine FOR EACH ROW EXECUTE FUNCTION coco.refresh_trigger('1');
INSERT INTO mine VALUES (2);
DROP TRIGGER by_row ON mine;
CREATE TRIGGER before_stmt BEFORE INSERT ON mine FOR EACH STATEMENT EXECUTE FUNCTION coco.refresh_trigger('1');
INSERT INTO mine VALUES (3);
DROP TRIGGER before_stmt ON mine;
CREATE TRIGGER no_arg AFTER INSERT ON mine FOR EACH STATEMENT EXECUTE FUNCTION coco.refresh_trigger();
INSERT INTO mine VALUES (4);
DROP TRIGGER no_arg ON mine;
CREATE TRIGGER bad_arg AFTER INSERT ON mine FOR EACH STATEMENT EXECUTE FUNCTION coco.refresh_trigger('shop');
INSERT INTO mine VALUES (5);
DROP TRIGGER bad_arg ON mine;
SELECT coco.refresh_trigger();
-- another role's app: not even its option
SELECT coco.set_app_option('shop', refresh => false);
RESET ROLE;
SELECT count(*) AS queued FROM coco.run r JOIN coco.app a USING (app_id) WHERE a.name = 'shop' AND r.status = 'queued';

-- 5. The owner lacks TRIGGER on a source: 42501 naming it, nothing created.
SET ROLE regress_refresh_owner;
SELECT coco.set_app_option('shop', refresh => false);
SELECT count(*) AS triggers FROM pg_trigger WHERE tgfoid = 'coco.refresh_trigger()'::regprocedure;
SELECT count(*) AS registered FROM coco.refresh_source;
RESET ROLE;
CREATE TABLE public.refresh_foreign_owned (id int PRIMARY KEY);
GRANT SELECT ON public.refresh_foreign_owned TO regress_refresh_owner;
SET ROLE regress_refresh_owner;
SELECT coco.sync_table('shop', 'refresh.theirs', 'SELECT id FROM public.refresh_foreign_owned', '{id}') IS NOT NULL AS synced;
SELECT coco.set_app_option('shop', refresh => true);
SELECT refresh FROM coco.app WHERE name = 'shop';
SELECT count(*) AS triggers FROM pg_trigger WHERE tgfoid = 'coco.refresh_trigger()'::regprocedure;
SELECT count(*) AS registered FROM coco.refresh_source;
RESET ROLE;
GRANT TRIGGER ON public.refresh_foreign_owned TO regress_refresh_owner;
SET ROLE regress_refresh_owner;
SELECT coco.set_app_option('shop', refresh => true);
SELECT source FROM coco.refresh_source ORDER BY source::text;

-- 6. The triggers follow the queries at the next run; one dropped by hand
--    comes back; a NULL option leaves it as it is.
SELECT coco.unsync_table('shop', 'refresh.theirs');
SELECT coco.reconcile('shop', false) IS NOT NULL AS reconciled;
SELECT source FROM coco.refresh_source WHERE source::text LIKE '%foreign%';
DO $$
BEGIN
    EXECUTE format('DROP TRIGGER %I ON refresh.book', 'coco_refresh_' || current_setting('my.shop_id'));
END $$;
SELECT count(*) AS on_book FROM pg_trigger WHERE tgrelid = 'book'::regclass AND tgfoid = 'coco.refresh_trigger()'::regprocedure;
SELECT coco.set_app_option('shop', run_timeout => '1 minute');
SELECT coco.reconcile('shop', false) IS NOT NULL AS reconciled;
SELECT count(*) AS on_book FROM pg_trigger WHERE tgrelid = 'book'::regclass AND tgfoid = 'coco.refresh_trigger()'::regprocedure;
SELECT refresh FROM coco.app WHERE name = 'shop';

-- 7. drop_app removes them; a user's trigger of the same name is not the
--    extension's and stays.
RESET ROLE;
SELECT coco.drop_app('shop', false);
SELECT count(*) AS triggers FROM pg_trigger WHERE tgfoid = 'coco.refresh_trigger()'::regprocedure AND tgrelid <> 'mine'::regclass;
SELECT tgname = 'coco_refresh_' || current_setting('my.shop_id') AS named_so, count(*) AS on_mine
  FROM pg_trigger WHERE tgrelid = 'mine'::regclass GROUP BY 1 ORDER BY 1;
SELECT count(*) AS registered FROM coco.refresh_source;
SELECT coco.set_app_option(NULL, refresh => true);

RESET ROLE;
RESET search_path;
DROP SCHEMA refresh CASCADE;
DROP TABLE public.refresh_foreign_owned;
DROP OWNED BY regress_refresh_stranger;
DROP ROLE regress_refresh_owner;
DROP ROLE regress_refresh_writer;
DROP ROLE regress_refresh_stranger;
