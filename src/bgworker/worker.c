/*
 * worker.c — the per-database workers that execute the runs coco.submit()
 * queues (submit.c); the launcher that starts them is in launcher.c.
 *
 * Several workers may serve one database (coco_target.workers_per_database).
 * Each takes the next run by turns across apps: of the apps with a run due
 * and none running, the one whose last run started longest ago, so one
 * app's flood of submits delays another app by one run at most.  One app's
 * runs go strictly in order and never two at once.  When a worker starts a
 * run, the app's other queued runs that never started join it
 * ('coalesced'): it sees all their declarations.
 *
 * Each run is marked 'running' in a short transaction of its own, then
 * reconciled in others, so a worker that dies leaves evidence ('running',
 * with its pid) that another worker finds and settles (settle.c).  A run
 * has a time limit (coco_target.run_timeout, lowered by the app's
 * run_timeout option) and can be cancelled by its app's owner
 * (coco.cancel): both interrupt it as a statement cancel does, and end the
 * worker when the run ignores that.
 *
 * The worker itself is the bootstrap superuser; everything it does for an
 * app runs with the app owner as the current user, and the engine narrows
 * that further (app owner in a restricted context for user work, the
 * extension owner for bookkeeping), so a queued run can do no more than the
 * app's owner calling coco.reconcile() could.
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
#include "utils/timeout.h"
#include "utils/timestamp.h"

#include "coco_internal.h"
#include "sched_shmem.h"
#include "bgworker.h"

/*
 * A worker with nothing queued gives its pool slot back after this long.
 * Below the 5 s DROP DATABASE waits for other sessions to leave, so an idle
 * worker never makes a plain DROP DATABASE fail.
 */
#define COCO_IDLE_EXIT_MS	3000

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
	int			timeout_ms;		/* its time limit, 0: none */
	bool		app_limit;		/* ... the app's option, not the setting */
} QueuedRun;

static MemoryContext worker_cxt = NULL;
static CocoWorkerSlot *my_worker = NULL;

/*
 * The run's time limit: a timeout whose handler cancels as SIGINT would;
 * and, for a run that ignores the cancel (a function catching
 * query_canceled), a second one a grace period later that ends the worker
 * as SIGTERM would.  The next look at the queue finds its run interrupted.
 */
#define COCO_TIMEOUT_GRACE_MS	5000
static TimeoutId run_timeout_id;
static TimeoutId run_overdue_id;
static volatile sig_atomic_t run_timed_out = false;

static void
run_timeout_fired(void)
{
	run_timed_out = true;
	InterruptPending = true;
	QueryCancelPending = true;
	SetLatch(MyLatch);
}

static void
run_overdue_fired(void)
{
	if (my_worker)
		my_worker->overdue = true;	/* release_slot leaves a note */
	InterruptPending = true;
	ProcDiePending = true;
	SetLatch(MyLatch);
}

/*
 * Told to quit by the postmaster (another process crashed): say so before
 * going, so the crash is not blamed on the run this worker was executing.
 */
static void
quit_received(SIGNAL_ARGS)
{
	if (my_worker)
		my_worker->quit_received = true;
	_exit(2);
}

/*
 * What this worker executes (NULL: nothing), for coco.cancel, coco.workers
 * and the notes a dead worker leaves.
 */
static void
set_my_run(const QueuedRun *run)
{
	SpinLockAcquire(&shared->mutex);
	my_worker->run_id = run ? run->run_id : 0;
	my_worker->app_id = run ? run->app_id : 0;
	my_worker->owner = run ? run->owner : InvalidOid;
	my_worker->limit_ms = run ? run->timeout_ms : 0;
	my_worker->app_limit = run ? run->app_limit : false;
	my_worker->overdue = false;
	my_worker->idle = false;
	my_worker->since = GetCurrentTimestamp();
	SpinLockRelease(&shared->mutex);
}

