-- coco_target 0.4 -> 0.5: the worker as a fair scheduler (docs/worker.md).
\echo Use "ALTER EXTENSION coco_target UPDATE TO '0.5'" to load this file. \quit

-- A run ends 'canceled' (coco.cancel) or 'coalesced': it joined the run of
-- its app that started while it waited (coalesced_into), whose outcome is
-- its own.  sqlstate: the code of the run's last error, which coco.wait
-- raises.  crashes: how often the run's worker died by a signal while
-- executing it (a second time fails it).
ALTER TABLE coco.run
    DROP CONSTRAINT run_status_check,
    ADD CONSTRAINT run_status_check
        CHECK (status IN ('queued', 'running', 'succeeded', 'failed', 'canceled', 'coalesced')),
    ADD COLUMN sqlstate       text,
    ADD COLUMN coalesced_into bigint,
    ADD COLUMN crashes        integer NOT NULL DEFAULT 0;
-- Canceled and coalesced runs are finished too: past the retention the
-- worker deletes them with the others.
DROP INDEX coco.run_finished;
CREATE INDEX run_finished ON coco.run (finished_at)
    WHERE status = ANY ('{succeeded,failed,canceled,coalesced}'::text[]);
-- Turns across apps: the worker takes the app whose last run started
-- longest ago.
CREATE INDEX run_started ON coco.run (app_id, started_at);

-- run_timeout: the app's own time limit for worker runs, below the
-- setting coco_target.run_timeout (NULL: the setting alone).  flagged: why
-- the worker does not start the app's runs (one crashed its worker twice),
-- until its owner calls coco.submit again.
ALTER TABLE coco.app
    ADD COLUMN run_timeout interval,
    ADD COLUMN flagged     text;

-- A worker recording a run's outcome never waits for a transaction of an
-- app's owner that changed the app's row (coco.set_app_option, held open):
-- the failing mark is skipped then, not waited for.
CREATE OR REPLACE FUNCTION coco.track_failing() RETURNS trigger LANGUAGE plpgsql
    SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF NEW.status OPERATOR(pg_catalog.=) 'failed' THEN
        UPDATE coco.app SET failing_since = NEW.finished_at
         WHERE app_id OPERATOR(pg_catalog.=) (
               SELECT a.app_id FROM coco.app a
                WHERE a.app_id OPERATOR(pg_catalog.=) NEW.app_id AND a.failing_since IS NULL
                  FOR UPDATE SKIP LOCKED);
    ELSE
        UPDATE coco.app SET failing_since = NULL
         WHERE app_id OPERATOR(pg_catalog.=) (
               SELECT a.app_id FROM coco.app a
                WHERE a.app_id OPERATOR(pg_catalog.=) NEW.app_id
                  AND a.failing_since OPERATOR(pg_catalog.<=) NEW.finished_at
                  FOR UPDATE SKIP LOCKED);
    END IF;
    RETURN NULL;
END $$;

DROP FUNCTION coco.set_app_option(text, boolean);
CREATE FUNCTION coco.set_app_option(app text, auto_submit boolean DEFAULT NULL,
                                    run_timeout interval DEFAULT NULL)
    RETURNS void AS 'MODULE_PATHNAME', 'coco_set_app_option' LANGUAGE C;

CREATE FUNCTION coco.cancel(run_id bigint) RETURNS boolean
    AS 'MODULE_PATHNAME', 'coco_cancel' LANGUAGE C;

CREATE FUNCTION coco.worker_slots(OUT pid integer, OUT state text, OUT run_id bigint,
                                  OUT app_id integer, OUT since timestamptz)
    RETURNS SETOF record AS 'MODULE_PATHNAME', 'coco_worker_slots' LANGUAGE C;
REVOKE ALL ON FUNCTION coco.worker_slots() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION coco.worker_slots() TO PUBLIC;

-- This database's workers; the run and app of another role's app are not
-- shown (RLS on coco.app).
CREATE VIEW coco.workers WITH (security_invoker = true) AS
SELECT w.pid, w.state,
       CASE WHEN a.app_id IS NOT NULL THEN w.run_id END AS run_id,
       a.name AS app, w.since
  FROM coco.worker_slots() w
  LEFT JOIN coco.app a ON a.app_id = w.app_id;
GRANT SELECT ON coco.workers TO PUBLIC;

-- waited: from the submit to the start of the run's latest attempt (so
-- far, while queued; to its end, for a run that never started).
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
       r.crashes
  FROM coco.run r JOIN coco.app a USING (app_id);

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
       a.flagged
  FROM coco.app a;

-- run_id: the worker run a worker's progress row belongs to (NULL for a
-- reconcile in a client's transaction).
CREATE OR REPLACE VIEW coco.progress WITH (security_invoker = true) AS
SELECT a.name AS app, p.pid,
       CASE WHEN w.waiting_for IS NULL THEN p.phase ELSE 'waiting for lock' END AS phase,
       p.target, p.done, p.total, p.started_at, p.updated_at,
       w.waiting_for, w.blocked_by,
       (SELECT r.run_id FROM coco.run r
         WHERE r.app_id OPERATOR(pg_catalog.=) p.app_id AND r.status OPERATOR(pg_catalog.=) 'running'
           AND r.pid OPERATOR(pg_catalog.=) p.pid LIMIT 1) AS run_id
  FROM coco.progress_slots() p JOIN coco.app a ON a.app_id = p.app_id
  LEFT JOIN LATERAL (
    SELECT coalesce(l.relation::pg_catalog.regclass::text, l.locktype) AS waiting_for,
           pg_catalog.pg_blocking_pids(p.pid) AS blocked_by
      FROM pg_catalog.pg_locks l
     WHERE l.pid OPERATOR(pg_catalog.=) p.pid AND NOT l.granted
     LIMIT 1) w ON true;

COMMENT ON FUNCTION coco.set_app_option(text, boolean, interval) IS
    'Set an app''s options (NULL leaves one as it is): auto_submit, whether every transaction that declares into it submits it at commit; run_timeout, a time limit for its worker runs below coco_target.run_timeout (0 removes it).';
COMMENT ON FUNCTION coco.cancel(bigint) IS
    'Cancel a queued or running worker run of an app one may act for; true when it is now canceled, false when it had finished.';
COMMENT ON FUNCTION coco.worker_slots() IS
    'Internal: this database''s background workers, read from shared memory, unfiltered; read coco.workers instead.';
COMMENT ON VIEW coco.workers IS
    'One row per background worker serving this database: idle or running, and which run of which app.';
COMMENT ON FUNCTION coco.submit(text, boolean) IS
    'Queue a run of the app for the background worker, woken when this transaction commits; returns the run id. Clears the app''s flagged mark.';
COMMENT ON FUNCTION coco.wait(bigint, interval) IS
    'Wait up to timeout for a submitted run to finish and return its result, or raise its error with its SQLSTATE; a coalesced run has the outcome of the run it joined.';
COMMENT ON VIEW coco.apps IS
    'One row per app: owner, declaration function, last run, staged declarations, auto_submit, failing_since, stale row sets, run_timeout and why it is flagged.';
COMMENT ON VIEW coco.runs IS
    'One row per recorded or submitted run: status, timing, how long it waited for a worker, its error and SQLSTATE, and what it inserted, updated, deleted and left unchanged.';
COMMENT ON VIEW coco.progress IS
    'One row per reconcile running now: its run, its phase, the table whose rows it writes, and how far it is.';
