-- coco_target 0.1: a declarative target-state reconciler.
\echo Use "CREATE EXTENSION coco_target" to load this file. \quit

-- The extension's bookkeeping.  Ordinary roles never write these tables:
-- every write goes through the C functions, which write as the extension's
-- owner after checking that the caller may act for the app.  Reads of the
-- per-app tables are filtered by row level security, so a role sees only the
-- apps whose owner it has the privileges of.

CREATE TABLE coco.app (
    app_id      integer GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name        text NOT NULL UNIQUE,
    owner       regrole NOT NULL,     -- dumped and restored by name
    declare_fn  regprocedure,
    search_path text NOT NULL,        -- the creating session's, for declare_fn
    created_at  timestamptz NOT NULL DEFAULT now()
);

-- Components are interned: staging and tracking refer to them by id.
CREATE TABLE coco.component (
    comp_id  integer GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    app_id   integer NOT NULL REFERENCES coco.app ON DELETE CASCADE,
    path     text[] NOT NULL,
    UNIQUE (app_id, path)
);

-- Staging: what was declared since the app's last reconcile.  A component
-- with any staged entry (or a clear marker) is replaced at the next run.
CREATE TABLE coco.staged_state (
    app_id    integer NOT NULL REFERENCES coco.app ON DELETE CASCADE,
    comp_id   integer NOT NULL REFERENCES coco.component ON DELETE CASCADE,
    provider  text NOT NULL,
    key       bytea NOT NULL,
    name      text NOT NULL,          -- readable spelling of the key
    spec      jsonb NOT NULL,
    PRIMARY KEY (app_id, provider, key)
);

-- No foreign keys here: this is declare_row's hot path, and a foreign-key
-- check per row would cost more than the row.  drop_app cleans up.
CREATE TABLE coco.staged_row (
    app_id   integer NOT NULL,
    comp_id  integer NOT NULL,
    tbl      text NOT NULL,           -- "schema.table" of the declared table
    key      bytea NOT NULL,
    "row"    jsonb NOT NULL,
    PRIMARY KEY (app_id, tbl, key)
);

CREATE TABLE coco.staged_query (
    query_id     bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    app_id       integer NOT NULL REFERENCES coco.app ON DELETE CASCADE,
    comp_id      integer NOT NULL REFERENCES coco.component ON DELETE CASCADE,
    tbl          text NOT NULL,
    query        text NOT NULL,
    columns      text[] NOT NULL,     -- the query's output column names
    search_path  text NOT NULL        -- the declaring session's search_path
);
CREATE INDEX ON coco.staged_query (app_id);

-- One row per clear_component call: a clear committed while a run consumes
-- an earlier one of the same component must not be absorbed by it.
CREATE TABLE coco.cleared_component (
    marker_id  bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    app_id     integer NOT NULL REFERENCES coco.app ON DELETE CASCADE,
    comp_id    integer NOT NULL REFERENCES coco.component ON DELETE CASCADE
);
CREATE INDEX ON coco.cleared_component (app_id);

-- Tracking: what the reconciler made exist.  One row per target state of a
-- root provider (tables).  `records` holds every tracking record that may be
-- true (reconciliation rule 5, docs/architecture.md); `may_be_missing` says a deletion was recorded
-- among them.  Containers carry their children's generation.
CREATE TABLE coco.target_state (
    ts_id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    app_id          integer NOT NULL REFERENCES coco.app ON DELETE CASCADE,
    comp_id         integer NOT NULL REFERENCES coco.component,
    provider        text NOT NULL,
    key             bytea NOT NULL,
    name            text NOT NULL,
    records         jsonb NOT NULL,   -- array of tracking records
    may_be_missing  boolean NOT NULL DEFAULT false,
    generation      integer NOT NULL DEFAULT 1,   -- new id on destructive change
    schema_version  integer NOT NULL DEFAULT 1,   -- bumped on lossy change
    -- attachments: the container and the generation they were made in
    parent_id          bigint REFERENCES coco.target_state ON DELETE CASCADE,
    parent_generation  integer,
    UNIQUE (app_id, provider, key)
);

