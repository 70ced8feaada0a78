/*
 * submit.c — coco.submit() and coco.wait(): the SQL side of the background
 * worker (worker.c).
 *
 * coco.submit() queues a run (a coco.run row with status 'queued') and, at
 * commit, wakes the worker that serves the database; a rolled-back submit
 * queues nothing and wakes nobody.  coco.wait() sleeps on the condition
 * variable the worker broadcasts after every finished run.
 *
 * Auto-submit: a declaration into an app with auto_submit on notes the app
 * for the current (sub)transaction; just before the transaction commits, a
 * run is queued for each noted app that still has declarations staged and
 * no run waiting, and the worker is woken after the commit.  An aborted
 * (sub)transaction forgets what it noted.
 */
#include "postgres.h"

#include "access/xact.h"
#include "catalog/pg_type.h"
#include "miscadmin.h"
#include "storage/condition_variable.h"
#include "commands/async.h"
#include "commands/extension.h"
#include "storage/lmgr.h"
#include "storage/lock.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/json.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"

#include "coco_internal.h"

/* ---- coco.submit() -------------------------------------------------------- */

/* runs submitted by this transaction: waking happens at commit */
static bool wake_at_commit = false;
/* runs this transaction ended (coco.cancel): their waiters wake at commit */
static bool broadcast_at_commit = false;
static List *submitted_runs = NIL;

/* ---- auto-submit ------------------------------------------------------------ */

/*
 * The apps with auto_submit this transaction declared into, each with the
 * subtransaction that did (so that rolling it back forgets it).  In
 * TopTransactionContext; at most one entry per app and subtransaction.
 */
typedef struct NotedApp
{
	int			app_id;
	SubTransactionId subid;
	bool		persistent;		/* its synced tables were (un)registered */
} NotedApp;

static List *noted_apps = NIL;

/* the submit lock of an app: see queue_noted_runs() */
#define COCO_SUBMIT_LOCK_CLASS	0x636f636f	/* 'coco', as the app lock */
#define COCO_SUBMIT_LOCK_KIND	3			/* the app lock is 2 */

void
coco_submit_lock(int app_id, LOCKMODE mode)
{
	LOCKTAG		tag;

	SET_LOCKTAG_ADVISORY(tag, MyDatabaseId, COCO_SUBMIT_LOCK_CLASS, (uint32) app_id,
						 COCO_SUBMIT_LOCK_KIND);
	(void) LockAcquire(&tag, mode, false, false);
}

/* The submit lock in exclusive mode, if no transaction holds it now. */
bool
coco_submit_lock_try(int app_id)
{
	LOCKTAG		tag;

	SET_LOCKTAG_ADVISORY(tag, MyDatabaseId, COCO_SUBMIT_LOCK_CLASS, (uint32) app_id,
						 COCO_SUBMIT_LOCK_KIND);
	return LockAcquire(&tag, ExclusiveLock, false, true) != LOCKACQUIRE_NOT_AVAIL;
}

static NotedApp *
noted(int app_id, SubTransactionId subid)
{
	ListCell   *lc;

	foreach(lc, noted_apps)
	{
		NotedApp   *n = lfirst(lc);

		if (n->app_id == app_id && n->subid == subid)
			return n;
	}
	return NULL;
}

static NotedApp *
note(const CocoApp *app)
{
	SubTransactionId subid = GetCurrentSubTransactionId();
	NotedApp   *n = noted(app->app_id, subid);
	MemoryContext old;

	if (n != NULL)
		return n;
	old = MemoryContextSwitchTo(TopTransactionContext);
	n = palloc0(sizeof(NotedApp));
	n->app_id = app->app_id;
	n->subid = subid;
	noted_apps = lappend(noted_apps, n);
	MemoryContextSwitchTo(old);
	return n;
}

/*
 * The engine's declared hook (coco_declaring), called by every declaration
 * right after looking the app up: with auto_submit on, the commit of this
 * transaction submits the app.
 */
void
coco_note_declared(const CocoApp *app)
{
	if (app->auto_submit)
		(void) note(app);
}

