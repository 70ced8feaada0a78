-- 32_protect: protection against destruction.  A table declared with
-- "protect": true is kept, with its rows, when it is no longer declared;
-- the protection lives in tracking, so removing the declaration does not
-- remove it.  coco.unprotect() clears it and the next run drops the table.
-- A full run that would drop every table of an app refuses (55000) unless
-- called with allow_drop_all => true.
\set VERBOSITY default
\set SHOW_CONTEXT never

CREATE FUNCTION pg_temp.summary(r jsonb) RETURNS text LANGUAGE sql AS $$
  SELECT format('table(+%s ~%s -%s =%s) row(+%s ~%s -%s =%s) kept=%s',
                r#>>'{providers,postgres.table,inserted}', r#>>'{providers,postgres.table,updated}',
                r#>>'{providers,postgres.table,deleted}', r#>>'{providers,postgres.table,unchanged}',
                r#>>'{providers,postgres.row,inserted}', r#>>'{providers,postgres.row,updated}',
                r#>>'{providers,postgres.row,deleted}', r#>>'{providers,postgres.row,unchanged}',
                coalesce(r->>'kept', '0'))
$$;
CREATE FUNCTION pg_temp.states(a text) RETURNS TABLE (name text, component text[], protected boolean,
                                                        retained boolean) LANGUAGE sql AS $$
  SELECT name, component, protected, retained FROM coco.target_states
   WHERE app = a AND provider = 'postgres.table' ORDER BY name
