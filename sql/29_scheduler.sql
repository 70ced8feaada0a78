-- 29_scheduler: the SQL side of the scheduler — app options, coco.cancel
-- on a queued run and its refusals, and what coco.runs, coco.apps and
-- coco.workers show.  Timing (time limits, turns, coalescing, crashes) is
-- test/scheduler.sh's.
\set VERBOSITY default
DROP ROLE IF EXISTS regress_sched_owner;
DROP ROLE IF EXISTS regress_sched_stranger;
CREATE ROLE regress_sched_owner;
CREATE ROLE regress_sched_stranger;
GRANT CREATE ON SCHEMA public TO regress_sched_owner;

SET ROLE regress_sched_owner;
SELECT coco.create_app('sched');
SELECT coco.declare_table('sched', 'public.sched_t', '[{"name":"id","type":"integer"}]', '{id}');

-- Options: NULL leaves one as it is; run_timeout 0 removes the app's own limit.
SELECT coco.set_app_option('sched', run_timeout => '90 seconds');
SELECT auto_submit, run_timeout, flagged FROM coco.apps WHERE app = 'sched';
SELECT coco.set_app_option('sched', true);          -- the call of 0.4
SELECT auto_submit, run_timeout FROM coco.apps WHERE app = 'sched';
SELECT coco.set_app_option('sched', auto_submit => false, run_timeout => '0');
SELECT auto_submit, run_timeout FROM coco.apps WHERE app = 'sched';
SELECT coco.set_app_option('sched', run_timeout => '-1 second');
SELECT coco.set_app_option('sched', run_timeout => '1 day -25 hours');
-- negative as the worker reads it (a year is 365.25 days there), though
-- positive with 30-day months: refused too
SELECT coco.set_app_option('sched', run_timeout => '-6 years 2161 days');
SELECT coco.set_app_option('sched', run_timeout => '1000000 years');  -- capped by the setting
SELECT run_timeout FROM coco.apps WHERE app = 'sched';
SELECT coco.set_app_option('sched', run_timeout => '0');
SELECT coco.set_app_option(NULL, true);

-- A run cancelled in the transaction that submitted it: the worker never
-- saw it, and never will.
BEGIN;
SELECT coco.submit('sched') AS run_id \gset
SELECT coco.cancel(:run_id) AS canceled;
SELECT status, sqlstate, error LIKE 'canceled by role regress_sched_owner%' AS by_owner
  FROM coco.runs WHERE run_id = :run_id;
COMMIT;
SELECT coco.cancel(:run_id) AS canceled_again;
\set VERBOSITY sqlstate
SELECT coco.wait(:run_id, '1s');
\set VERBOSITY default
SELECT status, attempts, started_at IS NULL AS never_started FROM coco.runs WHERE run_id = :run_id;

-- Refusals: another role's run, a run that does not exist, NULL.
RESET ROLE;
SET ROLE regress_sched_stranger;
\set VERBOSITY sqlstate
SELECT coco.cancel(:run_id);
\set VERBOSITY default
SELECT coco.cancel(-1);
SELECT coco.cancel(NULL);
-- a stranger sees no run of the app, and no app in coco.workers
SELECT count(*) AS runs_seen FROM coco.runs WHERE app = 'sched';
SELECT count(*) AS apps_seen FROM coco.workers WHERE app IS NOT NULL;
RESET ROLE;

-- The new columns, and their comments.
SELECT column_name FROM information_schema.columns
 WHERE table_schema = 'coco' AND table_name = 'runs'
   AND column_name IN ('sqlstate', 'coalesced_into', 'waited', 'crashes') ORDER BY 1;
SELECT column_name FROM information_schema.columns
 WHERE table_schema = 'coco' AND table_name = 'workers' ORDER BY ordinal_position;
SELECT obj_description('coco.workers'::regclass) IS NOT NULL AS workers_commented,
       obj_description('coco.cancel(bigint)'::regprocedure) IS NOT NULL AS cancel_commented;

SELECT coco.drop_app('sched');
DROP ROLE regress_sched_stranger;
REVOKE CREATE ON SCHEMA public FROM regress_sched_owner;
DROP ROLE regress_sched_owner;