/*
 * At exit.  A worker that leaves in the middle of a run (ended by SIGTERM,
 * or after its run ignored its time limit) asks for a worker to take its
 * place, which settles the run.
 */
static void
release_slot(int code, Datum arg)
{
	CocoDbSlot *slot;
	Latch	   *launcher = NULL;

	if (my_worker == NULL)
		return;
	if (my_worker->run_id != 0 && my_worker->overdue)
		coco_sched_note(my_worker->run_id, COCO_NOTE_OVERDUE, InvalidOid,
						my_worker->limit_ms, my_worker->app_limit);
	SpinLockAcquire(&shared->mutex);
	slot = coco_sched_find_slot(my_worker->dbid, my_worker->run_id != 0);
	if (slot && my_worker->run_id != 0)
	{
		slot->wake = true;
		launcher = shared->launcher_latch;
	}
	memset(my_worker, 0, sizeof(CocoWorkerSlot));
	/* the database's slot goes with its last worker, unless work is waiting */
	if (slot && !slot->wake && coco_sched_count_workers(slot->dbid, false) == 0)
		slot->dbid = InvalidOid;
	SpinLockRelease(&shared->mutex);
	my_worker = NULL;
	if (launcher)
		SetLatch(launcher);
}

/*
 * Take a worker slot for `dbid`, unless the database has its share of
 * workers already (a launcher restarted after an error does not know the
 * workers its predecessor started).
 */
static bool
claim_worker_slot(Oid dbid)
{
	SpinLockAcquire(&shared->mutex);
	if (coco_sched_count_workers(dbid, false) < coco_workers_per_database)
	{
		for (int i = 0; i < COCO_MAX_WORKER_SLOTS && my_worker == NULL; i++)
			if (shared->workers[i].dbid == InvalidOid)
				my_worker = &shared->workers[i];
	}
	if (my_worker)
	{
		memset(my_worker, 0, sizeof(CocoWorkerSlot));
		my_worker->dbid = dbid;
		my_worker->pid = MyProcPid;
		my_worker->latch = MyLatch;
		my_worker->since = GetCurrentTimestamp();
		(void) coco_sched_find_slot(dbid, true);
	}
	SpinLockRelease(&shared->mutex);
	return my_worker != NULL;
}

/*
 * The runs that may start now, best first, at most `max`: for each app its
 * lowest queued run (one app's runs strictly in order), if its retry time
 * and the submit delay (for a run a source write queued, the longer of it
 * and the refresh delay) have passed, the app is not flagged and has no run
 * running; apps whose last run started longest ago first (turns across
 * apps).  Runs left by a dead worker are settled first.  *next_ms is set to
 * the time until the earliest run that is not due yet (-1: none).  Returns
 * -1 when the extension was dropped.
 */
