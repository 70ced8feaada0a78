-- 30_redeclare: within one component a later declaration of a key replaces
-- the earlier staged one, from the same transaction or an earlier committed
-- one (staging order decides).
--   1. every declaration kind declared again in its component: tables,
--      rows, queries, indexes (also plain then concurrent), SQL commands,
--      SQL-provider states, localfs directories and files; the later one
--      wins once reconciled, and coco.plan predicts it;
--   2. a key staged by another component: 23505 naming both components;
--   3. a declare_rows query that yields one key twice: still 23505;
--   4. rows and queries of one table and component: each key takes its
--      latest source (row then query, query then row, query then query);
--   5. the same query declared again and again: staged once, evaluated once;
--   6. coco.discard_staged: returns how many entries, leaves nothing staged,
--      refuses another role's app;
--   7. a long run of rows declared again in one transaction, then new keys
--      and another component's key: each row its latest declaration.
\set VERBOSITY default
\set SHOW_CONTEXT never

SET client_min_messages = warning;
DROP ROLE IF EXISTS regress_coco_rd_alice;
DROP ROLE IF EXISTS regress_coco_rd_mallory;
RESET client_min_messages;
CREATE ROLE regress_coco_rd_alice;
CREATE ROLE regress_coco_rd_mallory;
CREATE SCHEMA rd AUTHORIZATION regress_coco_rd_alice;

