-- coco_target 0.3 -> 0.4: the extension explains itself.
\echo Use "ALTER EXTENSION coco_target UPDATE TO '0.4'" to load this file. \quit

-- The fingerprint of the container's record (a table's spec) a component's
-- rows were written under: coco.verify compares the fingerprints of rows
-- written under the current spec, and only checks that the others exist.
ALTER TABLE coco.row_set ADD COLUMN record_fp bytea;

-- The run that last replaced each component (declared into it, cleared it,
-- or a full run), written by the run; NULL until one has.
ALTER TABLE coco.component ADD COLUMN last_run bigint;

-- The rows a declare_rows query returned when it was declared: what the
-- initial load of its table shows as its total in coco.progress (an
-- estimate: the run evaluates the query again).  NULL for queries staged
-- before 0.4.
ALTER TABLE coco.staged_query ADD COLUMN row_count bigint;

-- coco.verify gains remove_untracked; the calls of 0.3 keep working.
DROP FUNCTION coco.verify(text, boolean);
CREATE FUNCTION coco.verify(app text, repair boolean DEFAULT true,
                            remove_untracked boolean DEFAULT false)
    RETURNS jsonb AS 'MODULE_PATHNAME', 'coco_verify' LANGUAGE C;

-- coco.plan lists the failures a run would hit (action 'error'), the rows
-- it would change (rows => true, up to row_limit), and previews the next
-- coco.update (update => true).  The calls coco.plan(app) and
-- coco.plan(app, full) keep working: the new arguments have defaults.
DROP FUNCTION coco.plan(text, boolean);
CREATE FUNCTION coco.plan(app text, "full" boolean DEFAULT false, "rows" boolean DEFAULT false,
                          "update" boolean DEFAULT false, row_limit integer DEFAULT 100)
    RETURNS TABLE(provider text, key jsonb, action text, detail jsonb)
    AS 'MODULE_PATHNAME', 'coco_plan' LANGUAGE C;

-- coco.progress shows a run that waits for a lock: the relation (or the
-- kind of lock) and the processes it waits for.
CREATE OR REPLACE VIEW coco.progress WITH (security_invoker = true) AS
SELECT a.name AS app, p.pid,
       CASE WHEN w.waiting_for IS NULL THEN p.phase ELSE 'waiting for lock' END AS phase,
       p.target, p.done, p.total, p.started_at, p.updated_at,
       w.waiting_for, w.blocked_by
  FROM coco.progress_slots() p JOIN coco.app a ON a.app_id = p.app_id
  LEFT JOIN LATERAL (
    SELECT coalesce(l.relation::pg_catalog.regclass::text, l.locktype) AS waiting_for,
           pg_catalog.pg_blocking_pids(p.pid) AS blocked_by
      FROM pg_catalog.pg_locks l
     WHERE l.pid OPERATOR(pg_catalog.=) p.pid AND NOT l.granted
     LIMIT 1) w ON true;

-- What is staged and not yet reconciled: per app, component and target
-- (a table's name for its rows and queries, a state's readable name).  A
-- staged clear is a row of its own, with no target.
CREATE VIEW coco.staged WITH (security_invoker = true) AS
SELECT a.name AS app, c.path AS component, s.target,
       count(*) FILTER (WHERE s.kind = 'state') AS states,
       count(*) FILTER (WHERE s.kind = 'row') AS rows,
       count(*) FILTER (WHERE s.kind = 'query') AS queries,
       bool_or(s.kind = 'clear') AS cleared
  FROM (SELECT app_id, comp_id, name AS target, 'state'::text AS kind FROM coco.staged_state
        UNION ALL
        SELECT app_id, comp_id, tbl, 'row' FROM coco.staged_row
        UNION ALL
        SELECT app_id, comp_id, tbl, 'query' FROM coco.staged_query
        UNION ALL
        SELECT app_id, comp_id, NULL, 'clear' FROM coco.cleared_component) s
  JOIN coco.app a ON a.app_id = s.app_id
  JOIN coco.component c ON c.comp_id = s.comp_id
 GROUP BY a.name, c.path, s.target;

-- Every component and its state: stale (rows of it written under an older
-- generation of their table), declared (it tracks something), pending
-- (nothing tracked yet, declarations staged) or cleared (it tracks
-- nothing).  Counts read tracking, so they cost a scan of it.
CREATE VIEW coco.components WITH (security_invoker = true) AS
SELECT a.name AS app, c.path AS component,
       CASE WHEN st.comp_id IS NOT NULL THEN 'stale'
            WHEN COALESCE(ts.n, 0) + COALESCE(tr.n, 0) > 0 THEN 'declared'
            WHEN sg.comp_id IS NOT NULL THEN 'pending'
            ELSE 'cleared' END AS state,
       sg.comp_id IS NOT NULL AS staged,
       COALESCE(ts.n, 0) AS target_states,
       COALESCE(tr.n, 0) AS tracked_rows,
       c.last_run
  FROM coco.component c
  JOIN coco.app a ON a.app_id = c.app_id
  LEFT JOIN (SELECT comp_id, count(*) AS n FROM coco.target_state GROUP BY comp_id) ts
         ON ts.comp_id = c.comp_id
  LEFT JOIN (SELECT comp_id, count(*) AS n FROM coco.tracked_row GROUP BY comp_id) tr
         ON tr.comp_id = c.comp_id
  LEFT JOIN (SELECT DISTINCT s.comp_id FROM coco.row_set s
               JOIN coco.target_state t ON t.ts_id = s.target_id
              WHERE s.generation <> t.generation
                 OR s.schema_version <> t.schema_version) st
         ON st.comp_id = c.comp_id
  LEFT JOIN (SELECT comp_id FROM coco.staged_state
             UNION SELECT comp_id FROM coco.staged_row
             UNION SELECT comp_id FROM coco.staged_query
             UNION SELECT comp_id FROM coco.cleared_component) sg
         ON sg.comp_id = c.comp_id;

