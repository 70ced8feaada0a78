/*
 * failed_runs.c — records of failed synchronous runs on their way to
 * coco.run: the failing backend (the engine's failed-run hook, sync_run.c)
 * puts its report into a fixed ring in the scheduler's shared memory and
 * wakes the worker of its database, which takes the reports out and inserts
 * them (bgworker/record_failed.c) in a transaction of its own.
 *
 * The ring is small and fixed; when every slot is taken a report is
 * dropped — the reporting owner's own oldest if it has one waiting, so that
 * one role's flood of failures cannot push out another's — and the
 * reporting backend says so with a WARNING.  Reports do not survive a crash-restart of the
 * server (shared memory is made anew).
 */
#include "postgres.h"

#include "miscadmin.h"

#include "coco_internal.h"
#include "sched_shmem.h"

/*
 * The slot a new report takes when every slot is full: the oldest report of
 * the reporting run's own app owner (in this database), if it has one
 * waiting, so that a role failing runs by the hundred drops its own
 * records; else the oldest of the owner with the most reports waiting.
 * Under the mutex.
 */
static CocoFailedSlot *
slot_to_give_way(CocoShared *shared, const CocoFailedRun *report)
{
	CocoFailedSlot *victim = NULL;
	int			victim_count = 0;

	for (int i = 0; i < COCO_MAX_FAILED_RUNS; i++)
	{
		CocoFailedSlot *s = &shared->failed[i];

		if (s->dbid == MyDatabaseId && s->report.owner == report->owner &&
			(victim == NULL || s->seq < victim->seq))
			victim = s;
	}
	if (victim != NULL)
		return victim;

	for (int i = 0; i < COCO_MAX_FAILED_RUNS; i++)
	{
		CocoFailedSlot *s = &shared->failed[i];
		CocoFailedSlot *oldest = s;
		int			count = 0;

		for (int j = 0; j < COCO_MAX_FAILED_RUNS; j++)
		{
			CocoFailedSlot *t = &shared->failed[j];

			if (t->dbid != s->dbid || t->report.owner != s->report.owner)
				continue;
			count++;
			if (t->seq < oldest->seq)
				oldest = t;
		}
		if (count > victim_count || (count == victim_count && oldest->seq < victim->seq))
		{
			victim = oldest;
			victim_count = count;
		}
	}
	return victim;
}

/*
 * The engine's failed-run hook.  Runs while an error is being handled, or
 * in a backend that is exiting: no error may be raised here, only the
 * WARNING of a report dropped.  Its details go to the session only when
 * the dropped run is of an app of the same owner as the reporting run's;
 * otherwise only to the server log.
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
		slot = slot_to_give_way(shared, report);
		dropped_db = slot->dbid;
		dropped = slot->report;
	}
	slot->dbid = MyDatabaseId;
	slot->seq = ++shared->next_failed_seq;
	slot->report = *report;
	SpinLockRelease(&shared->mutex);

	if (dropped_db == MyDatabaseId && dropped.owner == report->owner)
		ereport(WARNING,
				(errmsg("coco_target: the record of failed run " INT64_FORMAT " of app \"%s\" was dropped: too many failed runs are waiting to be recorded",
						dropped.run_id, dropped.app_name),
				 errdetail("It failed at %s with SQLSTATE %s: %s",
						   timestamptz_to_str(dropped.finished_at), dropped.sqlstate, dropped.message),
				 errhint("The background worker of the database records failed runs; see the server log if it is not running.")));
	else if (dropped_db != InvalidOid)
	{
		ereport(WARNING,
				(errmsg("coco_target: the record of another role's failed run was dropped: too many failed runs are waiting to be recorded"),
				 errhint("The background worker of the database records failed runs; see the server log if it is not running.")));
		ereport(LOG_SERVER_ONLY,
				(errmsg("coco_target: the record of failed run " INT64_FORMAT " of app \"%s\" (database %u) was dropped: too many failed runs are waiting to be recorded",
						dropped.run_id, dropped.app_name, dropped_db),
				 errdetail("It failed at %s with SQLSTATE %s: %s",
						   timestamptz_to_str(dropped.finished_at), dropped.sqlstate, dropped.message)));
	}
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
