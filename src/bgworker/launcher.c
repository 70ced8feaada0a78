/*
 * launcher.c — the launcher of the background reconciler, started from
 * shared_preload_libraries: it starts dynamic workers (worker.c) for the
 * databases that have work — up to coco_target.workers_per_database each,
 * at most coco_target.max_workers in all — and looks at every database now
 * and then.  Also its registration from _PG_init.
 */
#include "postgres.h"

#include "access/heapam.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "access/tableam.h"
#include "access/xact.h"
#include "catalog/pg_authid.h"
#include "catalog/pg_database.h"
#include "catalog/pg_extension.h"
#include "catalog/pg_type.h"
#include "commands/async.h"
#include "commands/extension.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "storage/condition_variable.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "storage/lmgr.h"
#include "storage/lwlock.h"
#include "storage/proc.h"
#include "storage/shmem.h"
#include "storage/spin.h"
#include "tcop/tcopprot.h"
#include "tcop/utility.h"
#include "utils/snapmgr.h"
#include "nodes/plannodes.h"
#include "tcop/dest.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/json.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"
#include "utils/syscache.h"
#include "utils/timestamp.h"

#include "coco_internal.h"
#include "sched_shmem.h"

/* the launcher looks at a database nobody asked about this often */
#define COCO_RECHECK_MS		60000
/* launcher-side table of databases with pending work or a worker */
#define COCO_MAX_DBS		1024

/* the scheduler's shared memory (sched/shmem.c), looked up at start */
static CocoShared *shared = NULL;

void		coco_launcher_main(Datum arg);

/* ---- launcher ------------------------------------------------------------- */

typedef struct LauncherDb
{
	Oid			dbid;
	/* the workers this launcher started for it, NULL where none */
	BackgroundWorkerHandle *handles[COCO_MAX_WORKER_SLOTS];
	TimestampTz next_check;
	bool		seen;
} LauncherDb;

static LauncherDb dbs[COCO_MAX_DBS];
static int	ndbs = 0;

/* How many of the workers started for `db` are alive; forgets the others. */
static int
workers_alive(LauncherDb *db)
{
	int			alive = 0;

	for (int i = 0; i < COCO_MAX_WORKER_SLOTS; i++)
	{
		pid_t		pid;
		BgwHandleStatus st;

		if (db->handles[i] == NULL)
			continue;
		st = GetBackgroundWorkerPid(db->handles[i], &pid);
		if (st == BGWH_STARTED || st == BGWH_NOT_YET_STARTED)
		{
			alive++;
			continue;
		}
		pfree(db->handles[i]);
		db->handles[i] = NULL;
	}
	return alive;
}

static bool
start_db_worker(LauncherDb *db)
{
	BackgroundWorker worker;
	BackgroundWorkerHandle **handle = NULL;

	for (int i = 0; i < COCO_MAX_WORKER_SLOTS && handle == NULL; i++)
		if (db->handles[i] == NULL)
			handle = &db->handles[i];
	if (handle == NULL)
		return false;

	memset(&worker, 0, sizeof(worker));
	worker.bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
	worker.bgw_start_time = BgWorkerStart_RecoveryFinished;
	worker.bgw_restart_time = BGW_NEVER_RESTART;
	snprintf(worker.bgw_library_name, BGW_MAXLEN, "coco_target");
	snprintf(worker.bgw_function_name, BGW_MAXLEN, "coco_db_worker_main");
	snprintf(worker.bgw_name, BGW_MAXLEN, "coco_target worker for database %u", db->dbid);
	snprintf(worker.bgw_type, BGW_MAXLEN, "coco_target worker");
	worker.bgw_main_arg = ObjectIdGetDatum(db->dbid);
	worker.bgw_notify_pid = MyProcPid;	/* our latch is set when it stops */
	if (!RegisterDynamicBackgroundWorker(&worker, handle))
	{
		*handle = NULL;
		ereport(LOG,
				(errmsg("coco_target: could not start a worker for database %u", db->dbid),
				 errhint("Raise max_worker_processes.")));
		return false;
	}
	return true;
}

/*
 * Workers of `dbid` not sleeping: executing a run, or held up in their own
 * bookkeeping.  Hold the mutex.
 */
static int
busy_workers(Oid dbid)
{
	int			n = 0;

	for (int i = 0; i < COCO_MAX_WORKER_SLOTS; i++)
		if (shared->workers[i].dbid == dbid && !shared->workers[i].idle)
			n++;
	return n;
}