GRANT SELECT ON coco.staged, coco.components TO PUBLIC;

-- What \df+, \dv+ and \dt+ say about each object.
COMMENT ON FUNCTION coco.row_key(VARIADIC "any") IS
    'The stable key of the given values (a row''s primary-key values), in its canonical binary encoding.';
COMMENT ON FUNCTION coco.row_fingerprint(VARIADIC "any") IS
    'The 128-bit fingerprint of a row''s values, as tracking records it.';
COMMENT ON FUNCTION coco.tracked_fingerprint(integer, bytea, VARIADIC "any") IS
    'Internal to a run: a row''s fingerprint, tallying the row''s count and digest for its component in this backend.';
COMMENT ON FUNCTION coco.row_digest_step(internal, bytea, bytea) IS
    'Internal: the transition function of the coco.row_digest aggregate.';
COMMENT ON FUNCTION coco.digest_sum_step(internal, bytea) IS
    'Internal: the transition function of the coco.digest_sum aggregate.';
COMMENT ON FUNCTION coco.digest_final(internal) IS
    'Internal: the final function of the coco.row_digest and coco.digest_sum aggregates.';
COMMENT ON AGGREGATE coco.row_digest(bytea, bytea) IS
    'Order-independent digest of a set of rows given as (key, fingerprint): the sum modulo 2^128 of their hashes.';
COMMENT ON AGGREGATE coco.digest_sum(bytea) IS
    'The digest of the union of disjoint row sets: the sum modulo 2^128 of their digests.';
COMMENT ON FUNCTION coco.key_to_jsonb(bytea) IS
    'The jsonb spelling of a stable key given in its binary encoding.';
COMMENT ON FUNCTION coco.key_from_jsonb(jsonb) IS
    'The binary encoding of a stable key given in its jsonb spelling.';
COMMENT ON FUNCTION coco.fingerprint(bytea) IS
    'The 128-bit XXH3 fingerprint of bytes.';
COMMENT ON FUNCTION coco.diff(bytea, bytea[], boolean) IS
    'The decision rule of every handler (none, insert, upsert or delete) for a desired record against the previous possible ones, touching nothing.';
COMMENT ON FUNCTION coco.composite_diff(jsonb, jsonb[], boolean) IS
    'The decision rule for records with a main part and named sub-records, as the table handler uses it, touching nothing.';
COMMENT ON FUNCTION coco.table_decision(jsonb, jsonb[], boolean) IS
    'What the postgres.table handler would decide for a table spec against previous tracking records, touching nothing.';
COMMENT ON FUNCTION coco.create_app(text, regprocedure) IS
    'Create an app owned by the calling role, optionally with a declaration function that declares its whole target state.';
COMMENT ON FUNCTION coco.drop_app(text, boolean) IS
    'Drop an app and its bookkeeping, removing what it made unless keep_targets is true.';
COMMENT ON FUNCTION coco.verify(text, boolean, boolean) IS
    'Read the app''s tables and report rows deleted, edited or inserted by hand; repair marks drifted rows for re-writing, remove_untracked deletes the hand-inserted rows of system-managed tables.';
COMMENT ON FUNCTION coco.declare_table(text, text, jsonb, text[], text, text[]) IS
    'Stage a table the app should have (columns, primary key, managed by the system or the user) in a component.';
COMMENT ON FUNCTION coco.declare_row(text, text, jsonb, text[]) IS
    'Stage one row of a declared table in a component.';
COMMENT ON FUNCTION coco.declare_rows(text, text, text, text[]) IS
    'Stage the rows a query returns as rows of a declared table in a component; returns how many it returned.';
COMMENT ON FUNCTION coco.declare_index(text, text, text, text[], text, jsonb, text[]) IS
    'Stage an index on a declared table in a component.';
COMMENT ON FUNCTION coco.declare_sql_command(text, text, text, text, text, text[]) IS
    'Stage a SQL command attached to a declared table in a component: its setup runs when it is made or changed, its teardown when it is removed.';
COMMENT ON FUNCTION coco.register_provider(text, regprocedure, regprocedure) IS
    'Register a provider written in SQL: a reconcile function and an apply function, jsonb in and out.';
