/*
 * retention.c — deleting the finished runs older than
 * coco_target.run_retention: at most once a minute per database, whichever
 * of its workers comes first.
 */
#include "postgres.h"

#include "access/xact.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"

#include "coco_internal.h"
#include "sched_shmem.h"
#include "bgworker.h"

/* finished runs past the retention are deleted at most this often */
#define COCO_PURGE_EVERY_MS	60000

/*
 * Is deleting old runs in `dbid` due?  It is once a minute per database, and
 * at once after the setting changed.  Claims the turn when it is.  A
 * database not in the table (more than COCO_MAX_DB_SLOTS purged recently)
 * takes the entry purged longest ago.
 */
static bool
claim_purge(Oid dbid, int retention)
{
	CocoShared *shared = coco_sched_shared();
	TimestampTz now = GetCurrentTimestamp();
	CocoPurge  *entry = NULL;
	bool		due;

	SpinLockAcquire(&shared->mutex);
	for (int i = 0; i < COCO_MAX_DB_SLOTS; i++)
	{
		CocoPurge  *p = &shared->purges[i];

		if (p->dbid == dbid)
		{
			entry = p;
			break;
		}
		if (entry == NULL || (entry->dbid != InvalidOid &&
							  (p->dbid == InvalidOid || p->last < entry->last)))
			entry = p;
	}
	due = entry->dbid != dbid || entry->retention != retention ||
		TimestampDifferenceExceeds(entry->last, now, COCO_PURGE_EVERY_MS);
	if (due)
	{
		entry->dbid = dbid;
		entry->retention = retention;
		entry->last = now;
	}
	SpinLockRelease(&shared->mutex);
	return due;
}

/*
 * Delete the finished runs (succeeded, failed, canceled or coalesced) that
 * finished longer ago than coco_target.run_retention.  Unfinished runs are
 * never deleted, nor is anything when the setting is 0.
 */
void
coco_bg_purge_old_runs(MemoryContext cxt)
{
	CocoUserContext uc;
	Oid			types[1] = {INT4OID};
	Datum		values[1];
	volatile uint64 deleted = 0;

	if (coco_run_retention <= 0 || !claim_purge(MyDatabaseId, coco_run_retention))
		return;

	/* a failure is logged and tried again next minute; runs go on */
	PG_TRY();
	{
		if (coco_bg_start_xact_if_installed("coco_target: deleting old runs"))
		{
			values[0] = Int32GetDatum(coco_run_retention);
			coco_enter_extension_owner(&uc);
			/* rows a transaction holds (dropping their app) wait for the next time */
			coco_spi_exec("DELETE FROM coco.run WHERE run_id OPERATOR(pg_catalog.=) ANY (ARRAY("
						  "SELECT run_id FROM coco.run "
						  "WHERE status OPERATOR(pg_catalog.=) ANY ('{succeeded,failed,canceled,coalesced}'::pg_catalog.text[]) "
						  "AND finished_at OPERATOR(pg_catalog.<) "
						  "(pg_catalog.now() OPERATOR(pg_catalog.-) pg_catalog.make_interval(mins => $1)) "
						  "FOR UPDATE SKIP LOCKED))",
						  1, types, values, NULL, SPI_OK_DELETE);
			deleted = SPI_processed;
			coco_leave(&uc);
			coco_bg_end_xact();
		}
	}
	PG_CATCH();
	{
		MemoryContextSwitchTo(cxt);
		EmitErrorReport();
		AbortCurrentTransaction();
		FlushErrorState();
		coco_bg_hold_cancels(true);		/* error recovery lifted the hold */
		pgstat_report_activity(STATE_IDLE, NULL);
	}
	PG_END_TRY();
	if (deleted > 0)
		elog(DEBUG1, "coco_target: deleted %llu run(s) finished more than %d minutes ago",
			 (unsigned long long) deleted, coco_run_retention);
}