/*
 * coco.sync_table() or coco.unsync_table() changed the app's persistent
 * declarations: they stage nothing, so with auto_submit on the commit
 * submits the app for that alone.
 */
void
coco_note_persistent_changed(const CocoApp *app)
{
	if (app->auto_submit)
		note(app)->persistent = true;
}

static void
submit_subxact_callback(SubXactEvent event, SubTransactionId mySubid,
						SubTransactionId parentSubid, void *arg)
{
	ListCell   *lc;

	if (event != SUBXACT_EVENT_COMMIT_SUB && event != SUBXACT_EVENT_ABORT_SUB)
		return;
	foreach(lc, noted_apps)
	{
		NotedApp   *n = lfirst(lc);

		if (n->subid != mySubid)
			continue;
		/* rolled back: its declarations are gone; committed: the parent's */
		if (event == SUBXACT_EVENT_ABORT_SUB)
			noted_apps = foreach_delete_current(noted_apps, lc);
		else
		{
			NotedApp   *parent = noted(n->app_id, parentSubid);

			if (parent != NULL)
			{
				parent->persistent |= n->persistent;
				noted_apps = foreach_delete_current(noted_apps, lc);
			}
			else
				n->subid = parentSubid;
		}
	}
}

/*
 * Queue a run for each noted app, just before the commit (or the PREPARE
 * TRANSACTION).  Still inside the transaction: the runs commit with the
 * declarations or not at all.  An app is skipped when it was dropped in
 * this transaction, or has nothing staged (a reconcile in this transaction
 * took the declarations), unless it registered or removed a synced table
 * (which stages nothing: the registration is what the run evaluates).
 *
 * A run already waiting ('queued', not yet 'running') takes these
 * declarations too, provided it cannot start before this transaction has
 * committed: the worker takes the app's submit lock exclusively to mark a
 * run 'running', and this holds it in share mode (committing transactions
 * do not wait for each other) until the commit is visible.  The queued run
 * is looked for with the latest snapshot, so a run that started meanwhile
 * is seen as running whatever the isolation level.  A prepared transaction
 * must not hold the lock (the worker would wait for COMMIT PREPARED), so it
 * always queues a run of its own.
 *
 * Returns whether any run was queued.
 */
static bool
queue_noted_runs(bool prepare)
{
	List	   *apps = NIL;
	List	   *persistent = NIL;
	ListCell   *lc;
	bool		pushed = false;
	bool		queued = false;
	CocoUserContext uc;
	SPIPlanPtr	waiting_plan;
	Oid			types[1] = {INT4OID};

	foreach(lc, noted_apps)
	{
		NotedApp   *n = lfirst(lc);

		apps = list_append_unique_int(apps, n->app_id);
		if (n->persistent)
			persistent = list_append_unique_int(persistent, n->app_id);
	}
	noted_apps = NIL;
	/* DROP EXTENSION in this transaction: nothing left to submit to */
	if (apps == NIL || !OidIsValid(get_extension_oid("coco_target", true)))
		return false;

	if (!ActiveSnapshotSet())
	{
		PushActiveSnapshot(GetTransactionSnapshot());
		pushed = true;
	}
	SPI_connect();
	coco_enter_extension_owner(&uc);
	/* one a transaction is canceling (its row locked) does not count */
	waiting_plan = SPI_prepare("SELECT 1 FROM coco.run WHERE app_id OPERATOR(pg_catalog.=) $1 "
							   "AND status OPERATOR(pg_catalog.=) 'queued' LIMIT 1 FOR SHARE SKIP LOCKED",
							   1, types);
	if (waiting_plan == NULL)
		elog(ERROR, "coco_target: SPI_prepare failed: %s", SPI_result_code_string(SPI_result));
	foreach(lc, apps)
	{
		Datum		values[1] = {Int32GetDatum(lfirst_int(lc))};
		bool		isnull;
		int			rc;

		(void) coco_spi_int8(list_member_int(persistent, lfirst_int(lc)) ?
							 "SELECT 1 FROM coco.app a WHERE a.app_id OPERATOR(pg_catalog.=) $1" :
							 "SELECT 1 FROM coco.app a WHERE a.app_id OPERATOR(pg_catalog.=) $1 AND ("
							 "EXISTS (SELECT FROM coco.staged_state s WHERE s.app_id OPERATOR(pg_catalog.=) $1) OR "
							 "EXISTS (SELECT FROM coco.staged_row s WHERE s.app_id OPERATOR(pg_catalog.=) $1) OR "
							 "EXISTS (SELECT FROM coco.staged_query s WHERE s.app_id OPERATOR(pg_catalog.=) $1) OR "
							 "EXISTS (SELECT FROM coco.cleared_component s WHERE s.app_id OPERATOR(pg_catalog.=) $1))",
							 1, types, values, &isnull);
		if (isnull)
			continue;
		if (!prepare)
		{
			coco_submit_lock(lfirst_int(lc), ShareLock);
			rc = SPI_execute_snapshot(waiting_plan, values, NULL, GetLatestSnapshot(),
									  InvalidSnapshot, false, false, 1);
			if (rc != SPI_OK_SELECT)
				elog(ERROR, "coco_target: unexpected SPI result %s", SPI_result_code_string(rc));
			if (SPI_processed > 0)
				continue;		/* that run will see this transaction's declarations */
		}
		coco_spi_exec("INSERT INTO coco.run (app_id, \"full\", status, submitted_at, attempts, origin) "
					  "VALUES ($1, false, 'queued', pg_catalog.now(), 0, 'worker')",
					  1, types, values, NULL, SPI_OK_INSERT);
		queued = true;
	}
	coco_leave(&uc);
	SPI_finish();
	if (pushed)
		PopActiveSnapshot();
	return queued;
}

