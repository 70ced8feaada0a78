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

-- ---- declarations that replace instead of colliding ----
-- Within one component a later declaration of a key replaces the earlier
-- staged one (deleted and staged anew, never updated in place: a run
-- consumes staging with a DELETE through its snapshot).  seq is the staging
-- order of declare_row rows and declare_rows queries: where a component has
-- several row sources for a table, each key takes the rows of its latest
-- source.
CREATE SEQUENCE coco.staging_seq;
REVOKE ALL ON SEQUENCE coco.staging_seq FROM PUBLIC;
ALTER TABLE coco.staged_row
    ADD COLUMN seq bigint NOT NULL
        DEFAULT pg_catalog.nextval('coco.staging_seq'::pg_catalog.regclass);
ALTER TABLE coco.staged_query
    ADD COLUMN seq bigint NOT NULL
        DEFAULT pg_catalog.nextval('coco.staging_seq'::pg_catalog.regclass);
SELECT pg_catalog.pg_extension_config_dump('coco.staging_seq'::pg_catalog.regclass, '');
COMMENT ON SEQUENCE coco.staging_seq IS
    'Staging order of declared rows and queries (coco.staged_row.seq, coco.staged_query.seq): the latest source of a key wins within a component.';

CREATE FUNCTION coco.discard_staged(app text) RETURNS bigint
    AS 'MODULE_PATHNAME', 'coco_discard_staged' LANGUAGE C;
COMMENT ON FUNCTION coco.discard_staged(text) IS
    'Discards everything staged for the app (states, rows, queries, clear markers) and returns how many entries; tracking is untouched.';

-- ---- protection against destruction ----------------------------------------
-- protected: the target is kept when it is no longer declared (set by a
-- declaration with "protect": true when a run applies it, cleared by
-- "protect": false or coco.unprotect()).  retained: it is no longer declared
-- and kept only because it is protected; once unprotected, the next run of
-- the app removes it, whichever components that run replaces.
ALTER TABLE coco.target_state
    ADD COLUMN protected boolean NOT NULL DEFAULT false,
    ADD COLUMN retained  boolean NOT NULL DEFAULT false;
-- The runs' look-up of retained targets that lost their protection.
CREATE INDEX target_state_retained ON coco.target_state (app_id) WHERE retained;

DROP FUNCTION coco.declare_table(text, text, jsonb, text[], text, text[]);
CREATE FUNCTION coco.declare_table(app text, table_name text, columns jsonb, primary_key text[],
                                   managed_by text DEFAULT 'system', component text[] DEFAULT '{}',
                                   options jsonb DEFAULT '{}')
    RETURNS void AS 'MODULE_PATHNAME', 'coco_declare_table' LANGUAGE C;
COMMENT ON FUNCTION coco.declare_table(text, text, jsonb, text[], text, text[], jsonb) IS
    'Stage a table the app should have (columns, primary key, managed by the system or the user) in a component, with table options such as "protect".';

DROP FUNCTION coco.reconcile(text, boolean);
CREATE FUNCTION coco.reconcile(app text, "full" boolean DEFAULT false, allow_drop_all boolean DEFAULT false)
    RETURNS jsonb AS 'MODULE_PATHNAME', 'coco_reconcile' LANGUAGE C;
COMMENT ON FUNCTION coco.reconcile(text, boolean, boolean) IS
    'Reconcile an app now, in this transaction: make its targets match what is declared with the fewest writes, and return the run''s counts. A full run that would remove every target of the app is refused unless allow_drop_all is true.';

DROP FUNCTION coco.update(text);
CREATE FUNCTION coco.update(app text, allow_drop_all boolean DEFAULT false)
    RETURNS jsonb AS 'MODULE_PATHNAME', 'coco_update' LANGUAGE C;
COMMENT ON FUNCTION coco.update(text, boolean) IS
    'Run the app''s declaration function and reconcile what it declared as a full run, in this transaction; refused when it would remove every target of the app unless allow_drop_all is true.';

CREATE FUNCTION coco.unprotect(app text, table_name text) RETURNS void
    AS 'MODULE_PATHNAME', 'coco_unprotect' LANGUAGE C;
