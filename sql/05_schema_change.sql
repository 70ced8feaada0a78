-- 05_schema_change: evolving a declared table.
--   column added           -> ADD COLUMN, rows keep their values, no invalidation
--   column removed         -> DROP COLUMN, lossy: every row is re-written
--   type changed           -> ALTER TYPE (value kept when convertible), else
--                             drop and re-add; lossy either way
--   NOT NULL relaxed       -> not lossy, rows untouched
--   NOT NULL tightened     -> set after the rows are written
--   primary key changed    -> table re-created (destructive), declared rows
--                             written again
-- Components not re-declared after a lossy or destructive change show up
-- in coco.stale_components until they are declared again.
\set VERBOSITY default
\set SHOW_CONTEXT never
-- The helpers below refer to sch_t before it exists.
SET check_function_bodies = off;

CREATE FUNCTION pg_temp.summary(r jsonb) RETURNS text LANGUAGE sql AS $$
  SELECT format('table(+%s ~%s -%s =%s) row(+%s ~%s -%s =%s) stale=%s',
                r#>>'{providers,postgres.table,inserted}', r#>>'{providers,postgres.table,updated}',
                r#>>'{providers,postgres.table,deleted}', r#>>'{providers,postgres.table,unchanged}',
                r#>>'{providers,postgres.row,inserted}', r#>>'{providers,postgres.row,updated}',
                r#>>'{providers,postgres.row,deleted}', r#>>'{providers,postgres.row,unchanged}',
                r->>'stale_components')
$$;
-- Declare sch_t in the root component from 'name:type[:nn],…'.
CREATE FUNCTION pg_temp.declare_t(cols text, pk text[] DEFAULT '{id}') RETURNS void LANGUAGE sql AS $$
  SELECT coco.declare_table('sch', 'sch_t',
           (SELECT jsonb_agg(jsonb_build_object('name', split_part(c, ':', 1),
                                                'type', split_part(c, ':', 2),
                                                'nullable', split_part(c, ':', 3) <> 'nn') ORDER BY o)
              FROM unnest(string_to_array(cols, ',')) WITH ORDINALITY AS u(c, o)), pk)
$$;
-- The catalog's view of sch_t.
CREATE FUNCTION pg_temp.columns() RETURNS TABLE (attname name, type text, attnotnull boolean)
LANGUAGE sql AS $$
  SELECT attname, format_type(atttypid, atttypmod), attnotnull FROM pg_attribute
   WHERE attrelid = 'sch_t'::regclass AND attnum > 0 AND NOT attisdropped ORDER BY attnum
$$;
-- Rows whose xmin moved since pg_temp.snap() was last taken.
CREATE TEMP TABLE snap (id int PRIMARY KEY, x text);
CREATE FUNCTION pg_temp.snap() RETURNS void LANGUAGE sql AS $$
  DELETE FROM snap; INSERT INTO snap SELECT id, xmin::text FROM sch_t;
$$;
CREATE FUNCTION pg_temp.moved() RETURNS TABLE (rewritten bigint, total bigint) LANGUAGE sql AS $$
  SELECT count(*) FILTER (WHERE s.x IS DISTINCT FROM t.xmin::text), count(*)
    FROM sch_t t LEFT JOIN snap s USING (id)
$$;
CREATE FUNCTION pg_temp.stale() RETURNS TABLE (component text[], reason text) LANGUAGE sql AS $$
  SELECT component, reason FROM coco.stale_components WHERE app = 'sch' ORDER BY component
$$;
CREATE FUNCTION pg_temp.generation() RETURNS TABLE (generation int, schema_version int) LANGUAGE sql AS $$
  SELECT generation, schema_version FROM coco.target_states WHERE app = 'sch'
$$;

-- The source of the rows, declared into component {r}.
CREATE TABLE sch_src (id int, a text, n text, m text, m_int int, c text, b int);
INSERT INTO sch_src VALUES (1, 'a1', '42', 'abc', 100, 'c1', 10),
                           (2, 'a2', '7',  'x',   200, 'c2', 20),
                           (3, 'a3', '-1', '1',   300, 'c3', 30);