static void
submit_xact_callback(XactEvent event, void *arg)
{
	switch (event)
	{
		case XACT_EVENT_PRE_COMMIT:
			if (noted_apps != NIL && queue_noted_runs(false))
				wake_at_commit = true;
			break;
		case XACT_EVENT_PRE_PREPARE:
			if (noted_apps != NIL)
				(void) queue_noted_runs(true);
			break;
		case XACT_EVENT_COMMIT:
		case XACT_EVENT_PARALLEL_COMMIT:
			if (wake_at_commit && coco_worker_available())
				coco_worker_wake(MyDatabaseId);
			if (broadcast_at_commit && coco_worker_available())
				coco_run_done_broadcast();
			wake_at_commit = false;
			broadcast_at_commit = false;
			submitted_runs = NIL;	/* freed with TopTransactionContext */
			noted_apps = NIL;
			break;
		case XACT_EVENT_ABORT:
		case XACT_EVENT_PARALLEL_ABORT:
		case XACT_EVENT_PREPARE:
			/* a prepared submit is found by the launcher's periodic look */
			wake_at_commit = false;
			broadcast_at_commit = false;
			submitted_runs = NIL;
			noted_apps = NIL;
			break;
		default:
			break;
	}
}

/*
 * The payload listeners of the coco_target channel get for a run that
 * ended: {"app": …, "run_id": …, "status": …}.
 */
void
coco_notify_run_finished(const char *app, int64 run_id, const char *status)
{
	StringInfoData payload;

	initStringInfo(&payload);
	appendStringInfoString(&payload, "{\"app\": ");
	escape_json(&payload, app);
	appendStringInfo(&payload, ", \"run_id\": " INT64_FORMAT ", \"status\": \"%s\"}", run_id, status);
	Async_Notify("coco_target", payload.data);
}

void
coco_broadcast_runs_done_at_commit(void)
{
	broadcast_at_commit = true;
}

static void
check_worker_available(const char *fn)
{
	if (!coco_worker_available())
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("%s requires the coco_target background worker", fn),
				 errdetail("The coco_target library was not loaded through shared_preload_libraries, so no worker runs."),
				 errhint("Add coco_target to shared_preload_libraries in postgresql.conf and restart the server, "
						 "or reconcile synchronously with coco.reconcile().")));
}

/*
 * An app flagged because a run of it crashed its worker runs again when a
 * member of its owner role asks for a worker run: coco.submit(), or a
 * reconcile that leaves the worker intents to complete.
 */
