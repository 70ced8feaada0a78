-- 38_ctid_reads: a changed run reads the values of the rows that change a
-- second time; where a query reads one table, by the ctids of their rows.
--   1. the first read of such a query returns each row's ctid; the rows
--      that change are read again by those ctids, and the table ends equal
--      to its source;
--   2. changes beyond a quarter of the rows read are read by key instead;
--   3. no ctid from a view or a join: their rows are read by their places
--      in the first read; a component with several sources is read once;
--   4. a parent with an inheritance child: a ctid names a row of each, and
--      only the row that changes is taken;
--   5. two components, each with its own ctids; staged declare_row rows
--      beside them are read by key;
--   6. a materialized view, its rows all moved by a refresh;
--   7. an app owner (not a superuser) with SELECT on some columns of the
--      source only, which does not reach its ctids: no ctid; with SELECT
--      on the table, its ctids;
--   8. the query is rewritten exactly or not at all: constants read back
--      the same whatever the session's output styles; a column aliased
--      "ctid", or a SELECT * that returns a column of the ctid column's
--      name, keeps its query as it is; a plan that would filter every row
--      by the list of ctids, or loop over them, is not run: the rows are
--      read by key; the ctids' condition joins a WHERE of several;
--   9. the source changes between the declaration and the run: a table
--      swapped in under its name (the same rows at other ctids, two of
--      them changed) is the one read, by its own ctids; a source gone
--      (renamed away) fails the run with 42P01 naming it, and leaves the
--      target as it was; row security that the source's owner turns on
--      hides rows from the app owner, whose run deletes them and reads the
--      changed row by ctid through the policy.
-- The tracking heap is compacted before each run shown, so that how it is
-- read does not depend on the tests before.
\set VERBOSITY default
SET max_parallel_workers_per_gather = 0;

CREATE TABLE ct_src AS SELECT g::bigint AS id, md5(g::text) AS title FROM generate_series(1, 1000) g;
ALTER TABLE ct_src ADD PRIMARY KEY (id);
-- statistics stay as the test makes them: plans do not change under it
ALTER TABLE ct_src SET (autovacuum_enabled = off);
SELECT coco.create_app('ct');
-- the table, and the rows of a query in a component
CREATE FUNCTION ct_declare(q text, comp text[] DEFAULT '{}') RETURNS void LANGUAGE sql AS $$
  SELECT coco.declare_table('ct', 'public.ct_t',
    '[{"name": "id", "type": "bigint"}, {"name": "title", "type": "text"}]', '{id}');
  SELECT coco.declare_rows('ct', 'public.ct_t', q, component => comp);
$$;
-- change the titles of the rows of ct_src whose id % modulus = remainder,
-- and declare again with q
CREATE FUNCTION ct_change(title text, modulus int, remainder int, q text) RETURNS void LANGUAGE sql AS $$
  UPDATE ct_src SET title = ct_change.title WHERE id % modulus = remainder;
  SELECT ct_declare(q);
$$;
CREATE FUNCTION ct_run() RETURNS jsonb LANGUAGE sql AS $$
  SELECT (coco.reconcile('ct'))->'providers'->'postgres.row';
$$;

-- rows of ct_t that the query does not return, and the other way round
CREATE FUNCTION ct_differences(q text) RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
  n bigint;
BEGIN
  EXECUTE format('SELECT count(*) FROM ((SELECT id, title FROM ct_t EXCEPT (%s)) UNION ALL ((%s) EXCEPT SELECT id, title FROM ct_t)) x', q, q) INTO n;
  RETURN n;
END $$;
-- a run, showing how it reads (after VACUUM FULL coco.tracked_row), and
-- the rows of ct_t that differ from what the query returns
CREATE FUNCTION ct_shown_run(q text, OUT run jsonb, OUT differences bigint) LANGUAGE plpgsql
SET client_min_messages = debug1 AS $$
BEGIN
  run := (coco.reconcile('ct'))->'providers'->'postgres.row';
  differences := ct_differences(q);
END $$;
-- as a role that is not a superuser: declare table tbl of app with the
-- rows of table src, reconcile (showing how it reads, if `shown`), and
-- count the rows of tbl that differ from src
CREATE FUNCTION ct_role_sync(app text, tbl text, src text, shown boolean,
                             OUT run jsonb, OUT differences bigint) LANGUAGE plpgsql
