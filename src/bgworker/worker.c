/*
 * worker.c — the per-database workers that execute the runs coco.submit()
 * queues (submit.c); the launcher that starts them is in launcher.c.
 *
 * A per-database worker
 * takes queued runs in run_id order, app by app: one app's runs strictly in
 * order, a failing app never blocking the others.  Each run is marked
 * 'running' in a short transaction of its own, then reconciled in another,
 * so a crash leaves evidence ('running') that the next worker turns back
 * into 'queued' (crash-only: nothing is cleaned up on the way down).
 *
 * The worker itself is the bootstrap superuser; everything it does for an
 * app runs with the app owner as the current user, and the engine narrows
 * that further (app owner in a restricted context for user work, the
 * extension owner for bookkeeping), so a queued run can do no more than the
 * app's owner calling coco.reconcile() could.
 *
 * Shared memory holds the wake-up registry (one slot per database with
 * pending work or a running worker), which submits use to wake the right
 * process, and a condition variable broadcast after every finished run, on
 * which coco.wait() sleeps.
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

/*
 * A worker with nothing queued gives its pool slot back after this long.
 * Below the 5 s DROP DATABASE waits for other sessions to leave, so an idle
 * worker never makes a plain DROP DATABASE fail.
 */
#define COCO_IDLE_EXIT_MS	3000
/* finished runs past the retention are deleted at most this often */
#define COCO_PURGE_EVERY_MS	60000

/* the scheduler's shared memory (sched/shmem.c), looked up at start */
static CocoShared *shared = NULL;

void		coco_db_worker_main(Datum arg);

/* ---- per-database worker ---------------------------------------------------- */

typedef struct QueuedRun
{
	int64		run_id;
	int			app_id;
	bool		full;
	int			attempts;
	Oid			owner;
	char	   *app_name;
} QueuedRun;

static MemoryContext worker_cxt = NULL;
static CocoDbSlot *my_slot = NULL;

/* One short transaction per unit of work, as worker_spi does it. */
static void
start_xact(const char *activity)
{
	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	SPI_connect();
	PushActiveSnapshot(GetTransactionSnapshot());
	pgstat_report_activity(STATE_RUNNING, activity);
}

static void
end_xact(void)
{
	SPI_finish();
	PopActiveSnapshot();
	CommitTransactionCommand();
	pgstat_report_stat(false);
	pgstat_report_activity(STATE_IDLE, NULL);
}

/*
 * Is the extension installed here?  The lock on the extension object keeps
 * a concurrent DROP EXTENSION (which locks it exclusively) from pulling the
 * tables away in the middle of this transaction.
 */
static bool
extension_present(void)
{
	Oid			ext = get_extension_oid("coco_target", true);

	if (!OidIsValid(ext))
		return false;
	LockDatabaseObject(ExtensionRelationId, ext, 0, AccessShareLock);
	/* taking the lock processed invalidations: look again */
	return get_extension_oid("coco_target", true) == ext;
}

/*
 * start_xact, then make sure the extension is still here; if it was dropped
 * meanwhile, end the transaction again and say so.
 */
static bool
start_xact_if_installed(const char *activity)
{
	start_xact(activity);
	if (extension_present())
		return true;
	end_xact();
	return false;
}

static void
release_slot(int code, Datum arg)
{
	if (my_slot == NULL)
		return;
	SpinLockAcquire(&shared->mutex);
	my_slot->latch = NULL;
	if (!my_slot->wake)
		my_slot->dbid = InvalidOid;
	SpinLockRelease(&shared->mutex);
	my_slot = NULL;
}

static void
notify_finished(const char *app, int64 run_id, const char *status)
{
	StringInfoData payload;

	initStringInfo(&payload);
	appendStringInfoString(&payload, "{\"app\": ");
	escape_json(&payload, app);
	appendStringInfo(&payload, ", \"run_id\": " INT64_FORMAT ", \"status\": \"%s\"}", run_id, status);
	Async_Notify("coco_target", payload.data);
}

/*
 * Runs left 'running' belong to a worker that died: there is one worker per
 * database, and this one has just started.  They go back to the queue
 * (their transaction was rolled back with the crash), or fail for good once
 * they have used up their attempts — a run that kills its worker every time
 * must not loop forever.  Returns false when the extension is not installed.
 */