static void
clear_flag(const CocoApp *app)
{
	CocoUserContext uc;
	Oid			types[1] = {INT4OID};
	Datum		values[1] = {Int32GetDatum(app->app_id)};

	coco_enter_extension_owner(&uc);
	coco_spi_exec("UPDATE coco.app SET flagged = NULL "
				  "WHERE app_id OPERATOR(pg_catalog.=) $1 AND flagged IS NOT NULL",
				  1, types, values, NULL, SPI_OK_UPDATE);
	coco_leave(&uc);
}

/*
 * coco.submit(app, full) — queue a run of the app for the background worker
 * and return its run_id.  The worker is woken when this transaction commits.
 * An app flagged because a run of it crashed its worker runs again: its
 * owner asked for it.
 */
PG_FUNCTION_INFO_V1(coco_submit);
Datum
coco_submit(PG_FUNCTION_ARGS)
{
	CocoApp    *app;
	int64		run_id;

	check_worker_available("coco.submit()");
	coco_require_arg(fcinfo, 0, "app name");
	coco_require_arg(fcinfo, 1, "\"full\"");

	SPI_connect();
	app = coco_app_lookup(text_to_cstring(PG_GETARG_TEXT_PP(0)));
	clear_flag(app);
	run_id = coco_queue_run(app, PG_GETARG_BOOL(1), "worker");
	SPI_finish();
	PG_RETURN_INT64(run_id);
}

/* Remembered so coco.wait() can refuse a run this transaction queued. */
static void
remember_submitted(int64 run_id)
{
	int64	   *idp = MemoryContextAlloc(TopTransactionContext, sizeof(int64));
	MemoryContext old;

	*idp = run_id;
	old = MemoryContextSwitchTo(TopTransactionContext);
	submitted_runs = lappend(submitted_runs, idp);
	MemoryContextSwitchTo(old);
}

/*
 * A run of the app already waiting in the queue, which will see this
 * transaction's work (0: none).  As for auto-submit: the submit lock, held
 * to commit, keeps the worker from starting that run before this commits;
 * under a transaction snapshot a run seen as queued may have started
 * already, so none is reused there.
 */
int64
coco_queued_run(const CocoApp *app)
{
	CocoUserContext uc;
	Oid			types[1] = {INT4OID};
	Datum		values[1] = {Int32GetDatum(app->app_id)};
	bool		isnull;
	int64		run_id;

	if (IsolationUsesXactSnapshot())
		return 0;
	coco_submit_lock(app->app_id, ShareLock);
	coco_enter_extension_owner(&uc);
	/* one a transaction is canceling (its row locked) is not reused */
	run_id = coco_spi_int8("SELECT run_id FROM coco.run WHERE app_id OPERATOR(pg_catalog.=) $1 "
						   "AND status OPERATOR(pg_catalog.=) 'queued' AND retry_at IS NULL "
						   "ORDER BY run_id LIMIT 1 FOR SHARE SKIP LOCKED",
						   1, types, values, &isnull);
	coco_leave(&uc);
	if (isnull)
		return 0;
	/* the worker cannot start it before this commits: coco.wait must refuse */
	remember_submitted(run_id);
	return run_id;
}

/*
 * The run that completes the intents a run in the caller's transaction
 * left: one already queued (which keeps its origin), or a new one, whose
 * origin is 'completion' (the engine's completion hook).
 */
int64
coco_queue_completion_run(const CocoApp *app)
{
	int64		run_id;

	if (!coco_worker_available())
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("app \"%s\" has changes for targets outside the database, which need the background worker",
						app->name),
				 errdetail("Files and similar targets are written after the run commits, by the worker."),
				 errhint("Add coco_target to shared_preload_libraries and restart the server.")));
	clear_flag(app);
	run_id = coco_queued_run(app);
	return run_id != 0 ? run_id : coco_queue_run(app, false, "completion");
}

/*
 * Queue a run of the app for the worker, woken when this transaction
 * commits; returns its run_id.  `origin` is what coco.runs shows it came
 * from (see coco.run.origin).  Inside SPI.
 */