-- Start: id, a, n (text), m (text), c (text NOT NULL).
SELECT coco.create_app('sch');
SELECT pg_temp.declare_t('id:int:nn,a:text,n:text,m:text,c:text:nn');
SELECT coco.declare_rows('sch', 'sch_t', 'SELECT id, a, n, m, c FROM sch_src', '{r}');
SELECT pg_temp.summary(coco.reconcile('sch'));
SELECT * FROM pg_temp.columns();
SELECT * FROM pg_temp.generation();
SELECT pg_temp.snap();

-- 1. Column added (table re-declared alone): the rows keep their values and
-- are not touched; nothing becomes stale.
SELECT pg_temp.declare_t('id:int:nn,a:text,n:text,m:text,c:text:nn,b:int');
SELECT pg_temp.summary(coco.reconcile('sch'));
SELECT * FROM pg_temp.columns();
SELECT * FROM sch_t ORDER BY id;
SELECT * FROM pg_temp.moved();
SELECT * FROM pg_temp.stale();
SELECT * FROM pg_temp.generation();

-- 2. Type changed, convertible (text '42' -> integer), table alone: the
-- values are kept; the change is lossy, so {r} is stale until re-declared.
SELECT pg_temp.declare_t('id:int:nn,a:text,n:int,m:text,c:text:nn,b:int');
SELECT pg_temp.summary(coco.reconcile('sch'));
SELECT * FROM pg_temp.columns();
SELECT id, n, pg_typeof(n) FROM sch_t ORDER BY id;
SELECT * FROM pg_temp.stale();
SELECT * FROM pg_temp.generation();
-- Declaring {r} again re-writes every row of it (lossy), and it is no
-- longer stale.
SELECT pg_temp.snap();
SELECT pg_temp.declare_t('id:int:nn,a:text,n:int,m:text,c:text:nn,b:int');
SELECT coco.declare_rows('sch', 'sch_t', 'SELECT id, a, n::int AS n, m, c FROM sch_src', '{r}');
SELECT pg_temp.summary(coco.reconcile('sch'));
SELECT * FROM pg_temp.moved();
SELECT * FROM pg_temp.stale();

-- 3. Type changed, not convertible (text 'abc' -> integer): the column is
-- retyped in place with its values set to NULL (it keeps its position),
-- then the rows are re-written with declared values.
SELECT pg_temp.declare_t('id:int:nn,a:text,n:int,m:int,c:text:nn,b:int');
SELECT coco.declare_rows('sch', 'sch_t', 'SELECT id, a, n::int AS n, m_int AS m, c FROM sch_src', '{r}');
SELECT pg_temp.summary(coco.reconcile('sch'));
SELECT * FROM pg_temp.columns();
SELECT id, a, n, m, c, b FROM sch_t ORDER BY id;
SELECT * FROM pg_temp.stale();

-- 4. Column removed (a), rows re-declared: lossy, every row is re-written.
SELECT pg_temp.snap();
SELECT pg_temp.declare_t('id:int:nn,n:int,m:int,c:text:nn,b:int');
SELECT coco.declare_rows('sch', 'sch_t', 'SELECT id, n::int AS n, m_int AS m, c FROM sch_src', '{r}');
SELECT pg_temp.summary(coco.reconcile('sch'));
SELECT * FROM pg_temp.columns();
SELECT * FROM pg_temp.moved();
SELECT * FROM pg_temp.generation();

-- 4b. A lossy change re-writes rows even when their values (and so their
-- fingerprints) are the same: c text -> varchar(20), same rows declared.
SELECT pg_temp.declare_t('id:int:nn,n:int,m:int,c:varchar(20):nn,b:int');
SELECT coco.declare_rows('sch', 'sch_t', 'SELECT id, n::int AS n, m_int AS m, c FROM sch_src', '{r}');
SELECT pg_temp.summary(coco.reconcile('sch'));
SELECT * FROM pg_temp.columns();

-- 4c. Column removed while {r} is not re-declared: {r} is stale (lossy).
SELECT pg_temp.declare_t('id:int:nn,n:int,c:varchar(20):nn,b:int');
SELECT pg_temp.summary(coco.reconcile('sch'));
SELECT * FROM pg_temp.columns();
SELECT * FROM pg_temp.stale();
SELECT coco.declare_rows('sch', 'sch_t', 'SELECT id, n::int AS n, c FROM sch_src', '{r}');
SELECT pg_temp.summary(coco.reconcile('sch'));
SELECT * FROM pg_temp.stale();

