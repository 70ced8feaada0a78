-- 22_verify: rows changed behind the reconciler's back (coco.verify).
--   1. an app without a declaration function: a tracked row deleted, one
--      edited and one row inserted by hand are found; repair marks the two
--      drifted rows, and the next run declaring their component writes
--      exactly those two again (the hand-inserted row is left alone);
--   2. an app with a declaration function is repaired at once;
--   3. nothing found: nothing marked, no run;
--   4. a table that cannot be read as declared reports its error;
--   5. rows inserted by hand are reported as untracked and left alone; with
--      remove_untracked => true they are deleted from the tables the app
--      manages, never from a user-managed table; a role that may not act
--      for the app cannot remove anything.
\set VERBOSITY default
\set SHOW_CONTEXT never

CREATE TABLE vf_src (id int PRIMARY KEY, v text);
INSERT INTO vf_src SELECT g, 'v' || g FROM generate_series(1, 100) g;
\set T '[{"name":"id","type":"integer"},{"name":"v","type":"text"}]'
CREATE FUNCTION pg_temp.rows(r jsonb) RETURNS text LANGUAGE sql AS $$
  SELECT format('+%s ~%s -%s =%s', r#>>'{providers,postgres.row,inserted}',
                r#>>'{providers,postgres.row,updated}', r#>>'{providers,postgres.row,deleted}',
                r#>>'{providers,postgres.row,unchanged}')
$$;
CREATE FUNCTION pg_temp.same(t regclass) RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE n bigint;
BEGIN
  EXECUTE format('SELECT count(*) FROM ((SELECT id, v FROM %s EXCEPT SELECT id, v FROM vf_src)
                  UNION ALL (SELECT id, v FROM vf_src EXCEPT SELECT id, v FROM %s)) d', t, t) INTO n;
  RETURN n;
END $$;

-- 1. without a declaration function
SELECT coco.create_app('vf');
SELECT coco.declare_table('vf', 'vf_t', :'T', '{id}');
SELECT coco.declare_rows('vf', 'vf_t', 'SELECT id, v FROM vf_src');
SELECT pg_temp.rows(coco.reconcile('vf'));
DELETE FROM vf_t WHERE id = 10;
UPDATE vf_t SET v = 'edited' WHERE id = 20;
INSERT INTO vf_t VALUES (1000, 'by hand');
SELECT coco.verify('vf', repair => false);
-- a plain run re-declaring the same rows does not see row drift
SELECT coco.declare_table('vf', 'vf_t', :'T', '{id}');
SELECT coco.declare_rows('vf', 'vf_t', 'SELECT id, v FROM vf_src');
SELECT pg_temp.rows(coco.reconcile('vf'));
SELECT coco.verify('vf');
SELECT count(*) AS marked FROM coco.tracked_row WHERE fp = '';
-- the next run declaring the component writes the two rows again
SELECT coco.declare_table('vf', 'vf_t', :'T', '{id}');
SELECT coco.declare_rows('vf', 'vf_t', 'SELECT id, v FROM vf_src');
SELECT pg_temp.rows(coco.reconcile('vf'));
SELECT pg_temp.same('vf_t') - 1 AS differences_besides_the_hand_inserted_row;
SELECT * FROM vf_t WHERE id IN (10, 20, 1000) ORDER BY id;
SELECT coco.verify('vf') -> 'drifted' AS drifted_after_repair;

-- 2. with a declaration function: repaired at once
CREATE FUNCTION vf_declare(app text) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
  PERFORM coco.declare_table(app, 'vf_fn_t', '[{"name":"id","type":"integer"},{"name":"v","type":"text"}]', '{id}');
  PERFORM coco.declare_rows(app, 'vf_fn_t', 'SELECT id, v FROM public.vf_src');
END $$;
SELECT coco.create_app('vf_fn', 'vf_declare(text)');
SELECT pg_temp.rows(coco.update('vf_fn'));
DELETE FROM vf_fn_t WHERE id BETWEEN 1 AND 3;
UPDATE vf_fn_t SET v = NULL WHERE id = 50;
SELECT r - 'run' AS found, pg_temp.rows(r -> 'run') AS repair_run
  FROM coco.verify('vf_fn') r;
SELECT pg_temp.same('vf_fn_t') AS differences;

-- 3. nothing to find
SELECT coco.verify('vf_fn');
SELECT count(*) AS marked FROM coco.tracked_row WHERE fp = '';

-- a table that cannot be read as declared is reported, not fatal
ALTER TABLE vf_t DROP COLUMN v;
SELECT coco.verify('vf', repair => false);

-- bad input
SELECT coco.verify('vf_nonesuch');
SELECT coco.verify('vf', NULL);

-- 5. rows inserted by hand: reported, removed only when asked
CREATE TABLE vf_user (id int PRIMARY KEY, v text);
INSERT INTO vf_user VALUES (1, 'theirs');
SELECT coco.create_app('vf_rm');
SELECT coco.declare_table('vf_rm', 'vf_rm_t', :'T', '{id}');
SELECT coco.declare_rows('vf_rm', 'vf_rm_t', 'SELECT id, v FROM vf_src WHERE id <= 5');
SELECT coco.declare_table('vf_rm', 'vf_user', :'T', '{id}', managed_by => 'user');
SELECT coco.declare_row('vf_rm', 'vf_user', '{"id": 2, "v": "declared"}');
SELECT pg_temp.rows(coco.reconcile('vf_rm'));
INSERT INTO vf_rm_t VALUES (1000, 'by hand'), (1001, 'by hand');
INSERT INTO vf_user VALUES (1000, 'by hand');
UPDATE vf_rm_t SET v = 'edited' WHERE id = 3;
-- by default (and in the calls of 0.3) reported and left alone
SELECT coco.verify('vf_rm', false);
SELECT coco.verify(app => 'vf_rm', repair => false) -> 'removed' AS removed;
SELECT coco.verify('vf_rm', repair => false, remove_untracked => false) -> 'removed' AS removed;
SELECT count(*) AS rows_by_hand FROM vf_rm_t WHERE id >= 1000;
-- a role that may not act for the app: refused, nothing removed
SET client_min_messages = warning;
DROP ROLE IF EXISTS regress_coco_vf_mallory;
RESET client_min_messages;
CREATE ROLE regress_coco_vf_mallory;
SET ROLE regress_coco_vf_mallory;
SELECT coco.verify('vf_rm', remove_untracked => true);
RESET ROLE;
DROP ROLE regress_coco_vf_mallory;
SELECT count(*) AS rows_by_hand FROM vf_rm_t WHERE id >= 1000;
-- asked: the app's table loses the hand-inserted rows (the edited row is
-- marked, as repair does); the user-managed table keeps all of its rows
SELECT coco.verify('vf_rm', remove_untracked => true);
SELECT * FROM vf_rm_t ORDER BY id;
SELECT * FROM vf_user ORDER BY id;
-- tracking was not touched: the next run re-writes the edited row only
SELECT coco.declare_table('vf_rm', 'vf_rm_t', :'T', '{id}');
SELECT coco.declare_rows('vf_rm', 'vf_rm_t', 'SELECT id, v FROM vf_src WHERE id <= 5');
SELECT coco.declare_table('vf_rm', 'vf_user', :'T', '{id}', managed_by => 'user');
SELECT coco.declare_row('vf_rm', 'vf_user', '{"id": 2, "v": "declared"}');
SELECT pg_temp.rows(coco.reconcile('vf_rm'));
SELECT coco.verify('vf_rm', remove_untracked => true) - 'tables' AS nothing_left;
SELECT coco.verify('vf_rm', true, NULL);

SELECT coco.drop_app('vf');
SELECT coco.drop_app('vf_fn');
SELECT coco.drop_app('vf_rm');
DROP TABLE vf_user;
DROP FUNCTION vf_declare(text);
DROP TABLE vf_src;