static int
runs_due(QueuedRun *runs, int max, long *next_ms, bool *any_queued)
{
	CocoUserContext uc;
	Oid			types[2] = {INT4OID, INT4OID};
	Datum		values[2] = {Int32GetDatum(coco_submit_delay), Int32GetDatum(coco_refresh_delay)};
	int			found = 0;
	CocoSettled settled[COCO_MAX_WORKER_SLOTS];
	int			nsettled;
	bool		any_final = false;

	*any_queued = false;
	*next_ms = -1;
	if (!coco_bg_start_xact_if_installed("coco_target: looking for queued runs"))
		return -1;
	nsettled = coco_bg_settle_orphans(settled, COCO_MAX_WORKER_SLOTS);
	coco_bg_sweep_notes();
	coco_enter_extension_owner(&uc);
	coco_spi_exec("SELECT q.run_id, q.app_id, q.\"full\", q.attempts, a.owner, a.name, "
				  "  (EXTRACT(EPOCH FROM (GREATEST(q.retry_at, CASE WHEN q.attempts OPERATOR(pg_catalog.=) 0 "
				  "     THEN q.submitted_at OPERATOR(pg_catalog.+) pg_catalog.make_interval(secs => "
				  "       (CASE WHEN q.origin OPERATOR(pg_catalog.=) 'refresh' THEN GREATEST($1, $2) ELSE $1 END) "
				  "       OPERATOR(pg_catalog./) 1000.0) END) "
				  "   OPERATOR(pg_catalog.-) pg_catalog.clock_timestamp())) OPERATOR(pg_catalog.*) 1000)::pg_catalog.int8 AS wait_ms, "
				  "  GREATEST(LEAST(pg_catalog.ceil(EXTRACT(EPOCH FROM a.run_timeout) OPERATOR(pg_catalog.*) 1000), 2147483647), 0)::pg_catalog.int4 "
				  "FROM (SELECT DISTINCT ON (app_id) run_id, app_id, \"full\", attempts, retry_at, submitted_at, origin "
				  "        FROM coco.run WHERE status OPERATOR(pg_catalog.=) 'queued' "
				  "       ORDER BY app_id, run_id) q "
				  "JOIN coco.app a USING (app_id) "
				  "WHERE a.flagged IS NULL AND NOT EXISTS (SELECT FROM coco.run r "
				  "  WHERE r.app_id OPERATOR(pg_catalog.=) q.app_id AND r.status OPERATOR(pg_catalog.=) 'running') "
				  "ORDER BY (SELECT max(r.started_at) FROM coco.run r WHERE r.app_id OPERATOR(pg_catalog.=) q.app_id) "
				  "  NULLS FIRST, q.run_id",
				  2, types, values, NULL, SPI_OK_SELECT);
	coco_leave(&uc);
	for (uint64 i = 0; i < SPI_processed && found < max; i++)
	{
		HeapTuple	tup = SPI_tuptable->vals[i];
		TupleDesc	desc = SPI_tuptable->tupdesc;
		QueuedRun  *run = &runs[found];
		bool		isnull;
		int64		wait_ms = DatumGetInt64(SPI_getbinval(tup, desc, 7, &isnull));
		int32		app_timeout;

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
		/* the app's option lowers the setting, never raises it */
		app_timeout = DatumGetInt32(SPI_getbinval(tup, desc, 8, &isnull));
		run->timeout_ms = coco_run_timeout;
		run->app_limit = !isnull && app_timeout > 0 &&
			(run->timeout_ms == 0 || app_timeout < run->timeout_ms);
		if (run->app_limit)
			run->timeout_ms = app_timeout;
		found++;
	}
	coco_bg_end_xact();
	coco_bg_forget_settled(settled, nsettled);
	for (int i = 0; i < nsettled; i++)
		any_final |= settled[i].kind == COCO_SETTLED_FINAL;
	/* after the commit: a waiter woken now sees the final status */
	if (any_final)
		ConditionVariableBroadcast(&shared->run_done);
	return found;
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

	coco_bg_start_xact(activity);
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
	coco_bg_end_xact();
	return more;
}

/*
 * 1. Mark the run running, committed, so a crash leaves a trace, and let
 * the app's other queued runs that never started join it.  False when it
 * cannot start now: another worker took it or another run of its app, a
 * transaction that submitted into it has not committed yet, or the
 * extension or the app was dropped meanwhile.  The run is named in this
 * worker's slot first (settle.c relies on it); the caller clears that.
 */