-- the SQLSTATE and message of a failing statement (or 'no error')
CREATE FUNCTION public.rd_error_of(stmt text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
  EXECUTE stmt;
  RETURN 'no error';
EXCEPTION WHEN OTHERS THEN
  DECLARE d text;
  BEGIN
    GET STACKED DIAGNOSTICS d = PG_EXCEPTION_DETAIL;
    RETURN SQLSTATE || ': ' || SQLERRM || coalesce(' / ' || d, '');
  END;
END $$;
GRANT EXECUTE ON FUNCTION public.rd_error_of(text) TO PUBLIC;
-- inserted/updated/deleted/unchanged of a run, per provider
CREATE FUNCTION public.rd_counts(r jsonb) RETURNS TABLE (provider text, ins text, upd text, del text, unch text)
LANGUAGE sql AS $$
  SELECT p.key, p.value->>'inserted', p.value->>'updated', p.value->>'deleted', p.value->>'unchanged'
    FROM jsonb_each(r->'providers') p ORDER BY p.key
$$;
GRANT EXECUTE ON FUNCTION public.rd_counts(jsonb) TO PUBLIC;
-- the inserts and deletes of staged rows a statement makes (statistics are
-- not flushed inside a transaction: the difference is the statement's)
CREATE FUNCTION public.rd_staging_writes(stmt text) RETURNS TABLE (inserted bigint, deleted bigint)
LANGUAGE plpgsql AS $$
DECLARE
  ins0 bigint;
  del0 bigint;
BEGIN
  SELECT s.n_tup_ins, s.n_tup_del INTO ins0, del0
    FROM pg_stat_xact_all_tables s WHERE s.relid = 'coco.staged_row'::regclass;
  EXECUTE stmt;
  RETURN QUERY SELECT s.n_tup_ins - ins0, s.n_tup_del - del0
    FROM pg_stat_xact_all_tables s WHERE s.relid = 'coco.staged_row'::regclass;
END $$;
GRANT EXECUTE ON FUNCTION public.rd_staging_writes(text) TO PUBLIC;

-- ===========================================================================
-- 1. every declaration kind, declared again in its component
-- ===========================================================================
SET ROLE regress_coco_rd_alice;
SELECT coco.create_app('rd');

-- in one transaction: the table (its columns change), rows, a query, an
-- index, a SQL command — each declared twice, the second different
BEGIN;
SELECT coco.declare_table('rd', 'rd.t', '[{"name":"id","type":"int"},{"name":"v","type":"text"}]', '{id}');
SELECT coco.declare_table('rd', 'rd.t',
    '[{"name":"id","type":"int"},{"name":"v","type":"text"},{"name":"w","type":"int"}]', '{id}');
SELECT coco.declare_row('rd', 'rd.t', '{"id": 1, "v": "first"}', '{rows}');
SELECT coco.declare_row('rd', 'rd.t', '{"id": 1, "v": "second", "w": 2}', '{rows}');
SELECT coco.declare_rows('rd', 'rd.t', $q$SELECT 10 AS id, 'first' AS v$q$, '{query}');
SELECT coco.declare_rows('rd', 'rd.t', $q$SELECT 10 AS id, 'second' AS v$q$, '{query}');
SELECT coco.declare_index('rd', 'rd.t', 'by_v', '{v}');
SELECT coco.declare_index('rd', 'rd.t', 'by_v', '{v,w}');
SELECT coco.declare_sql_command('rd', 'rd.t', 'view', 'CREATE VIEW rd.t_view AS SELECT 1 AS one',
                                'DROP VIEW rd.t_view');
SELECT coco.declare_sql_command('rd', 'rd.t', 'view', 'CREATE VIEW rd.t_view AS SELECT 2 AS two',
                                'DROP VIEW rd.t_view');
COMMIT;
-- one staged state per key; two staged queries (different texts)
SELECT component, target, states, rows, queries FROM coco.staged WHERE app = 'rd' ORDER BY component, target;
-- and across transactions: each statement below commits on its own
SELECT coco.declare_row('rd', 'rd.t', '{"id": 2, "v": "first"}', '{rows}');
SELECT coco.declare_row('rd', 'rd.t', '{"id": 2, "v": "second"}', '{rows}');
-- the plan predicts what the run does: 3 rows inserted (1, 2 and 10)
SELECT provider, action, detail->>'insert' AS insert FROM coco.plan('rd')
 WHERE provider = 'postgres.row';
SELECT * FROM public.rd_counts(coco.reconcile('rd'));
SELECT * FROM rd.t ORDER BY id;
SELECT attname FROM pg_attribute WHERE attrelid = 'rd.t'::regclass AND attnum > 0 ORDER BY attnum;
SELECT pg_get_indexdef(indexrelid) FROM pg_index WHERE indrelid = 'rd.t'::regclass AND NOT indisprimary;
SELECT * FROM rd.t_view;

-- across transactions, every kind again: the later one wins
SELECT coco.declare_table('rd', 'rd.t', '[{"name":"id","type":"int"},{"name":"v","type":"text"}]', '{id}');
SELECT coco.declare_table('rd', 'rd.t',
    '[{"name":"id","type":"int"},{"name":"v","type":"text"},{"name":"x","type":"text"}]', '{id}');
SELECT coco.declare_rows('rd', 'rd.t', $q$SELECT 1 AS id, 'third' AS v, 'x' AS x$q$, '{rows}');
SELECT coco.declare_rows('rd', 'rd.t', $q$SELECT 1 AS id, 'fourth' AS v, 'x' AS x$q$, '{rows}');
-- an index declared concurrently, then plainly: the plain one replaces it
SELECT coco.declare_index('rd', 'rd.t', 'by_v', '{v,x}', 'btree', '{"concurrently": true}');
SELECT coco.declare_index('rd', 'rd.t', 'by_v', '{x}');
SELECT coco.declare_sql_command('rd', 'rd.t', 'view', 'CREATE VIEW rd.t_view AS SELECT 3 AS three',
                                'DROP VIEW rd.t_view');
SELECT coco.declare_sql_command('rd', 'rd.t', 'view', 'CREATE VIEW rd.t_view AS SELECT 4 AS four',
                                'DROP VIEW rd.t_view');
SELECT s.provider, s.name FROM coco.staged_state s JOIN coco.app a USING (app_id)
 WHERE a.name = 'rd' ORDER BY s.provider, s.name;
SELECT * FROM public.rd_counts(coco.reconcile('rd'));
-- {query} was not declared again: its row 10 stays
SELECT * FROM rd.t ORDER BY id;
SELECT pg_get_indexdef(indexrelid) FROM pg_index WHERE indrelid = 'rd.t'::regclass AND NOT indisprimary;
SELECT * FROM rd.t_view;
RESET ROLE;

-- a SQL provider's state and localfs directories and files (as a superuser:
-- registering providers and contexts is a superuser's)
CREATE TABLE public.rd_kv (k text PRIMARY KEY, v jsonb);
CREATE FUNCTION public.rd_reconcile(key jsonb, desired jsonb, prev jsonb[], prev_may_be_missing boolean)
RETURNS jsonb LANGUAGE sql AS $$
  SELECT CASE WHEN desired IS NULL THEN '{"action": "delete"}'
              WHEN cardinality(prev) = 0 THEN '{"action": "insert"}'
              WHEN NOT prev_may_be_missing AND desired = ALL (prev)
              THEN '{"action": "none"}' ELSE '{"action": "upsert"}' END::jsonb
$$;
CREATE FUNCTION public.rd_apply(actions jsonb) RETURNS void LANGUAGE plpgsql AS $$
DECLARE a jsonb;
BEGIN
  FOR a IN SELECT * FROM jsonb_array_elements(actions) LOOP
    IF a->>'action' = 'delete' THEN
      DELETE FROM public.rd_kv WHERE k = a->>'key';
    ELSE
      INSERT INTO public.rd_kv VALUES (a->>'key', a->'desired')
        ON CONFLICT (k) DO UPDATE SET v = EXCLUDED.v;
    END IF;
  END LOOP;
END $$;
SELECT coco.register_provider('regress30.kv', 'public.rd_reconcile(jsonb,jsonb,jsonb[],boolean)',
                              'public.rd_apply(jsonb)');
SELECT coco.provide_context('rd_fs', 'localfs', jsonb_build_object('root', current_setting('data_directory')));
SELECT coco.create_app('rd_su');
BEGIN;
SELECT coco.declare_target_state('rd_su', 'regress30.kv', '"a"', '{"n": 1}', '{kv}');
SELECT coco.declare_target_state('rd_su', 'regress30.kv', '"a"', '{"n": 2}', '{kv}');
SELECT coco.declare_dir('rd_su', 'rd_fs', 'coco_regress30/out', '{fs}');
SELECT coco.declare_dir('rd_su', 'rd_fs', 'coco_regress30/out', '{fs}');
SELECT coco.declare_file('rd_su', 'rd_fs', 'coco_regress30/out', 'a.txt', 'first', '{fs}');
SELECT coco.declare_file('rd_su', 'rd_fs', 'coco_regress30/out', 'a.txt', 'second', '{fs}');
COMMIT;
SELECT coco.declare_target_state('rd_su', 'regress30.kv', '"b"', '{"n": 1}', '{kv}');
SELECT coco.declare_target_state('rd_su', 'regress30.kv', '"b"', '{"n": 2}', '{kv}');
SELECT coco.declare_file('rd_su', 'rd_fs', 'coco_regress30/out', 'b.txt', 'first', '{fs}');
SELECT coco.declare_file('rd_su', 'rd_fs', 'coco_regress30/out', 'b.txt', 'second', '{fs}');
-- one staged state per key, each the later declaration
SELECT s.provider, s.name, CASE WHEN s.provider = 'localfs.file'
                                THEN convert_from(decode(s.spec->>'content', 'base64'), 'UTF8')
                                ELSE s.spec::text END AS spec
  FROM coco.staged_state s JOIN coco.app a USING (app_id)
 WHERE a.name = 'rd_su' ORDER BY s.provider, s.name;
SELECT * FROM public.rd_counts(coco.reconcile('rd_su'));
SELECT k, v FROM public.rd_kv ORDER BY k;

-- ===========================================================================
-- 2. a key staged by another component: 23505, naming both
-- ===========================================================================
SELECT public.rd_error_of($$SELECT coco.declare_target_state('rd_su', 'regress30.kv', '"a"', '{"n": 3}', '{other}')$$)
 FROM coco.declare_target_state('rd_su', 'regress30.kv', '"a"', '{"n": 3}', '{kv}');
SELECT public.rd_error_of($$SELECT coco.declare_file('rd_su', 'rd_fs', 'coco_regress30/out', 'a.txt', 'x', '{other}')$$)
 FROM coco.declare_file('rd_su', 'rd_fs', 'coco_regress30/out', 'a.txt', 'third', '{fs}');
SELECT coco.drop_app('rd_su');
SELECT coco.drop_context('rd_fs');

SET ROLE regress_coco_rd_alice;
SELECT coco.declare_table('rd', 'rd.t', '[{"name":"id","type":"int"},{"name":"v","type":"text"}]', '{id}');
SELECT coco.declare_row('rd', 'rd.t', '{"id": 5, "v": "in a"}', '{a}');
SELECT coco.declare_index('rd', 'rd.t', 'by_v', '{v}', 'btree', '{}', '{a}');
SELECT coco.declare_sql_command('rd', 'rd.t', 'view', 'SELECT 1', NULL, '{a}');
SELECT t.stmt, public.rd_error_of(t.stmt) AS error
  FROM (VALUES
    ($$SELECT coco.declare_table('rd', 'rd.t', '[{"name":"id","type":"int"}]', '{id}', 'system', '{b}')$$),
    ($$SELECT coco.declare_row('rd', 'rd.t', '{"id": 5, "v": "in b"}', '{b}')$$),
    ($$SELECT coco.declare_index('rd', 'rd.t', 'by_v', '{v}', 'btree', '{}', '{b}')$$),
    -- the other way (concurrently) in another component is the same index
    ($$SELECT coco.declare_index('rd', 'rd.t', 'by_v', '{v}', 'btree', '{"concurrently": true}', '{b}')$$),
    ($$SELECT coco.declare_sql_command('rd', 'rd.t', 'view', 'SELECT 1', NULL, '{b}')$$)
  ) AS t(stmt);
-- the first components' declarations are still staged, and nothing of {b}
SELECT component, target, states, rows, queries FROM coco.staged WHERE app = 'rd' ORDER BY component, target;
-- a query's key staged by another component's row is found by the run:
-- still 23505, never a replacement
SELECT coco.declare_rows('rd', 'rd.t', 'SELECT 5 AS id', '{b}');
SELECT public.rd_error_of($$SELECT coco.reconcile('rd')$$) AS error;
SELECT coco.discard_staged('rd') AS discarded;

-- ===========================================================================
-- 3. a query that yields one key twice is still an error
-- ===========================================================================
SELECT coco.declare_table('rd', 'rd.t', '[{"name":"id","type":"int"},{"name":"v","type":"text"}]', '{id}');
SELECT coco.declare_rows('rd', 'rd.t', $q$SELECT 7 AS id, 'old' AS v$q$, '{dup}');
SELECT coco.declare_rows('rd', 'rd.t', $q$SELECT 7 AS id, g::text AS v FROM generate_series(1, 2) g$q$, '{dup}');
SELECT provider, action, detail->>'message' AS message FROM coco.plan('rd') WHERE action = 'error';
SELECT public.rd_error_of($$SELECT coco.reconcile('rd')$$) AS error;
SELECT coco.discard_staged('rd');

-- ===========================================================================
-- 4. rows and queries of one table and component: each key its latest source
-- ===========================================================================
SELECT coco.declare_table('rd', 'rd.t', '[{"name":"id","type":"int"},{"name":"v","type":"text"}]', '{id}');
-- row, then a query with the row's key: the query's row
SELECT coco.declare_row('rd', 'rd.t', '{"id": 30, "v": "row"}', '{rq}');
SELECT coco.declare_rows('rd', 'rd.t', $q$SELECT 30 AS id, 'query' AS v UNION ALL SELECT 31, 'query'$q$, '{rq}');
-- query, then a row with one of its keys: the row, the query's other key stays
SELECT coco.declare_rows('rd', 'rd.t', $q$SELECT 40 AS id, 'query' AS v UNION ALL SELECT 41, 'query'$q$, '{qr}');
SELECT coco.declare_row('rd', 'rd.t', '{"id": 40, "v": "row"}', '{qr}');
-- two queries: the later one's rows, the earlier one's other keys stay
BEGIN;
SELECT coco.declare_rows('rd', 'rd.t', $q$SELECT g AS id, 'early' AS v FROM generate_series(50, 52) g$q$, '{qq}');
SELECT coco.declare_rows('rd', 'rd.t', $q$SELECT g AS id, 'late' AS v FROM generate_series(51, 53) g$q$, '{qq}');
COMMIT;
SELECT component, target, states, rows, queries FROM coco.staged WHERE app = 'rd' ORDER BY component, target;
-- the plan predicts the run: 8 rows (30, 31, 40, 41, 50 to 53), no
-- error for the keys two sources of one component declare
SELECT provider, action, detail->>'insert' AS insert, detail->>'update' AS update,
       detail->>'delete' AS delete
  FROM coco.plan('rd') WHERE provider = 'postgres.row';
SELECT * FROM public.rd_counts(coco.reconcile('rd'));
SELECT id, v FROM rd.t WHERE id >= 30 ORDER BY id;
-- a table the run creates, loaded in bulk from its one component's row
-- and query: the same choice
SELECT coco.declare_table('rd', 'rd.t2', '[{"name":"id","type":"int"},{"name":"v","type":"text"}]', '{id}',
                          component => '{bulk}');
SELECT coco.declare_rows('rd', 'rd.t2', $q$SELECT g AS id, 'query' AS v FROM generate_series(1, 3) g$q$, '{bulk}');
SELECT coco.declare_row('rd', 'rd.t2', '{"id": 2, "v": "row"}', '{bulk}');
SELECT * FROM public.rd_counts(coco.reconcile('rd'));
SELECT id, v FROM rd.t2 ORDER BY id;
-- a single source per component: the run's statement has no window
SELECT coco.declare_rows('rd', 'rd.t', $q$SELECT g AS id, 'only' AS v FROM generate_series(50, 52) g$q$, '{qq}');
SELECT * FROM public.rd_counts(coco.reconcile('rd'));
SELECT id, v FROM rd.t WHERE id >= 50 ORDER BY id;

-- ===========================================================================
-- 5. the same query declared again: staged once, evaluated once
-- ===========================================================================
CREATE TABLE rd.calls (n int);
CREATE FUNCTION rd.counted(i int) RETURNS int LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO rd.calls VALUES (i);
  RETURN i;
END $$;
CREATE TABLE rd.src (id int PRIMARY KEY, v text);
INSERT INTO rd.src VALUES (60, 'a'), (61, 'b');
DO $$
BEGIN
  FOR i IN 1..50 LOOP
    PERFORM coco.declare_rows('rd', 'rd.t', 'SELECT id, v FROM rd.src', '{same}');
  END LOOP;
END $$;
UPDATE rd.src SET v = 'b2' WHERE id = 61;
SELECT coco.declare_rows('rd', 'rd.t', 'SELECT id, v FROM rd.src', '{same}');
SELECT component, target, rows, queries FROM coco.staged WHERE app = 'rd' ORDER BY component;
-- the same text under another search_path is another query: staged too
-- (and the run refuses queries of one table under different search_paths)
SET search_path = rd, public;
SELECT coco.declare_rows('rd', 'rd.t', 'SELECT id, v FROM rd.src', '{same}');
RESET search_path;
SELECT count(*) AS staged_queries FROM coco.staged_query q JOIN coco.app a USING (app_id) WHERE a.name = 'rd';
SELECT public.rd_error_of($$SELECT coco.reconcile('rd')$$) AS error;
SELECT coco.discard_staged('rd');
-- evaluated once: a query that counts its rows' evaluations
TRUNCATE rd.calls;
DO $$
BEGIN
  FOR i IN 1..20 LOOP
    PERFORM coco.declare_rows('rd', 'rd.t', 'SELECT rd.counted(id) AS id, v FROM rd.src', '{same}');
  END LOOP;
END $$;
SELECT count(*) AS evaluations_while_declaring FROM rd.calls;
TRUNCATE rd.calls;
SELECT * FROM public.rd_counts(coco.reconcile('rd'));
SELECT count(*) AS evaluations_by_the_run FROM rd.calls;
SELECT id, v FROM rd.t WHERE id >= 60 ORDER BY id;

-- ===========================================================================
-- 6. coco.discard_staged
-- ===========================================================================
SELECT coco.declare_table('rd', 'rd.t', '[{"name":"id","type":"int"},{"name":"v","type":"text"}]', '{id}');
SELECT coco.declare_row('rd', 'rd.t', '{"id": 70, "v": "r"}', '{d}');
SELECT coco.declare_row('rd', 'rd.t', '{"id": 71, "v": "r"}', '{d}');
SELECT coco.declare_rows('rd', 'rd.t', 'SELECT 72 AS id', '{d2}');
SELECT coco.clear_component('rd', '{same}');
-- mallory may not discard alice's staging (42501), nor a missing app (42704), nor NULL (22004)
SET ROLE regress_coco_rd_mallory;
SELECT public.rd_error_of($$SELECT coco.discard_staged('rd')$$) AS mallory;
SELECT public.rd_error_of($$SELECT coco.discard_staged('rd_nonesuch')$$) AS missing;
SELECT public.rd_error_of($$SELECT coco.discard_staged(NULL)$$) AS null_app;
SET ROLE regress_coco_rd_alice;
-- the table's state, two rows, one query and the clear marker: 5
SELECT coco.discard_staged('rd') AS discarded;
SELECT count(*) AS staged FROM coco.staged WHERE app = 'rd';
SELECT coco.discard_staged('rd') AS discarded_again;
-- nothing staged: a run changes nothing, and tracking is untouched
SELECT * FROM public.rd_counts(coco.reconcile('rd'));
SELECT count(*) AS rows_kept FROM rd.t;

-- user code that discards staging: a declare_rows query calling
-- coco.discard_staged discards, when declare_rows counts it, what was staged
-- before it (the caller's own staging, in the caller's transaction); when the
-- run evaluates it, 55006 and the run changes nothing
CREATE FUNCTION rd.discarding() RETURNS int LANGUAGE plpgsql AS $$
BEGIN
  PERFORM coco.discard_staged('rd');
  RETURN 81;
END $$;
CREATE TABLE rd.n (id int);
INSERT INTO rd.n VALUES (81);
SELECT coco.declare_table('rd', 'rd.t', '[{"name":"id","type":"int"},{"name":"v","type":"text"}]', '{id}');
SELECT coco.declare_rows('rd', 'rd.t', 'SELECT id FROM rd.n', '{nested}');
SELECT coco.declare_rows('rd', 'rd.t', 'SELECT id, rd.discarding()::text AS v FROM rd.n', '{nested}');
SELECT component, target, states, rows, queries FROM coco.staged WHERE app = 'rd';
SELECT public.rd_error_of($$SELECT coco.reconcile('rd')$$) AS run;
SELECT count(*) AS staged_after FROM coco.staged WHERE app = 'rd';
SELECT count(*) AS rows_kept FROM rd.t;
SELECT coco.discard_staged('rd');

-- ===========================================================================
-- 7. a run of rows declared again in one transaction: after eight
--    replacements in a row declare_row stops trying to insert first (which
--    only finds the key staged) until a row is new; new keys, a key of
--    another component and keys declared again after it keep their meaning
-- ===========================================================================
SELECT coco.declare_table('rd', 'rd.t', '[{"name":"id","type":"int"},{"name":"v","type":"text"}]', '{id}');
SELECT coco.declare_row('rd', 'rd.t', '{"id": 900, "v": "other"}', '{other}');
SELECT count(coco.declare_row('rd', 'rd.t', jsonb_build_object('id', g, 'v', 'first'), '{run}'))
  FROM generate_series(1000, 1019) g;
BEGIN;
-- twenty declared again: the first eight try the insert and take it back
-- (two inserts and two deletes each), the twelve after it one delete and
-- one insert: 28 and 28
SELECT * FROM public.rd_staging_writes($$
  SELECT count(coco.declare_row('rd', 'rd.t', jsonb_build_object('id', g, 'v', 'second'), '{run}'))
    FROM generate_series(1000, 1019) g$$);
-- a new key brings the insert back: of the sixteen after it, eight try it
-- first again (24 and 24)
SELECT coco.declare_row('rd', 'rd.t', '{"id": 1020, "v": "new"}', '{run}');
SELECT * FROM public.rd_staging_writes($$
  SELECT count(coco.declare_row('rd', 'rd.t', jsonb_build_object('id', g, 'v', 'third'), '{run}'))
    FROM generate_series(1000, 1015) g$$);
SELECT public.rd_error_of($$SELECT coco.declare_row('rd', 'rd.t', '{"id": 900, "v": "mine"}', '{run}')$$) AS other_component;
SELECT coco.declare_row('rd', 'rd.t', '{"id": 1019, "v": "fourth"}', '{run}');
SELECT coco.declare_row('rd', 'rd.t', '{"id": 1021, "v": "new"}', '{run}');
COMMIT;
SELECT component, target, states, rows, queries FROM coco.staged WHERE app = 'rd' ORDER BY component, target;
SELECT * FROM public.rd_counts(coco.reconcile('rd'));
SELECT v, count(*) AS n, min(id), max(id) FROM rd.t WHERE id >= 900 GROUP BY v ORDER BY v;

SELECT coco.drop_app('rd');
RESET ROLE;
DROP SCHEMA rd CASCADE;
DROP TABLE public.rd_kv;
DROP FUNCTION public.rd_error_of(text);
DROP FUNCTION public.rd_counts(jsonb);
DROP FUNCTION public.rd_staging_writes(text);
DROP ROLE regress_coco_rd_alice;
DROP ROLE regress_coco_rd_mallory;
