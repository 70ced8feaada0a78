-- 25_catalog: the extension explains itself.
--   1. every function, view and table of the extension has a comment (what
--      psql's \df+, \dv+ and \dt+ show); a few of them;
--   2. coco.staged: what is staged and not yet reconciled, per app,
--      component and target, before and after a reconcile;
--   3. coco.components: each component's state (declared, stale, pending,
--      cleared), what it tracks and the run that last replaced it;
--   4. both views as another role: none of alice's rows.
\set VERBOSITY default
\set SHOW_CONTEXT never

-- 1. comments
-- the extension's members of these kinds, with their comment
CREATE FUNCTION pg_temp.members() RETURNS TABLE (object text, comment text) LANGUAGE sql AS $$
  SELECT pg_describe_object(d.classid, d.objid, 0), obj_description(d.objid, c.relname)
    FROM pg_depend d JOIN pg_class c ON c.oid = d.classid
   WHERE d.refclassid = 'pg_extension'::regclass AND d.deptype = 'e'
     AND d.refobjid = (SELECT oid FROM pg_extension WHERE extname = 'coco_target')
     AND (d.classid = 'pg_proc'::regclass
          OR (d.classid = 'pg_class'::regclass
              AND (SELECT relkind FROM pg_class WHERE oid = d.objid) IN ('r', 'v')))
$$;
SELECT count(*) > 50 AS many_members FROM pg_temp.members();
-- none lacks one
SELECT object AS without_comment FROM pg_temp.members()
 WHERE coalesce(comment, '') = '' ORDER BY 1;
SELECT object, comment FROM pg_temp.members()
 WHERE object IN ('function coco.reconcile(text,boolean,boolean)', 'function coco.digest_final(internal)',
                  'view coco.staged', 'view coco.components', 'view coco.tracked_row')
 ORDER BY 1;

-- 2. and 3. an app of alice's
SET client_min_messages = warning;
DROP ROLE IF EXISTS regress_coco_cat_alice;
DROP ROLE IF EXISTS regress_coco_cat_mallory;
RESET client_min_messages;
CREATE ROLE regress_coco_cat_alice;
CREATE ROLE regress_coco_cat_mallory;
CREATE SCHEMA cat_alice AUTHORIZATION regress_coco_cat_alice;
SET ROLE regress_coco_cat_alice;
\set T '[{"name":"id","type":"integer"},{"name":"v","type":"text"}]'
SELECT coco.create_app('cat');
SELECT coco.declare_table('cat', 'cat_alice.t', :'T', '{id}');
SELECT coco.declare_index('cat', 'cat_alice.t', 'by_v', '{v}');
SELECT coco.declare_row('cat', 'cat_alice.t', '{"id": 1, "v": "a"}', '{a}');
SELECT coco.declare_row('cat', 'cat_alice.t', '{"id": 2, "v": "a"}', '{a}');
SELECT coco.declare_rows('cat', 'cat_alice.t',
                         'SELECT g AS id, ''b'' AS v FROM generate_series(10, 14) g', '{b}');
SELECT coco.declare_row('cat', 'cat_alice.t', '{"id": 20, "v": "c"}', '{c}');
SELECT * FROM coco.staged ORDER BY app, component, target;
SELECT app, component, state, staged, target_states, tracked_rows, last_run
  FROM coco.components ORDER BY app, component;
SELECT (coco.reconcile('cat'))->'run_id' AS first_run \gset
-- nothing staged once reconciled; every component replaced by that run
SELECT count(*) AS staged FROM coco.staged WHERE app = 'cat';
SELECT component, state, staged, target_states, tracked_rows, last_run = :first_run AS by_first_run
  FROM coco.components WHERE app = 'cat' ORDER BY component;

-- a clear is staged as a row of its own; {b} is re-declared
SELECT coco.clear_component('cat', '{c}');
SELECT coco.declare_rows('cat', 'cat_alice.t',
                         'SELECT g AS id, ''b'' AS v FROM generate_series(10, 12) g', '{b}');
SELECT component, target, states, rows, queries, cleared FROM coco.staged
 WHERE app = 'cat' ORDER BY component;
SELECT component, state, staged FROM coco.components WHERE app = 'cat' ORDER BY component;
SELECT (coco.reconcile('cat'))->'run_id' AS second_run \gset
SELECT component, state, staged, target_states, tracked_rows,
       CASE last_run WHEN :first_run THEN 'first' WHEN :second_run THEN 'second' END AS last_run
  FROM coco.components WHERE app = 'cat' ORDER BY component;

-- a destructive change (a new primary key) re-declaring {a} only: {b} is stale
SELECT coco.declare_table('cat', 'cat_alice.t', :'T', '{id,v}');
SELECT coco.declare_row('cat', 'cat_alice.t', '{"id": 1, "v": "a"}', '{a}');
SELECT (coco.reconcile('cat'))->'stale_components' AS stale;
SELECT component, state, staged, target_states, tracked_rows,
       CASE last_run WHEN :first_run THEN 'first' WHEN :second_run THEN 'second' ELSE 'third' END AS last_run
  FROM coco.components WHERE app = 'cat' ORDER BY component;
SELECT component, table_name, reason FROM coco.stale_components WHERE app = 'cat';
-- staged again, stale until reconciled
SELECT coco.declare_row('cat', 'cat_alice.t', '{"id": 10, "v": "b"}', '{b}');
SELECT component, state, staged FROM coco.components WHERE app = 'cat' AND component = '{b}';
RESET ROLE;

-- 4. another role sees none of alice's components or staging
SET ROLE regress_coco_cat_mallory;
SELECT count(*) AS staged_seen FROM coco.staged;
SELECT count(*) AS components_seen FROM coco.components;
SELECT count(*) AS mallorys_view_of_cat FROM coco.components WHERE app = 'cat';
RESET ROLE;
-- while alice and a superuser see them
SELECT count(*) AS superuser_sees FROM coco.staged WHERE app = 'cat';
SET ROLE regress_coco_cat_alice;
SELECT count(*) AS alice_sees FROM coco.staged WHERE app = 'cat';
SELECT coco.drop_app('cat');
RESET ROLE;

DROP SCHEMA cat_alice CASCADE;
DROP ROLE regress_coco_cat_alice;
DROP ROLE regress_coco_cat_mallory;
