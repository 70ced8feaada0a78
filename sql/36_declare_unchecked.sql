-- 36_declare_unchecked: by default (coco_target.declare_rows_count off)
-- declare_rows prepares its query and checks its columns and casts, but
-- runs nothing: it returns NULL and stages no count.  What only the rows
-- can say — a NULL key, a key value that does not convert, a missing
-- privilege on what the query reads — the run says, naming the table, and
-- writes nothing.  The suites around this file count at declare time.
\set VERBOSITY default
\set SHOW_CONTEXT never
SET coco_target.declare_rows_count = off;

CREATE TABLE du_src (id text, v text);
INSERT INTO du_src VALUES ('1', 'a'), ('2', 'b');
SELECT coco.create_app('du');
SELECT coco.declare_table('du', 'du_t', '[{"name": "id", "type": "int"}, {"name": "v", "type": "text"}]', '{id}');

-- Declared: nothing counted, nothing read.
SELECT coco.declare_rows('du', 'du_t', 'SELECT id, v FROM du_src') IS NULL AS not_counted;
SELECT row_count IS NULL AS no_count FROM coco.staged_query WHERE tbl = 'public.du_t';
SELECT (coco.reconcile('du'))->'providers'->'postgres.row'->>'inserted' AS inserted;
SELECT * FROM du_t ORDER BY id;

-- What declare_rows still refuses before any row is read.
SELECT coco.declare_rows('du', 'du_t', 'SELECT id, v, 1 AS extra FROM du_src');
SELECT coco.declare_rows('du', 'du_t', 'SELECT v FROM du_src');
SELECT coco.declare_rows('du', 'du_t', 'SELECT point(1, 2) AS id, v FROM du_src');
SELECT coco.declare_rows('du', 'du_t', 'DELETE FROM du_src RETURNING id, v');
SELECT coco.declare_rows('du', 'du_t', 'SELECT id, v FROM du_missing');

-- A NULL key: the run refuses it (23502), and the table keeps its rows.
SELECT coco.declare_table('du', 'du_t', '[{"name": "id", "type": "int"}, {"name": "v", "type": "text"}]', '{id}');
INSERT INTO du_src VALUES (NULL, 'null key');
SELECT coco.declare_rows('du', 'du_t', 'SELECT id, v FROM du_src') IS NULL AS not_counted;
SELECT coco.reconcile('du');
SELECT * FROM du_t ORDER BY id;
SELECT coco.discard_staged('du') > 0 AS discarded;

-- A key value that does not convert to the column's type (22P02).
DELETE FROM du_src WHERE id IS NULL;
INSERT INTO du_src VALUES ('x', 'bad key');
SELECT coco.declare_table('du', 'du_t', '[{"name": "id", "type": "int"}, {"name": "v", "type": "text"}]', '{id}');
SELECT coco.declare_rows('du', 'du_t', 'SELECT id, v FROM du_src') IS NULL AS not_counted;
SELECT coco.reconcile('du');
SELECT * FROM du_t ORDER BY id;
SELECT coco.discard_staged('du') > 0 AS discarded;

-- Privileges are checked when declared (42501), and again by the run: a
-- privilege revoked since then fails the run, which creates nothing.
DELETE FROM du_src WHERE id = 'x';
SET client_min_messages = warning;
DROP ROLE IF EXISTS regress_coco_du;
RESET client_min_messages;
CREATE ROLE regress_coco_du;
CREATE SCHEMA du_own AUTHORIZATION regress_coco_du;
CREATE TABLE du_secret (id int, v text);
INSERT INTO du_secret VALUES (9, 'secret');
SET ROLE regress_coco_du;
SELECT coco.create_app('du2');
SELECT coco.declare_table('du2', 'du_own.t2', '[{"name": "id", "type": "int"}, {"name": "v", "type": "text"}]', '{id}');
SELECT coco.declare_rows('du2', 'du_own.t2', 'SELECT id, v FROM public.du_secret');
RESET ROLE;
GRANT SELECT ON du_secret TO regress_coco_du;
SET ROLE regress_coco_du;
SELECT coco.declare_rows('du2', 'du_own.t2', 'SELECT id, v FROM public.du_secret') IS NULL AS not_counted;
RESET ROLE;
REVOKE SELECT ON du_secret FROM regress_coco_du;
SET ROLE regress_coco_du;
SELECT coco.reconcile('du2');
SELECT to_regclass('du_own.t2') IS NULL AS not_created;
SELECT coco.drop_app('du2');
RESET ROLE;

-- The same query counted at declare time, as before.
SET coco_target.declare_rows_count = on;
SELECT coco.declare_table('du', 'du_t', '[{"name": "id", "type": "int"}, {"name": "v", "type": "text"}]', '{id}');
SELECT coco.declare_rows('du', 'du_t', 'SELECT id, v FROM du_src') AS counted;
SELECT row_count FROM coco.staged_query WHERE tbl = 'public.du_t';
SELECT coco.discard_staged('du') > 0 AS discarded;

SELECT coco.drop_app('du');
DROP TABLE du_src, du_secret;
DROP SCHEMA du_own;
DROP ROLE regress_coco_du;