COMMENT ON FUNCTION coco.unprotect(text, text) IS
    'Clear the protection of a table the app tracks; if it is no longer declared, the next run of the app drops it.';

CREATE OR REPLACE VIEW coco.target_states WITH (security_invoker = true) AS
SELECT a.name AS app, c.path AS component, t.provider, coco.key_to_jsonb(t.key) AS key,
       t.name, t.records, t.may_be_missing, t.generation, t.schema_version,
       t.intent OPERATOR(pg_catalog.->>) 'action' AS pending_action,
       t.protected, t.retained
  FROM coco.target_state t
  JOIN coco.app a USING (app_id)
  JOIN coco.component c USING (comp_id);
COMMENT ON VIEW coco.target_states IS
    'One row per tracked target state other than rows (tables, attachments, directories, files): its records and generation, a pending intent, whether it is protected, and whether it is kept only because it is protected.';

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

-- ---- every run recorded: failed synchronous runs, origins, per-target breakdown ----
-- A failed synchronous run (coco.reconcile/coco.update) rolls back its own
-- row; the background worker inserts its record afterwards, so a 'failed'
-- row can arrive by INSERT, and after a later run of the app has
-- succeeded: that one must not mark the app failing.  The row lock on the
-- app is taken FOR NO KEY UPDATE, SKIP LOCKED: a drop of the app in
-- progress is not waited for, and a transaction declaring into the app
-- (a key-share lock) does not keep the mark from being set.
CREATE OR REPLACE FUNCTION coco.track_failing() RETURNS trigger LANGUAGE plpgsql
    SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF NEW.status OPERATOR(pg_catalog.=) 'failed' THEN
        UPDATE coco.app SET failing_since = NEW.finished_at
         WHERE app_id OPERATOR(pg_catalog.=) (
               SELECT a.app_id FROM coco.app a
                WHERE a.app_id OPERATOR(pg_catalog.=) NEW.app_id
                  AND (a.failing_since IS NULL OR a.failing_since OPERATOR(pg_catalog.>) NEW.finished_at)
                  AND NOT EXISTS (SELECT FROM coco.run r
                                   WHERE r.app_id OPERATOR(pg_catalog.=) NEW.app_id
                                     AND r.status OPERATOR(pg_catalog.=) 'succeeded'
                                     AND r.finished_at OPERATOR(pg_catalog.>) NEW.finished_at)
                  FOR NO KEY UPDATE SKIP LOCKED);
    ELSE
        UPDATE coco.app SET failing_since = NULL
         WHERE app_id OPERATOR(pg_catalog.=) (
               SELECT a.app_id FROM coco.app a
                WHERE a.app_id OPERATOR(pg_catalog.=) NEW.app_id
                  AND a.failing_since OPERATOR(pg_catalog.<=) NEW.finished_at
                  FOR NO KEY UPDATE SKIP LOCKED);
    END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER run_failed_recorded AFTER INSERT ON coco.run FOR EACH ROW
    WHEN (NEW.status = 'failed')
    EXECUTE FUNCTION coco.track_failing();

CREATE OR REPLACE VIEW coco.runs WITH (security_invoker = true) AS
SELECT r.run_id, a.name AS app, r."full", r.status, r.error, r.started_at, r.finished_at,
       r.finished_at - r.started_at AS duration,
       (r.stats->>'inserted')::bigint AS inserted,
       (r.stats->>'updated')::bigint AS updated,
       (r.stats->>'deleted')::bigint AS deleted,
       (r.stats->>'unchanged')::bigint AS unchanged,
       r.stats->'providers' AS providers,
       r.pid,
       r.submitted_at, r.attempts, r.retry_at,
       r.sqlstate, r.coalesced_into,
       CASE WHEN r.status = 'queued' THEN pg_catalog.now() - r.submitted_at
            ELSE coalesce(r.started_at, r.finished_at) - r.submitted_at END AS waited,
       r.crashes,
       r.origin
  FROM coco.run r JOIN coco.app a USING (app_id);
