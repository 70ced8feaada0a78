-- Drift: targets changed behind the reconciler's back are found by cheap
-- catalog look-ups at the next run, reported in the run's "drift" count and
-- made again: an index dropped, a column dropped, the whole table dropped.
-- Also: an app whose owner role was dropped refuses to run.
\set VERBOSITY default
\set SHOW_CONTEXT never
CREATE TABLE drift_src (id int PRIMARY KEY, v text, w int);
INSERT INTO drift_src VALUES (1, 'a', 1), (2, 'b', 2);
SELECT coco.create_app('drift');
CREATE FUNCTION pg_temp.declare_all() RETURNS void LANGUAGE plpgsql AS $$
BEGIN
  PERFORM coco.declare_table('drift', 'drift_t',
      '[{"name":"id","type":"integer","nullable":false},{"name":"v","type":"text"},
        {"name":"w","type":"integer","nullable":false}]', '{id}');
  PERFORM coco.declare_rows('drift', 'drift_t', 'SELECT id, v, w FROM drift_src');
  PERFORM coco.declare_index('drift', 'drift_t', 'v_idx', '{v}');
END $$;
CREATE FUNCTION pg_temp.run() RETURNS TABLE(drift int, tables text, rows_ text, indexes text)
LANGUAGE sql AS $$
  SELECT (r->>'drift')::int,
         format('+%s ~%s =%s', r#>>'{providers,postgres.table,inserted}', r#>>'{providers,postgres.table,updated}', r#>>'{providers,postgres.table,unchanged}'),
         format('+%s ~%s =%s', r#>>'{providers,postgres.row,inserted}', r#>>'{providers,postgres.row,updated}', r#>>'{providers,postgres.row,unchanged}'),
         format('+%s ~%s =%s', r#>>'{providers,postgres.index,inserted}', r#>>'{providers,postgres.index,updated}', r#>>'{providers,postgres.index,unchanged}')
    FROM coco.reconcile('drift') r
$$;
CREATE FUNCTION pg_temp.shape() RETURNS TABLE(what text)
LANGUAGE sql SET check_function_bodies = off AS $$
  SELECT 'column ' || attname || CASE WHEN attnotnull THEN ' not null' ELSE '' END
    FROM pg_attribute WHERE attrelid = 'drift_t'::regclass AND attnum > 0 AND NOT attisdropped
  UNION ALL
  SELECT 'index ' || indexname FROM pg_indexes WHERE tablename = 'drift_t'
  ORDER BY 1
$$;

SELECT pg_temp.declare_all();
SELECT * FROM pg_temp.run();
SELECT * FROM pg_temp.shape();

-- an index and a column dropped by hand
DROP INDEX drift_t_v_idx;
ALTER TABLE drift_t DROP COLUMN w;
SELECT pg_temp.declare_all();
SELECT * FROM pg_temp.run();
SELECT * FROM pg_temp.shape();
SELECT * FROM drift_t ORDER BY id;

-- the table dropped by hand
DROP TABLE drift_t;
SELECT pg_temp.declare_all();
SELECT * FROM pg_temp.run();
SELECT * FROM pg_temp.shape();
SELECT * FROM drift_t ORDER BY id;

-- nothing changed: no drift, nothing written
SELECT pg_temp.declare_all();
SELECT * FROM pg_temp.run();

-- an app whose owner role is gone refuses to run (42704), and can be
-- dropped with keep_targets
CREATE ROLE regress_coco_gone;
GRANT CREATE ON SCHEMA public TO regress_coco_gone;
SET ROLE regress_coco_gone;
SELECT coco.create_app('orphan');
RESET ROLE;
REVOKE CREATE ON SCHEMA public FROM regress_coco_gone;
DROP ROLE regress_coco_gone;
SELECT coco.reconcile('orphan');
\echo :LAST_ERROR_SQLSTATE
SELECT coco.drop_app('orphan');
\echo :LAST_ERROR_SQLSTATE
SELECT coco.drop_app('orphan', keep_targets => true);
SELECT count(*) AS orphan_apps FROM coco.apps WHERE app = 'orphan';

SELECT coco.drop_app('drift');
DROP TABLE drift_src;