int64
coco_queue_run(const CocoApp *app, bool full, const char *origin)
{
	CocoUserContext uc;
	Oid			types[3] = {INT4OID, BOOLOID, TEXTOID};
	Datum		values[3] = {Int32GetDatum(app->app_id), BoolGetDatum(full),
	CStringGetTextDatum(origin)};
	bool		isnull;
	int64		run_id;

	coco_enter_extension_owner(&uc);
	run_id = coco_spi_int8("INSERT INTO coco.run (app_id, \"full\", status, submitted_at, attempts, origin) "
						   "VALUES ($1, $2, 'queued', pg_catalog.now(), 0, $3) RETURNING run_id",
						   3, types, values, &isnull);
	coco_leave(&uc);

	wake_at_commit = true;
	remember_submitted(run_id);
	return run_id;
}

bool
coco_submitted_here(int64 run_id)
{
	ListCell   *lc;

	foreach(lc, submitted_runs)
		if (*(int64 *) lfirst(lc) == run_id)
			return true;
	return false;
}

/* ---- coco.wait() ---------------------------------------------------------- */

static void pg_attribute_noreturn()
run_not_found(int64 run_id)
{
	ereport(ERROR,
			(errcode(ERRCODE_UNDEFINED_OBJECT),
			 errmsg("run %lld does not exist", (long long) run_id),
			 errdetail("Runs disappear with their app; runs of other roles' apps cannot be waited on.")));
}

/*
 * A run that failed for good, or was canceled, raises the SQLSTATE of its
 * last error (57014 for a cancel or a time-out), or 38000 where none was
 * recorded (its worker died) — never an internal-error code: that is the
 * extension's fault, told as 38000 with the code in the detail.
 */
static void pg_attribute_noreturn()
raise_run_error(int64 asked, int64 run_id, const char *status, const char *app, const char *error,
				const char *sqlstate)
{
	int			code = ERRCODE_EXTERNAL_ROUTINE_EXCEPTION;
	const char *outcome = strcmp(status, "canceled") == 0 ? "was canceled" : "failed";

	if (sqlstate != NULL && strlen(sqlstate) == 5 && strncmp(sqlstate, "XX", 2) != 0)
		code = MAKE_SQLSTATE(sqlstate[0], sqlstate[1], sqlstate[2], sqlstate[3], sqlstate[4]);
	ereport(ERROR,
			(errcode(code),
			 asked == run_id ?
			 errmsg("run %lld of app \"%s\" %s", (long long) run_id, app, outcome) :
			 errmsg("run %lld of app \"%s\" joined run %lld, which %s",
					(long long) asked, app, (long long) run_id, outcome),
			 errdetail("%s", error ? error : "No error was recorded."),
			 errhint("See coco.runs for the run's attempts.")));
}

/*
 * coco.wait(run_id, timeout) — wait until the run has succeeded (return its
 * stats) or failed for good (raise its error).  A run that joined another
 * (coalesced) has that run's outcome.  Sleeps on the condition
 * variable the worker broadcasts after every finished run, re-reading the
 * run with a new snapshot at each wake-up.
 */
