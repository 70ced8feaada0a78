/*
 * settle.c — what becomes of runs whose worker is gone, told by the notes
 * the scheduler keeps about runs (sched_shmem.h).  Done by every worker at each look at the queue,
 * in that look's transaction, so a dead worker does not hold its app back.
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/timestamp.h"

#include "coco_internal.h"
#include "sched_shmem.h"
#include "bgworker.h"

/*
 * Is run_id running in a live worker of this database?  Each worker names
 * its run in its slot before marking it 'running' and clears it after
 * recording the outcome, so a run seen 'running' (in a snapshot taken
 * before this looks) that no slot names was left by a worker that died.
 */
static bool
run_in_live_worker(int64 run_id, int32 pid)
{
	CocoShared *shared = coco_sched_shared();
	bool		live = false;

	SpinLockAcquire(&shared->mutex);
	for (int i = 0; i < COCO_MAX_WORKER_SLOTS; i++)
		if (shared->workers[i].dbid == MyDatabaseId && shared->workers[i].pid == pid &&
			shared->workers[i].run_id == run_id)
			live = true;
	SpinLockRelease(&shared->mutex);
	return live;
}

/*
 * What becomes of a run its worker left 'running' when it died, told by the
 * run's notes (sched_shmem.h):
 *
 * - coco.cancel() asked to stop it (and ended the worker when the run
 *   ignored the cancel): canceled;
 * - its worker died by a signal and took the server down: tried once
 *   more; the second time it fails and its app is flagged (no crash loop);
 * - it ignored its time limit, so its worker ended itself: a failed
 *   attempt with 57014, retried after the backoff like any;
 * - otherwise (the server was shut down, the worker terminated) the
 *   attempt was interrupted: queued again until the attempts are used up.
 *
 * The UPDATE names the dead worker's pid and the attempt, so a run another
 * worker (or the same, again) took up since is left alone.  Returns whether
 * the run is over for good.
 */
static CocoSettledKind
settle_orphan(int64 run_id, int32 pid, int attempts, int crashes, const char *app)
{
	CocoUserContext uc;
	Oid			types[8] = {INT8OID, INT4OID, TEXTOID, TEXTOID, TEXTOID, INT4OID, INT4OID, INT4OID};
	Datum		values[8];
	char		nulls[8] = {' ', ' ', ' ', ' ', 'n', ' ', 'n', ' '};
	CocoRunNote note;
	const char *status;
	const char *error;
	bool		crashed = false;
	uint64		settled;

	if (coco_sched_find_note(run_id, COCO_NOTE_CANCEL, &note))
	{
		status = "canceled";
		error = psprintf("canceled by role %s while running (it did not stop when asked, so its worker was ended)",
						 coco_bg_role_name(note.by));
		values[4] = CStringGetTextDatum("57014");
		nulls[4] = ' ';
	}
	else if ((crashed = coco_sched_find_note(run_id, COCO_NOTE_CRASHED, NULL)))
	{
		status = crashes + 1 >= 2 ? "failed" : "queued";
		error = crashes + 1 >= 2 ?
			"the run crashed its worker twice (the server restarted each time); "
			"its app is flagged until its owner submits it again" :
			"the run crashed its worker (the server restarted): it is tried once more";
	}
	else if (coco_sched_find_note(run_id, COCO_NOTE_OVERDUE, &note))
	{
		status = attempts < coco_max_attempts ? "queued" : "failed";
		error = psprintf("canceled: the run took longer than its time limit of %s and did not stop "
						 "when canceled, so its worker was ended",
						 coco_bg_describe_limit(note.limit_ms, note.app_limit));
		values[4] = CStringGetTextDatum("57014");
		nulls[4] = ' ';
		if (attempts < coco_max_attempts)
		{
			values[6] = Int32GetDatum((int32) coco_bg_backoff_ms(attempts));
			nulls[6] = ' ';
		}
	}
	else
	{
		status = attempts < coco_max_attempts ? "queued" : "failed";
		error = attempts < coco_max_attempts ?
			psprintf("interrupted: the worker stopped during attempt %d", attempts) :
			psprintf("interrupted: the worker stopped during each of %d attempts", attempts);
	}
	values[0] = Int64GetDatum(run_id);
	values[1] = Int32GetDatum(pid);
	values[2] = CStringGetTextDatum(error);
	values[3] = CStringGetTextDatum(status);
	values[5] = Int32GetDatum(crashed ? 1 : 0);
	values[7] = Int32GetDatum(attempts);
	coco_enter_extension_owner(&uc);
	coco_spi_exec("UPDATE coco.run SET status = $4, error = $3, sqlstate = $5, "
				  "crashes = crashes OPERATOR(pg_catalog.+) $6, finished_at = pg_catalog.now(), "
				  "retry_at = pg_catalog.now() OPERATOR(pg_catalog.+) "
				  "  pg_catalog.make_interval(secs => $7 OPERATOR(pg_catalog./) 1000.0) "
				  "WHERE run_id OPERATOR(pg_catalog.=) (SELECT l.run_id FROM coco.run l "
				  "  WHERE l.run_id OPERATOR(pg_catalog.=) $1 FOR UPDATE SKIP LOCKED) "
				  "AND status OPERATOR(pg_catalog.=) 'running' "
				  "AND pid OPERATOR(pg_catalog.=) $2 AND attempts OPERATOR(pg_catalog.=) $8",
				  8, types, values, nulls, SPI_OK_UPDATE);
	settled = SPI_processed;
	if (settled > 0 && crashed && strcmp(status, "failed") == 0)
		coco_spi_exec("UPDATE coco.app SET flagged = 'run ' OPERATOR(pg_catalog.||) $1 "
					  "OPERATOR(pg_catalog.||) ' crashed its worker twice' "
					  "WHERE app_id OPERATOR(pg_catalog.=) "
					  "(SELECT app_id FROM coco.app WHERE app_id OPERATOR(pg_catalog.=) "
					  "   (SELECT app_id FROM coco.run WHERE run_id OPERATOR(pg_catalog.=) $1) "
					  " FOR UPDATE SKIP LOCKED)",
					  1, types, values, NULL, SPI_OK_UPDATE);
	coco_leave(&uc);
	if (settled == 0)
		return COCO_NOT_SETTLED;
	if (strcmp(status, "queued") != 0)
		coco_notify_run_finished(app, run_id, status);
	ereport(LOG,
			(errmsg("coco_target: run " INT64_FORMAT " %s: its worker died", run_id,
					strcmp(status, "queued") == 0 ? "is queued again" : status),
			 errdetail("%s", error)));
	return strcmp(status, "queued") == 0 ? COCO_SETTLED_QUEUED : COCO_SETTLED_FINAL;
}