SET client_min_messages = notice AS $$
BEGIN
  PERFORM coco.declare_table(app, tbl,
    '[{"name": "id", "type": "bigint"}, {"name": "title", "type": "text"}]', '{id}');
  PERFORM coco.declare_rows(app, tbl, format('SELECT id, title FROM %s', src));
  IF shown THEN
    SET LOCAL client_min_messages = debug1;
  END IF;
  run := (coco.reconcile(app))->'providers'->'postgres.row';
  EXECUTE format('SELECT count(*) FROM ((SELECT id, title FROM %1$s EXCEPT SELECT id, title FROM %2$s) '
                 'UNION ALL (SELECT id, title FROM %2$s EXCEPT SELECT id, title FROM %1$s)) x', tbl, src)
    INTO differences;
END $$;

-- 1. by ctid
SELECT ct_declare('SELECT id, title FROM ct_src WHERE id % 10 <> 9');
SELECT ct_run() AS initial_load;
UPDATE ct_src SET title = 'changed' WHERE id % 50 = 0;
DELETE FROM ct_src WHERE id % 101 = 0;
INSERT INTO ct_src SELECT g, 'new' FROM generate_series(1001, 1005) g;
SELECT ct_declare('SELECT id, title FROM ct_src WHERE id % 10 <> 9');
VACUUM FULL coco.tracked_chunk;
-- by ctid
SELECT * FROM ct_shown_run('SELECT id, title FROM ct_src WHERE id % 10 <> 9');

-- 2. by key: a third of the rows change
UPDATE ct_src SET title = title || '+' WHERE id % 3 = 0;
SELECT ct_declare('SELECT id, title FROM ct_src WHERE id % 10 <> 9');
VACUUM FULL coco.tracked_chunk;
-- by key
SELECT * FROM ct_shown_run('SELECT id, title FROM ct_src WHERE id % 10 <> 9');

-- 3. no ctids
CREATE VIEW ct_v AS SELECT * FROM ct_src;
SELECT ct_change('view', 70, 1, 'SELECT id, title FROM ct_v');
VACUUM FULL coco.tracked_chunk;
-- from view
SELECT * FROM ct_shown_run('SELECT id, title FROM ct_src');
SELECT ct_change('join', 70, 2, 'SELECT s.id, s.title FROM ct_src s JOIN ct_src t USING (id)');
VACUUM FULL coco.tracked_chunk;
-- from join
SELECT * FROM ct_shown_run('SELECT id, title FROM ct_src');
SELECT ct_change('two sources', 70, 4, 'SELECT id, title FROM ct_src WHERE id <= 600');
SELECT coco.declare_rows('ct', 'public.ct_t', 'SELECT id, title FROM ct_src WHERE id > 600');
VACUUM FULL coco.tracked_chunk;
-- two sources
SELECT * FROM ct_shown_run('SELECT id, title FROM ct_src');

-- 4. inheritance: the child's rows sit at the parent's ctids
CREATE TABLE ct_parent (id bigint, title text) WITH (autovacuum_enabled = off);
CREATE TABLE ct_child () INHERITS (ct_parent) WITH (autovacuum_enabled = off);
INSERT INTO ct_parent SELECT g, 'parent' FROM generate_series(1, 50) g;
INSERT INTO ct_child SELECT g, 'child' FROM generate_series(101, 300) g;
SELECT ct_declare('SELECT id, title FROM ct_parent');
SELECT ct_run() AS inherited;
UPDATE ONLY ct_parent SET title = 'parent changed' WHERE id = 7;
UPDATE ct_child SET title = 'child changed' WHERE id = 150;
-- the changed parent row's new ctid names a child row too
SELECT (SELECT ctid FROM ONLY ct_parent WHERE id = 7) IN (SELECT ctid FROM ct_child) AS ctid_shared;
SELECT ct_declare('SELECT id, title FROM ct_parent');
VACUUM FULL coco.tracked_chunk;
-- inherited changed
SELECT * FROM ct_shown_run('SELECT id, title FROM ct_parent');

-- 5. two components with ctids, then declare_row rows beside them
CREATE TABLE ct_src2 WITH (autovacuum_enabled = off) AS
  SELECT g::bigint AS id, 'second ' || g AS title FROM generate_series(2001, 2400) g;