static void
scan_databases(void)
{
	Relation	rel;
	TableScanDesc scan;
	HeapTuple	tup;

	for (int i = 0; i < ndbs; i++)
		dbs[i].seen = false;

	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	PushActiveSnapshot(GetTransactionSnapshot());
	pgstat_report_activity(STATE_RUNNING, "coco_target: scanning databases");
	rel = table_open(DatabaseRelationId, AccessShareLock);
	scan = table_beginscan_catalog(rel, 0, NULL);
	while ((tup = heap_getnext(scan, ForwardScanDirection)) != NULL)
	{
		Form_pg_database d = (Form_pg_database) GETSTRUCT(tup);
		int			i;

		/*
		 * Templates are skipped: a worker connected to one would make
		 * CREATE DATABASE from it fail.
		 */
		if (!d->datallowconn || d->datistemplate)
			continue;
		for (i = 0; i < ndbs; i++)
			if (dbs[i].dbid == d->oid)
				break;
		if (i == ndbs)
		{
			if (ndbs >= COCO_MAX_DBS)
				continue;
			memset(&dbs[ndbs], 0, sizeof(LauncherDb));
			dbs[ndbs].dbid = d->oid;
			ndbs++;
		}
		dbs[i].seen = true;
	}
	table_endscan(scan);
	table_close(rel, AccessShareLock);
	PopActiveSnapshot();
	CommitTransactionCommand();
	pgstat_report_activity(STATE_IDLE, NULL);

	/* forget dropped databases (and their wake-up slots) */
	for (int i = 0; i < ndbs; i++)
	{
		if (dbs[i].seen || workers_alive(&dbs[i]) > 0)
			continue;
		SpinLockAcquire(&shared->mutex);
		{
			CocoDbSlot *slot = coco_sched_find_slot(dbs[i].dbid, false);

			if (slot && coco_sched_count_workers(dbs[i].dbid, false) == 0)
				slot->dbid = InvalidOid;
		}
		SpinLockRelease(&shared->mutex);
		dbs[i] = dbs[--ndbs];
		i--;
	}
}

void
coco_launcher_main(Datum arg)
{
	shared = coco_sched_shared();
	pqsignal(SIGTERM, die);
	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	BackgroundWorkerUnblockSignals();
	/* no database: only the shared catalogs (pg_database) are needed */
	BackgroundWorkerInitializeConnection(NULL, NULL, 0);

	SpinLockAcquire(&shared->mutex);
	shared->launcher_latch = MyLatch;
	SpinLockRelease(&shared->mutex);

	for (;;)
	{
		TimestampTz now;
		int			running = 0;
		bool		wake_all;

		CHECK_FOR_INTERRUPTS();
		if (ConfigReloadPending)
		{
			ConfigReloadPending = false;
			ProcessConfigFile(PGC_SIGHUP);
		}
		scan_databases();

		SpinLockAcquire(&shared->mutex);
		wake_all = shared->wake_all;
		shared->wake_all = false;
		SpinLockRelease(&shared->mutex);

		/*
		 * Workers are counted both ways: the ones this launcher started
		 * (some may not have taken their slot yet), and the slots taken (a
		 * launcher restarted after an error has no handles for its
		 * predecessor's workers).
		 */
		now = GetCurrentTimestamp();
		for (int i = 0; i < ndbs; i++)
			running += workers_alive(&dbs[i]);
		SpinLockAcquire(&shared->mutex);
		running = Max(running, coco_sched_count_workers(InvalidOid, true));
		SpinLockRelease(&shared->mutex);
		for (int i = 0; i < ndbs && running < coco_max_workers; i++)
		{
			LauncherDb *db = &dbs[i];
			int			alive = workers_alive(db);
			bool		wanted;

			SpinLockAcquire(&shared->mutex);
			alive = Max(alive, coco_sched_count_workers(db->dbid, false));
			SpinLockRelease(&shared->mutex);
			if (alive >= coco_workers_per_database)
				continue;
			SpinLockAcquire(&shared->mutex);
			{
				CocoDbSlot *slot = coco_sched_find_slot(db->dbid, false);

				/*
				 * One worker looks at an unasked database; another one starts
				 * when a submit found no worker of it sleeping (one starting
				 * up counts as free: it is about to look).
				 */
				wanted = (alive == 0 && (wake_all || now >= db->next_check)) ||
					(slot && slot->wake && busy_workers(db->dbid) >= alive) ||
				/* failed synchronous runs to record, and nobody to do it */
					(alive == 0 && coco_sched_failed_runs_pending(db->dbid));
			}
			SpinLockRelease(&shared->mutex);
			if (!wanted)
				continue;
			if (!start_db_worker(db))
			{
				/* no worker process free: try again next round */
				if (wake_all)
				{
					SpinLockAcquire(&shared->mutex);
					shared->wake_all = true;
					SpinLockRelease(&shared->mutex);
				}
				break;
			}

			/*
			 * Unasked, a database is looked at again after COCO_RECHECK_MS:
			 * work is queued by submits, which wake us, so this is only a
			 * safety net.
			 */
			db->next_check = TimestampTzPlusMilliseconds(now, Max(COCO_RECHECK_MS, coco_naptime));
			running++;
		}

		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 coco_naptime, PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
	}
}

/* ---- setup from _PG_init ---------------------------------------------------- */

void
coco_worker_init(void)
{
	BackgroundWorker worker;

	coco_submit_init();

	if (!process_shared_preload_libraries_in_progress)
		return;
	coco_sched_shmem_init();

	/* pg_upgrade must not see runs being executed */
	if (IsBinaryUpgrade)
		return;
	memset(&worker, 0, sizeof(worker));
	worker.bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
	worker.bgw_start_time = BgWorkerStart_RecoveryFinished;
	worker.bgw_restart_time = 1;
	snprintf(worker.bgw_library_name, BGW_MAXLEN, "coco_target");
	snprintf(worker.bgw_function_name, BGW_MAXLEN, "coco_launcher_main");
	snprintf(worker.bgw_name, BGW_MAXLEN, "coco_target launcher");
	snprintf(worker.bgw_type, BGW_MAXLEN, "coco_target launcher");
	RegisterBackgroundWorker(&worker);
}
