/*
 * workers.c — what the background workers are doing, seen and steered from
 * SQL: coco.cancel() stops a queued or running run of an app one may act
 * for; coco.worker_slots() (behind the coco.workers view) lists this
 * database's workers and their runs.
 *
 * A queued run is canceled in the calling transaction, as any write.  A
 * running run is stopped the way pg_cancel_backend() stops a query: the
 * worker gets SIGINT.  The worker runs as a superuser, so its app's owner
 * could not signal it; this function does, for that run only, after
 * checking that the caller may act for the app.  The request is noted in
 * shared memory first, so the worker tells the cancel from its time limit,
 * and a worker that finds the run's worker dead records it canceled too.
 * A run that ignores the cancel (a function that catches query_canceled)
 * has its worker ended after a grace period.
 */
#include "postgres.h"

#include <signal.h>

#include "catalog/pg_authid.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/timestamp.h"

#include "coco_internal.h"
#include "sched_shmem.h"

/* how long coco.cancel() waits for a worker to stop the run */
#define COCO_CANCEL_WAIT_MS	30000
/* ... before it ends a worker whose run ignored the cancel */
#define COCO_CANCEL_GRACE_MS	5000

typedef struct RunRow
{
	char	   *status;
	Oid			owner;
	char	   *app;
	int64		coalesced_into;
} RunRow;

/* The run as it is now (a new snapshot each time); false if there is none. */
static bool
read_run(int64 run_id, RunRow *row)
{
	CocoUserContext uc;
	Oid			types[1] = {INT8OID};
	Datum		values[1] = {Int64GetDatum(run_id)};
	bool		isnull;

	coco_enter_extension_owner(&uc);
	coco_spi_exec("SELECT r.status, a.owner, r.coalesced_into, a.name FROM coco.run r JOIN coco.app a USING (app_id) "
				  "WHERE r.run_id OPERATOR(pg_catalog.=) $1",
				  1, types, values, NULL, SPI_OK_SELECT);
	coco_leave(&uc);
	if (SPI_processed == 0)
		return false;
	row->status = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1);
	row->owner = DatumGetObjectId(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2, &isnull));
	row->coalesced_into = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 3, &isnull));
	if (isnull)
		row->coalesced_into = 0;
	row->app = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 4);
	return true;
}

typedef struct QueuedCancel
{
	int64		run_id;
	Datum		canceler;		/* text: the current role's name */
	bool		canceled;
} QueuedCancel;

/* The update of cancel_queued: kept if it canceled the run. */
static bool
cancel_if_still_queued(void *arg)
{
	QueuedCancel *qc = arg;
	CocoUserContext uc;
	Oid			types[2] = {INT8OID, TEXTOID};
	Datum		values[2];

	values[0] = Int64GetDatum(qc->run_id);
	values[1] = qc->canceler;
	coco_enter_extension_owner(&uc);
	coco_spi_exec("UPDATE coco.run SET status = 'canceled', sqlstate = '57014', "
				  "error = CASE WHEN attempts OPERATOR(pg_catalog.=) 0 "
				  "  THEN 'canceled by role ' OPERATOR(pg_catalog.||) $2 OPERATOR(pg_catalog.||) ' before it started' "
				  "  ELSE 'canceled by role ' OPERATOR(pg_catalog.||) $2 OPERATOR(pg_catalog.||) "
				  "       ' while it waited for a retry; the last attempt had failed: ' "
				  "       OPERATOR(pg_catalog.||) coalesce(error, '') END, "
				  "finished_at = pg_catalog.now(), retry_at = NULL "
				  "WHERE run_id OPERATOR(pg_catalog.=) $1 AND status OPERATOR(pg_catalog.=) 'queued'",
				  2, types, values, NULL, SPI_OK_UPDATE);
	coco_leave(&uc);
	qc->canceled = SPI_processed > 0;
	return qc->canceled;
}

/*
 * Cancel a queued run in this transaction: it is canceled when this
 * commits, and not if it rolls back (workers skip a run whose row is
 * locked, so they do not wait for this transaction meanwhile).  The update
 * runs in a subtransaction, rolled back when it finds the run no longer
 * queued (a worker started it): a statement that re-checks a row updated
 * since its snapshot leaves it locked, and the worker must not wait for
 * this transaction to record that run's outcome.  A run waiting for a
 * retry keeps its last error after the cancel's.  False if not queued.
 */
static bool
cancel_queued(int64 run_id, const char *app)
{
	QueuedCancel qc = {run_id, 0, false};
	ErrorData  *err;

	qc.canceler = CStringGetTextDatum(GetUserNameFromId(GetUserId(), false));
	err = coco_subxact_try(cancel_if_still_queued, &qc);
	/* the error is the caller's (a read-only transaction, a lock timeout):
	 * our subtransaction, rolled back, does not outlive it */
	if (err != NULL)
		ReThrowError(err);
	if (qc.canceled)
	{
		/* as the worker says it of the runs it ends: at commit */
		coco_notify_run_finished(app, run_id, "canceled");
		coco_broadcast_runs_done_at_commit();
	}
	return qc.canceled;
}

/*
 * The worker executing run_id (0: none), sent `sig` if not 0: SIGINT
 * stops the run as a statement cancel does; SIGTERM ends the worker, for a
 * run that ignored the cancel (a function that catches query_canceled).
 */