static bool
requeue_interrupted(void)
{
	CocoUserContext uc;
	Oid			types[1] = {INT4OID};
	Datum		values[1] = {Int32GetDatum(coco_max_attempts)};
	uint64		failed;

	if (!start_xact_if_installed("coco_target: looking for interrupted runs"))
		return false;
	coco_enter_extension_owner(&uc);
	coco_spi_exec("UPDATE coco.run SET status = 'queued', retry_at = NULL, "
				  "error = 'interrupted: the worker stopped during attempt ' OPERATOR(pg_catalog.||) attempts "
				  "WHERE status OPERATOR(pg_catalog.=) 'running' AND attempts OPERATOR(pg_catalog.<) $1",
				  1, types, values, NULL, SPI_OK_UPDATE);
	if (SPI_processed > 0)
		elog(LOG, "coco_target: re-queued %llu interrupted run(s)", (unsigned long long) SPI_processed);
	coco_spi_exec("UPDATE coco.run SET status = 'failed', finished_at = pg_catalog.now(), "
				  "error = 'interrupted: the worker stopped during each of ' OPERATOR(pg_catalog.||) attempts "
				  "OPERATOR(pg_catalog.||) ' attempts' "
				  "WHERE status OPERATOR(pg_catalog.=) 'running'",
				  0, NULL, NULL, NULL, SPI_OK_UPDATE);
	failed = SPI_processed;
	coco_leave(&uc);
	end_xact();
	if (failed > 0)
		ConditionVariableBroadcast(&shared->run_done);
	return true;
}

/*
 * Is deleting old runs in `dbid` due?  It is once a minute per database, and
 * at once after the setting changed.  Claims the turn when it is.  A
 * database not in the table (more than COCO_MAX_DB_SLOTS purged recently)
 * takes the entry purged longest ago.
 */
static bool
claim_purge(Oid dbid, int retention)
{
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
 * Delete the finished runs (succeeded or failed) that finished longer ago
 * than coco_target.run_retention.  Unfinished runs are never deleted, nor
 * is anything when the setting is 0.
 */
static void
purge_old_runs(void)
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
		if (start_xact_if_installed("coco_target: deleting old runs"))
		{
			values[0] = Int32GetDatum(coco_run_retention);
			coco_enter_extension_owner(&uc);
			coco_spi_exec("DELETE FROM coco.run "
						  "WHERE status OPERATOR(pg_catalog.=) ANY ('{succeeded,failed}'::pg_catalog.text[]) "
						  "AND finished_at OPERATOR(pg_catalog.<) "
						  "(pg_catalog.now() OPERATOR(pg_catalog.-) pg_catalog.make_interval(mins => $1))",
						  1, types, values, NULL, SPI_OK_DELETE);
			deleted = SPI_processed;
			coco_leave(&uc);
			end_xact();
		}
	}
	PG_CATCH();
	{
		MemoryContextSwitchTo(worker_cxt);
		EmitErrorReport();
		AbortCurrentTransaction();
		FlushErrorState();
		pgstat_report_activity(STATE_IDLE, NULL);
	}
	PG_END_TRY();
	if (deleted > 0)
		elog(DEBUG1, "coco_target: deleted %llu run(s) finished more than %d minutes ago",
			 (unsigned long long) deleted, coco_run_retention);
}

/*
 * The next run to do: for each app its lowest queued run (runs of one app
 * strictly in order), the lowest of those whose retry time has come.
 * *next_ms is set to the time until the earliest retry that is not due.
 * Returns false (and *gone) when the extension was dropped.
 */