-- 5. NOT NULL relaxed (c), table alone: not lossy; rows untouched, not stale.
SELECT pg_temp.snap();
SELECT pg_temp.declare_t('id:int:nn,n:int,c:varchar(20),b:int');
SELECT pg_temp.summary(coco.reconcile('sch'));
SELECT * FROM pg_temp.columns();
SELECT * FROM pg_temp.moved();
SELECT * FROM pg_temp.stale();

-- 6. NOT NULL tightened (b) while the rows still hold NULL in b: the run
-- fails with 23502 and nothing changes; the declaration stays staged.
SELECT pg_temp.declare_t('id:int:nn,n:int,c:varchar(20),b:int:nn');
SELECT coco.reconcile('sch');
\echo :LAST_ERROR_SQLSTATE
SELECT * FROM pg_temp.columns();
SELECT pending_declarations FROM coco.apps WHERE app = 'sch';
-- With the rows declared with values for b in the same run, NOT NULL is
-- set after they are written.
SELECT coco.declare_rows('sch', 'sch_t', 'SELECT id, n::int AS n, c, b FROM sch_src', '{r}');
SELECT pg_temp.summary(coco.reconcile('sch'));
SELECT * FROM pg_temp.columns();
SELECT id, n, c, b FROM sch_t ORDER BY id;

-- 7. Primary key changed (id -> id, lang).  A second component {r2} holds
-- rows 10 and 11 and is not re-declared.  The table is re-created: the
-- rows of {r} are written again, {r2} is stale (destructive).
SELECT pg_temp.declare_t('id:int:nn,n:int,c:varchar(20),b:int:nn');
SELECT coco.declare_row('sch', 'sch_t', '{"id": 10, "n": 1, "b": 1}', '{r2}');
SELECT coco.declare_row('sch', 'sch_t', '{"id": 11, "n": 2, "b": 2}', '{r2}');
SELECT pg_temp.summary(coco.reconcile('sch'));
SELECT id FROM sch_t ORDER BY id;
CREATE TEMP TABLE old_rel AS SELECT 'sch_t'::regclass::oid AS oid;
SELECT pg_temp.declare_t('id:int:nn,lang:text:nn,n:int,c:varchar(20),b:int:nn', '{id,lang}');
SELECT coco.declare_rows('sch', 'sch_t', $$SELECT id, 'en' AS lang, n::int AS n, c, b FROM sch_src$$, '{r}');
SELECT pg_temp.summary(coco.reconcile('sch'));
SELECT 'sch_t'::regclass::oid <> (SELECT oid FROM old_rel) AS table_recreated;
SELECT pg_get_constraintdef(oid) FROM pg_constraint WHERE conrelid = 'sch_t'::regclass AND contype = 'p';
SELECT * FROM pg_temp.columns();
SELECT id, lang, n, c, b FROM sch_t ORDER BY id;
SELECT * FROM pg_temp.stale();
SELECT * FROM pg_temp.generation();
-- Declaring {r2} again writes its rows into the new table.
SELECT coco.declare_row('sch', 'sch_t', '{"id": 10, "lang": "fr", "n": 1, "b": 1}', '{r2}');
SELECT coco.declare_row('sch', 'sch_t', '{"id": 11, "lang": "fr", "n": 2, "b": 2}', '{r2}');
SELECT pg_temp.summary(coco.reconcile('sch'));
SELECT id, lang, n, c, b FROM sch_t ORDER BY id;
SELECT * FROM pg_temp.stale();
-- And the next identical run is back to writing nothing.
SELECT pg_temp.snap();
SELECT pg_temp.declare_t('id:int:nn,lang:text:nn,n:int,c:varchar(20),b:int:nn', '{id,lang}');
SELECT coco.declare_rows('sch', 'sch_t', $$SELECT id, 'en' AS lang, n::int AS n, c, b FROM sch_src$$, '{r}');
SELECT coco.declare_row('sch', 'sch_t', '{"id": 10, "lang": "fr", "n": 1, "b": 1}', '{r2}');
SELECT coco.declare_row('sch', 'sch_t', '{"id": 11, "lang": "fr", "n": 2, "b": 2}', '{r2}');
SELECT pg_temp.summary(coco.reconcile('sch'));
SELECT * FROM pg_temp.moved();

