-- Wrong results the model-based tester (test/model.py) found, one case each.
SET client_min_messages = warning;

-- 1. A retype that cannot convert the data in place keeps the column's
--    indexes: PostgreSQL rebuilds them as part of the change.
SELECT coco.create_app('c1');
SELECT coco.declare_table('c1', 'public.r1',
    '[{"name": "id", "type": "integer"}, {"name": "v", "type": "text"}]', '{id}', component => '{t}');
SELECT coco.declare_index('c1', 'public.r1', 'v_idx', '{v}', component => '{t}');
SELECT coco.declare_row('c1', 'public.r1', '{"id": 1, "v": "Document 4"}', component => '{r}');
SELECT coco.declare_row('c1', 'public.r1', '{"id": 2, "v": "12"}', component => '{r}');
SELECT coco.reconcile('c1') IS NOT NULL AS ok;
-- "Document 4" is not an integer
SELECT coco.declare_table('c1', 'public.r1',
    '[{"name": "id", "type": "integer"}, {"name": "v", "type": "integer"}]', '{id}', component => '{t}');
SELECT coco.declare_index('c1', 'public.r1', 'v_idx', '{v}', component => '{t}');
SELECT coco.declare_row('c1', 'public.r1', '{"id": 1, "v": 4}', component => '{r}');
SELECT coco.declare_row('c1', 'public.r1', '{"id": 2, "v": 12}', component => '{r}');
SELECT r -> 'providers' -> 'postgres.table' AS tables, r -> 'providers' -> 'postgres.row' AS rows
FROM coco.reconcile('c1') r;
SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'r1' ORDER BY 1;
SELECT * FROM public.r1 ORDER BY id;
-- the same with rows of a component not declared again: they keep no value
SELECT coco.declare_table('c1', 'public.r1',
    '[{"name": "id", "type": "integer"}, {"name": "v", "type": "boolean"}]', '{id}', component => '{t}');
SELECT coco.declare_index('c1', 'public.r1', 'v_idx', '{v}', component => '{t}');
SELECT coco.reconcile('c1') -> 'stale_components' AS stale;
SELECT indexname FROM pg_indexes WHERE tablename = 'r1' ORDER BY 1;
SELECT * FROM public.r1 ORDER BY id;
SELECT app, component, table_name, reason FROM coco.stale_components WHERE app = 'c1';

-- 2. A row moved out of a stale component is written, not only tracked.
SELECT coco.create_app('c2');
SELECT coco.declare_table('c2', 'public.r2',
    '[{"name": "id", "type": "integer"}, {"name": "a", "type": "text"}, {"name": "b", "type": "text"}]',
    '{id}', component => '{t}');
SELECT coco.declare_row('c2', 'public.r2', '{"id": 1, "a": "x", "b": "y"}', component => '{A}');
SELECT coco.reconcile('c2') IS NOT NULL AS ok;
-- b dropped through the table's component: {A} is stale
SELECT coco.declare_table('c2', 'public.r2',
    '[{"name": "id", "type": "integer"}, {"name": "a", "type": "text"}]', '{id}', component => '{t}');
SELECT coco.reconcile('c2') -> 'stale_components' AS stale;
-- b back: the row has NULL there
SELECT coco.declare_table('c2', 'public.r2',
    '[{"name": "id", "type": "integer"}, {"name": "a", "type": "text"}, {"name": "b", "type": "text"}]',
    '{id}', component => '{t}');
SELECT coco.reconcile('c2') IS NOT NULL AS ok;
SELECT * FROM public.r2;
-- the row moves to {C}, declared exactly as before
SELECT coco.clear_component('c2', '{A}');
SELECT coco.declare_row('c2', 'public.r2', '{"id": 1, "a": "x", "b": "y"}', component => '{C}');
SELECT coco.reconcile('c2') -> 'providers' -> 'postgres.row' AS rows;
SELECT * FROM public.r2;
SELECT count(*) AS stale FROM coco.stale_components WHERE app = 'c2';
SELECT coco.verify('c2', repair => false) ->> 'drifted' AS drifted;

-- 3. A user-managed table whose primary key the user changed: the rows
--    tracked under the old key are forgotten (they stay in the user's
--    table), and the app goes on under the new key.
CREATE TABLE public.u3 (id integer NOT NULL, k2 integer NOT NULL, v text, PRIMARY KEY (id));
INSERT INTO public.u3 VALUES (100, 0, 'the user''s');
SELECT coco.create_app('c3');
SELECT coco.declare_table('c3', 'public.u3',
    '[{"name": "id", "type": "integer"}, {"name": "k2", "type": "integer"}, {"name": "v", "type": "text"}]',
    '{id}', managed_by => 'user', component => '{t}');