$$;
CREATE FUNCTION pg_temp.sqlstate_of(stmt text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
  EXECUTE stmt;
  RETURN 'no error';
EXCEPTION WHEN OTHERS THEN
  RETURN SQLSTATE;
END $$;
CREATE FUNCTION pg_temp.declare_other(a text) RETURNS void LANGUAGE sql AS $$
  SELECT coco.declare_table(a, 'prot_other', '[{"name": "id", "type": "int"}]', '{id}');
  SELECT coco.declare_row(a, 'prot_other', '{"id": 1}');
$$;

-- ===========================================================================
-- 1. The protection survives removal of the declaration
-- ===========================================================================
SELECT coco.create_app('prot');
SELECT pg_temp.declare_other('prot');
SELECT coco.declare_table('prot', 'prot_kept',
  '[{"name": "id", "type": "int"}, {"name": "v", "type": "text"}]', '{id}',
  options => '{"protect": true}');
SELECT coco.declare_rows('prot', 'prot_kept', $$SELECT g AS id, 'v' || g AS v FROM generate_series(1, 5) g$$);
-- the option is staged with the spec; the handler never sees it
SELECT spec->'protect' AS staged_protect FROM coco.staged_state WHERE name = 'public.prot_kept';
SELECT pg_temp.summary(coco.reconcile('prot'));
SELECT * FROM pg_temp.states('prot');
-- the tracking record is the spec without the option
SELECT records->0 ? 'protect' AS record_has_protect FROM coco.target_states WHERE name = 'public.prot_kept';

-- The root component is declared again without prot_kept, several runs in
-- a row: the table and its rows stay, tracked and marked retained.
SELECT pg_temp.declare_other('prot');
SELECT pg_temp.summary(coco.reconcile('prot'));
SELECT count(*) AS rows_kept FROM prot_kept;
SELECT * FROM pg_temp.states('prot');
SELECT pg_temp.declare_other('prot');
SELECT pg_temp.summary(coco.reconcile('prot'));
SELECT pg_temp.summary(coco.reconcile('prot', true));
SELECT count(*) AS rows_kept FROM prot_kept;
SELECT * FROM pg_temp.states('prot');
-- coco.plan shows it kept, not dropped
SELECT pg_temp.declare_other('prot');
SELECT provider, action, detail->>'name' AS name FROM coco.plan('prot', true) ORDER BY 1, 3;
SELECT coco.clear_component('prot', '{}');

-- Rows declared for a kept table are refused: it is not declared.
SELECT pg_temp.declare_other('prot');
SELECT coco.declare_row('prot', 'prot_kept', '{"id": 6, "v": "v6"}');
SELECT coco.reconcile('prot');
SELECT coco.clear_component('prot', '{}');
SELECT pg_temp.declare_other('prot');
SELECT pg_temp.summary(coco.reconcile('prot'));

-- ===========================================================================
-- 2. Declared again: normal again, its rows diffed against what is tracked
-- ===========================================================================
-- Row 2 declared with a new value is updated, row 5 no longer declared is
-- deleted, row 6 is new, the others (and prot_other's row) are unchanged.
SELECT pg_temp.declare_other('prot');
SELECT coco.declare_table('prot', 'prot_kept',
  '[{"name": "id", "type": "int"}, {"name": "v", "type": "text"}]', '{id}');
SELECT coco.declare_rows('prot', 'prot_kept',
  $$SELECT g AS id, CASE WHEN g = 2 THEN 'two' ELSE 'v' || g END AS v
      FROM generate_series(1, 6) g WHERE g <> 5$$);
SELECT pg_temp.summary(coco.reconcile('prot'));
SELECT * FROM prot_kept ORDER BY id;
-- declared without the option: still protected, no longer retained
SELECT * FROM pg_temp.states('prot');

-- ===========================================================================
-- 3. Unprotected: the next run drops it, whatever component it replaces
-- ===========================================================================
SELECT pg_temp.declare_other('prot');
SELECT pg_temp.summary(coco.reconcile('prot'));
SELECT * FROM pg_temp.states('prot');
SELECT coco.unprotect('prot', 'prot_kept');
SELECT * FROM pg_temp.states('prot');
-- a run that replaces another component only
SELECT coco.declare_table('prot', 'prot_side', '[{"name": "id", "type": "int"}]', '{id}', component => '{side}');
SELECT pg_temp.summary(coco.reconcile('prot'));
SELECT to_regclass('prot_kept') AS prot_kept;
SELECT * FROM pg_temp.states('prot');

-- unprotect: unknown table, bad name, NULLs
SELECT coco.unprotect('prot', 'prot_kept');
SELECT coco.unprotect('prot', 'public.nope');
SELECT coco.unprotect('prot', 'bad name');
SELECT coco.unprotect('prot', NULL);
SELECT coco.unprotect(NULL, 'prot_other');
SELECT coco.unprotect('no_such_app', 'prot_other');

-- ===========================================================================
-- 4. "protect": false clears the protection; clear_component
-- ===========================================================================
SELECT coco.declare_table('prot', 'prot_c', '[{"name": "id", "type": "int"}]', '{id}',
  component => '{c}', options => '{"protect": true}');
SELECT coco.declare_row('prot', 'prot_c', '{"id": 1}', '{c}');
SELECT pg_temp.summary(coco.reconcile('prot'));
-- switching the option is no change to the table
SELECT coco.declare_table('prot', 'prot_c', '[{"name": "id", "type": "int"}]', '{id}',
  component => '{c}', options => '{"protect": false}');
SELECT coco.declare_row('prot', 'prot_c', '{"id": 1}', '{c}');
SELECT pg_temp.summary(coco.reconcile('prot'));
SELECT * FROM pg_temp.states('prot');
SELECT coco.declare_table('prot', 'prot_c', '[{"name": "id", "type": "int"}]', '{id}',
  component => '{c}', options => '{"protect": true}');
SELECT coco.declare_row('prot', 'prot_c', '{"id": 1}', '{c}');
SELECT pg_temp.summary(coco.reconcile('prot'));
-- cleared: kept, with its row
SELECT coco.clear_component('prot', '{c}');
SELECT pg_temp.summary(coco.reconcile('prot'));
SELECT * FROM prot_c;
SELECT * FROM pg_temp.states('prot');

-- A declared change that rebuilds a protected table happens: a new key.
SELECT coco.declare_table('prot', 'prot_c', '[{"name": "id", "type": "int"}, {"name": "k", "type": "int"}]',
  '{k}', component => '{c}');
SELECT coco.declare_row('prot', 'prot_c', '{"id": 1, "k": 10}', '{c}');
SELECT pg_temp.summary(coco.reconcile('prot'));
SELECT * FROM prot_c;
SELECT * FROM pg_temp.states('prot');

-- ===========================================================================
-- 5. The destruction guard
-- ===========================================================================
CREATE TABLE prot_before AS SELECT coalesce(max(run_id), 0) AS n FROM coco.run;
-- A full run with nothing staged would drop prot_other and prot_side;
-- prot_c is protected (kept, and not counted): refused.
SELECT coco.reconcile('prot', true);
SELECT to_regclass('prot_other') AS prot_other, to_regclass('prot_side') AS prot_side;
-- the refused run is a failed run: the worker records it (its own
-- transaction rolled back), with the guard's SQLSTATE
DO $$
BEGIN
    FOR i IN 1..200 LOOP
        EXIT WHEN EXISTS (SELECT FROM coco.runs r WHERE r.app = 'prot'
                             AND r.run_id > (SELECT n FROM prot_before) AND r.status = 'failed');
        PERFORM pg_sleep(0.05);
    END LOOP;
END $$;
SELECT status, sqlstate, origin, "full" FROM coco.runs
 WHERE app = 'prot' AND run_id > (SELECT n FROM prot_before) ORDER BY run_id;
SELECT * FROM pg_temp.states('prot');
-- coco.plan shows it, with a NOTICE, and does not refuse
SELECT provider, action, detail->>'name' AS name FROM coco.plan('prot', true) ORDER BY 1, 3;
-- a full run that keeps at least one declared table is allowed
SELECT pg_temp.declare_other('prot');
SELECT pg_temp.summary(coco.reconcile('prot', true));
SELECT * FROM pg_temp.states('prot');
-- said to be meant: everything unprotected goes
SELECT pg_temp.summary(coco.reconcile('prot', true, allow_drop_all => true));
SELECT to_regclass('prot_other') AS prot_other, to_regclass('prot_c') AS prot_c;
SELECT * FROM pg_temp.states('prot');
-- only a protected table left: nothing would be dropped, nothing refused
SELECT pg_temp.summary(coco.reconcile('prot', true));
-- NULL allow_drop_all
SELECT coco.reconcile('prot', true, NULL);
SELECT coco.update('prot', NULL);
-- a non-full run that clears every component is explicit: not guarded
SELECT pg_temp.declare_other('prot');
SELECT pg_temp.summary(coco.reconcile('prot'));
SELECT coco.clear_component('prot', '{}');
SELECT pg_temp.summary(coco.reconcile('prot'));
SELECT to_regclass('prot_other') AS prot_other;
SELECT coco.unprotect('prot', 'prot_c');
SELECT pg_temp.summary(coco.reconcile('prot'));
SELECT * FROM pg_temp.states('prot');

-- coco.update with a declaration function that declares nothing
CREATE FUNCTION prot_declare(declares boolean) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
  IF declares THEN
    PERFORM coco.declare_table('prot_fn', 'prot_fn_t', '[{"name": "id", "type": "int"}]', '{id}');
    PERFORM coco.declare_row('prot_fn', 'prot_fn_t', '{"id": 1}');
  END IF;
END $$;
CREATE TABLE prot_fn_switch (declares boolean);
INSERT INTO prot_fn_switch VALUES (true);
CREATE FUNCTION prot_fn_declare(app text) RETURNS void LANGUAGE sql AS $$
  SELECT prot_declare(declares) FROM prot_fn_switch
$$;
SELECT coco.create_app('prot_fn', 'prot_fn_declare(text)');
SELECT pg_temp.summary(coco.update('prot_fn'));
UPDATE prot_fn_switch SET declares = false;
SELECT coco.update('prot_fn');
SELECT * FROM prot_fn_t;
SELECT pg_temp.summary(coco.update('prot_fn', allow_drop_all => true));
SELECT to_regclass('prot_fn_t') AS prot_fn_t;
-- with nothing tracked, a run that declares nothing has nothing to refuse
SELECT pg_temp.summary(coco.update('prot_fn'));

-- ===========================================================================
-- 6. drop_app leaves protected tables in place, untracked, with a NOTICE
-- ===========================================================================
SELECT pg_temp.declare_other('prot');
SELECT coco.declare_table('prot', 'prot_d', '[{"name": "id", "type": "int"}]', '{id}',
  options => '{"protect": true}');
SELECT coco.declare_row('prot', 'prot_d', '{"id": 7}');
SELECT coco.declare_index('prot', 'prot_d', 'prot_d_idx', '{id}');
SELECT pg_temp.summary(coco.reconcile('prot'));
SELECT name, protected FROM coco.target_states WHERE app = 'prot' ORDER BY name;
SELECT coco.drop_app('prot');
-- the table, its row and its index stay; the unprotected table goes
SELECT to_regclass('prot_other') AS prot_other, to_regclass('prot_d') AS prot_d,
       to_regclass('prot_d_prot_d_idx') AS prot_d_idx;
SELECT * FROM prot_d;
SELECT count(*) AS tracked FROM coco.target_state t WHERE t.name LIKE '%prot_d%';
DROP TABLE prot_d;

-- ===========================================================================
-- 7. Bad options
-- ===========================================================================
SELECT coco.create_app('prot_bad');
SELECT coco.declare_table('prot_bad', 'prot_b', '[{"name": "id", "type": "int"}]', '{id}',
  options => '{"protected": true}');
SELECT coco.declare_table('prot_bad', 'prot_b', '[{"name": "id", "type": "int"}]', '{id}',
  options => '{"protect": "yes"}');
SELECT coco.declare_table('prot_bad', 'prot_b', '[{"name": "id", "type": "int"}]', '{id}',
  options => '[{"protect": true}]');
SELECT coco.declare_table('prot_bad', 'prot_b', '[{"name": "id", "type": "int"}]', '{id}',
  options => '"protect"');
SELECT coco.declare_table('prot_bad', 'prot_b', '[{"name": "id", "type": "int"}]', '{id}',
  options => '{"protect": null}');
-- NULL and {} are no option
SELECT coco.declare_table('prot_bad', 'prot_b', '[{"name": "id", "type": "int"}]', '{id}',
  options => NULL);
SELECT coco.declare_table('prot_bad', 'prot_b2', '[{"name": "id", "type": "int"}]', '{id}',
  options => '{}');
SELECT name, spec FROM coco.staged_state WHERE name LIKE 'public.prot_b%' ORDER BY name;
-- the calls of 0.5, by position
SELECT coco.declare_table('prot_bad', 'prot_b3', '[{"name": "id", "type": "int"}]', '{id}', 'system', '{x}');
SELECT pg_temp.summary(coco.reconcile('prot_bad', false));
SELECT coco.drop_app('prot_bad');

-- ===========================================================================
-- 8. Another role's app
-- ===========================================================================
SET client_min_messages = warning;
DROP ROLE IF EXISTS regress_coco_prot_alice;
DROP ROLE IF EXISTS regress_coco_prot_mallory;
RESET client_min_messages;
CREATE ROLE regress_coco_prot_alice;
CREATE ROLE regress_coco_prot_mallory;
CREATE SCHEMA prot_alice AUTHORIZATION regress_coco_prot_alice;
SET ROLE regress_coco_prot_alice;
SELECT coco.create_app('prot_alice');
SELECT coco.declare_table('prot_alice', 'prot_alice.t', '[{"name": "id", "type": "int"}]', '{id}',
  options => '{"protect": true}');
SELECT pg_temp.summary(coco.reconcile('prot_alice'));
RESET ROLE;
SET ROLE regress_coco_prot_mallory;
SELECT coco.unprotect('prot_alice', 'prot_alice.t');
SELECT coco.reconcile('prot_alice', true, allow_drop_all => true);
SELECT count(*) AS mallory_sees FROM coco.target_states WHERE app = 'prot_alice';
RESET ROLE;
SELECT * FROM pg_temp.states('prot_alice');
SET ROLE regress_coco_prot_alice;
-- the owner's full run: the protected table is kept, nothing to refuse
SELECT pg_temp.summary(coco.reconcile('prot_alice', true));
SELECT coco.unprotect('prot_alice', 'prot_alice.t');
SELECT coco.reconcile('prot_alice', true);
SELECT pg_temp.summary(coco.reconcile('prot_alice', true, allow_drop_all => true));
SELECT to_regclass('prot_alice.t') AS t;
SELECT coco.drop_app('prot_alice');
RESET ROLE;
DROP SCHEMA prot_alice;
DROP ROLE regress_coco_prot_alice;
DROP ROLE regress_coco_prot_mallory;

-- ===========================================================================
-- 9. Hostile cases
-- ===========================================================================
SELECT coco.create_app('prot_h');
SELECT coco.declare_table('prot_h', 'prot_h1', '[{"name": "id", "type": "int"}]', '{id}',
  options => '{"protect": true}');
SELECT coco.declare_row('prot_h', 'prot_h1', '{"id": 1}');
SELECT coco.declare_table('prot_h', 'prot_h2', '[{"name": "id", "type": "int"}]', '{id}');
SELECT pg_temp.summary(coco.reconcile('prot_h'));
-- retained, then dropped by hand: kept as tracked; once unprotected the
-- next run forgets it without failing
SELECT coco.declare_table('prot_h', 'prot_h2', '[{"name": "id", "type": "int"}]', '{id}');
SELECT pg_temp.summary(coco.reconcile('prot_h'));
DROP TABLE prot_h1;
SELECT coco.declare_table('prot_h', 'prot_h2', '[{"name": "id", "type": "int"}]', '{id}');
SELECT pg_temp.summary(coco.reconcile('prot_h'));
SELECT * FROM pg_temp.states('prot_h');
SELECT coco.unprotect('prot_h', 'prot_h1');
SELECT pg_temp.summary(coco.reconcile('prot_h'));
SELECT * FROM pg_temp.states('prot_h');
-- unprotect from inside a run (a declaration function) is refused
CREATE FUNCTION prot_h_declare(app text) RETURNS void LANGUAGE sql AS $$
  SELECT coco.unprotect(app, 'prot_h2')
$$;
SELECT coco.drop_app('prot_h');
SELECT coco.create_app('prot_h', 'prot_h_declare(text)');
SELECT coco.update('prot_h');
-- a huge unknown option is refused like any other
SELECT pg_temp.sqlstate_of(format(
  $$SELECT coco.declare_table('prot_h', 'prot_hx', '[{"name": "id", "type": "int"}]', '{id}', options => '{"%s": 1, "protect": true}')$$,
  repeat('x', 100000))) AS huge_option;
SELECT coco.drop_app('prot_h');

-- A provider written in SQL: "protect" in a root state's spec is the
-- engine's; the provider never sees it.
CREATE TABLE prot_kv (k text PRIMARY KEY, v jsonb);
CREATE FUNCTION prot_kv_reconcile(key jsonb, desired jsonb, prev jsonb[], prev_may_be_missing boolean)
RETURNS jsonb LANGUAGE plpgsql AS $$
BEGIN
  IF desired IS NULL THEN
    RETURN CASE WHEN cardinality(prev) > 0 THEN '{"action": "delete"}' ELSE '{"action": "none"}' END::jsonb;
  END IF;
  IF cardinality(prev) = 0 THEN
    RETURN '{"action": "insert"}';
  END IF;
  IF NOT prev_may_be_missing AND desired = ALL (prev) THEN
    RETURN '{"action": "none"}';
  END IF;
  RETURN '{"action": "upsert"}';
END $$;
CREATE FUNCTION prot_kv_apply(actions jsonb) RETURNS void LANGUAGE plpgsql AS $$
DECLARE a jsonb;
BEGIN
  FOR a IN SELECT * FROM jsonb_array_elements(actions) LOOP
    IF a->>'action' = 'delete' THEN
      DELETE FROM public.prot_kv WHERE k = a->>'key';
    ELSE
      INSERT INTO public.prot_kv VALUES (a->>'key', a->'desired')
        ON CONFLICT (k) DO UPDATE SET v = EXCLUDED.v;
    END IF;
  END LOOP;
END $$;
SELECT coco.register_provider('prot.kv', 'prot_kv_reconcile(jsonb,jsonb,jsonb[],boolean)', 'prot_kv_apply(jsonb)');
SELECT coco.create_app('prot_pv');
SELECT coco.declare_target_state('prot_pv', 'prot.kv', '"a"', '{"n": 1, "protect": true}');
SELECT coco.declare_target_state('prot_pv', 'prot.kv', '"b"', '{"n": 2}');
SELECT coco.reconcile('prot_pv')->'inserted' AS inserted;
SELECT * FROM prot_kv ORDER BY k;
SELECT coco.declare_target_state('prot_pv', 'prot.kv', '"b"', '{"n": 2}');
SELECT coco.reconcile('prot_pv')->'kept' AS kept;
SELECT * FROM prot_kv ORDER BY k;
SELECT key, records, protected, retained FROM coco.target_states WHERE app = 'prot_pv' ORDER BY key::text;
SELECT coco.drop_app('prot_pv');
SELECT * FROM prot_kv ORDER BY k;

-- A full worker run is refused in the worker, with the same error (it is
-- retried, then failed); the table stays.
SELECT coco.create_app('prot_w');
SELECT coco.declare_table('prot_w', 'prot_w1', '[{"name": "id", "type": "int"}]', '{id}');
SELECT pg_temp.summary(coco.reconcile('prot_w'));
SELECT coco.submit('prot_w', true) AS run_id \gset
DO $$
BEGIN
  FOR i IN 1..600 LOOP
    EXIT WHEN EXISTS (SELECT FROM coco.runs WHERE app = 'prot_w' AND sqlstate IS NOT NULL);
    PERFORM pg_sleep(0.05);
  END LOOP;
END $$;
SELECT sqlstate, error FROM coco.runs WHERE run_id = :run_id;
SELECT coco.cancel(:run_id) IS NOT NULL AS stopped;
SELECT to_regclass('prot_w1') AS prot_w1;
SELECT coco.drop_app('prot_w');
