-- 33_run_targets: the per-target breakdown of a run (stats->'targets',
-- expanded by coco.run_targets): one entry per target state the run
-- decided, one per table whose rows it synced, each with its own counts.
--   1. a run that creates a table and inserts rows, then one that changes
--      some, then one that changes nothing;
--   2. two tables and an index in one run; the totals per provider are the
--      sums of the breakdown;
--   3. a table no longer declared: dropped, its rows with it;
--   4. the origin of a synchronous run; another role sees none of it.
\set VERBOSITY default
\set SHOW_CONTEXT never
SET client_min_messages = warning;
DROP ROLE IF EXISTS regress_rt_owner;
DROP ROLE IF EXISTS regress_rt_stranger;
RESET client_min_messages;
CREATE ROLE regress_rt_owner;
CREATE ROLE regress_rt_stranger;
GRANT CREATE ON SCHEMA public TO regress_rt_owner;

-- the breakdown of a run, without its timings
CREATE FUNCTION pg_temp.breakdown(run bigint)
RETURNS TABLE (provider text, target text, inserted bigint, updated bigint, deleted bigint,
               unchanged bigint)
LANGUAGE sql AS $$
  SELECT provider, target, inserted, updated, deleted, unchanged
    FROM coco.run_targets WHERE run_id = run ORDER BY provider, target
$$;

SET ROLE regress_rt_owner;

-- 1. a table created, three rows inserted
SELECT coco.create_app('rt');
\set T '[{"name":"id","type":"integer"},{"name":"v","type":"text"}]'
SELECT coco.declare_table('rt', 'public.rt_docs', :'T', '{id}');
SELECT coco.declare_rows('rt', 'public.rt_docs',
                         'SELECT g AS id, ''v'' || g AS v FROM generate_series(1, 3) g');
SELECT coco.reconcile('rt') AS r1 \gset
SELECT (:'r1'::jsonb)->'run_id' AS run1 \gset
SELECT * FROM pg_temp.breakdown(:run1);
-- the result of the call carries the breakdown it recorded, every entry
-- with every field
SELECT (:'r1'::jsonb)->'targets' = stats->'targets' AS as_recorded,
       jsonb_array_length(stats->'targets') AS entries,
       (SELECT bool_and(e ?& ARRAY['provider', 'target', 'inserted', 'updated', 'deleted',
                                   'unchanged', 'ms'])
          FROM jsonb_array_elements(stats->'targets') e) AS every_field
  FROM coco.run WHERE run_id = :run1;
-- durations are intervals, never negative
SELECT bool_and(duration >= '0'::interval) AS durations_ok, count(*) AS rows
  FROM coco.run_targets WHERE run_id = :run1;

-- row 1 changed, row 2 kept, row 3 gone, row 4 new; the table as it was
SELECT coco.declare_table('rt', 'public.rt_docs', :'T', '{id}');
SELECT coco.declare_rows('rt', 'public.rt_docs',
                         $$SELECT * FROM (VALUES (1, 'changed'), (2, 'v2'), (4, 'v4')) r(id, v)$$);
SELECT (coco.reconcile('rt'))->'run_id' AS run2 \gset
SELECT * FROM pg_temp.breakdown(:run2);
SELECT * FROM public.rt_docs ORDER BY id;

-- the same again: nothing written, everything unchanged
SELECT coco.declare_table('rt', 'public.rt_docs', :'T', '{id}');
SELECT coco.declare_rows('rt', 'public.rt_docs',
                         $$SELECT * FROM (VALUES (1, 'changed'), (2, 'v2'), (4, 'v4')) r(id, v)$$);
SELECT (coco.reconcile('rt'))->'run_id' AS run3 \gset
SELECT * FROM pg_temp.breakdown(:run3);

-- 2. two tables and an index
SELECT coco.create_app('rt2');
SELECT coco.declare_table('rt2', 'public.rt_a', :'T', '{id}');
SELECT coco.declare_table('rt2', 'public.rt_b', :'T', '{id}');
SELECT coco.declare_index('rt2', 'public.rt_a', 'rt_a_by_v', '{v}');
SELECT coco.declare_rows('rt2', 'public.rt_a',
                         'SELECT g AS id, ''a'' AS v FROM generate_series(1, 5) g');
SELECT coco.declare_rows('rt2', 'public.rt_b',
                         'SELECT g AS id, ''b'' AS v FROM generate_series(1, 2) g');
SELECT (coco.reconcile('rt2'))->'run_id' AS run4 \gset
SELECT * FROM pg_temp.breakdown(:run4);
SELECT indexdef FROM pg_indexes WHERE tablename = 'rt_a' AND indexdef NOT LIKE '%UNIQUE%';
-- the totals per provider are what the breakdown adds up to
SELECT t.provider,
       sum(t.inserted) = (p.v->>'inserted')::bigint AS inserted_adds_up,
       sum(t.unchanged) = (p.v->>'unchanged')::bigint AS unchanged_adds_up
  FROM coco.run_targets t
  JOIN coco.run r ON r.run_id = t.run_id
  CROSS JOIN LATERAL (SELECT r.stats->'providers'->t.provider AS v) p
 WHERE t.run_id = :run4
 GROUP BY t.provider, p.v ORDER BY 1;

-- 3. full run without rt_b: the table is dropped, and its rows with it
-- (their tracking is forgotten, no row is deleted one by one); rt_a's
-- rows are found unchanged but one, updated; the index is unchanged
SELECT coco.declare_table('rt2', 'public.rt_a', :'T', '{id}');
SELECT coco.declare_index('rt2', 'public.rt_a', 'rt_a_by_v', '{v}');
SELECT coco.declare_rows('rt2', 'public.rt_a',
                         $$SELECT g AS id, CASE WHEN g = 5 THEN 'five' ELSE 'a' END AS v
                             FROM generate_series(1, 5) g$$);
SELECT (coco.reconcile('rt2', true))->'run_id' AS run5 \gset
SELECT * FROM pg_temp.breakdown(:run5);
SELECT to_regclass('public.rt_b') IS NULL AS rt_b_dropped;

-- 4. a run in this session: origin 'session', shown in coco.runs
SELECT app, status, origin, count(*) FROM coco.runs WHERE app IN ('rt', 'rt2')
 GROUP BY 1, 2, 3 ORDER BY 1;
RESET ROLE;
SET ROLE regress_rt_stranger;
SELECT count(*) AS strangers_see FROM coco.run_targets;
SELECT count(*) AS strangers_see FROM coco.runs WHERE app IN ('rt', 'rt2');
RESET ROLE;

-- clean up
SET ROLE regress_rt_owner;
SELECT coco.drop_app('rt');
SELECT coco.drop_app('rt2');
RESET ROLE;
REVOKE CREATE ON SCHEMA public FROM regress_rt_owner;
DROP ROLE regress_rt_owner;
DROP ROLE regress_rt_stranger;