-- Rows are tracked by fingerprint only, compactly: one narrow row each.
CREATE TABLE coco.tracked_row (
    app_id     integer NOT NULL,
    target_id  bigint NOT NULL,       -- the table's target_state
    comp_id    integer NOT NULL,
    key        bytea NOT NULL,
    fp         bytea NOT NULL,
    pass_id    bigint NOT NULL,       -- the pass that last wrote it
    PRIMARY KEY (target_id, key) WITH (deduplicate_items = off)
) WITH (fillfactor = 85);             -- room for HOT updates of fp and pass_id
-- Numbers the passes of runs; a row written twice by one pass is a
-- duplicate declaration.
CREATE SEQUENCE coco.pass_seq;
REVOKE ALL ON SEQUENCE coco.pass_seq FROM PUBLIC;
-- Without deduplication: loading a million rows of one component measured
-- about 0.6 s faster, for a bigger component index.
CREATE INDEX ON coco.tracked_row (target_id, comp_id) WITH (deduplicate_items = off);

-- Each component's rows of a table: the generation they were last written
-- under (behind the table's own = stale, rule 7), and how many there are
-- with their digest (NULL: not known), which lets a run skip the diff of a
-- component that declares exactly what it has.
CREATE TABLE coco.row_set (
    app_id          integer NOT NULL,
    target_id       bigint NOT NULL REFERENCES coco.target_state ON DELETE CASCADE,
    comp_id         integer NOT NULL REFERENCES coco.component ON DELETE CASCADE,
    generation      integer NOT NULL,
    schema_version  integer NOT NULL,
    nrows           bigint NOT NULL,
    digest          bytea,
    PRIMARY KEY (target_id, comp_id)
);

-- Providers written in SQL: coco.register_provider().
CREATE TABLE coco.provider (
    name          text PRIMARY KEY,
    reconcile_fn  regprocedure NOT NULL,
    apply_fn      regprocedure NOT NULL,
    owner         regrole NOT NULL
);
REVOKE ALL ON coco.provider FROM PUBLIC;
GRANT SELECT ON coco.provider TO PUBLIC;

CREATE TABLE coco.run (
    run_id       bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    app_id       integer NOT NULL REFERENCES coco.app ON DELETE CASCADE,
    "full"       boolean NOT NULL,
    status       text NOT NULL,
    error        text,
    started_at   timestamptz NOT NULL,
    finished_at  timestamptz,
    stats        jsonb,
    pid          integer
);
CREATE INDEX ON coco.run (app_id, run_id);

-- Row level security: a role sees the apps whose owner it has the
-- privileges of, and the bookkeeping rows of those apps only.  The
-- subquery in the per-app policies is uncorrelated, so it runs once per
-- statement, not once per row.
ALTER TABLE coco.app ENABLE ROW LEVEL SECURITY;
CREATE POLICY app_owner ON coco.app FOR SELECT
    USING (pg_catalog.pg_has_role(owner, 'USAGE'));
REVOKE ALL ON coco.app FROM PUBLIC;
GRANT SELECT ON coco.app TO PUBLIC;

DO $$
DECLARE t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['component', 'staged_state', 'staged_row',
                             'staged_query', 'cleared_component', 'target_state',
                             'tracked_row', 'row_set', 'run']
    LOOP
        EXECUTE format('REVOKE ALL ON coco.%I FROM PUBLIC', t);
        EXECUTE format('GRANT SELECT ON coco.%I TO PUBLIC', t);
        EXECUTE format('ALTER TABLE coco.%I ENABLE ROW LEVEL SECURITY', t);
        EXECUTE format($p$CREATE POLICY app_owner ON coco.%I FOR SELECT
                          USING (app_id OPERATOR(pg_catalog.=) ANY (
                              (SELECT pg_catalog.array_agg(a.app_id) FROM coco.app a)::integer[]))$p$, t);
    END LOOP;
END $$;

-- Stable keys and fingerprints, usable from SQL (and by the reconciler's
-- own set-wise queries).
CREATE FUNCTION coco.row_key(VARIADIC "any") RETURNS bytea
    AS 'MODULE_PATHNAME', 'coco_row_key' LANGUAGE C IMMUTABLE PARALLEL SAFE;
CREATE FUNCTION coco.row_fingerprint(VARIADIC "any") RETURNS bytea
    AS 'MODULE_PATHNAME', 'coco_row_fingerprint' LANGUAGE C IMMUTABLE PARALLEL SAFE;
-- The run's own: fingerprints a declared row and tallies its component's
-- count and digest in this backend (hence PARALLEL RESTRICTED, VOLATILE).
CREATE FUNCTION coco.tracked_fingerprint(component integer, key bytea, VARIADIC "any") RETURNS bytea
    AS 'MODULE_PATHNAME', 'coco_tracked_fingerprint' LANGUAGE C VOLATILE PARALLEL RESTRICTED;
-- Order-independent digest of a row set: sum mod 2^128 of hash(key, fp).
CREATE FUNCTION coco.row_digest_step(internal, bytea, bytea) RETURNS internal
    AS 'MODULE_PATHNAME', 'coco_row_digest_step' LANGUAGE C IMMUTABLE;
CREATE FUNCTION coco.digest_sum_step(internal, bytea) RETURNS internal
    AS 'MODULE_PATHNAME', 'coco_digest_sum_step' LANGUAGE C IMMUTABLE;
CREATE FUNCTION coco.digest_final(internal) RETURNS bytea
    AS 'MODULE_PATHNAME', 'coco_digest_final' LANGUAGE C IMMUTABLE;
CREATE AGGREGATE coco.row_digest(key bytea, fp bytea) (
    SFUNC = coco.row_digest_step, STYPE = internal, FINALFUNC = coco.digest_final);
CREATE AGGREGATE coco.digest_sum(digest bytea) (
    SFUNC = coco.digest_sum_step, STYPE = internal, FINALFUNC = coco.digest_final);
CREATE FUNCTION coco.key_to_jsonb(key bytea) RETURNS jsonb
    AS 'MODULE_PATHNAME', 'coco_key_to_jsonb_sql' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION coco.key_from_jsonb(key jsonb) RETURNS bytea
    AS 'MODULE_PATHNAME', 'coco_key_from_jsonb_sql' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION coco.fingerprint(data bytea) RETURNS bytea
    AS 'MODULE_PATHNAME', 'coco_fingerprint_sql' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
-- The decision rules, exposed for inspection and testing:
-- desired and prev are fingerprints (NULL desired = no longer declared).
CREATE FUNCTION coco.diff(desired bytea, prev bytea[], prev_may_be_missing boolean DEFAULT false)
    RETURNS text AS 'MODULE_PATHNAME', 'coco_diff_sql' LANGUAGE C IMMUTABLE PARALLEL SAFE;
-- Composite diff: records are {"main": "...", "subs": {"name": "..."}}.
CREATE FUNCTION coco.composite_diff(desired jsonb, prev jsonb[], prev_may_be_missing boolean DEFAULT false)
    RETURNS jsonb AS 'MODULE_PATHNAME', 'coco_composite_diff_sql' LANGUAGE C IMMUTABLE PARALLEL SAFE;
-- The postgres.table handler's decision for a table spec against previous
-- tracking records, without touching anything.
CREATE FUNCTION coco.table_decision(desired jsonb, prev jsonb[], prev_may_be_missing boolean DEFAULT false)
    RETURNS jsonb AS 'MODULE_PATHNAME', 'coco_table_decision_sql' LANGUAGE C STABLE PARALLEL SAFE;

-- The API.  Plain (SECURITY INVOKER) C functions: they check that the caller
-- may act for the app, write bookkeeping as the extension owner and run all
-- user work as the app owner.
CREATE FUNCTION coco.create_app(app text, declare_fn regprocedure DEFAULT NULL) RETURNS void
    AS 'MODULE_PATHNAME', 'coco_create_app' LANGUAGE C;
CREATE FUNCTION coco.drop_app(app text, keep_targets boolean DEFAULT false) RETURNS void
    AS 'MODULE_PATHNAME', 'coco_drop_app' LANGUAGE C;
CREATE FUNCTION coco.declare_table(app text, table_name text, columns jsonb, primary_key text[],
                                   managed_by text DEFAULT 'system', component text[] DEFAULT '{}')
    RETURNS void AS 'MODULE_PATHNAME', 'coco_declare_table' LANGUAGE C;
CREATE FUNCTION coco.declare_row(app text, table_name text, "row" jsonb, component text[] DEFAULT '{}')
    RETURNS void AS 'MODULE_PATHNAME', 'coco_declare_row' LANGUAGE C;
CREATE FUNCTION coco.declare_rows(app text, table_name text, query text, component text[] DEFAULT '{}')
    RETURNS bigint AS 'MODULE_PATHNAME', 'coco_declare_rows' LANGUAGE C;
CREATE FUNCTION coco.declare_index(app text, table_name text, index_name text, columns text[],
                                   method text DEFAULT 'btree', options jsonb DEFAULT '{}',
                                   component text[] DEFAULT '{}')
    RETURNS void AS 'MODULE_PATHNAME', 'coco_declare_index' LANGUAGE C;
CREATE FUNCTION coco.declare_sql_command(app text, table_name text, name text, setup_sql text,
                                         teardown_sql text DEFAULT NULL, component text[] DEFAULT '{}')
    RETURNS void AS 'MODULE_PATHNAME', 'coco_declare_sql_command' LANGUAGE C;
CREATE FUNCTION coco.register_provider(name text, reconcile_fn regprocedure, apply_fn regprocedure)
    RETURNS void AS 'MODULE_PATHNAME', 'coco_register_provider' LANGUAGE C;
CREATE FUNCTION coco.declare_target_state(app text, provider text, key jsonb, spec jsonb,
                                          component text[] DEFAULT '{}')
    RETURNS void AS 'MODULE_PATHNAME', 'coco_declare_target_state' LANGUAGE C;
CREATE FUNCTION coco.clear_component(app text, component text[]) RETURNS void
    AS 'MODULE_PATHNAME', 'coco_clear_component' LANGUAGE C;
CREATE FUNCTION coco.reconcile(app text, "full" boolean DEFAULT false) RETURNS jsonb
    AS 'MODULE_PATHNAME', 'coco_reconcile' LANGUAGE C;
CREATE FUNCTION coco.update(app text) RETURNS jsonb
    AS 'MODULE_PATHNAME', 'coco_update' LANGUAGE C;


-- Observability.
CREATE VIEW coco.apps WITH (security_invoker = true) AS
SELECT a.name AS app,
       a.owner::regrole AS owner,
       a.declare_fn,
       a.created_at,
       (SELECT max(r.run_id) FROM coco.run r WHERE r.app_id = a.app_id) AS last_run,
       (SELECT count(*) FROM coco.staged_state s WHERE s.app_id = a.app_id)
     + (SELECT count(*) FROM coco.staged_row s WHERE s.app_id = a.app_id)
     + (SELECT count(*) FROM coco.staged_query s WHERE s.app_id = a.app_id) AS pending_declarations
  FROM coco.app a;

CREATE VIEW coco.runs WITH (security_invoker = true) AS
SELECT r.run_id, a.name AS app, r."full", r.status, r.error, r.started_at, r.finished_at,
       r.finished_at - r.started_at AS duration,
       (r.stats->>'inserted')::bigint AS inserted,
       (r.stats->>'updated')::bigint AS updated,
       (r.stats->>'deleted')::bigint AS deleted,
       (r.stats->>'unchanged')::bigint AS unchanged,
       r.stats->'providers' AS providers,
       r.pid
  FROM coco.run r JOIN coco.app a USING (app_id);

CREATE VIEW coco.target_states WITH (security_invoker = true) AS
SELECT a.name AS app, c.path AS component, t.provider, coco.key_to_jsonb(t.key) AS key,
       t.name, t.records, t.may_be_missing, t.generation, t.schema_version
  FROM coco.target_state t
  JOIN coco.app a USING (app_id)
  JOIN coco.component c USING (comp_id);

CREATE VIEW coco.stale_components WITH (security_invoker = true) AS
SELECT a.name AS app, c.path AS component, t.name AS table_name,
       CASE WHEN s.generation <> t.generation THEN 'destructive' ELSE 'lossy' END AS reason
  FROM coco.row_set s
  JOIN coco.target_state t ON t.ts_id = s.target_id
  JOIN coco.app a ON a.app_id = s.app_id
  JOIN coco.component c ON c.comp_id = s.comp_id
 WHERE (s.generation, s.schema_version) <> (t.generation, t.schema_version);

GRANT USAGE ON SCHEMA coco TO PUBLIC;
GRANT SELECT ON coco.apps, coco.runs, coco.target_states, coco.stale_components TO PUBLIC;

-- The background worker (worker.c).  A submitted run waits in coco.run as
-- 'queued' until the database's worker takes it: 'running' while it is
-- being reconciled, then 'succeeded' or 'failed'.  A failed attempt goes
-- back to 'queued' with retry_at set (exponential backoff) until it has
-- used coco_target.max_attempts; a run found 'running' when a worker starts
-- was interrupted by a crash and is queued again.  started_at is NULL
-- until the first attempt starts.
ALTER TABLE coco.run ALTER COLUMN started_at DROP NOT NULL;
ALTER TABLE coco.run
    ADD COLUMN submitted_at timestamptz,
    ADD COLUMN attempts     integer NOT NULL DEFAULT 0,
    ADD COLUMN retry_at     timestamptz,
    ADD CONSTRAINT run_status_check
        CHECK (status IN ('queued', 'running', 'succeeded', 'failed'));
-- The worker's queue scan: only unfinished runs, in order.
CREATE INDEX run_unfinished ON coco.run (app_id, run_id)
    WHERE status IN ('queued', 'running');

CREATE FUNCTION coco.submit(app text, "full" boolean DEFAULT false) RETURNS bigint
    AS 'MODULE_PATHNAME', 'coco_submit' LANGUAGE C;
CREATE FUNCTION coco.wait(run_id bigint, timeout interval DEFAULT '30s') RETURNS jsonb
    AS 'MODULE_PATHNAME', 'coco_wait' LANGUAGE C;

CREATE OR REPLACE VIEW coco.runs WITH (security_invoker = true) AS
SELECT r.run_id, a.name AS app, r."full", r.status, r.error, r.started_at, r.finished_at,
       r.finished_at - r.started_at AS duration,
       (r.stats->>'inserted')::bigint AS inserted,
       (r.stats->>'updated')::bigint AS updated,
       (r.stats->>'deleted')::bigint AS deleted,
       (r.stats->>'unchanged')::bigint AS unchanged,
       r.stats->'providers' AS providers,
       r.pid,
       r.submitted_at, r.attempts, r.retry_at
  FROM coco.run r JOIN coco.app a USING (app_id);

-- pg_dump keeps the bookkeeping with the database: apps, their pending
-- declarations, what the reconciler made (tracking) and the run history.
-- Without it a restored database would have its targets but not know them,
-- and the first run would refuse to adopt them.
DO $$
DECLARE t text;
BEGIN
    -- one call per statement: each updates the extension's catalog row
    FOREACH t IN ARRAY ARRAY['app', 'component', 'staged_state', 'staged_row', 'staged_query',
                             'cleared_component', 'target_state', 'tracked_row', 'row_set',
                             'run', 'provider', 'pass_seq', 'app_app_id_seq',
                             'component_comp_id_seq', 'staged_query_query_id_seq',
                             'target_state_ts_id_seq', 'run_run_id_seq',
                             'cleared_component_marker_id_seq']
    LOOP
        PERFORM pg_catalog.pg_extension_config_dump(('coco.' || t)::regclass, '');
    END LOOP;
END $$;

-- A dry run: what the next reconcile would do, applying nothing.
CREATE FUNCTION coco.plan(app text, "full" boolean DEFAULT false)
    RETURNS TABLE(provider text, key jsonb, action text, detail jsonb)
    AS 'MODULE_PATHNAME', 'coco_plan' LANGUAGE C;

-- Auto-submit, failing apps and run retention (docs/worker.md).
-- auto_submit: the commit of every transaction that declared into the app
-- queues a run for the worker (coco.set_app_option; submit.c).
-- failing_since: set when a run of the app fails for good (after its last
-- attempt), cleared by the app's next successful run.
ALTER TABLE coco.app
    ADD COLUMN auto_submit   boolean NOT NULL DEFAULT false,
    ADD COLUMN failing_since timestamptz;

CREATE FUNCTION coco.set_app_option(app text, auto_submit boolean) RETURNS void
    AS 'MODULE_PATHNAME', 'coco_set_app_option' LANGUAGE C;

-- failing_since follows the runs' final statuses, whoever records them: the
-- worker (a last attempt failed, or a run interrupted on every attempt),
-- coco.reconcile()/coco.update() (a success).  Restoring a dump (COPY, so
-- INSERT) never sets it, and clears it only for a success recorded after
-- the failure, which a consistent dump cannot hold.
CREATE FUNCTION coco.track_failing() RETURNS trigger LANGUAGE plpgsql
    SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF NEW.status OPERATOR(pg_catalog.=) 'failed' THEN
        UPDATE coco.app SET failing_since = NEW.finished_at
         WHERE app_id OPERATOR(pg_catalog.=) NEW.app_id AND failing_since IS NULL;
    ELSE
        UPDATE coco.app SET failing_since = NULL
         WHERE app_id OPERATOR(pg_catalog.=) NEW.app_id
           AND failing_since OPERATOR(pg_catalog.<=) NEW.finished_at;
    END IF;
    RETURN NULL;
END $$;
REVOKE ALL ON FUNCTION coco.track_failing() FROM PUBLIC;
CREATE TRIGGER run_failed AFTER UPDATE OF status ON coco.run FOR EACH ROW
    WHEN (NEW.status = 'failed' AND OLD.status IS DISTINCT FROM 'failed')
    EXECUTE FUNCTION coco.track_failing();
CREATE TRIGGER run_succeeded AFTER INSERT OR UPDATE OF status ON coco.run FOR EACH ROW
    WHEN (NEW.status = 'succeeded')
    EXECUTE FUNCTION coco.track_failing();

-- The worker deletes finished runs past coco_target.run_retention.
CREATE INDEX run_finished ON coco.run (finished_at)
    WHERE status = ANY ('{succeeded,failed}'::text[]);

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
       (SELECT count(*) FROM coco.stale_components s WHERE s.app = a.name) AS stale_components
  FROM coco.app a;

-- Runs in progress: one row per backend reconciling now, with its phase
-- ("deciding", "applying tables", "writing rows" with the table and the
-- rows written so far, "applying attachments").  Filtered like the other
-- views: only the apps the reader may see.
CREATE FUNCTION coco.progress_slots(OUT pid integer, OUT app_id integer, OUT phase text,
                                    OUT target text, OUT done bigint, OUT total bigint,
                                    OUT started_at timestamptz, OUT updated_at timestamptz)
    RETURNS SETOF record AS 'MODULE_PATHNAME', 'coco_progress_slots' LANGUAGE C;
CREATE VIEW coco.progress WITH (security_invoker = true) AS
SELECT a.name AS app, p.pid, p.phase, p.target, p.done, p.total, p.started_at, p.updated_at
  FROM coco.progress_slots() p JOIN coco.app a ON a.app_id = p.app_id;
GRANT SELECT ON coco.progress TO PUBLIC;