static bool
mark_running(QueuedRun *run, const char *activity)
{
	CocoUserContext uc;
	Oid			types[3] = {INT8OID, INT4OID, INT4OID};
	Datum		values[3] = {Int64GetDatum(run->run_id), Int32GetDatum(MyProcPid),
	Int32GetDatum(run->app_id)};
	uint64		marked;

	set_my_run(run);
	if (!coco_bg_start_xact_if_installed(activity))
		return false;

	/*
	 * Transactions that auto-submit leave their declarations to a run that is
	 * still queued when they commit (submit.c), holding the app's submit lock
	 * until then: once we have it, every such transaction has committed, and
	 * the reconcile's snapshot, taken after this commits, sees them all.  One
	 * still open is not waited for: another app's run goes first.  Every
	 * worker marks runs under this lock, so the check that no run of the app
	 * is running holds until the commit.
	 */
	if (!coco_submit_lock_try(run->app_id))
	{
		coco_bg_end_xact();
		return false;
	}
	coco_enter_extension_owner(&uc);
	/* a run whose row is locked is being canceled (coco.cancel): not now */
	coco_spi_exec("UPDATE coco.run SET status = 'running', attempts = attempts OPERATOR(pg_catalog.+) 1, "
				  "started_at = pg_catalog.now(), finished_at = NULL, pid = $2 "
				  "WHERE run_id OPERATOR(pg_catalog.=) (SELECT q.run_id FROM coco.run q "
				  "  WHERE q.run_id OPERATOR(pg_catalog.=) $1 AND q.status OPERATOR(pg_catalog.=) 'queued' "
				  "  FOR UPDATE SKIP LOCKED) "
				  "AND NOT EXISTS (SELECT FROM coco.run r WHERE r.app_id OPERATOR(pg_catalog.=) $3 "
				  "                AND r.status OPERATOR(pg_catalog.=) 'running')",
				  3, types, values, NULL, SPI_OK_UPDATE);
	marked = SPI_processed;
	/* a run about to be canceled takes nobody's submits with it */
	if (marked > 0 && !coco_sched_find_note(run->run_id, COCO_NOTE_CANCEL, NULL))
	{
		/*
		 * Runs submitted before this commits and never started: this run
		 * reconciles everything they were submitted for.  A full one makes
		 * it full.  One being canceled (its row locked) does not join.
		 */
		coco_spi_exec("WITH joined AS (UPDATE coco.run SET status = 'coalesced', coalesced_into = $1, "
					  "  finished_at = pg_catalog.now() "
					  "  WHERE run_id OPERATOR(pg_catalog.=) ANY (ARRAY(SELECT q.run_id FROM coco.run q "
					  "    WHERE q.app_id OPERATOR(pg_catalog.=) $3 AND q.status OPERATOR(pg_catalog.=) 'queued' "
					  "    AND q.attempts OPERATOR(pg_catalog.=) 0 AND q.retry_at IS NULL "
					  "    AND q.run_id OPERATOR(pg_catalog.<>) $1 FOR UPDATE SKIP LOCKED)) "
					  "  RETURNING \"full\") "
					  "UPDATE coco.run SET \"full\" = true WHERE run_id OPERATOR(pg_catalog.=) $1 "
					  "AND NOT \"full\" AND EXISTS (SELECT FROM joined WHERE \"full\")",
					  3, types, values, NULL, SPI_OK_UPDATE);
		if (SPI_processed > 0)
			run->full = true;
	}
	coco_leave(&uc);
	coco_bg_end_xact();
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
		coco_notify_run_finished(run->app_name, run->run_id, "succeeded");
	coco_bg_end_xact();

	foreach(lc, top_level)
	{
		CocoTopLevelWork *w = lfirst(lc);
		bool		last = lnext(top_level, lc) == NULL;

		run_top_level(w->sql, run->owner, activity);
		app = start_xact_as_owner(run, activity, &save_userid, &save_sec);
		coco_prune_intent(app, w, last ? run->run_id : 0, ++completed);
		SetUserIdAndSecContext(save_userid, save_sec);
		if (last)
			coco_notify_run_finished(run->app_name, run->run_id, "succeeded");
		coco_bg_end_xact();
	}
}

/*
 * 4. A failure: back to the queue with a backoff, or failed for good.
 * `error` is the message (with the detail on a line of its own), `sqlstate`
 * its code.  Returns whether it failed for good.
 */