static bool
next_run(QueuedRun *run, long *next_ms, bool *any_queued, bool *gone)
{
	CocoUserContext uc;
	bool		found = false;

	*gone = false;
	*any_queued = false;
	*next_ms = -1;
	if (!start_xact_if_installed("coco_target: looking for queued runs"))
	{
		*gone = true;
		return false;
	}
	coco_enter_extension_owner(&uc);
	coco_spi_exec("SELECT q.run_id, q.app_id, q.\"full\", q.attempts, a.owner, a.name, "
				  "  (EXTRACT(EPOCH FROM (q.retry_at OPERATOR(pg_catalog.-) pg_catalog.clock_timestamp())) "
				  "   OPERATOR(pg_catalog.*) 1000)::pg_catalog.int8 AS wait_ms "
				  "FROM (SELECT DISTINCT ON (app_id) run_id, app_id, \"full\", attempts, retry_at "
				  "        FROM coco.run WHERE status OPERATOR(pg_catalog.=) 'queued' "
				  "       ORDER BY app_id, run_id) q "
				  "JOIN coco.app a USING (app_id) ORDER BY q.run_id",
				  0, NULL, NULL, NULL, SPI_OK_SELECT);
	coco_leave(&uc);
	for (uint64 i = 0; i < SPI_processed; i++)
	{
		HeapTuple	tup = SPI_tuptable->vals[i];
		TupleDesc	desc = SPI_tuptable->tupdesc;
		bool		isnull;
		int64		wait_ms = DatumGetInt64(SPI_getbinval(tup, desc, 7, &isnull));

		*any_queued = true;
		if (!isnull && wait_ms > 0)
		{
			if (*next_ms < 0 || wait_ms < *next_ms)
				*next_ms = (long) wait_ms;
			continue;
		}
		run->run_id = DatumGetInt64(SPI_getbinval(tup, desc, 1, &isnull));
		run->app_id = DatumGetInt32(SPI_getbinval(tup, desc, 2, &isnull));
		run->full = DatumGetBool(SPI_getbinval(tup, desc, 3, &isnull));
		run->attempts = DatumGetInt32(SPI_getbinval(tup, desc, 4, &isnull));
		run->owner = DatumGetObjectId(SPI_getbinval(tup, desc, 5, &isnull));
		run->app_name = MemoryContextStrdup(worker_cxt, SPI_getvalue(tup, desc, 6));
		found = true;
		break;
	}
	end_xact();
	return found;
}

/* retry_base, doubled per further attempt, at most COCO_RETRY_MAX_MS */
static long
backoff_ms(int attempts)
{
	int64		ms = coco_retry_base;

	for (int i = 1; i < attempts && ms < COCO_RETRY_MAX_MS; i++)
		ms *= 2;
	return (long) Min(ms, COCO_RETRY_MAX_MS);
}

/* holds statements to run at top level, across the run's transactions */
static MemoryContext top_cxt = NULL;

/*
 * Run one statement the way a client's would be: at top level, outside any
 * transaction block (CREATE INDEX CONCURRENTLY commits and starts
 * transactions itself), as the app owner with a pinned search_path (the
 * build restricts the security context of the index's expressions itself).  Its parse tree lives in a context of its own,
 * not in a transaction's.  Errors propagate; the caller aborts and resets
 * the user.
 */
static void
run_top_level(const char *sql, Oid owner, const char *activity)
{
	MemoryContext stmt_cxt = AllocSetContextCreate(top_cxt, "coco_target statement",
												   ALLOCSET_DEFAULT_SIZES);
	MemoryContext oldcxt = CurrentMemoryContext;
	Oid			save_userid;
	int			save_sec;
	RawStmt    *raw;
	PlannedStmt *stmt;

	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	pgstat_report_activity(STATE_RUNNING, sql);
	(void) set_config_option("search_path", COCO_SAFE_SEARCH_PATH, PGC_USERSET, PGC_S_SESSION,
							 GUC_ACTION_SET, true, 0, false);
	GetUserIdAndSecContext(&save_userid, &save_sec);

	/*
	 * As the app owner, so that its privileges are what is checked; but with
	 * no security-restricted flags: the statement commits and starts
	 * transactions of its own, and no security context may cross a
	 * transaction boundary (an assertion in StartTransaction).  That is safe
	 * only because the statement is a concurrent index build, which runs the
	 * index's expressions as the table owner in a security-restricted
	 * context itself, in each of its transactions; nothing else runs here.
	 */
	SetUserIdAndSecContext(owner, 0);
	MemoryContextSwitchTo(stmt_cxt);
	{
		List	   *parsed = pg_parse_query(sql);

		if (list_length(parsed) != 1)
			elog(ERROR, "coco_target: a top-level statement must be exactly one statement");
		raw = linitial_node(RawStmt, parsed);
		if (!IsA(raw->stmt, IndexStmt) || !((IndexStmt *) raw->stmt)->concurrent)
			elog(ERROR, "coco_target: a top-level statement must be CREATE INDEX CONCURRENTLY");
	}
	stmt = makeNode(PlannedStmt);
	stmt->commandType = CMD_UTILITY;
	stmt->utilityStmt = raw->stmt;
	stmt->stmt_location = raw->stmt_location;
	stmt->stmt_len = raw->stmt_len;
	PushActiveSnapshot(GetTransactionSnapshot());
	ProcessUtility(stmt, sql, false, PROCESS_UTILITY_TOPLEVEL, NULL, NULL, None_Receiver, NULL);
	if (ActiveSnapshotSet())
		PopActiveSnapshot();
	SetUserIdAndSecContext(save_userid, save_sec);
	CommitTransactionCommand();
	MemoryContextSwitchTo(oldcxt);
	MemoryContextDelete(stmt_cxt);
	pgstat_report_activity(STATE_RUNNING, activity);
}