static int
worker_of_run(int64 run_id, int sig)
{
	CocoShared *shared = coco_sched_shared();
	int			pid = 0;

	SpinLockAcquire(&shared->mutex);
	for (int i = 0; i < COCO_MAX_WORKER_SLOTS; i++)
		if (shared->workers[i].dbid == MyDatabaseId && shared->workers[i].run_id == run_id)
			pid = shared->workers[i].pid;
	SpinLockRelease(&shared->mutex);
	if (pid != 0 && sig != 0 && kill(pid, sig) != 0)
		ereport(WARNING,
				(errmsg("could not signal the worker (process %d) running run " INT64_FORMAT ": %m",
						pid, run_id)));
	return pid;
}

/*
 * coco.cancel(run_id) — stop a queued run before it starts, or a running
 * one (its current transaction rolls back; batches it committed stay, as
 * after any failure).  Returns true when the run is now 'canceled', false
 * when it had finished already, or when it joined another (coalesced): that
 * one is named in a NOTICE, not canceled.  The app's owner, its members and
 * superusers may; anyone else gets 42501.
 */
PG_FUNCTION_INFO_V1(coco_cancel);
Datum
coco_cancel(PG_FUNCTION_ARGS)
{
	int64		run_id;
	RunRow		row;
	TimestampTz started = GetCurrentTimestamp();
	bool		canceled = false;
	bool		asked = false;
	int			signaled = 0;
	int			terminated = 0;

	if (!coco_worker_available())
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("coco.cancel() requires the coco_target background worker"),
				 errhint("Add coco_target to shared_preload_libraries and restart the server.")));
	coco_require_arg(fcinfo, 0, "run_id");
	run_id = PG_GETARG_INT64(0);

	SPI_connect();
	if (!read_run(run_id, &row))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("run " INT64_FORMAT " does not exist", run_id)));
	if (!has_privs_of_role(GetUserId(), row.owner))
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("permission denied to cancel run " INT64_FORMAT, run_id),
				 errdetail("Only members of the role that owns the run's app, and superusers, may cancel it.")));
	if (strcmp(row.status, "coalesced") == 0)
	{
		/* its submit is being served by a run others may be waiting on too */
		ereport(NOTICE,
				(errmsg("run " INT64_FORMAT " joined run " INT64_FORMAT ", which does its work",
						run_id, row.coalesced_into),
				 errhint("Cancel run " INT64_FORMAT " to stop that work.", row.coalesced_into)));
		SPI_finish();
		PG_RETURN_BOOL(false);
	}

	/*
	 * A queued run is canceled in this transaction; a running one is
	 * interrupted by its worker, told through shared memory (a signal is
	 * not rolled back).  Wait, re-reading the run, until it is over.
	 */
	coco_run_done_prepare();
	for (;;)
	{
		long		waited = (long) ((GetCurrentTimestamp() - started) / 1000);
		int			pid;

		if (strcmp(row.status, "queued") == 0)
		{
			if ((canceled = cancel_queued(run_id, row.app)))
				break;
		}
		else if (strcmp(row.status, "running") != 0)
		{
			/* over: canceled now by its worker, or it had finished */
			canceled = asked && strcmp(row.status, "canceled") == 0;
			break;
		}
		else
		{
			coco_sched_note(run_id, COCO_NOTE_CANCEL, GetUserId(), 0, false);
			asked = true;
			pid = worker_of_run(run_id, 0);
			if (pid == 0)
				coco_worker_wake(MyDatabaseId); /* its worker died: the next settles it */
			else if (pid != signaled)
				signaled = worker_of_run(run_id, SIGINT);	/* once per worker */
			else if (pid != terminated && waited >= COCO_CANCEL_GRACE_MS)
				terminated = worker_of_run(run_id, SIGTERM);
		}
		/* a snapshot of this transaction would never see the workers' commits */
		if (IsolationUsesXactSnapshot() || waited >= COCO_CANCEL_WAIT_MS)
		{
			ereport(NOTICE,
					(errmsg("the worker was asked to cancel run " INT64_FORMAT, run_id),
					 errdetail("It is not canceled yet; coco.runs shows when it is.")));
			canceled = true;
			break;
		}
		coco_run_done_sleep(200L);
		if (!read_run(run_id, &row))
			break;
	}
	ConditionVariableCancelSleep();
	SPI_finish();
	PG_RETURN_BOOL(canceled);
}

/*
 * coco.worker_slots() — this database's workers: pid, 'idle' or
 * 'running', the run and its app (NULL when idle, or when the caller may
 * not see the app's runs), and since when.
 */
PG_FUNCTION_INFO_V1(coco_worker_slots);
Datum
coco_worker_slots(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	CocoShared *shared = coco_sched_shared();

	InitMaterializedSRF(fcinfo, 0);
	for (int i = 0; shared != NULL && i < COCO_MAX_WORKER_SLOTS; i++)
	{
		CocoWorkerSlot w;
		bool		seen;
		Datum		values[5];
		bool		nulls[5] = {false, false, false, false, false};

		SpinLockAcquire(&shared->mutex);
		w = shared->workers[i];
		SpinLockRelease(&shared->mutex);
		if (w.dbid != MyDatabaseId)
			continue;
		/* the run, as pg_stat_activity shows a query: to its owner's members */
		seen = w.run_id != 0 &&
			(has_privs_of_role(GetUserId(), w.owner) ||
			 has_privs_of_role(GetUserId(), ROLE_PG_READ_ALL_STATS));
		values[0] = Int32GetDatum(w.pid);
		values[1] = CStringGetTextDatum(w.run_id != 0 ? "running" : "idle");
		values[2] = Int64GetDatum(w.run_id);
		nulls[2] = !seen;
		values[3] = Int32GetDatum(w.app_id);
		nulls[3] = !seen;
		values[4] = TimestampTzGetDatum(w.since);
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	return (Datum) 0;
}