CREATE FUNCTION ct_declare_two() RETURNS void LANGUAGE sql AS $$
  SELECT ct_declare('SELECT id, title FROM ct_src', '{a}');
  SELECT coco.declare_rows('ct', 'public.ct_t', 'SELECT id, title FROM ct_src2', component => '{b}');
$$;
SELECT ct_declare_two();
SELECT ct_run() AS components_rows;
SELECT ct_differences('SELECT id, title FROM ct_src UNION ALL SELECT id, title FROM ct_src2') AS differences;
UPDATE ct_src SET title = 'a' WHERE id % 90 = 5;
UPDATE ct_src2 SET title = 'b' WHERE id % 90 = 5;
SELECT ct_declare_two();
VACUUM FULL coco.tracked_chunk;
-- components changed
SELECT * FROM ct_shown_run('SELECT id, title FROM ct_src UNION ALL SELECT id, title FROM ct_src2');
UPDATE ct_src SET title = 'a again' WHERE id % 90 = 6;
SELECT ct_declare_two();
SELECT coco.declare_row('ct', 'public.ct_t', '{"id": 5000, "title": "staged"}', component => '{c}');
VACUUM FULL coco.tracked_chunk;
-- with staged rows
SELECT * FROM ct_shown_run('SELECT id, title FROM ct_src UNION ALL SELECT id, title FROM ct_src2 UNION ALL SELECT 5000, ''staged''');
SELECT coco.clear_component('ct', '{a}'), coco.clear_component('ct', '{b}'), coco.clear_component('ct', '{c}');

-- 6. a materialized view
CREATE MATERIALIZED VIEW ct_m AS SELECT * FROM ct_src;
SELECT ct_declare('SELECT id, title FROM ct_m');
SELECT ct_run() IS NOT NULL AS from_matview;
UPDATE ct_src SET title = 'refreshed' WHERE id % 90 = 7;
REFRESH MATERIALIZED VIEW ct_m;
SELECT ct_declare('SELECT id, title FROM ct_m');
VACUUM FULL coco.tracked_chunk;
-- matview refreshed
SELECT * FROM ct_shown_run('SELECT id, title FROM ct_src');

-- 7. SELECT on some columns only
DROP ROLE IF EXISTS regress_coco_ct;
CREATE ROLE regress_coco_ct;
CREATE SCHEMA ct_own AUTHORIZATION regress_coco_ct;
GRANT SELECT (id, title) ON ct_src TO regress_coco_ct;
SET ROLE regress_coco_ct;
SELECT coco.create_app('ct_col');
SELECT * FROM ct_role_sync('ct_col', 'ct_own.t', 'public.ct_src', false);
RESET ROLE;
UPDATE ct_src SET title = 'columns' WHERE id % 90 = 8;
SET ROLE regress_coco_ct;
SELECT * FROM ct_role_sync('ct_col', 'ct_own.t', 'public.ct_src', true);
-- with SELECT on the table, its ctids
RESET ROLE;
GRANT SELECT ON ct_src TO regress_coco_ct;
UPDATE ct_src SET title = 'table' WHERE id % 90 = 9;
SET ROLE regress_coco_ct;
SELECT * FROM ct_role_sync('ct_col', 'ct_own.t', 'public.ct_src', true);
SELECT coco.drop_app('ct_col');
RESET ROLE;
DROP SCHEMA ct_own;
REVOKE ALL ON ct_src FROM regress_coco_ct;
DROP ROLE regress_coco_ct;

