-- 20_localfs: contexts and the localfs connector at the API boundary.
--   1. contexts: only a superuser defines a localfs context; "local" is
--      built in; kinds, keys and roots are checked; a context's kind
--      cannot change; its users decide which app owners may use it.
--   2. hostile paths and names: each refused with a specific SQLSTATE and
--      nothing staged.  (Writing, symbolic links, crashes and recovery are
--      covered by test/localfs.sh against a real tree.)
\set VERBOSITY default
\set SHOW_CONTEXT never

SET client_min_messages = warning;
DROP ROLE IF EXISTS regress_coco_fs_alice;
DROP ROLE IF EXISTS regress_coco_fs_mallory;
RESET client_min_messages;
CREATE ROLE regress_coco_fs_alice;
CREATE ROLE regress_coco_fs_mallory;

CREATE FUNCTION public.fs_sqlstate_of(stmt text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
  EXECUTE stmt;
  RETURN 'no error';
EXCEPTION WHEN OTHERS THEN
  RETURN SQLSTATE;
END $$;
GRANT EXECUTE ON FUNCTION public.fs_sqlstate_of(text) TO PUBLIC;

-- ===========================================================================
-- 1. contexts
-- ===========================================================================
-- the data directory exists on every server: a root for this test
SELECT coco.provide_context('fs_exports', 'localfs',
                            jsonb_build_object('root', current_setting('data_directory')),
                            '{regress_coco_fs_alice}');
SELECT key, kind, users FROM coco.contexts ORDER BY key;
-- settings change under the same key; the kind may not
SELECT coco.provide_context('fs_exports', 'localfs',
                            jsonb_build_object('root', current_setting('data_directory') || '/base'),
                            '{regress_coco_fs_alice}');
SELECT settings ->> 'root' LIKE '%/base' AS moved FROM coco.contexts WHERE key = 'fs_exports';
SELECT coco.provide_context('fs_exports', 'localfs',
                            jsonb_build_object('root', current_setting('data_directory')),
                            '{regress_coco_fs_alice}');

SELECT t.stmt, public.fs_sqlstate_of(t.stmt) AS sqlstate
  FROM (VALUES
    ($$SELECT coco.provide_context('local', 'localfs', '{"root": "/"}')$$),
    ($$SELECT coco.provide_context('fs x', 'localfs', '{"root": "/"}')$$),
    ($$SELECT coco.provide_context('fs_y', 'ftp', '{}')$$),
    ($$SELECT coco.provide_context('fs_y', 'localfs', '{}')$$),
    ($$SELECT coco.provide_context('fs_y', 'localfs', '{"root": 7}')$$),
    ($$SELECT coco.provide_context('fs_y', 'localfs', '{"root": "relative/dir"}')$$),
    ($$SELECT coco.provide_context('fs_y', 'localfs', '{"root": "/no/such/dir/anywhere"}')$$),
    ($$SELECT coco.provide_context('fs_y', 'localfs', '[1]')$$),
    ($$SELECT coco.provide_context('fs_y', 'localfs', NULL)$$),
    ($$SELECT coco.provide_context(NULL, 'localfs', '{"root": "/"}')$$),
    ($$SELECT coco.provide_context('fs_y', 'localfs', '{"root": "/"}', '{{regress_coco_fs_alice}}')$$),
    ($$SELECT coco.drop_context('local')$$),
    ($$SELECT coco.drop_context('fs_nonesuch')$$)
  ) AS t(stmt);
SELECT count(*) AS contexts FROM coco.contexts;

-- mallory may not define a root, nor change or drop one
SET ROLE regress_coco_fs_mallory;
SELECT t.stmt, public.fs_sqlstate_of(t.stmt) AS sqlstate
  FROM (VALUES
    ($$SELECT coco.provide_context('fs_mine', 'localfs', '{"root": "/"}')$$),
    ($$SELECT coco.provide_context('fs_exports', 'localfs', '{"root": "/"}', '{regress_coco_fs_mallory}')$$),
    ($$SELECT coco.drop_context('fs_exports')$$),
    ($$SELECT * FROM coco.context$$),
    ($$UPDATE coco.context SET settings = '{"root": "/"}'$$)
  ) AS t(stmt);
-- nor use one she is not listed in
SELECT coco.create_app('fs_mallory_app');
SELECT coco.declare_dir('fs_mallory_app', 'fs_exports', 'loot');
RESET ROLE;
SELECT settings ->> 'root' = current_setting('data_directory') AS root_unchanged
  FROM coco.contexts WHERE key = 'fs_exports';

-- ===========================================================================
-- 2. hostile paths and names, as a listed user
-- ===========================================================================
SET ROLE regress_coco_fs_alice;
SELECT coco.create_app('fs_alice_app');
SELECT coco.declare_dir('fs_alice_app', 'fs_exports', 'coco_regress/out');
SELECT coco.declare_file('fs_alice_app', 'fs_exports', 'coco_regress/out', 'a.txt', 'a');
SELECT t.stmt, public.fs_sqlstate_of(t.stmt) AS sqlstate
  FROM (VALUES
    -- escaping the root (42501)
    ($$SELECT coco.declare_dir('fs_alice_app', 'fs_exports', '../etc')$$),
    ($$SELECT coco.declare_dir('fs_alice_app', 'fs_exports', '/etc')$$),
    ($$SELECT coco.declare_dir('fs_alice_app', 'fs_exports', 'a/../../etc')$$),
    ($$SELECT coco.declare_dir('fs_alice_app', 'fs_exports', '..')$$),
    ($$SELECT coco.declare_dir('fs_alice_app', 'fs_exports', './a')$$),
    ($$SELECT coco.declare_file('fs_alice_app', 'fs_exports', 'coco_regress/out', '../../postgresql.conf', 'x')$$),
    ($$SELECT coco.declare_file('fs_alice_app', 'fs_exports', 'coco_regress/out', '..', 'x')$$),
    ($$SELECT coco.declare_file('fs_alice_app', 'fs_exports', 'coco_regress', 'out/a.txt', 'x')$$),
    ($$SELECT coco.declare_file('fs_alice_app', 'fs_exports', '/tmp', 'x', 'x')$$),
    -- malformed (22023), reserved (42939), too long (42622)
    ($$SELECT coco.declare_dir('fs_alice_app', 'fs_exports', '')$$),
    ($$SELECT coco.declare_dir('fs_alice_app', 'fs_exports', 'a//b')$$),
    ($$SELECT coco.declare_dir('fs_alice_app', 'fs_exports', 'a/')$$),
    ($$SELECT coco.declare_file('fs_alice_app', 'fs_exports', 'coco_regress/out', '', 'x')$$),
    ($$SELECT coco.declare_file('fs_alice_app', 'fs_exports', 'coco_regress/out', '.coco-tmp-1-a.txt', 'x')$$),
    ($$SELECT coco.declare_dir('fs_alice_app', 'fs_exports', 'a/.coco-tmp-x')$$),
    ($$SELECT coco.declare_file('fs_alice_app', 'fs_exports', 'coco_regress/out', repeat('n', 256), 'x')$$),
    ($$SELECT coco.declare_dir('fs_alice_app', 'fs_exports', repeat('d/', 600) || 'd')$$),
    -- contexts that are missing, of another kind, or not a valid key
    ($$SELECT coco.declare_dir('fs_alice_app', 'fs_nonesuch', 'a')$$),
    ($$SELECT coco.declare_dir('fs_alice_app', 'local', 'a')$$),
    ($$SELECT coco.declare_dir('fs_alice_app', 'fs exports', 'a')$$),
    -- nulls (22004) and a declaration another component staged (23505)
    ($$SELECT coco.declare_file('fs_alice_app', 'fs_exports', 'coco_regress/out', 'b.txt', NULL)$$),
    ($$SELECT coco.declare_dir('fs_alice_app', NULL, 'a')$$),
    ($$SELECT coco.declare_dir('fs_alice_app', 'fs_exports', NULL)$$),
    ($$SELECT coco.declare_file('fs_alice_app', 'fs_exports', 'coco_regress/out', 'a.txt', 'again', '{x}')$$),
    -- mallory's app (42501 for her, not alice)
    ($$SELECT coco.declare_dir('fs_mallory_app', 'fs_exports', 'a')$$)
  ) AS t(stmt);
-- what is staged: exactly the two good declarations
SELECT s.provider, s.name FROM coco.staged_state s JOIN coco.app a USING (app_id)
 WHERE a.name = 'fs_alice_app' ORDER BY s.name;
-- a plan shows what would be done, and writes nothing
SELECT provider, key, action FROM coco.plan('fs_alice_app') ORDER BY provider;
SELECT coco.drop_app('fs_alice_app');
RESET ROLE;

SELECT coco.drop_app('fs_mallory_app');
SELECT coco.drop_context('fs_exports');
SELECT key FROM coco.contexts;
DROP FUNCTION public.fs_sqlstate_of(text);
DROP ROLE regress_coco_fs_alice;
DROP ROLE regress_coco_fs_mallory;