COMMENT ON FUNCTION coco.declare_target_state(text, text, jsonb, jsonb, text[]) IS
    'Stage a target state (key and spec) of a provider registered with coco.register_provider in a component.';
COMMENT ON FUNCTION coco.declare_dir(text, text, text, text[]) IS
    'Stage a directory under a localfs context''s root in a component.';
COMMENT ON FUNCTION coco.declare_file(text, text, text, text, bytea, text[]) IS
    'Stage a file with its content in a declared directory, in a component.';
COMMENT ON FUNCTION coco.clear_component(text, text[]) IS
    'Stage the removal of everything a component declared; the next reconcile does it.';
COMMENT ON FUNCTION coco.reconcile(text, boolean) IS
    'Reconcile an app now, in this transaction: make its targets match what is declared with the fewest writes, and return the run''s counts.';
COMMENT ON FUNCTION coco.update(text) IS
    'Run the app''s declaration function and reconcile what it declared as a full run, in this transaction.';
COMMENT ON FUNCTION coco.submit(text, boolean) IS
    'Queue a run of the app for the background worker, woken when this transaction commits; returns the run id.';
COMMENT ON FUNCTION coco.wait(bigint, interval) IS
    'Wait up to timeout for a submitted run to finish and return its result, or raise its error.';
COMMENT ON FUNCTION coco.plan(text, boolean, boolean, boolean, integer) IS
    'A dry run: what the next reconcile (or, with update, coco.update) of the app would do, one row per action, and the failures it would hit as rows with action error; with rows, the rows it would change. Applies nothing.';
COMMENT ON FUNCTION coco.set_app_option(text, boolean) IS
    'Set whether every transaction that declares into the app submits it to the background worker at commit (auto_submit).';
COMMENT ON FUNCTION coco.provide_context(text, text, jsonb, regrole[]) IS
    'Define a context (a stable name for a place outside the database where targets live), or replace its settings and users.';
COMMENT ON FUNCTION coco.drop_context(text) IS
    'Drop a context; refused while an app tracks a target state under its key.';
COMMENT ON FUNCTION coco.track_failing() IS
    'Internal trigger function: keeps coco.app.failing_since in step with the final statuses of the app''s runs.';
COMMENT ON FUNCTION coco.progress_slots() IS
    'Internal: the reconciles running now, read from shared memory, unfiltered; read coco.progress instead.';

COMMENT ON VIEW coco.apps IS
    'One row per app: owner, declaration function, last run, staged declarations, auto_submit, failing_since and stale row sets.';
COMMENT ON VIEW coco.runs IS
    'One row per recorded or submitted run: status, timing and what it inserted, updated, deleted and left unchanged.';
COMMENT ON VIEW coco.progress IS
    'One row per reconcile running now: its phase, the table whose rows it writes, and how far it is.';
COMMENT ON VIEW coco.target_states IS
    'One row per tracked target state other than rows (tables, attachments, directories, files): its records and generation.';
COMMENT ON VIEW coco.stale_components IS
    'One row per (table, component) whose rows were written under an older generation than the table''s.';
COMMENT ON VIEW coco.contexts IS
    'One row per context: the built-in local one and those defined with coco.provide_context.';
COMMENT ON VIEW coco.staged IS
    'What is staged and not yet reconciled, per app, component and target: states, rows, queries, and whether a clear is staged.';
COMMENT ON VIEW coco.components IS
    'One row per component: its state (declared, stale, pending or cleared), whether something is staged, what it tracks and the run that last replaced it.';

COMMENT ON TABLE coco.app IS
    'Bookkeeping: the apps, each owned by a role (read coco.apps).';
COMMENT ON TABLE coco.component IS
    'Bookkeeping: the components of each app, interned by path, with the run that last replaced each (read coco.components).';
COMMENT ON TABLE coco.staged_state IS
    'Staging: target states declared and not yet reconciled (read coco.staged).';
COMMENT ON TABLE coco.staged_row IS
    'Staging: rows declared with coco.declare_row and not yet reconciled (read coco.staged).';
COMMENT ON TABLE coco.staged_query IS
    'Staging: queries declared with coco.declare_rows and not yet reconciled (read coco.staged).';
COMMENT ON TABLE coco.cleared_component IS
    'Staging: one marker per coco.clear_component call not yet reconciled (read coco.staged).';
COMMENT ON TABLE coco.target_state IS
    'Tracking: the target states other than rows that the reconciler made exist, with every record that may be true (read coco.target_states).';
COMMENT ON TABLE coco.tracked_row IS
    'Tracking: the rows the reconciler wrote, by table and key, with their fingerprint.';
COMMENT ON TABLE coco.row_set IS
    'Tracking: each component''s rows of a table, with the generation they were written under, their count and digest.';
COMMENT ON TABLE coco.provider IS
    'The providers written in SQL, registered with coco.register_provider.';
COMMENT ON TABLE coco.run IS
    'The run history: every reconcile recorded and every run submitted to the worker (read coco.runs).';
COMMENT ON TABLE coco.context IS
    'The contexts defined with coco.provide_context (read coco.contexts).';