/*
 * Start a transaction of a run with the app owner as the current user: the
 * privilege check passes as it would for the owner, and any path of the
 * engine that did not switch identity itself still runs with the owner's
 * rights, never the worker's superuser.  The caller switches back with
 * SetUserIdAndSecContext(*save_userid, *save_sec) before its bookkeeping.
 */
static CocoApp *
start_xact_as_owner(QueuedRun *run, const char *activity, Oid *save_userid, int *save_sec)
{
	CocoApp    *app;

	start_xact(activity);
	if (!SearchSysCacheExists1(AUTHOID, ObjectIdGetDatum(run->owner)))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("owner of app \"%s\" (role %u) does not exist", run->app_name, run->owner)));
	GetUserIdAndSecContext(save_userid, save_sec);
	SetUserIdAndSecContext(run->owner, *save_sec | SECURITY_LOCAL_USERID_CHANGE);
	app = coco_app_lookup(run->app_name);
	if (app->app_id != run->app_id)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("app \"%s\" was dropped and created again", run->app_name)));
	return app;
}

/*
 * One transaction of a run: reconcile and commit.  Returns whether the run
 * stopped after a batch and goes on in another transaction.
 */
static bool
reconcile_one_transaction(QueuedRun *run, const char *activity)
{
	Oid			save_userid;
	int			save_sec;
	CocoApp    *app = start_xact_as_owner(run, activity, &save_userid, &save_sec);
	CocoUserContext uc;
	Oid			types[1] = {INT8OID};
	Datum		values[1] = {Int64GetDatum(run->run_id)};
	Jsonb	   *stats;
	bool		more;

	stats = coco_engine_reconcile(app, run->full, false, run->run_id);
	more = getKeyJsonValueFromContainer(&stats->root, "more", 4, NULL) != NULL;
	SetUserIdAndSecContext(save_userid, save_sec);
	/* the engine recorded the outcome; a retry time no longer applies */
	coco_enter_extension_owner(&uc);
	coco_spi_exec("UPDATE coco.run SET retry_at = NULL WHERE run_id OPERATOR(pg_catalog.=) $1",
				  1, types, values, NULL, SPI_OK_UPDATE);
	coco_leave(&uc);
	end_xact();
	return more;
}

/*
 * 1. Mark the run running, committed, so a crash leaves a trace.  False
 * when there is nothing to run: the extension or the app was dropped
 * meanwhile (the next look exits or finds nothing).
 */
static bool
mark_running(QueuedRun *run, const char *activity)
{
	CocoUserContext uc;
	Oid			types[2] = {INT8OID, INT4OID};
	Datum		values[2] = {Int64GetDatum(run->run_id), Int32GetDatum(MyProcPid)};
	uint64		marked;

	if (!start_xact_if_installed(activity))
		return false;

	/*
	 * Transactions that auto-submit leave their declarations to a run that is
	 * still queued when they commit (submit.c), holding the app's submit lock
	 * until then: once we have it, every such transaction has committed, and
	 * the reconcile's snapshot, taken after this commits, sees them all.
	 */
	coco_submit_lock(run->app_id, ExclusiveLock);
	coco_enter_extension_owner(&uc);
	coco_spi_exec("UPDATE coco.run SET status = 'running', attempts = attempts OPERATOR(pg_catalog.+) 1, "
				  "started_at = pg_catalog.now(), finished_at = NULL, pid = $2 "
				  "WHERE run_id OPERATOR(pg_catalog.=) $1 AND status OPERATOR(pg_catalog.=) 'queued'",
				  2, types, values, NULL, SPI_OK_UPDATE);
	marked = SPI_processed;
	coco_leave(&uc);
	end_xact();
	if (marked == 0)
		return false;
	run->attempts++;
	return true;
}

/*
 * 3. Sinks outside the transaction: their intents are committed now, so
 * they run, each pruning its records once it succeeded (rule 9); then the
 * statements that must run outside any transaction, one by one.
 */
