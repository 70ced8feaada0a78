/*
 * sync_run.c — the synchronous run in progress in this backend
 * (coco.reconcile, coco.update), so that one that fails is still recorded.
 *
 * PostgreSQL has no autonomous transactions: the run's row of coco.run is
 * written in the caller's transaction and rolls back with it.  So the
 * failure is caught around the run (engine.c) and its record handed, through
 * the failed-run hook (hooks.c), to the scheduler, which passes it to the
 * background worker of the database through shared memory; the worker
 * inserts it.  The error itself goes on to the caller unchanged.
 *
 * A session ended by FATAL in the middle of a run (pg_terminate_backend)
 * never reaches the catch: its record is handed on from a before_shmem_exit
 * callback, which only copies plain data into shared memory.  The FATAL's
 * code and message are caught on their way to the log (emit_log_hook), as
 * the error data is gone by the time the backend exits.
 *
 * Also where a synchronous run comes from: 'cron' when the session is a
 * pg_cron job, 'session' otherwise.
 */
#include "postgres.h"

#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "postmaster/bgworker.h"
#include "storage/ipc.h"
#include "utils/elog.h"
#include "utils/guc.h"
#include "utils/timestamp.h"

#include "coco_internal.h"

/* what a truncated message ends with */
#define TRUNCATED_MARKER " [truncated]"

static CocoSyncRun current;
static bool exit_callback_registered = false;
static emit_log_hook_type prev_emit_log_hook = NULL;

/* the FATAL that ends this backend in the middle of a run */
static int	fatal_code = 0;
static char fatal_message[COCO_FAILED_MESSAGE_MAX];

/*
 * A pg_cron job runs its command through a libpq connection whose
 * application_name is "pg_cron" (its fallback_application_name), or, with
 * cron.use_background_workers, in a background worker of type "pg_cron".
 * (A session may call itself "pg_cron": that only changes this label.)
 */
const char *
coco_session_origin(void)
{
	if (MyBgworkerEntry != NULL && strcmp(MyBgworkerEntry->bgw_type, "pg_cron") == 0)
		return "cron";
	if (application_name != NULL && strcmp(application_name, "pg_cron") == 0)
		return "cron";
	return "session";
}

/* Copy `src` into `dst` of `size` bytes, cut at a character boundary. */
static void
copy_message(char *dst, int size, const char *src)
{
	int			len = strlen(src);

	if (len < size)
	{
		memcpy(dst, src, len + 1);
		return;
	}
	len = pg_mbcliplen(src, len, size - (int) sizeof(TRUNCATED_MARKER));
	memcpy(dst, src, len);
	memcpy(dst + len, TRUNCATED_MARKER, sizeof(TRUNCATED_MARKER));
}

static void
report(int sqlerrcode, const char *message)
{
	CocoFailedRun r;

	memset(&r, 0, sizeof(r));
	r.app_id = current.app_id;
	r.owner = current.owner;
	strlcpy(r.app_name, current.app_name, sizeof(r.app_name));
	r.run_id = current.run_id;
	r.full = current.full;
	strlcpy(r.origin, coco_session_origin(), sizeof(r.origin));
	strlcpy(r.sqlstate, unpack_sql_state(sqlerrcode), sizeof(r.sqlstate));
	r.started_at = current.started_at;
	r.finished_at = GetCurrentTimestamp();
	r.pid = MyProcPid;
	copy_message(r.message, sizeof(r.message), message ? message : "unknown error");
	coco_report_failed_run(&r);
}

/* A FATAL on its way to the log: keep its code and message for exit. */
static void
catch_fatal(ErrorData *edata)
{
	if (current.active && edata->elevel >= FATAL && fatal_code == 0)
	{
		fatal_code = edata->sqlerrcode;
		copy_message(fatal_message, sizeof(fatal_message),
					 edata->message ? edata->message : "the session ended");
	}
	if (prev_emit_log_hook)
		prev_emit_log_hook(edata);
}

/*
 * The backend exits in the middle of a run: only a FATAL gets here with
 * a run active (an ERROR is caught around the run first).  Shared memory
 * is still attached; the report is copied into it and the worker woken.
 */
static void
record_at_exit(int code, Datum arg)
{
	if (!current.active || !current.started)
		return;
	if (fatal_code != 0)
		report(fatal_code, fatal_message);
	else
		report(ERRCODE_ADMIN_SHUTDOWN, "the session ended during the run");
	current.active = false;
}

/* From _PG_init. */
void
coco_sync_run_init(void)
{
	prev_emit_log_hook = emit_log_hook;
	emit_log_hook = catch_fatal;
}

/*
 * A synchronous run of `app` starts; the run it is nested in (a
 * declaration function's coco.reconcile of another app) is kept in `saved`
 * and comes back with coco_sync_run_end.
 */
void
coco_sync_run_begin(const CocoApp *app, bool full, CocoSyncRun *saved)
{
	if (!exit_callback_registered)
	{
		before_shmem_exit(record_at_exit, (Datum) 0);
		exit_callback_registered = true;
	}
	*saved = current;
	current.active = true;
	current.started = false;
	current.app_id = app->app_id;
	current.owner = app->owner;
	copy_message(current.app_name, sizeof(current.app_name), app->name);
	current.run_id = 0;
	current.full = full;
	current.started_at = GetCurrentTimestamp();
}

/*
 * The run guard let the run start.  A call refused before (one nested in
 * another run of this session) is the caller's mistake, not a run of the
 * app: it is not recorded.
 */
void
coco_sync_run_started(void)
{
	if (current.active)
		current.started = true;
}

/* The engine took the run's id (engine.c next_run_id). */
void
coco_sync_run_took_id(int64 run_id)
{
	if (current.active)
		current.run_id = run_id;
}

/*
 * In the PG_CATCH around the run: hand its record on.  The error data is
 * copied into `cxt` (not ErrorContext) and freed again; the error itself is
 * left in place for the caller to re-throw.
 */
void
coco_sync_run_failed(MemoryContext cxt)
{
	MemoryContext old = MemoryContextSwitchTo(cxt);
	ErrorData  *edata = CopyErrorData();

	if (current.active && current.started)
	{
		/* the message, and on a line of its own the detail, as the worker's */
		if (edata->detail)
			report(edata->sqlerrcode,
				   psprintf("%s\n%s", edata->message ? edata->message : "unknown error", edata->detail));
		else
			report(edata->sqlerrcode, edata->message);
	}
	FreeErrorData(edata);
	MemoryContextSwitchTo(old);
}

void
coco_sync_run_end(const CocoSyncRun *saved)
{
	current = *saved;
}
