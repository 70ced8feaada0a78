-- Providers written in PL/pgSQL: coco.register_provider with a reconcile
-- function and an apply function (jsonb in, jsonb out), and
-- coco.declare_target_state for their states.  Proves create, update,
-- delete and no-op through a key/value connector, that its code runs as
-- the app owner, that another role cannot take over a registered name, and
-- bad input.
\set VERBOSITY default
\set SHOW_CONTEXT never
CREATE TABLE pv_kv (k text PRIMARY KEY, v jsonb, written_by name);
CREATE FUNCTION pv_reconcile(key jsonb, desired jsonb, prev jsonb[], prev_may_be_missing boolean)
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
CREATE FUNCTION pv_apply(actions jsonb) RETURNS void LANGUAGE plpgsql AS $$
DECLARE a jsonb;
BEGIN
  FOR a IN SELECT * FROM jsonb_array_elements(actions) LOOP
    IF a->>'action' = 'delete' THEN
      DELETE FROM public.pv_kv WHERE k = a->>'key';
    ELSE
      INSERT INTO public.pv_kv VALUES (a->>'key', a->'desired', current_user)
        ON CONFLICT (k) DO UPDATE SET v = EXCLUDED.v, written_by = EXCLUDED.written_by;
    END IF;
  END LOOP;
END $$;
CREATE FUNCTION pv_bad_reconcile(key jsonb, desired jsonb, prev jsonb[], prev_may_be_missing boolean)
RETURNS jsonb LANGUAGE sql AS $$ SELECT '{"action": "explode"}'::jsonb $$;
CREATE FUNCTION pg_temp.counts(r jsonb) RETURNS text LANGUAGE sql AS $$
  SELECT format('+%s ~%s -%s =%s', r#>>'{providers,example.plkv,inserted}', r#>>'{providers,example.plkv,updated}',
                r#>>'{providers,example.plkv,deleted}', r#>>'{providers,example.plkv,unchanged}')
$$;

SELECT coco.register_provider('example.plkv', 'pv_reconcile(jsonb,jsonb,jsonb[],boolean)', 'pv_apply(jsonb)');
SELECT coco.create_app('pv');

-- create
SELECT coco.declare_target_state('pv', 'example.plkv', '"a"', '{"n": 1}');
SELECT coco.declare_target_state('pv', 'example.plkv', '"b"', '{"n": 2}');
SELECT pg_temp.counts(coco.reconcile('pv'));
SELECT k, v, written_by = current_user AS by_app_owner FROM pv_kv ORDER BY k;
-- update one, drop one, add one
SELECT coco.declare_target_state('pv', 'example.plkv', '"a"', '{"n": 10}');
SELECT coco.declare_target_state('pv', 'example.plkv', '"c"', '{"n": 3}');
SELECT pg_temp.counts(coco.reconcile('pv'));
SELECT k, v FROM pv_kv ORDER BY k;
-- the same again: nothing happens
SELECT coco.declare_target_state('pv', 'example.plkv', '"a"', '{"n": 10}');
SELECT coco.declare_target_state('pv', 'example.plkv', '"c"', '{"n": 3}');
SELECT pg_temp.counts(coco.reconcile('pv'));
SELECT provider, key, records FROM coco.target_states WHERE app = 'pv' ORDER BY key::text;

-- the provider's code runs as the app owner
CREATE ROLE regress_coco_pv_owner;
GRANT INSERT, UPDATE, DELETE, SELECT ON pv_kv TO regress_coco_pv_owner;
SET ROLE regress_coco_pv_owner;
SELECT coco.create_app('pv_other');
SELECT coco.declare_target_state('pv_other', 'example.plkv', '"z"', '{"n": 26}');
SELECT pg_temp.counts(coco.reconcile('pv_other'));
RESET ROLE;
SELECT k, written_by FROM pv_kv WHERE k = 'z';

-- another role cannot take over the name (42501); a C provider's name is taken (42710)
SET ROLE regress_coco_pv_owner;
SELECT coco.register_provider('example.plkv', 'pv_reconcile(jsonb,jsonb,jsonb[],boolean)', 'pv_apply(jsonb)');
\echo :LAST_ERROR_SQLSTATE
RESET ROLE;
SELECT coco.register_provider('postgres.table', 'pv_reconcile(jsonb,jsonb,jsonb[],boolean)', 'pv_apply(jsonb)');
\echo :LAST_ERROR_SQLSTATE

-- bad input
SELECT coco.register_provider('Bad Name', 'pv_reconcile(jsonb,jsonb,jsonb[],boolean)', 'pv_apply(jsonb)');
\echo :LAST_ERROR_SQLSTATE
SELECT coco.register_provider('example.wrong', 'pv_apply(jsonb)', 'pv_apply(jsonb)');
\echo :LAST_ERROR_SQLSTATE
SELECT coco.declare_target_state('pv', 'postgres.table', '"a"', '{}');
\echo :LAST_ERROR_SQLSTATE
SELECT coco.declare_target_state('pv', 'example.nothing', '"a"', '{}');
\echo :LAST_ERROR_SQLSTATE
SELECT coco.declare_target_state('pv', 'example.plkv', '1.5', '{}');
\echo :LAST_ERROR_SQLSTATE
-- declared again by its component: replaced; by another component: 23505
SELECT coco.declare_target_state('pv', 'example.plkv', '"a"', '{"n": 10}');
SELECT coco.declare_target_state('pv', 'example.plkv', '"a"', '{"n": 10}');
SELECT coco.declare_target_state('pv', 'example.plkv', '"a"', '{"n": 10}', '{other}');
\echo :LAST_ERROR_SQLSTATE
SELECT coco.register_provider('example.bad', 'pv_bad_reconcile(jsonb,jsonb,jsonb[],boolean)', 'pv_apply(jsonb)');
SELECT coco.create_app('pv_bad');
SELECT coco.declare_target_state('pv_bad', 'example.bad', '"x"', '{}');
SELECT coco.reconcile('pv_bad');
\echo :LAST_ERROR_SQLSTATE

-- dropping the apps deletes what they made
SELECT coco.drop_app('pv');
SET ROLE regress_coco_pv_owner;
SELECT coco.drop_app('pv_other');
RESET ROLE;
SELECT coco.drop_app('pv_bad');
SELECT count(*) AS left_over FROM pv_kv;
DROP TABLE pv_kv;
DROP ROLE regress_coco_pv_owner;
