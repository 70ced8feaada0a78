/*
 * record_failed.c — a worker inserts the records of failed synchronous
 * runs that backends of its database left in shared memory
 * (sched/failed_runs.c): their own transactions rolled back, this one
 * commits.  Each row keeps the run_id the run had taken (a run that failed
 * before taking one gets a new one), and the trigger on coco.run marks the
 * app failing (coco.track_failing).
 *
 * A report of an app that was dropped meanwhile, or is being dropped (its
 * row locked: no worker waits for a user's transaction), is discarded, as
 * are all when the extension is gone from the database.
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "utils/builtins.h"

#include "coco_internal.h"
#include "sched_shmem.h"
#include "bgworker.h"

/* reports taken out and inserted per transaction */
#define COCO_FAILED_PER_XACT	16

static void
insert_report(const CocoFailedRun *r)
{
	Oid			types[9] = {INT8OID, INT4OID, BOOLOID, TEXTOID, TEXTOID, TIMESTAMPTZOID,
	TIMESTAMPTZOID, INT4OID, TEXTOID};
	Datum		values[9];
	char		nulls[9] = {' ', ' ', ' ', ' ', ' ', ' ', ' ', ' ', ' '};
	CocoUserContext uc;

	values[0] = Int64GetDatum(r->run_id);
	nulls[0] = r->run_id > 0 ? ' ' : 'n';
	values[1] = Int32GetDatum(r->app_id);
	values[2] = BoolGetDatum(r->full);
	values[3] = CStringGetTextDatum(r->message);
	values[4] = CStringGetTextDatum(r->sqlstate);
	values[5] = TimestampTzGetDatum(r->started_at);
	values[6] = TimestampTzGetDatum(r->finished_at);
	values[7] = Int32GetDatum(r->pid);
	values[8] = CStringGetTextDatum(r->origin);

	coco_enter_extension_owner(&uc);
	if (SPI_execute_with_args("SELECT 1 FROM coco.app WHERE app_id OPERATOR(pg_catalog.=) $2 "
							  "FOR KEY SHARE SKIP LOCKED",
							  9, types, values, nulls, false, 0) != SPI_OK_SELECT)
		elog(ERROR, "coco_target: looking up the app of a failed run failed");
	if (SPI_processed == 0)
	{
		coco_leave(&uc);
		ereport(LOG,
				(errmsg("coco_target: the record of failed run " INT64_FORMAT " of app \"%s\" is discarded: the app was dropped",
						r->run_id, r->app_name)));
		return;
	}
	if (SPI_execute_with_args("INSERT INTO coco.run (run_id, app_id, \"full\", status, error, sqlstate, "
							  "started_at, finished_at, pid, origin) OVERRIDING SYSTEM VALUE "
							  "VALUES (coalesce($1, pg_catalog.nextval('coco.run_run_id_seq'::pg_catalog.regclass)), "
							  "$2, $3, 'failed', $4, $5, $6, $7, $8, $9) "
							  "ON CONFLICT (run_id) DO NOTHING "
							  "RETURNING run_id, (SELECT a.name FROM coco.app a "
							  "  WHERE a.app_id OPERATOR(pg_catalog.=) $2)",
							  9, types, values, nulls, false, 0) != SPI_OK_INSERT_RETURNING)
		elog(ERROR, "coco_target: recording a failed run failed");
	if (SPI_processed > 0)
	{
		bool		isnull;
		int64		run_id = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));

		coco_notify_run_finished(SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2),
								 run_id, "failed");
	}
	coco_leave(&uc);
}

/*
 * Insert what failed synchronous runs of this database left, a batch per
 * transaction.  An error is logged and the batch it was in is lost (the
 * worker goes on with its queue); the reports are in the server log then.
 */
void
coco_bg_record_failed_runs(MemoryContext cxt)
{
	CocoFailedRun *reports = MemoryContextAlloc(cxt, sizeof(CocoFailedRun) * COCO_FAILED_PER_XACT);
	int			n;

	while ((n = coco_sched_take_failed_runs(reports, COCO_FAILED_PER_XACT)) > 0)
	{
		PG_TRY();
		{
			if (coco_bg_start_xact_if_installed("coco_target: recording failed runs"))
			{
				for (int i = 0; i < n; i++)
					insert_report(&reports[i]);
				coco_bg_end_xact();
			}
		}
		PG_CATCH();
		{
			MemoryContextSwitchTo(cxt);
			EmitErrorReport();
			AbortCurrentTransaction();
			FlushErrorState();
			coco_bg_hold_cancels(true); /* error recovery lifted the hold */
			for (int j = 0; j < n; j++)
				ereport(LOG,
						(errmsg("coco_target: failed run " INT64_FORMAT " of app \"%s\" could not be recorded",
								reports[j].run_id, reports[j].app_name),
						 errdetail("It failed with SQLSTATE %s: %s", reports[j].sqlstate,
								   reports[j].message)));
		}
		PG_END_TRY();
	}
}
