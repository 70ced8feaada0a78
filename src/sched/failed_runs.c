/*
 * failed_runs.c — records of failed synchronous runs on their way to
 * coco.run: the failing backend (the engine's failed-run hook, sync_run.c)
 * puts its report into a fixed ring in the scheduler's shared memory and
 * wakes the worker of its database, which takes the reports out and inserts
 * them (bgworker/record_failed.c) in a transaction of its own.
 *
 * The ring is small and fixed; when every slot is taken the oldest report
 * is dropped and the reporting backend says so with a WARNING, so that no
 * failure goes unseen.  Reports do not survive a crash-restart of the
 * server (shared memory is made anew).
 */
#include "postgres.h"

#include "miscadmin.h"

#include "coco_internal.h"
#include "sched_shmem.h"

/*
 * The engine's failed-run hook.  Runs while an error is being handled, or
 * in a backend that is exiting: no error may be raised here, only the
 * WARNING of a report dropped.
 */
void
coco_sched_report_failed_run(const CocoFailedRun *report)
{
	CocoShared *shared = coco_sched_shared();
	CocoFailedSlot *slot = NULL;
	CocoFailedRun dropped;
	Oid			dropped_db = InvalidOid;

	if (!coco_worker_available())
		return;					/* no worker to record it: docs/worker.md */
	SpinLockAcquire(&shared->mutex);
	for (int i = 0; i < COCO_MAX_FAILED_RUNS && slot == NULL; i++)
		if (shared->failed[i].dbid == InvalidOid)
			slot = &shared->failed[i];
	if (slot == NULL)
	{
		/* all taken: the oldest gives way */
		slot = &shared->failed[0];
		for (int i = 1; i < COCO_MAX_FAILED_RUNS; i++)
			if (shared->failed[i].seq < slot->seq)
				slot = &shared->failed[i];
		dropped_db = slot->dbid;
		dropped = slot->report;
	}
	slot->dbid = MyDatabaseId;
	slot->seq = ++shared->next_failed_seq;
	slot->report = *report;
	SpinLockRelease(&shared->mutex);

	if (dropped_db != InvalidOid)
		ereport(WARNING,
				(errmsg("coco_target: the record of failed run " INT64_FORMAT " of app \"%s\" was dropped: too many failed runs are waiting to be recorded",
						dropped.run_id, dropped.app_name),
				 errdetail("It failed at %s with SQLSTATE %s: %s",
						   timestamptz_to_str(dropped.finished_at), dropped.sqlstate, dropped.message),
				 errhint("The background worker of the database records failed runs; see the server log if it is not running.")));
	coco_worker_wake(MyDatabaseId);
}

/*
 * Take out up to `max` reports of this database, oldest first, freeing
 * their slots; returns how many.  The caller inserts them.
 */
int
coco_sched_take_failed_runs(CocoFailedRun *reports, int max)
{
	CocoShared *shared = coco_sched_shared();
	int			n = 0;

	SpinLockAcquire(&shared->mutex);
	while (n < max)
	{
		CocoFailedSlot *oldest = NULL;

		for (int i = 0; i < COCO_MAX_FAILED_RUNS; i++)
			if (shared->failed[i].dbid == MyDatabaseId &&
				(oldest == NULL || shared->failed[i].seq < oldest->seq))
				oldest = &shared->failed[i];
		if (oldest == NULL)
			break;
		reports[n++] = oldest->report;
		oldest->dbid = InvalidOid;
	}
	SpinLockRelease(&shared->mutex);
	return n;
}

bool
coco_sched_failed_runs_pending(Oid dbid)
{
	CocoShared *shared = coco_sched_shared();

	for (int i = 0; i < COCO_MAX_FAILED_RUNS; i++)
		if (shared->failed[i].dbid == dbid)
			return true;
	return false;
}