/*
 * Runs left 'running' by a worker that is not alive any more: settled by
 * settle_orphan.  Looked for in every scan of the queue, so a worker that
 * died does not hold its app back until some worker starts.  Inside a
 * transaction; the runs settled are put in `settled` (at most `max`; more
 * wait for the next look), whose notes the caller drops once that
 * transaction has committed (so an abort loses none).  Returns how many.
 */
int
coco_bg_settle_orphans(CocoSettled *settled, int max)
{
	CocoUserContext uc;
	SPITupleTable *running;
	uint64		n;
	int			count = 0;

	coco_enter_extension_owner(&uc);
	coco_spi_exec("SELECT r.run_id, coalesce(r.pid, 0), r.attempts, r.crashes, a.name "
				  "FROM coco.run r JOIN coco.app a USING (app_id) "
				  "WHERE r.status OPERATOR(pg_catalog.=) 'running'",
				  0, NULL, NULL, NULL, SPI_OK_SELECT);
	coco_leave(&uc);
	running = SPI_tuptable;
	n = SPI_processed;
	for (uint64 i = 0; i < n && count < max; i++)
	{
		HeapTuple	tup = running->vals[i];
		bool		isnull;
		int64		run_id = DatumGetInt64(SPI_getbinval(tup, running->tupdesc, 1, &isnull));
		int32		pid = DatumGetInt32(SPI_getbinval(tup, running->tupdesc, 2, &isnull));
		CocoSettledKind kind;

		if (run_in_live_worker(run_id, pid))
			continue;
		kind = settle_orphan(run_id, pid,
							 DatumGetInt32(SPI_getbinval(tup, running->tupdesc, 3, &isnull)),
							 DatumGetInt32(SPI_getbinval(tup, running->tupdesc, 4, &isnull)),
							 SPI_getvalue(tup, running->tupdesc, 5));
		if (kind == COCO_NOT_SETTLED)
			continue;
		settled[count].run_id = run_id;
		settled[count].kind = kind;
		count++;
	}
	return count;
}

/* After the commit of the settling transaction: what was acted on goes. */
void
coco_bg_forget_settled(const CocoSettled *settled, int n)
{
	for (int i = 0; i < n; i++)
	{
		coco_sched_drop_notes(settled[i].run_id, COCO_NOTE_CRASHED);
		coco_sched_drop_notes(settled[i].run_id, COCO_NOTE_OVERDUE);
		if (settled[i].kind == COCO_SETTLED_FINAL)
			coco_sched_drop_notes(settled[i].run_id, COCO_NOTE_FREE);
	}
}

/*
 * Notes left about runs that are not running (any more): a cancel asked of
 * a run that finished meanwhile, say.  Only notes older than a few seconds
 * go, so a cancel noted for a run just being started is not taken away
 * from it.  Inside a transaction.
 */
#define COCO_NOTE_STALE_MS	10000

void
coco_bg_sweep_notes(void)
{
	CocoRunNote notes[COCO_MAX_NOTES];
	int			n = coco_sched_notes_of_kind(COCO_NOTE_FREE, notes);
	TimestampTz now = GetCurrentTimestamp();

	for (int i = 0; i < n; i++)
	{
		CocoUserContext uc;
		Oid			types[1] = {INT8OID};
		Datum		values[1] = {Int64GetDatum(notes[i].run_id)};

		if (!TimestampDifferenceExceeds(notes[i].noted_at, now, COCO_NOTE_STALE_MS))
			continue;
		coco_enter_extension_owner(&uc);
		coco_spi_exec("SELECT 1 FROM coco.run WHERE run_id OPERATOR(pg_catalog.=) $1 "
					  "AND status OPERATOR(pg_catalog.=) 'running'",
					  1, types, values, NULL, SPI_OK_SELECT);
		coco_leave(&uc);
		if (SPI_processed == 0)
			coco_sched_drop_notes(notes[i].run_id, notes[i].kind);
	}
}