static bool
record_failure(QueuedRun *run, const char *activity, const char *sqlstate, const char *error)
{
	CocoUserContext uc;
	Oid			types[4] = {INT8OID, TEXTOID, INT4OID, TEXTOID};
	Datum		values[4];
	bool		retry = run->attempts < coco_max_attempts;

	coco_bg_start_xact(activity);
	if (!coco_bg_lock_run(run->run_id))
	{
		coco_bg_end_xact();
		return true;
	}
	values[0] = Int64GetDatum(run->run_id);
	values[1] = CStringGetTextDatum(error);
	values[2] = Int32GetDatum((int32) coco_bg_backoff_ms(run->attempts));
	values[3] = CStringGetTextDatum(sqlstate);
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
		coco_spi_exec("UPDATE coco.run SET status = 'queued', error = $2, sqlstate = $4, "
					  "finished_at = pg_catalog.now(), retry_at = pg_catalog.now() OPERATOR(pg_catalog.+) "
					  "pg_catalog.make_interval(secs => $3 OPERATOR(pg_catalog./) 1000.0) "
					  "WHERE run_id OPERATOR(pg_catalog.=) $1",
					  4, types, values, NULL, SPI_OK_UPDATE);
	else
		coco_spi_exec("UPDATE coco.run SET status = 'failed', error = $2, sqlstate = $4, "
					  "finished_at = pg_catalog.now(), retry_at = NULL "
					  "WHERE run_id OPERATOR(pg_catalog.=) $1",
					  4, types, values, NULL, SPI_OK_UPDATE);
	coco_leave(&uc);
	if (!retry)
		coco_notify_run_finished(run->app_name, run->run_id, "failed");
	coco_bg_end_xact();
	if (retry)
		ereport(LOG,
				(errmsg("coco_target: run " INT64_FORMAT " of app \"%s\" failed, retrying in %ld ms (attempt %d of %d)",
						run->run_id, run->app_name, coco_bg_backoff_ms(run->attempts),
						run->attempts, coco_max_attempts)));
	return !retry;
}

/* 4'. Cancelled by coco.cancel(): over, whatever attempts are left. */
static void
record_canceled(QueuedRun *run, const char *activity, Oid by)
{
	CocoUserContext uc;
	Oid			types[2] = {INT8OID, TEXTOID};
	Datum		values[2];

	coco_bg_start_xact(activity);
	if (!coco_bg_lock_run(run->run_id))
	{
		coco_bg_end_xact();
		return;
	}
	values[0] = Int64GetDatum(run->run_id);
	values[1] = CStringGetTextDatum(psprintf("canceled by role %s while running",
											 GetUserNameFromId(by, true) ? GetUserNameFromId(by, true) : "(dropped)"));
	coco_enter_extension_owner(&uc);
	coco_spi_exec("UPDATE coco.run SET status = 'canceled', error = $2, sqlstate = '57014', "
				  "finished_at = pg_catalog.now(), retry_at = NULL "
				  "WHERE run_id OPERATOR(pg_catalog.=) $1",
				  2, types, values, NULL, SPI_OK_UPDATE);
	coco_leave(&uc);
	coco_notify_run_finished(run->app_name, run->run_id, "canceled");
	coco_bg_end_xact();
}

/*
 * The outcome of an attempt that raised `edata`: cancelled by the owner,
 * past its time limit, or failed.  Returns whether the run is over.
 */
static bool
record_error(QueuedRun *run, const char *activity, ErrorData *edata)
{
	CocoRunNote cancel;

	if (coco_sched_find_note(run->run_id, COCO_NOTE_CANCEL, &cancel))
	{
		record_canceled(run, activity, cancel.by);
		return true;
	}
	if (run_timed_out)
		return record_failure(run, activity, "57014",
							  psprintf("canceled: the run took longer than its time limit of %s",
									   coco_bg_describe_limit(run->timeout_ms, run->app_limit)));
	/* the message, and on a line of its own the detail (who held a lock) */
	return record_failure(run, activity, unpack_sql_state(edata->sqlerrcode),
						  edata->detail ?
						  psprintf("%s\n%s", edata->message ? edata->message : "unknown error",
								   edata->detail) :
						  edata->message ? edata->message : "unknown error");
}