-- 8. rewritten exactly, or not at all
-- a float constant is written back in full, whatever extra_float_digits says
SELECT ct_change('float', 90, 10, 'SELECT id, title FROM ct_src WHERE ''3.141592653589793''::float8 = pi()');
SET extra_float_digits = 0;
VACUUM FULL coco.tracked_chunk;
-- float constant
SELECT * FROM ct_shown_run('SELECT id, title FROM ct_src');
RESET extra_float_digits;
-- a timestamptz constant with a numeric offset, not the zone's abbreviation
-- (IST would read back as Israel's)
SELECT ct_change('zone', 90, 11, 'SELECT id, title FROM ct_src WHERE ''2024-03-04 10:00:00+05:30''::timestamptz = ''2024-03-04 04:30:00+00''::timestamptz');
SET DateStyle = 'Postgres, MDY';
SET TimeZone = 'Asia/Kolkata';
VACUUM FULL coco.tracked_chunk;
-- zone constant
SELECT * FROM ct_shown_run('SELECT id, title FROM ct_src');
RESET DateStyle;
RESET TimeZone;
-- ordered by what it does not return: the ctid goes before that
SELECT ct_change('ordered', 90, 14, 'SELECT id, title FROM ct_src ORDER BY length(title), id');
VACUUM FULL coco.tracked_chunk;
-- ordered by more
SELECT * FROM ct_shown_run('SELECT id, title FROM ct_src');
-- a column aliased "ctid": written back, the ctid would be that column
SELECT ct_change('alias', 90, 12, 'SELECT ctid AS id, title FROM ct_src AS x(ctid, title)');
VACUUM FULL coco.tracked_chunk;
-- column aliased ctid
SELECT * FROM ct_shown_run('SELECT id, title FROM ct_src');
-- a SELECT * whose table gains a column of the ctid column's name
CREATE TABLE ct_star (id bigint PRIMARY KEY, title text) WITH (autovacuum_enabled = off);
INSERT INTO ct_star SELECT id, title FROM ct_src;
SELECT ct_declare('SELECT * FROM ct_star');
SELECT ct_run() IS NOT NULL AS from_star;
SELECT ct_declare('SELECT * FROM ct_star');
ALTER TABLE ct_star ADD COLUMN "coco#t" int;
UPDATE ct_star SET title = 'star' WHERE id % 90 = 13;
VACUUM FULL coco.tracked_chunk;
-- star with column named ctid
SELECT * FROM ct_shown_run('SELECT id, title FROM ct_star');
-- statistics that say few rows match: the generic plan would take an index
-- and compare every row with the list of ctids; past 32 ctids, the rows
-- are read by key
CREATE TABLE ct_big (id bigint PRIMARY KEY, title text, status text) WITH (autovacuum_enabled = off);
INSERT INTO ct_big SELECT g, md5(g::text), CASE WHEN g <= 10 THEN 'active' ELSE 'old' END
  FROM generate_series(1, 20000) g;
CREATE INDEX ON ct_big (status);
ANALYZE ct_big;
UPDATE ct_big SET status = 'active' WHERE id <= 15000;
SELECT ct_declare('SELECT id, title FROM ct_big WHERE status = ''active''');
SELECT ct_run() IS NOT NULL AS from_big;
UPDATE ct_big SET title = 'big' WHERE id % 10 = 1 AND id <= 15000;
SELECT ct_declare('SELECT id, title FROM ct_big WHERE status = ''active''');
VACUUM FULL coco.tracked_chunk;
-- stale statistics
SELECT * FROM ct_shown_run('SELECT id, title FROM ct_big WHERE status = ''active''');

-- a subquery that statistics say returns almost nothing: the generic plan
-- would loop over the ctids, reading the subquery again for each; past 32
-- ctids, the rows are read by key
CREATE TABLE ct_sel (id bigint, flag int) WITH (autovacuum_enabled = off);
INSERT INTO ct_sel SELECT g, 0 FROM generate_series(1, 6000) g;
ANALYZE ct_sel;
UPDATE ct_sel SET flag = 1;
SELECT ct_declare('SELECT id, title FROM ct_big WHERE id IN (SELECT id FROM ct_sel WHERE flag = 1)');
SELECT ct_run() IS NOT NULL AS from_subquery;
UPDATE ct_big SET title = 'subquery' WHERE id % 4 = 1 AND id <= 6000;
SELECT ct_declare('SELECT id, title FROM ct_big WHERE id IN (SELECT id FROM ct_sel WHERE flag = 1)');
VACUUM FULL coco.tracked_chunk;
SELECT * FROM ct_shown_run('SELECT id, title FROM ct_big WHERE id IN (SELECT id FROM ct_sel WHERE flag = 1)');
-- a WHERE of several conditions: the ctids' condition joins them
SELECT ct_declare('SELECT id, title FROM ct_src WHERE id > 0 AND title IS NOT NULL AND id BETWEEN 1 AND 100000');
SELECT ct_run() IS NOT NULL AS from_several_conditions;
SELECT ct_change('and', 90, 15, 'SELECT id, title FROM ct_src WHERE id > 0 AND title IS NOT NULL AND id BETWEEN 1 AND 100000');
VACUUM FULL coco.tracked_chunk;
SELECT * FROM ct_shown_run('SELECT id, title FROM ct_src');

-- 9. the source changes between the declaration and the run
SELECT ct_declare('SELECT id, title FROM ct_src');
SELECT ct_run() IS NOT NULL AS before_swap;
CREATE TABLE ct_swap (id bigint PRIMARY KEY, title text) WITH (autovacuum_enabled = off);
INSERT INTO ct_swap SELECT id, title FROM ct_src ORDER BY id DESC;
UPDATE ct_swap SET title = 'swapped' WHERE id IN (3, 500);
SELECT ct_declare('SELECT id, title FROM ct_src');
ALTER TABLE ct_src RENAME TO ct_src_kept;
ALTER TABLE ct_swap RENAME TO ct_src;
VACUUM FULL coco.tracked_chunk;
-- swapped in
SELECT * FROM ct_shown_run('SELECT id, title FROM ct_src');
SELECT count(*) AS swapped_rows FROM ct_t WHERE title = 'swapped';
-- gone between the declaration and the run (renamed away)
UPDATE ct_src SET title = 'dropped' WHERE id = 4;
SELECT ct_declare('SELECT id, title FROM ct_src');
ALTER TABLE ct_src RENAME TO ct_swap;
\set VERBOSITY sqlstate
SELECT ct_run();
\set VERBOSITY default
SELECT ct_run();
SELECT count(*) AS dropped_rows FROM ct_t WHERE title = 'dropped';
ALTER TABLE ct_swap RENAME TO ct_src;
DROP TABLE ct_src;
ALTER TABLE ct_src_kept RENAME TO ct_src;
-- row security turned on by the source's owner
DROP ROLE IF EXISTS regress_coco_ct_rls;
DROP ROLE IF EXISTS regress_coco_ct_src;
CREATE ROLE regress_coco_ct_rls;
CREATE ROLE regress_coco_ct_src;
CREATE TABLE ct_rls (id bigint PRIMARY KEY, title text) WITH (autovacuum_enabled = off);
INSERT INTO ct_rls SELECT id, title FROM ct_src;
ALTER TABLE ct_rls OWNER TO regress_coco_ct_src;
GRANT SELECT ON ct_rls TO regress_coco_ct_rls;
CREATE SCHEMA ct_rls_own AUTHORIZATION regress_coco_ct_rls;
SET ROLE regress_coco_ct_rls;
SELECT coco.create_app('ct_rls');
SELECT * FROM ct_role_sync('ct_rls', 'ct_rls_own.t', 'public.ct_rls', false);
RESET ROLE;
SET ROLE regress_coco_ct_src;
UPDATE ct_rls SET title = 'behind policy' WHERE id = 10;
ALTER TABLE ct_rls ENABLE ROW LEVEL SECURITY;
CREATE POLICY ct_rls_some ON ct_rls FOR SELECT TO regress_coco_ct_rls USING (id % 100 <> 0);
RESET ROLE;
SET ROLE regress_coco_ct_rls;
SELECT count(*) AS rows_seen FROM public.ct_rls;
SELECT * FROM ct_role_sync('ct_rls', 'ct_rls_own.t', 'public.ct_rls', true);
SELECT count(*) AS rows_kept, count(*) FILTER (WHERE title = 'behind policy') AS changed_kept
  FROM ct_rls_own.t;
SELECT coco.drop_app('ct_rls');
RESET ROLE;
DROP SCHEMA ct_rls_own;
DROP TABLE ct_rls;
DROP ROLE regress_coco_ct_rls;
DROP ROLE regress_coco_ct_src;

SELECT coco.drop_app('ct');
DROP FUNCTION ct_declare_two();
DROP FUNCTION ct_change(text, int, int, text);
DROP FUNCTION ct_declare(text, text[]);
DROP FUNCTION ct_run();
DROP FUNCTION ct_shown_run(text);
DROP FUNCTION ct_role_sync(text, text, text, boolean);
DROP FUNCTION ct_differences(text);
DROP MATERIALIZED VIEW ct_m;
DROP VIEW ct_v;
DROP TABLE ct_src, ct_src2, ct_child, ct_parent, ct_star, ct_big, ct_sel;
