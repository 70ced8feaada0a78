-- coco_target 0.5 -> 0.6: pipelines that keep themselves in sync
-- (docs/pipelines.md).
\echo Use "ALTER EXTENSION coco_target UPDATE TO '0.6'" to load this file. \quit

-- ---- persistent declarations: coco.sync_table() ----------------------------
-- A derived table declared once from its query.  The app keeps it, and every
-- run of the app re-evaluates it, in a component of its own (comp_id) that
-- nothing else stages into, until coco.unsync_table() or another
-- coco.sync_table() of the table.
CREATE TABLE coco.synced_table (
    app_id       integer NOT NULL REFERENCES coco.app ON DELETE CASCADE,
    tbl          text NOT NULL,           -- "schema.table", as the run names it
    comp_id      integer NOT NULL REFERENCES coco.component ON DELETE CASCADE,
    query        text NOT NULL,
    primary_key  text[] NOT NULL,
    options      jsonb NOT NULL DEFAULT '{}',
    search_path  text NOT NULL,           -- the declaring session's, for the query
    declared_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (app_id, tbl),
    UNIQUE (comp_id)
);

-- Source-driven refresh (coco.set_app_option(app, refresh => true)): the
-- tables the app's persistent queries read, each carrying the extension's
-- statement trigger that queues a run of the app when a writing
-- transaction commits.
CREATE TABLE coco.refresh_source (
    app_id   integer NOT NULL REFERENCES coco.app ON DELETE CASCADE,
    source   regclass NOT NULL,           -- dumped and restored by name
    PRIMARY KEY (app_id, source)
);
CREATE INDEX ON coco.refresh_source (source);

ALTER TABLE coco.app ADD COLUMN refresh boolean NOT NULL DEFAULT false;

DO $$
DECLARE t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['synced_table', 'refresh_source']
    LOOP
        EXECUTE format('REVOKE ALL ON coco.%I FROM PUBLIC', t);
        EXECUTE format('GRANT SELECT ON coco.%I TO PUBLIC', t);
        EXECUTE format('ALTER TABLE coco.%I ENABLE ROW LEVEL SECURITY', t);
        EXECUTE format($p$CREATE POLICY app_owner ON coco.%I FOR SELECT
                          USING (app_id OPERATOR(pg_catalog.=) ANY (
                              (SELECT pg_catalog.array_agg(a.app_id) FROM coco.app a)::integer[]))$p$, t);
        PERFORM pg_catalog.pg_extension_config_dump(('coco.' || t)::regclass, '');
    END LOOP;
END $$;

COMMENT ON TABLE coco.synced_table IS
    'Persistent declarations of coco.sync_table(): each derived table''s query, key and options, re-evaluated by every run of its app.';
COMMENT ON TABLE coco.refresh_source IS
    'The source tables of apps with source-driven refresh, each with the extension''s statement trigger.';

-- ---- where each run came from ----------------------------------------------
-- session: coco.reconcile()/coco.update() in a client's session; cron: the
-- same, called by a pg_cron job; worker: a run submitted (coco.submit,
-- auto-submit) and executed by the worker; completion: a worker run queued
-- to complete a synchronous run's intents; refresh: queued by a source
-- table's trigger (source-driven refresh).
ALTER TABLE coco.run
    ADD COLUMN origin text
        CHECK (origin IN ('session', 'cron', 'worker', 'completion', 'refresh'));

-- ---- sync_table: derived tables declared from their query ----
-- The registration functions of coco.synced_table (sync_table.c); every run
-- of the app expands each registration into its component's staging.
CREATE FUNCTION coco.sync_table(app text, table_name text, query text, primary_key text[],
                                options jsonb DEFAULT '{}', component text[] DEFAULT NULL)
    RETURNS jsonb AS 'MODULE_PATHNAME', 'coco_sync_table' LANGUAGE C;
CREATE FUNCTION coco.unsync_table(app text, table_name text)
    RETURNS void AS 'MODULE_PATHNAME', 'coco_unsync_table' LANGUAGE C;

CREATE VIEW coco.synced_tables WITH (security_invoker = true) AS
SELECT a.name AS app, s.tbl AS "table", c.path AS component, s.query, s.primary_key,
       s.options, s.declared_at
  FROM coco.synced_table s
  JOIN coco.app a ON a.app_id = s.app_id
  JOIN coco.component c ON c.comp_id = s.comp_id;
GRANT SELECT ON coco.synced_tables TO PUBLIC;

COMMENT ON FUNCTION coco.sync_table(text, text, text, text[], jsonb, text[]) IS
    'Declare a derived table from its query, persistently: columns, types and nullability inferred, rows from the query, re-evaluated by every run; returns the columns.';
COMMENT ON FUNCTION coco.unsync_table(text, text) IS
    'Remove a synced table''s registration; the next run drops the table as any table no longer declared.';
COMMENT ON VIEW coco.synced_tables IS
    'The synced tables (coco.sync_table) of the apps the caller may use: table, component, query, key and options.';

-- ---- source-driven refresh ----------------------------------------------
-- coco.set_app_option(app, refresh => true): the extension keeps
-- coco.refresh_trigger() as a statement trigger on every source table of
-- the app's persistent queries (registered in coco.refresh_source), which
-- queues a run of the app (origin 'refresh') when a writing transaction
-- commits; the worker starts it coco_target.refresh_delay later.
DROP FUNCTION coco.set_app_option(text, boolean, interval);
CREATE FUNCTION coco.set_app_option(app text, auto_submit boolean DEFAULT NULL,
                                    run_timeout interval DEFAULT NULL,
                                    refresh boolean DEFAULT NULL)
    RETURNS void AS 'MODULE_PATHNAME', 'coco_set_app_option' LANGUAGE C;
COMMENT ON FUNCTION coco.set_app_option(text, boolean, interval, boolean) IS
    'Set an app''s options (NULL leaves one as it is): auto_submit, whether every transaction that declares into it submits it at commit; run_timeout, a time limit for its worker runs below coco_target.run_timeout (0 removes it); refresh, whether writes to the source tables of its persistent queries queue a run at commit (source-driven refresh).';

-- Called by the trigger manager only; it acts for an app only when the
-- firing trigger is the one the extension registered for that app on that
-- table, so a role calling it from its own trigger queues nothing.
CREATE FUNCTION coco.refresh_trigger() RETURNS trigger
    AS 'MODULE_PATHNAME', 'coco_refresh_trigger' LANGUAGE C;
COMMENT ON FUNCTION coco.refresh_trigger() IS
    'The statement trigger source-driven refresh keeps on each source table of an app: queues a run of the app when the writing transaction commits.';