/*
 * Execute a run: mark it, reconcile it, complete it, record the outcome.
 * With `more_due`, other runs could start now too: once this one is
 * marked (so this worker counts as busy), another worker is asked for.
 * Returns false when it could not be started (mark_running).
 */
static bool
do_run(QueuedRun *run, bool more_due)
{
	char	   *activity;
	MemoryContext oldcxt;
	ErrorData  *volatile edata = NULL;
	volatile bool over = false;
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
	{
		set_my_run(NULL);
		return false;
	}
	if (more_due)
		coco_worker_wake(MyDatabaseId);

	/* 2. reconcile, with the app owner as the current user throughout */
	run_timed_out = false;
	if (run->timeout_ms > 0)
	{
		enable_timeout_after(run_timeout_id, run->timeout_ms);
		enable_timeout_after(run_overdue_id, run->timeout_ms + Min(COCO_TIMEOUT_GRACE_MS, INT_MAX - run->timeout_ms));
	}
	PG_TRY();
	{
		coco_bg_hold_cancels(false);
		/* a cancel that came before the hold was lifted */
		if (coco_sched_find_note(run->run_id, COCO_NOTE_CANCEL, NULL))
			ereport(ERROR,
					(errcode(ERRCODE_QUERY_CANCELED),
					 errmsg("run " INT64_FORMAT " was canceled", run->run_id)));

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
		over = true;
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
	disable_timeout(run_timeout_id, false);
	disable_timeout(run_overdue_id, false);
	coco_bg_hold_cancels(true);

	if (edata)
	{
		over = record_error(run, activity, edata);
		FreeErrorData(edata);
	}
	set_my_run(NULL);
	if (over)
	{
		/* nothing left to say about it */
		coco_sched_drop_notes(run->run_id, COCO_NOTE_FREE);
		/* after the commit: a waiter woken now sees the final status */
		ConditionVariableBroadcast(&shared->run_done);
	}
	return true;
}

/* A submit since we last looked?  Clears the mark: we are looking now. */
static bool
take_wake(bool clear)
{
	CocoDbSlot *slot;
	bool		wake = false;

	SpinLockAcquire(&shared->mutex);
	slot = coco_sched_find_slot(MyDatabaseId, false);
	if (slot)
	{
		wake = slot->wake;
		if (clear)
			slot->wake = false;
	}
	SpinLockRelease(&shared->mutex);
	return wake;
}

/* Records of failed synchronous runs of this database not inserted yet? */
static bool
failed_runs_waiting(void)
{
	bool		waiting;

	SpinLockAcquire(&shared->mutex);
	waiting = coco_sched_failed_runs_pending(MyDatabaseId);
	SpinLockRelease(&shared->mutex);
	return waiting;
}

/* Sleep until a submit wakes us or `ms` pass, marked idle meanwhile. */
static void
sleep_idle(long ms)
{
	CocoDbSlot *slot;
	bool		wake;

	/*
	 * Idle from now on, so a submit wakes us; one that came since we looked
	 * found us busy and woke nobody, so look again at once.
	 */
	SpinLockAcquire(&shared->mutex);
	my_worker->idle = true;
	my_worker->since = GetCurrentTimestamp();
	slot = coco_sched_find_slot(MyDatabaseId, false);
	wake = slot && slot->wake;
	SpinLockRelease(&shared->mutex);
	if (!wake)
		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 ms, PG_WAIT_EXTENSION);
	ResetLatch(MyLatch);
	SpinLockAcquire(&shared->mutex);
	my_worker->idle = false;
	SpinLockRelease(&shared->mutex);
}

/* runs looked at per scan of the queue: the first that can start, starts */
#define COCO_RUNS_PER_SCAN	8