COMMENT ON VIEW coco.runs IS
    'One row per recorded or submitted run, failed synchronous runs included: status, origin, timing, how long it waited for a worker, its error and SQLSTATE, and what it inserted, updated, deleted and left unchanged.';

-- The per-target breakdown of each run (stats->'targets'): one row per
-- target state it decided (a table, an index, ...) and one per table whose
-- rows it synced.  A failed run has none: its work rolled back.
CREATE VIEW coco.run_targets WITH (security_invoker = true) AS
SELECT r.run_id, a.name AS app,
       t.e->>'provider' AS provider,
       t.e->>'target' AS target,
       (t.e->>'inserted')::bigint AS inserted,
       (t.e->>'updated')::bigint AS updated,
       (t.e->>'deleted')::bigint AS deleted,
       (t.e->>'unchanged')::bigint AS unchanged,
       pg_catalog.make_interval(secs => (t.e->>'ms')::double precision / 1000) AS duration
  FROM coco.run r JOIN coco.app a USING (app_id)
 CROSS JOIN LATERAL pg_catalog.jsonb_array_elements(
       CASE WHEN pg_catalog.jsonb_typeof(r.stats->'targets') = 'array'
            THEN r.stats->'targets' ELSE '[]'::jsonb END) AS t(e);
GRANT SELECT ON coco.run_targets TO PUBLIC;
COMMENT ON VIEW coco.run_targets IS
    'The per-target breakdown of each run: per table, index or other target state it decided, and per table whose rows it synced, what it inserted, updated, deleted and left unchanged, and the time spent.';

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

-- ---- the apps, with their refresh option and synced tables ---------------
CREATE OR REPLACE VIEW coco.apps WITH (security_invoker = true) AS
SELECT a.name AS app,
       a.owner::regrole AS owner,
       a.declare_fn,
       a.created_at,
       (SELECT max(r.run_id) FROM coco.run r WHERE r.app_id = a.app_id) AS last_run,
       (SELECT count(*) FROM coco.staged_state s WHERE s.app_id = a.app_id)
     + (SELECT count(*) FROM coco.staged_row s WHERE s.app_id = a.app_id)
     + (SELECT count(*) FROM coco.staged_query s WHERE s.app_id = a.app_id) AS pending_declarations,
       a.auto_submit,
       a.failing_since,
       (SELECT count(*) FROM coco.stale_components s WHERE s.app = a.name) AS stale_components,
       a.run_timeout,
       a.flagged,
       a.refresh,
       (SELECT count(*) FROM coco.synced_table s WHERE s.app_id = a.app_id) AS synced_tables
  FROM coco.app a;
COMMENT ON VIEW coco.apps IS
    'One row per app the caller may use: owner, declaration function, last run, pending declarations, options (auto_submit, run_timeout, refresh), whether it is failing or flagged, stale components and synced tables.';

-- ---- the sources refresh watches -------------------------------------------
CREATE VIEW coco.refresh_sources WITH (security_invoker = true) AS
SELECT a.name AS app, r.source,
       'coco_refresh_' OPERATOR(pg_catalog.||) a.app_id AS trigger,
       t.oid IS NOT NULL AS trigger_exists,
       coalesce(t.tgenabled OPERATOR(pg_catalog.<>) 'D', false) AS trigger_enabled
  FROM coco.refresh_source r JOIN coco.app a USING (app_id)
  LEFT JOIN pg_catalog.pg_trigger t
    ON t.tgrelid OPERATOR(pg_catalog.=) r.source::pg_catalog.oid
   AND t.tgname OPERATOR(pg_catalog.=) ('coco_refresh_' OPERATOR(pg_catalog.||) a.app_id)
   AND t.tgfoid OPERATOR(pg_catalog.=) 'coco.refresh_trigger()'::pg_catalog.regprocedure;
GRANT SELECT ON coco.refresh_sources TO PUBLIC;
COMMENT ON VIEW coco.refresh_sources IS
    'The source tables that source-driven refresh watches for the apps the caller may use, with the name of the extension''s trigger on each, whether it is there (a run of the app puts back one that was dropped) and whether it is enabled.';
