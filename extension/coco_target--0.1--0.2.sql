-- coco_target 0.1 -> 0.2: context keys, the localfs connector, and the
-- intents of sinks outside the transaction (reconciliation rules 5 and 9, docs/architecture.md).
\echo Use "ALTER EXTENSION coco_target UPDATE TO '0.2'" to load this file. \quit

-- Contexts: stable names for external resources.  Target-state keys carry
-- the context's key, never its settings, so settings (a directory root, a
-- server address) can change without losing track of what exists.  The
-- built-in context "local" (this database) is not stored.  Written only
-- through coco.provide_context(), which checks who may define which kind.
CREATE TABLE coco.context (
    key         text PRIMARY KEY,
    kind        text NOT NULL,
    settings    jsonb NOT NULL,
    users       regrole[] NOT NULL DEFAULT '{}',   -- roles whose apps may use it
    defined_by  regrole NOT NULL,
    updated_at  timestamptz NOT NULL DEFAULT pg_catalog.now()
);
REVOKE ALL ON coco.context FROM PUBLIC;
SELECT pg_catalog.pg_extension_config_dump('coco.context', '');

CREATE VIEW coco.contexts AS
SELECT 'local'::text AS key, 'postgres'::text AS kind, '{}'::jsonb AS settings,
       '{}'::regrole[] AS users
UNION ALL
SELECT key, kind, settings, users FROM coco.context;
GRANT SELECT ON coco.contexts TO PUBLIC;

CREATE FUNCTION coco.provide_context(key text, kind text, settings jsonb DEFAULT '{}',
                                     users regrole[] DEFAULT '{}')
    RETURNS void AS 'MODULE_PATHNAME', 'coco_provide_context' LANGUAGE C;
CREATE FUNCTION coco.drop_context(key text)
    RETURNS void AS 'MODULE_PATHNAME', 'coco_drop_context' LANGUAGE C;

-- localfs: a directory under a context's root, and files inside it.
CREATE FUNCTION coco.declare_dir(app text, context text, path text, component text[] DEFAULT '{}')
    RETURNS void AS 'MODULE_PATHNAME', 'coco_declare_dir' LANGUAGE C;
CREATE FUNCTION coco.declare_file(app text, context text, dir_path text, file_name text,
                                  content bytea, component text[] DEFAULT '{}')
    RETURNS void AS 'MODULE_PATHNAME', 'coco_declare_file' LANGUAGE C;

-- A sink outside the transaction (a file, a concurrent index build) gets its
-- intended record committed next to the old ones before it runs: `records`
-- then holds both, and `intent` what is still to be done (the action and
-- the desired spec).  Completing it runs the sink and prunes the records.
ALTER TABLE coco.target_state ADD COLUMN intent jsonb;
CREATE INDEX target_state_intent ON coco.target_state (app_id) WHERE intent IS NOT NULL;

CREATE OR REPLACE VIEW coco.target_states WITH (security_invoker = true) AS
SELECT a.name AS app, c.path AS component, t.provider, coco.key_to_jsonb(t.key) AS key,
       t.name, t.records, t.may_be_missing, t.generation, t.schema_version,
       t.intent OPERATOR(pg_catalog.->>) 'action' AS pending_action
  FROM coco.target_state t
  JOIN coco.app a USING (app_id)
  JOIN coco.component c USING (comp_id);

-- Rows changed behind the reconciler's back: found by reading the app's
-- tables (on demand, not every run); repaired by the next run that
-- declares them, or at once for an app with a declaration function.
CREATE FUNCTION coco.verify(app text, repair boolean DEFAULT true)
    RETURNS jsonb AS 'MODULE_PATHNAME', 'coco_verify' LANGUAGE C;
