/*
 * settings.c — the coco_target.* settings every layer reads, and the fault
 * points of the crash tests.  The worker's own settings are defined with
 * the worker (bgworker/worker.c).
 */
#include "postgres.h"

#include <signal.h>

#include "miscadmin.h"
#include "utils/guc.h"

#include "coco_internal.h"

int			coco_work_mem = 65536;
char	   *coco_fault_point = NULL;
int			coco_batch_size = 50000;
int			coco_lock_timeout = 30000;
int			coco_commit_every = 1000000;

void
coco_settings_define(void)
{
	DefineCustomIntVariable("coco_target.work_mem",
							"Memory for the diff of a table's rows against tracking.",
							"Bounds the tracked rows held in memory (about 56 bytes each); "
							"past it, partitions of them go to temporary files.",
							&coco_work_mem, 65536, 64, MAX_KILOBYTES,
							PGC_USERSET, GUC_UNIT_KB, NULL, NULL, NULL);
	DefineCustomIntVariable("coco_target.batch_size",
							"Changed rows applied to a target per set-wise statement.",
							NULL, &coco_batch_size, 50000, 1, 10000000,
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
