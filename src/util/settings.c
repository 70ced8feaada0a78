/*
 * settings.c — the coco_target.* settings, every layer's (the worker's
 * included), in one place; and the fault points of the crash tests.
 */
#include "postgres.h"

#include <signal.h>

#include "miscadmin.h"
#include "utils/guc.h"

#include "coco_internal.h"

int			coco_work_mem = 65536;
char	   *coco_fault_point = NULL;
int			coco_batch_size = 50000;
bool		coco_declare_rows_count = false;
int			coco_lock_timeout = 30000;
int			coco_commit_every = 1000000;
/* the worker's */
int			coco_naptime = 1000;
int			coco_max_workers = 4;
int			coco_workers_per_database = 2;
int			coco_run_timeout = 3600 * 1000;
int			coco_submit_delay = 0;
int			coco_refresh_delay = 200;
int			coco_retry_base = 1000;
int			coco_max_attempts = 5;
int			coco_run_retention = 7 * 24 * 60;	/* minutes; 0 = keep forever */

void
coco_settings_define(void)
{
	DefineCustomIntVariable("coco_target.work_mem",
							"Memory for the diff of a table's rows against tracking.",
							"Seven eighths bound the tracked or declared row entries held in memory "
							"(about 56 and 48 bytes each), the last eighth the changes found; "
							"past it, they go to temporary files.",
							&coco_work_mem, 65536, 64, MAX_KILOBYTES,
							PGC_USERSET, GUC_UNIT_KB, NULL, NULL, NULL);
	DefineCustomIntVariable("coco_target.batch_size",
							"Changed rows applied to a target per set-wise statement.",
							NULL, &coco_batch_size, 50000, 1, 10000000,
							PGC_USERSET, 0, NULL, NULL, NULL);
	DefineCustomBoolVariable("coco_target.declare_rows_count",
							 "Whether declare_rows runs its query to count the rows and check their keys.",
							 "Off: declare_rows only prepares the query, returns NULL, and the run "
							 "reports bad keys; on: it also runs the query once at declare time, "
							 "which every sync then pays for.",
							 &coco_declare_rows_count, false,
							 PGC_USERSET, 0, NULL, NULL, NULL);
	DefineCustomIntVariable("coco_target.lock_timeout",
							"Longest wait for a lock by a run's work on its targets.",
							"A run waiting longer fails with lock_not_available (55P03) and the "
							"worker retries it later; 0 waits as the session's lock_timeout says.",
							&coco_lock_timeout, 30000, 0, INT_MAX,
							PGC_USERSET, GUC_UNIT_MS, NULL, NULL, NULL);
	DefineCustomIntVariable("coco_target.commit_every",
							"Rows a worker run changes per transaction.",
							"A run of the background worker commits after about this many "
							"changed rows and goes on in a new transaction; a crash keeps the "
							"committed batches. 0: one transaction per run.",
							&coco_commit_every, 1000000, 0, INT_MAX,
							PGC_USERSET, 0, NULL, NULL, NULL);
	DefineCustomIntVariable("coco_target.naptime",
							"How often the background worker looks for queued runs.",
							"Submits wake the worker at once; this bounds the delay otherwise.",
							&coco_naptime, 1000, 10, 3600 * 1000,
							PGC_SIGHUP, GUC_UNIT_MS, NULL, NULL, NULL);
	DefineCustomIntVariable("coco_target.max_workers",
							"Background worker processes executing runs, across all databases.",
							"Each takes one of max_worker_processes while it runs; they exit after "
							"a few idle seconds.",
							&coco_max_workers, 4, 1, 64,
							PGC_SIGHUP, 0, NULL, NULL, NULL);
	DefineCustomIntVariable("coco_target.workers_per_database",
							"Background worker processes executing runs in one database at the same time.",
							"Never two runs of one app at once, whatever this says.",
							&coco_workers_per_database, 2, 1, 64,
							PGC_SIGHUP, 0, NULL, NULL, NULL);
	DefineCustomIntVariable("coco_target.run_timeout",
							"Longest a worker run may take; 0: no limit.",
							"A run past it is cancelled, recorded as a failed attempt (57014) and "
							"retried as failures are. An app's run_timeout option can lower it.",
							&coco_run_timeout, 3600 * 1000, 0, INT_MAX,
							PGC_SIGHUP, GUC_UNIT_MS, NULL, NULL, NULL);
	DefineCustomIntVariable("coco_target.submit_delay",
							"How long the worker waits after a run was submitted before it starts it.",
							"Submits of the same app during the wait join the run instead of queuing "
							"another one.",
							&coco_submit_delay, 0, 0, 3600 * 1000,
							PGC_SIGHUP, GUC_UNIT_MS, NULL, NULL, NULL);
	DefineCustomIntVariable("coco_target.refresh_delay",
							"How long the worker waits after a source write queued a refresh run before it starts it.",
							"Source commits during the wait join the run; submit_delay applies too, the longer wins.",
							&coco_refresh_delay, 200, 0, 3600 * 1000,
							PGC_SIGHUP, GUC_UNIT_MS, NULL, NULL, NULL);
	DefineCustomIntVariable("coco_target.retry_base",
							"Delay before the first retry of a failed run; doubled for each further attempt, up to 60 s.",
							NULL, &coco_retry_base, 1000, 0, COCO_RETRY_MAX_MS,
							PGC_SIGHUP, GUC_UNIT_MS, NULL, NULL, NULL);
	DefineCustomIntVariable("coco_target.max_attempts",
							"Attempts at a submitted run before it is left failed.",
							NULL, &coco_max_attempts, 5, 1, 1000,
							PGC_SIGHUP, 0, NULL, NULL, NULL);
	DefineCustomIntVariable("coco_target.run_retention",
							"How long finished runs are kept in coco.run; 0 keeps them forever.",
							"The worker deletes succeeded and failed runs older than this, at most once a minute per database.",
							&coco_run_retention, 7 * 24 * 60, 0, INT_MAX,
							PGC_SIGHUP, GUC_UNIT_MIN, NULL, NULL, NULL);
	DefineCustomStringVariable("coco_target.fault_point",
							   "Testing only: stop the backend hard at this point of a run.",
							   "A named point (after_staging_read, after_decisions, after_table_ddl, "
							   "after_row_batch, before_attachments, before_consume, after_outside_write, "
							   "after_batch_commit); the backend "
							   "kills itself with SIGKILL there, as a crash would.",
							   &coco_fault_point, "", PGC_SUSET, GUC_NOT_IN_SAMPLE, NULL, NULL, NULL);
}

/*
 * Crash tests: at the named point, stop this backend as a crash would — no
 * error handling, no abort processing — so tests can show that a run
 * interrupted anywhere leaves a state the next run converges from.
 */
void
coco_fault(const char *point)
{
	if (coco_fault_point == NULL || strcmp(coco_fault_point, point) != 0)
		return;
	ereport(LOG,
			(errmsg("coco_target: fault point \"%s\" reached, killing the backend", point)));
	(void) kill(MyProcPid, SIGKILL);
	pg_usleep(10 * 1000 * 1000L);	/* not reached */
}