static void
complete_run(QueuedRun *run, const char *activity)
{
	CocoApp    *app;
	Oid			save_userid;
	int			save_sec;
	List	   *top_level = NIL;
	ListCell   *lc;
	int64		completed;

	app = start_xact_as_owner(run, activity, &save_userid, &save_sec);
	/* sinks run user code (SQL providers): no nested run under them */
	coco_run_guard_enter(app, "completing the run's intents");
	completed = coco_complete_intents(app, run->run_id, &top_level, top_cxt);
	coco_run_guard_leave();
	SetUserIdAndSecContext(save_userid, save_sec);
	if (top_level == NIL)
		notify_finished(run->app_name, run->run_id, "succeeded");
	end_xact();

	foreach(lc, top_level)
	{
		CocoTopLevelWork *w = lfirst(lc);
		bool		last = lnext(top_level, lc) == NULL;

		run_top_level(w->sql, run->owner, activity);
		app = start_xact_as_owner(run, activity, &save_userid, &save_sec);
		coco_prune_intent(app, w, last ? run->run_id : 0, ++completed);
		SetUserIdAndSecContext(save_userid, save_sec);
		if (last)
			notify_finished(run->app_name, run->run_id, "succeeded");
		end_xact();
	}
}

/*
 * 4. A failure: back to the queue with a backoff, or failed for good.
 * Returns whether it failed for good.
 */
static bool
record_failure(QueuedRun *run, const char *activity, ErrorData *edata)
{
	CocoUserContext uc;
	Oid			types[4] = {INT8OID, TEXTOID, INT4OID, INT4OID};
	Datum		values[4];
	bool		retry = run->attempts < coco_max_attempts;

	start_xact(activity);
	values[0] = Int64GetDatum(run->run_id);
	/* the message, and on a line of its own the detail (who held a lock) */
	values[1] = CStringGetTextDatum(edata->detail ?
									psprintf("%s\n%s", edata->message ? edata->message : "unknown error",
											 edata->detail) :
									edata->message ? edata->message : "unknown error");
	values[2] = Int32GetDatum(0);
	values[3] = Int32GetDatum((int32) backoff_ms(run->attempts));
	coco_enter_extension_owner(&uc);
	/*
	 * Batches an attempt committed (coco_target.commit_every) stay applied,
	 * with their tracking: target and tracking agree, and the next attempt
	 * goes on from there.  The stats they committed stay in the record,
	 * marked partial.
	 */
	coco_spi_exec("UPDATE coco.run SET stats = stats OPERATOR(pg_catalog.||) '{\"partial\": true}'::pg_catalog.jsonb "
				  "WHERE run_id OPERATOR(pg_catalog.=) $1 AND stats IS NOT NULL",
				  4, types, values, NULL, SPI_OK_UPDATE);
	if (retry)
		coco_spi_exec("UPDATE coco.run SET status = 'queued', error = $2, finished_at = pg_catalog.now(), "
					  "retry_at = pg_catalog.now() OPERATOR(pg_catalog.+) "
					  "pg_catalog.make_interval(secs => $4 OPERATOR(pg_catalog./) 1000.0) "
					  "WHERE run_id OPERATOR(pg_catalog.=) $1",
					  4, types, values, NULL, SPI_OK_UPDATE);
	else
		coco_spi_exec("UPDATE coco.run SET status = 'failed', error = $2, finished_at = pg_catalog.now(), "
					  "retry_at = NULL WHERE run_id OPERATOR(pg_catalog.=) $1",
					  4, types, values, NULL, SPI_OK_UPDATE);
	coco_leave(&uc);
	if (!retry)
		notify_finished(run->app_name, run->run_id, "failed");
	end_xact();
	if (retry)
		ereport(LOG,
				(errmsg("coco_target: run " INT64_FORMAT " of app \"%s\" failed, retrying in %ld ms (attempt %d of %d)",
						run->run_id, run->app_name, backoff_ms(run->attempts),
						run->attempts, coco_max_attempts)));
	return !retry;
}