-- 8. Primary key type changed (int -> bigint): destructive as well.
SELECT pg_temp.declare_t('id:bigint:nn,lang:text:nn,n:int,c:varchar(20),b:int:nn', '{id,lang}');
SELECT coco.declare_rows('sch', 'sch_t', $$SELECT id, 'en' AS lang, n::int AS n, c, b FROM sch_src$$, '{r}');
SELECT pg_temp.summary(coco.reconcile('sch'));
SELECT * FROM pg_temp.columns();
SELECT id, lang FROM sch_t ORDER BY id;
SELECT * FROM pg_temp.stale();
SELECT * FROM pg_temp.generation();

-- {r2} declared again: its rows are written into the rebuilt table.
SELECT coco.declare_row('sch', 'sch_t', '{"id": 10, "lang": "fr", "n": 1, "b": 1}', '{r2}');
SELECT coco.declare_row('sch', 'sch_t', '{"id": 11, "lang": "fr", "n": 2, "b": 2}', '{r2}');
SELECT pg_temp.summary(coco.reconcile('sch'));
SELECT id, lang FROM sch_t ORDER BY id;

-- 9. A destructive change that leaves every row's values and key the same
-- (key column lang: text -> varchar(10)).  {r2}, not re-declared, loses its
-- rows with the old table; declared again with exactly the same rows, they
-- are written again.
SELECT pg_temp.declare_t('id:bigint:nn,lang:varchar(10):nn,n:int,c:varchar(20),b:int:nn', '{id,lang}');
SELECT coco.declare_rows('sch', 'sch_t', $$SELECT id, 'en' AS lang, n::int AS n, c, b FROM sch_src$$, '{r}');
SELECT pg_temp.summary(coco.reconcile('sch'));
SELECT id, lang FROM sch_t ORDER BY id;
SELECT * FROM pg_temp.stale();
SELECT coco.declare_row('sch', 'sch_t', '{"id": 10, "lang": "fr", "n": 1, "b": 1}', '{r2}');
SELECT coco.declare_row('sch', 'sch_t', '{"id": 11, "lang": "fr", "n": 2, "b": 2}', '{r2}');
SELECT pg_temp.summary(coco.reconcile('sch'));
SELECT id, lang FROM sch_t ORDER BY id;
SELECT * FROM pg_temp.stale();

-- Clean up.
SELECT coco.drop_app('sch');
SELECT to_regclass('sch_t') AS sch_t;
DROP TABLE sch_src;

-- 10. A type change refused for a reason other than the data (a view
-- depends on the column) fails the run with that error as it was: SQLSTATE,
-- message and detail.  The run's subtransaction is rolled back before the
-- error goes up, so the session goes on: the next statement runs, a
-- transaction block rolls back, and a PL/pgSQL handler catches it.
SELECT coco.create_app('sch_view');
SELECT coco.declare_table('sch_view', 'sch_vt',
  '[{"name":"id","type":"integer","nullable":false},{"name":"v","type":"text"}]', '{id}');
SELECT coco.declare_row('sch_view', 'sch_vt', '{"id": 1, "v": "12"}');
SELECT coco.reconcile('sch_view')->'inserted' AS inserted;
CREATE VIEW sch_vt_v AS SELECT v FROM sch_vt;
SELECT coco.declare_table('sch_view', 'sch_vt',
  '[{"name":"id","type":"integer","nullable":false},{"name":"v","type":"integer"}]', '{id}');
SELECT coco.declare_row('sch_view', 'sch_vt', '{"id": 1, "v": 12}');
SELECT coco.reconcile('sch_view');
SELECT 1 AS session_goes_on;
BEGIN;
SELECT coco.reconcile('sch_view');
ROLLBACK;
DO $$
BEGIN
  PERFORM coco.reconcile('sch_view');
EXCEPTION WHEN feature_not_supported THEN
  RAISE NOTICE 'caught %: %', SQLSTATE, SQLERRM;
END $$;
SELECT format_type(atttypid, atttypmod) AS v_type FROM pg_attribute
 WHERE attrelid = 'sch_vt'::regclass AND attname = 'v';
-- without the view, the next run applies what stayed staged
DROP VIEW sch_vt_v;
SELECT coco.reconcile('sch_view')->'updated' AS updated;
SELECT format_type(atttypid, atttypmod) AS v_type FROM pg_attribute
 WHERE attrelid = 'sch_vt'::regclass AND attname = 'v';
SELECT * FROM sch_vt;
SELECT coco.drop_app('sch_view');
