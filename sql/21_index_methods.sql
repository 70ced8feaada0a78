-- 21_index_methods: @index with each built-in access method — create,
-- change (drop and re-create), no-op and removal — expression indexes, and
-- the index options that belong to other methods or are malformed (an
-- expression that smuggles in a statement among them).  Concurrent builds
-- and pgvector's methods are covered by test/indexes.sh.
\set VERBOSITY default
\set SHOW_CONTEXT never
CREATE TABLE im_src (id int PRIMARY KEY, tags text[], doc tsvector, r int4range, n int);
INSERT INTO im_src SELECT g, ARRAY['t' || g % 3], to_tsvector('simple', 'word' || g), int4range(g, g + 10), g % 50
  FROM generate_series(1, 200) g;
SELECT coco.create_app('im');
\set T '[{"name":"id","type":"integer"},{"name":"tags","type":"text[]"},{"name":"doc","type":"tsvector"},{"name":"r","type":"int4range"},{"name":"n","type":"integer"}]'
CREATE FUNCTION pg_temp.indexes() RETURNS TABLE(indexdef text)
LANGUAGE sql AS $$
  SELECT indexdef FROM pg_indexes WHERE tablename = 'im_t' AND indexname <> 'im_t_pkey' ORDER BY 1
$$;
CREATE FUNCTION pg_temp.counts(r jsonb) RETURNS text LANGUAGE sql AS $$
  SELECT format('+%s ~%s -%s =%s', p->>'inserted', p->>'updated', p->>'deleted', p->>'unchanged')
    FROM (SELECT r->'providers'->'postgres.index' AS p) x
$$;

-- one of each method
SELECT coco.declare_table('im', 'im_t', :'T', '{id}');
SELECT coco.declare_rows('im', 'im_t', 'SELECT * FROM im_src');
SELECT coco.declare_index('im', 'im_t', 'h', '{n}', 'hash');
SELECT coco.declare_index('im', 'im_t', 'g', '{tags}', 'gin');
SELECT coco.declare_index('im', 'im_t', 's', '{r}', 'gist');
SELECT coco.declare_index('im', 'im_t', 'b', '{id}', 'brin');
SELECT pg_temp.counts(coco.reconcile('im'));
SELECT * FROM pg_temp.indexes();

-- change each: other columns, a predicate, an included column
SELECT coco.declare_table('im', 'im_t', :'T', '{id}');
SELECT coco.declare_rows('im', 'im_t', 'SELECT * FROM im_src');
SELECT coco.declare_index('im', 'im_t', 'h', '{n}', 'hash', '{"where": "n > 10"}');
SELECT coco.declare_index('im', 'im_t', 'g', '{doc}', 'gin');
SELECT coco.declare_index('im', 'im_t', 's', '{r}', 'gist', '{"include": ["n"]}');
SELECT coco.declare_index('im', 'im_t', 'b', '{id,n}', 'brin');
SELECT pg_temp.counts(coco.reconcile('im'));
SELECT * FROM pg_temp.indexes();

-- no-op: the same declaration rebuilds nothing
CREATE TEMP TABLE im_oids AS SELECT indexrelid FROM pg_index WHERE indrelid = 'im_t'::regclass;
SELECT coco.declare_table('im', 'im_t', :'T', '{id}');
SELECT coco.declare_rows('im', 'im_t', 'SELECT * FROM im_src');
SELECT coco.declare_index('im', 'im_t', 'h', '{n}', 'hash', '{"where": "n > 10"}');
SELECT coco.declare_index('im', 'im_t', 'g', '{doc}', 'gin');
SELECT coco.declare_index('im', 'im_t', 's', '{r}', 'gist', '{"include": ["n"]}');
SELECT coco.declare_index('im', 'im_t', 'b', '{id,n}', 'brin');
SELECT pg_temp.counts(coco.reconcile('im'));
SELECT count(*) AS same_indexes FROM pg_index i JOIN im_oids o USING (indexrelid);

-- removal: two of them no longer declared
SELECT coco.declare_table('im', 'im_t', :'T', '{id}');
SELECT coco.declare_rows('im', 'im_t', 'SELECT * FROM im_src');
SELECT coco.declare_index('im', 'im_t', 'h', '{n}', 'hash', '{"where": "n > 10"}');
SELECT coco.declare_index('im', 'im_t', 's', '{r}', 'gist', '{"include": ["n"]}');
SELECT pg_temp.counts(coco.reconcile('im'));
SELECT * FROM pg_temp.indexes();

-- expression indexes: expressions after the plain columns
SELECT coco.declare_table('im', 'im_t', :'T', '{id}');
SELECT coco.declare_rows('im', 'im_t', 'SELECT * FROM im_src');
SELECT coco.declare_index('im', 'im_t', 'e', '{}', 'btree', '{"expressions": ["n % 7", "lower(tags[1])"]}');
SELECT coco.declare_index('im', 'im_t', 'f', '{n}', 'btree', '{"expressions": ["id * 2"], "unique": true}');
SELECT pg_temp.counts(coco.reconcile('im'));
SELECT * FROM pg_temp.indexes();

-- options that do not apply, or are malformed: refused, nothing staged
SELECT coco.declare_index('im', 'im_t', 'x', '{n}', 'btree', '{"metric": "cosine"}');
SELECT coco.declare_index('im', 'im_t', 'x', '{n}', 'gin', '{"with": {"lists": 4}}');
SELECT coco.declare_index('im', 'im_t', 'x', '{n}', 'btree', '{"concurrently": "yes"}');
SELECT coco.declare_index('im', 'im_t', 'x', '{n}', 'hnsw', '{"metric": "cosine"}');
SELECT coco.declare_index('im', 'im_t', 'x', '{n}', 'ivfflat');
SELECT coco.declare_index('im', 'im_t', 'x', '{n}', 'btree', '{"where": "n > 0); DROP TABLE im_src; SELECT (1"}');
SELECT coco.declare_index('im', 'im_t', 'x', '{n}', 'btree', '{"where": "n FROM pg_class"}');
SELECT coco.declare_index('im', 'im_t', 'x', '{n}', 'btree', '{"where": "n > 0) WHERE (true"}');
SELECT coco.declare_index('im', 'im_t', 'x', '{}', 'btree', '{"expressions": ["n), (id"]}');
SELECT coco.declare_index('im', 'im_t', 'x', '{}', 'btree', '{"expressions": "n"}');
SELECT coco.declare_index('im', 'im_t', 'x', '{}', 'btree', '{"expressions": []}');
SELECT coco.declare_index('im', 'im_t', 'x', '{}', 'btree');
SELECT count(*) AS staged FROM coco.staged_state s JOIN coco.app a USING (app_id) WHERE a.name = 'im';

SELECT coco.drop_app('im');
SELECT count(*) AS left_over FROM pg_class WHERE relname LIKE 'im_t%';
DROP TABLE im_src;