/*
 * runs_due, surviving its failure: logged, and the queue is looked at again
 * after naptime, instead of the worker exiting and another one starting
 * to fail the same way at once.
 */
static int
scan_queue(QueuedRun *runs, long *next_ms, bool *any_queued)
{
	volatile int ndue = 0;

	PG_TRY();
	{
		ndue = runs_due(runs, COCO_RUNS_PER_SCAN, next_ms, any_queued);
	}
	PG_CATCH();
	{
		MemoryContextSwitchTo(worker_cxt);
		EmitErrorReport();
		AbortCurrentTransaction();
		FlushErrorState();
		coco_bg_hold_cancels(true);		/* error recovery lifted the hold */
		pgstat_report_activity(STATE_IDLE, NULL);
		*next_ms = -1;
		*any_queued = true;
		ndue = 0;
	}
	PG_END_TRY();
	return ndue;
}
/* a run due that could not start (its app busy) is tried again this soon */
#define COCO_BUSY_RETRY_MS	200

void
coco_db_worker_main(Datum arg)
{
	Oid			dbid = DatumGetObjectId(arg);
	TimestampTz idle_since;

	shared = coco_sched_shared();
	pqsignal(SIGTERM, die);
	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	pqsignal(SIGQUIT, quit_received);
	BackgroundWorkerUnblockSignals();
	BackgroundWorkerInitializeConnectionByOid(dbid, InvalidOid, 0);
	worker_cxt = AllocSetContextCreate(TopMemoryContext, "coco_target worker",
									   ALLOCSET_DEFAULT_SIZES);
	top_cxt = AllocSetContextCreate(TopMemoryContext, "coco_target top-level work",
									ALLOCSET_SMALL_SIZES);
	run_timeout_id = RegisterTimeout(USER_TIMEOUT, run_timeout_fired);
	run_overdue_id = RegisterTimeout(USER_TIMEOUT, run_overdue_fired);
	coco_bg_hold_cancels(true);

	/* announce ourselves, so submits wake us and coco.cancel finds our run */
	if (!claim_worker_slot(dbid))
		proc_exit(0);			/* the database has its workers */
	before_shmem_exit(release_slot, (Datum) 0);

	idle_since = GetCurrentTimestamp();
	for (;;)
	{
		QueuedRun	runs[COCO_RUNS_PER_SCAN];
		long		next_ms;
		bool		any_queued;
		bool		started = false;
		int			ndue;

		CHECK_FOR_INTERRUPTS();
		if (ConfigReloadPending)
		{
			ConfigReloadPending = false;
			ProcessConfigFile(PGC_SIGHUP);
		}
		/* cleared before looking: a submit after this sets it again */
		(void) take_wake(true);

		MemoryContextReset(worker_cxt);
		coco_bg_record_failed_runs(worker_cxt);
		coco_bg_purge_old_runs(worker_cxt);
		ndue = scan_queue(runs, &next_ms, &any_queued);
		if (ndue < 0)
		{
			elog(DEBUG1, "coco_target: extension not installed in this database any more, worker exiting");
			proc_exit(0);
		}
		for (int i = 0; i < ndue && !started; i++)
			started = do_run(&runs[i], i + 1 < ndue);
		if (started)
		{
			idle_since = GetCurrentTimestamp();
			continue;
		}
		if (any_queued)
			idle_since = GetCurrentTimestamp();
		else if (TimestampDifferenceExceeds(idle_since, GetCurrentTimestamp(), COCO_IDLE_EXIT_MS))
		{
			/* give the pool slot back, unless a submit just arrived */
			if (!take_wake(false) && !failed_runs_waiting())
				proc_exit(0);
			continue;
		}
		if (ndue > 0)
			next_ms = next_ms < 0 ? COCO_BUSY_RETRY_MS : Min(next_ms, COCO_BUSY_RETRY_MS);
		sleep_idle(next_ms >= 0 && next_ms < coco_naptime ? Max(next_ms, 1) : coco_naptime);
	}
}