PG_FUNCTION_INFO_V1(coco_wait);
Datum
coco_wait(PG_FUNCTION_ARGS)
{
	int64		run_id;
	Interval   *timeout;
	int64		timeout_us;
	TimestampTz deadline;
	Oid			types[1] = {INT8OID};
	Datum		values[1];
	Jsonb	   *result = NULL;
	bool		checked_owner = false;

	check_worker_available("coco.wait()");
	coco_require_arg(fcinfo, 0, "run_id");
	coco_require_arg(fcinfo, 1, "timeout");
	run_id = PG_GETARG_INT64(0);
	timeout = PG_GETARG_INTERVAL_P(1);
	timeout_us = timeout->time + (int64) timeout->day * USECS_PER_DAY +
		(int64) timeout->month * DAYS_PER_MONTH * USECS_PER_DAY;
	if (timeout_us < 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("timeout must not be negative")));
	if (coco_submitted_here(run_id))
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("run %lld was submitted in this transaction", (long long) run_id),
				 errdetail("The worker cannot see the run until the transaction commits."),
				 errhint("Commit first, then call coco.wait().")));
	deadline = GetCurrentTimestamp() + timeout_us;
	values[0] = Int64GetDatum(run_id);

	SPI_connect();
	/* on the list before the first look, so no broadcast can be missed */
	coco_run_done_prepare();
	for (;;)
	{
		CocoUserContext uc;
		bool		isnull;
		char	   *status;
		HeapTuple	tup;
		TupleDesc	desc;
		long		remaining;

		/* not read-only: in READ COMMITTED each call takes a new snapshot */
		coco_enter_extension_owner(&uc);
		coco_spi_exec("SELECT r.status, r.stats, r.error, a.owner, a.name, r.sqlstate, r.coalesced_into, "
					  "a.flagged "
					  "FROM coco.run r JOIN coco.app a USING (app_id) "
					  "WHERE r.run_id OPERATOR(pg_catalog.=) $1",
					  1, types, values, NULL, SPI_OK_SELECT);
		coco_leave(&uc);
		if (SPI_processed == 0)
			run_not_found(run_id);
		tup = SPI_tuptable->vals[0];
		desc = SPI_tuptable->tupdesc;
		if (!checked_owner)
		{
			Oid			owner = DatumGetObjectId(SPI_getbinval(tup, desc, 4, &isnull));

			/* another role's run is not told apart from one that does not exist */
			if (!has_privs_of_role(GetUserId(), owner))
				run_not_found(run_id);
			checked_owner = true;
		}
		status = SPI_getvalue(tup, desc, 1);
		if (strcmp(status, "coalesced") == 0)
		{
			/* it joined a run of the same app: that run's result is its own */
			values[0] = SPI_getbinval(tup, desc, 7, &isnull);
			if (!isnull)
				continue;
		}
		if (strcmp(status, "succeeded") == 0)
		{
			Datum		d = SPI_getbinval(tup, desc, 2, &isnull);

			if (!isnull)
			{
				Jsonb	   *stats = DatumGetJsonbP(d);

				result = SPI_palloc(VARSIZE(stats));
				memcpy(result, stats, VARSIZE(stats));
			}
			break;
		}
		if (strcmp(status, "failed") == 0 || strcmp(status, "canceled") == 0)
			raise_run_error(PG_GETARG_INT64(0), DatumGetInt64(values[0]), status, SPI_getvalue(tup, desc, 5),
							SPI_getvalue(tup, desc, 3), SPI_getvalue(tup, desc, 6));
		if (IsolationUsesXactSnapshot())
			ereport(ERROR,
					(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
					 errmsg("run %lld has not finished yet", (long long) run_id),
					 errdetail("A repeatable read or serializable transaction never sees the worker's later commits."),
					 errhint("Call coco.wait() in a read committed transaction.")));

		remaining = (long) ((deadline - GetCurrentTimestamp()) / 1000);
		if (remaining <= 0 && SPI_getvalue(tup, desc, 8) != NULL)
			ereport(ERROR,
					(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
					 errmsg("timed out waiting for run %lld", (long long) run_id),
					 errdetail("The run is still %s, and the worker starts no run of app \"%s\": %s.",
							   status, SPI_getvalue(tup, desc, 5), SPI_getvalue(tup, desc, 8)),
					 errhint("The app's owner clears the flag by calling coco.submit() again.")));
		if (remaining <= 0)
			ereport(ERROR,
					(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
					 errmsg("timed out waiting for run %lld", (long long) run_id),
					 errdetail("The run is still %s.", status),
					 errhint("Wait longer, or look at coco.runs and the server log.")));

		/*
		 * The 10 s cap only bounds the wait if a worker died between
		 * committing a run and broadcasting; normally the broadcast wakes us.
		 */
		coco_run_done_sleep(Min(remaining, 10000L));
		SPI_freetuptable(SPI_tuptable);
	}
	ConditionVariableCancelSleep();
	SPI_finish();
	if (result == NULL)
		PG_RETURN_NULL();
	PG_RETURN_JSONB_P(result);
}

/* ---- setup ------------------------------------------------------------------ */

void
coco_submit_init(void)
{
	RegisterXactCallback(submit_xact_callback, NULL);
	RegisterSubXactCallback(submit_subxact_callback, NULL);
}