static void
do_run(QueuedRun *run)
{
	char	   *activity;
	MemoryContext oldcxt;
	ErrorData  *volatile edata = NULL;
	const char *volatile final_status = NULL;
	Oid			base_userid;
	int			base_sec;

	GetUserIdAndSecContext(&base_userid, &base_sec);
	/* outside transactions the current context is TopMemoryContext */
	MemoryContextReset(top_cxt);
	oldcxt = MemoryContextSwitchTo(worker_cxt);
	activity = psprintf("coco_target: reconciling app %s run " INT64_FORMAT,
						run->app_name, run->run_id);
	MemoryContextSwitchTo(oldcxt);

	if (!mark_running(run, activity))
		return;

	/* 2. reconcile, with the app owner as the current user throughout */
	PG_TRY();
	{
		/*
		 * A big run commits in batches (coco_target.commit_every): each
		 * transaction goes on where the last committed one stopped.
		 */
		while (reconcile_one_transaction(run, activity))
		{
			coco_fault("after_batch_commit");
			CHECK_FOR_INTERRUPTS();
		}
		complete_run(run, activity);
		final_status = "succeeded";
	}
	PG_CATCH();
	{
		MemoryContextSwitchTo(worker_cxt);
		edata = CopyErrorData();
		EmitErrorReport();
		AbortCurrentTransaction();
		/* a top-level statement began transactions as the app owner */
		SetUserIdAndSecContext(base_userid, base_sec);
		FlushErrorState();
		pgstat_report_activity(STATE_IDLE, NULL);
	}
	PG_END_TRY();

	if (edata)
	{
		if (record_failure(run, activity, edata))
			final_status = "failed";
		FreeErrorData(edata);
	}
	/* after the commit: a waiter woken now sees the final status */
	if (final_status)
		ConditionVariableBroadcast(&shared->run_done);
}

void
coco_db_worker_main(Datum arg)
{
	Oid			dbid = DatumGetObjectId(arg);
	TimestampTz idle_since;

	shared = coco_sched_shared();
	pqsignal(SIGTERM, die);
	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	BackgroundWorkerUnblockSignals();
	BackgroundWorkerInitializeConnectionByOid(dbid, InvalidOid, 0);
	worker_cxt = AllocSetContextCreate(TopMemoryContext, "coco_target worker",
									   ALLOCSET_DEFAULT_SIZES);
	top_cxt = AllocSetContextCreate(TopMemoryContext, "coco_target top-level work",
									ALLOCSET_SMALL_SIZES);

	/*
	 * Announce ourselves so submits wake us directly.  A slot that already
	 * has a latch belongs to a live worker for this database (slots are
	 * released at exit, and a crash reinitializes shared memory): a
	 * launcher restarted after an error does not know its predecessor's
	 * workers, and two workers must never serve one database.
	 */
	SpinLockAcquire(&shared->mutex);
	my_slot = coco_sched_find_slot(dbid, true);
	if (my_slot && my_slot->latch != NULL)
	{
		SpinLockRelease(&shared->mutex);
		my_slot = NULL;
		proc_exit(0);
	}
	if (my_slot)
		my_slot->latch = MyLatch;
	SpinLockRelease(&shared->mutex);
	before_shmem_exit(release_slot, (Datum) 0);

	if (!requeue_interrupted())
		proc_exit(0);			/* no extension here: nothing to serve */

	idle_since = GetCurrentTimestamp();
	for (;;)
	{
		QueuedRun	run;
		long		next_ms;
		bool		any_queued;
		bool		gone;
		long		sleep_ms;

		CHECK_FOR_INTERRUPTS();
		if (ConfigReloadPending)
		{
			ConfigReloadPending = false;
			ProcessConfigFile(PGC_SIGHUP);
		}
		/* cleared before looking: a submit after this sets it again */
		if (my_slot)
		{
			SpinLockAcquire(&shared->mutex);
			my_slot->wake = false;
			SpinLockRelease(&shared->mutex);
		}

		MemoryContextReset(worker_cxt);
		purge_old_runs();
		if (next_run(&run, &next_ms, &any_queued, &gone))
		{
			do_run(&run);
			idle_since = GetCurrentTimestamp();
			continue;
		}
		if (gone)
		{
			elog(DEBUG1, "coco_target: extension not installed in this database any more, worker exiting");
			proc_exit(0);
		}
		if (any_queued)
			idle_since = GetCurrentTimestamp();
		else if (TimestampDifferenceExceeds(idle_since, GetCurrentTimestamp(), COCO_IDLE_EXIT_MS))
		{
			/* give the pool slot back, unless a submit just arrived */
			bool		leave = true;

			if (my_slot)
			{
				SpinLockAcquire(&shared->mutex);
				if (my_slot->wake)
					leave = false;
				else
				{
					my_slot->latch = NULL;
					my_slot->dbid = InvalidOid;
					my_slot = NULL;
				}
				SpinLockRelease(&shared->mutex);
			}
			if (leave)
				proc_exit(0);
			continue;
		}

		sleep_ms = coco_naptime;
		if (next_ms >= 0 && next_ms < sleep_ms)
			sleep_ms = Max(next_ms, 1);
		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 sleep_ms, PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
	}
}