SELECT coco.declare_row('c3', 'public.u3', '{"id": 1, "k2": 1, "v": "a"}', component => '{r}');
SELECT coco.declare_row('c3', 'public.u3', '{"id": 2, "k2": 1, "v": "b"}', component => '{r}');
SELECT coco.declare_row('c3', 'public.u3', '{"id": 3, "k2": 1, "v": "c"}', component => '{s}');
SELECT coco.reconcile('c3') IS NOT NULL AS ok;
ALTER TABLE public.u3 DROP CONSTRAINT u3_pkey, ADD PRIMARY KEY (id, k2);
SELECT coco.declare_table('c3', 'public.u3',
    '[{"name": "id", "type": "integer"}, {"name": "k2", "type": "integer"}, {"name": "v", "type": "text"}]',
    '{id,k2}', managed_by => 'user', component => '{t}');
SELECT coco.declare_row('c3', 'public.u3', '{"id": 1, "k2": 1, "v": "a2"}', component => '{r}');
SELECT coco.declare_row('c3', 'public.u3', '{"id": 1, "k2": 2, "v": "new"}', component => '{r}');
SELECT r -> 'providers' AS providers FROM coco.reconcile('c3') r;
SELECT * FROM public.u3 ORDER BY id, k2;
SELECT component, table_name, reason FROM coco.stale_components WHERE app = 'c3';
SELECT coco.verify('c3', repair => false) AS verify;
-- and the app is not wedged: clear, full run
SELECT coco.clear_component('c3', '{s}');
SELECT coco.reconcile('c3') IS NOT NULL AS ok;
SELECT coco.reconcile('c3', true, allow_drop_all => true) -> 'providers' -> 'postgres.row' AS rows;
SELECT * FROM public.u3 ORDER BY id, k2;

-- 4. verify finds no drift after a change that loses nothing, in rows of
--    components that were not declared again.
SELECT coco.create_app('c4');
SELECT coco.declare_table('c4', 'public.r4',
    '[{"name": "id", "type": "integer"}, {"name": "a", "type": "text"}, {"name": "b", "type": "integer"}]',
    '{id}', component => '{t}');
SELECT coco.declare_rows('c4', 'public.r4', 'SELECT g AS id, ''v'' || g AS a, g AS b FROM generate_series(1, 5) g',
    component => '{r}');
SELECT coco.reconcile('c4') IS NOT NULL AS ok;
-- a column added
SELECT coco.declare_table('c4', 'public.r4',
    '[{"name": "id", "type": "integer"}, {"name": "a", "type": "text"}, {"name": "b", "type": "integer"},
      {"name": "c", "type": "text"}]', '{id}', component => '{t}');
SELECT coco.reconcile('c4') IS NOT NULL AS ok;
SELECT coco.verify('c4', repair => false) AS verify;
-- non-key columns reordered
SELECT coco.declare_table('c4', 'public.r4',
    '[{"name": "id", "type": "integer"}, {"name": "c", "type": "text"}, {"name": "b", "type": "integer"},
      {"name": "a", "type": "text"}]', '{id}', component => '{t}');
SELECT coco.reconcile('c4') IS NOT NULL AS ok;
SELECT coco.verify('c4', repair => false) AS verify;
-- a row deleted by hand is still found
DELETE FROM public.r4 WHERE id = 3;
SELECT coco.verify('c4', repair => false) AS verify;
SELECT coco.verify('c4') -> 'drifted' AS marked;
SELECT coco.declare_rows('c4', 'public.r4', 'SELECT g AS id, ''v'' || g AS a, g AS b FROM generate_series(1, 5) g',
    component => '{r}');
SELECT coco.reconcile('c4') -> 'providers' -> 'postgres.row' AS rows;
SELECT coco.verify('c4', repair => false) AS verify;

-- 6. A declare_rows query that returns no rows, with a constant NULL key.
SELECT coco.declare_rows('c4', 'public.r4', 'SELECT NULL::integer AS id, ''x'' AS a WHERE false',
    component => '{empty}');
SELECT action, count(*) FROM coco.plan('c4') GROUP BY 1 ORDER BY 1;
SELECT coco.reconcile('c4') -> 'providers' -> 'postgres.row' AS rows;
SELECT count(*) FROM public.r4;
SELECT coco.declare_rows('c4', 'public.r4', 'SELECT NULL::integer AS id, ''x'' AS a');  -- 23502

SELECT coco.drop_app(a) FROM unnest('{c1,c2,c3,c4}'::text[]) a;
DROP TABLE public.u3;
