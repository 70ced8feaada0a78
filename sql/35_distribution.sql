-- The "distribution" table option (Citus) where Citus is not installed:
-- its shape is checked, then it is refused with 0A000; a distribution
-- changed between records is a redistribution in the handler's decision.
-- The option at work on a Citus cluster: test/citus.sh.
CREATE EXTENSION IF NOT EXISTS coco_target;
SET client_min_messages = warning;
CREATE FUNCTION pg_temp.sqlstate_of(stmt text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
  EXECUTE stmt;
  RETURN 'no error';
EXCEPTION WHEN OTHERS THEN
  RETURN SQLSTATE;
END $$;
SELECT coco.create_app('dist');

-- refused without Citus, naming the table, with a hint
\set VERBOSITY default
SELECT coco.declare_table('dist', 'public.d1', '[{"name": "id", "type": "int"}]', '{id}',
  options => '{"distribution": {"column": "id"}}');
SELECT coco.declare_table('dist', 'public.d1', '[{"name": "id", "type": "int"}]', '{id}',
  options => '{"distribution": {"reference": true}}');
SELECT coco.sync_table('dist', 'public.d2', 'SELECT 1 AS id', '{id}',
  options => '{"distribution": {"column": "id"}}');
-- a bad shape is refused first, where Citus is installed or not
SELECT coco.declare_table('dist', 'public.d1', '[{"name": "id", "type": "int"}]', '{id}',
  options => '{"distribution": "id"}');
SELECT coco.declare_table('dist', 'public.d1', '[{"name": "id", "type": "int"}]', '{id}',
  options => '{"distribution": {"column": "id", "shards": 4}}');
SELECT coco.declare_table('dist', 'public.d1', '[{"name": "id", "type": "int"}]', '{id}',
  options => '{"distributon": {"column": "id"}}');
\set VERBOSITY terse
SELECT pg_temp.sqlstate_of($$SELECT coco.declare_table('dist', 'public.d1', '[{"name": "id", "type": "int"}]', '{id}',
  options => '{"distribution": [1]}')$$) AS array_option;
-- null is no distribution: the table is declared and created as usual
SELECT coco.declare_table('dist', 'public.d1', '[{"name": "id", "type": "int"}]', '{id}',
  options => '{"distribution": null}');
SELECT coco.declare_row('dist', 'public.d1', '{"id": 1}');
SELECT (coco.reconcile('dist') #>> '{providers,postgres.row,inserted}') AS inserted;
SELECT records -> -1 ? 'distribution' AS recorded FROM coco.target_states
 WHERE app = 'dist' AND name = 'public.d1';
SELECT coco.drop_app('dist');

-- The handler: a changed distribution is an alter that redistributes; a
-- primary-key change still rebuilds; the same distribution is no change.
SELECT coco.table_decision(
  '{"schema": "s", "table": "t", "managed_by": "system", "primary_key": ["id"],
    "columns": [{"name": "id", "type": "integer", "nullable": false}],
    "distribution": {"column": "id", "shard_count": 4}}',
  ARRAY['{"schema": "s", "table": "t", "managed_by": "system", "primary_key": ["id"],
    "columns": [{"name": "id", "type": "integer", "nullable": false}],
    "distribution": {"column": "id"}}'::jsonb], false);
SELECT coco.table_decision(
  '{"schema": "s", "table": "t", "managed_by": "system", "primary_key": ["id"],
    "columns": [{"name": "id", "type": "integer", "nullable": false}],
    "distribution": {"reference": true}}',
  ARRAY['{"schema": "s", "table": "t", "managed_by": "system", "primary_key": ["id"],
    "columns": [{"name": "id", "type": "integer", "nullable": false}]}'::jsonb], false);
SELECT coco.table_decision(
  '{"schema": "s", "table": "t", "managed_by": "system", "primary_key": ["id"],
    "columns": [{"name": "id", "type": "integer", "nullable": false}],
    "distribution": {"column": "id"}}',
  ARRAY['{"schema": "s", "table": "t", "managed_by": "system", "primary_key": ["id"],
    "columns": [{"name": "id", "type": "integer", "nullable": false}],
    "distribution": {"column": "id"}}'::jsonb], false);
SELECT coco.table_decision(
  '{"schema": "s", "table": "t", "managed_by": "system", "primary_key": ["id", "n"],
    "columns": [{"name": "id", "type": "integer", "nullable": false}, {"name": "n", "type": "integer", "nullable": false}],
    "distribution": {"column": "id"}}',
  ARRAY['{"schema": "s", "table": "t", "managed_by": "system", "primary_key": ["id"],
    "columns": [{"name": "id", "type": "integer", "nullable": false}, {"name": "n", "type": "integer", "nullable": false}],
    "distribution": {"column": "id"}}'::jsonb], false);
