/*
 * bookkeeping.c — what the background workers' own bookkeeping is made of:
 * one short transaction per unit of work (and whether the extension is
 * still there), cancels held between runs, the retry backoff, and how
 * limits and roles are told in messages.
 */
#include "postgres.h"

#include "access/xact.h"
#include "catalog/pg_extension.h"
#include "catalog/pg_type.h"
#include "commands/extension.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "storage/lmgr.h"
#include "utils/snapmgr.h"

#include "coco_internal.h"
#include "bgworker.h"

/*
 * A cancel (SIGINT, from coco.cancel or the time limit) interrupts a run
 * only.  Between runs it is held — the worker's own bookkeeping is never
 * interrupted — and dropped when the next run starts: it was meant for a
 * run that is over.  (Error recovery resets the hold count, so it is set,
 * not counted.)
 */
void
coco_bg_hold_cancels(bool hold)
{
	QueryCancelHoldoffCount = hold ? 1 : 0;
	if (!hold)
		QueryCancelPending = false;
}

/* One short transaction per unit of work, as worker_spi does it. */
void
coco_bg_start_xact(const char *activity)
{
	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	SPI_connect();
	PushActiveSnapshot(GetTransactionSnapshot());
	pgstat_report_activity(STATE_RUNNING, activity);
}

void
coco_bg_end_xact(void)
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
bool
coco_bg_start_xact_if_installed(const char *activity)
{
	coco_bg_start_xact(activity);
	if (extension_present())
		return true;
	coco_bg_end_xact();
	return false;
}


/* retry_base, doubled per further attempt, at most COCO_RETRY_MAX_MS */
long
coco_bg_backoff_ms(int attempts)
{
	int64		ms = coco_retry_base;

	for (int i = 1; i < attempts && ms < COCO_RETRY_MAX_MS; i++)
		ms *= 2;
	return (long) Min(ms, COCO_RETRY_MAX_MS);
}

/*
 * Lock run_id's row for the updates of this transaction, unless another
 * transaction holds it — one dropping the run's app — or it is gone: then
 * false, and the outcome is not recorded (the run goes with its app); no
 * worker waits for a user's transaction.
 */
bool
coco_bg_lock_run(int64 run_id)
{
	CocoUserContext uc;
	Oid			types[1] = {INT8OID};
	Datum		values[1] = {Int64GetDatum(run_id)};

	coco_enter_extension_owner(&uc);
	coco_spi_exec("SELECT 1 FROM coco.run WHERE run_id OPERATOR(pg_catalog.=) $1 FOR UPDATE SKIP LOCKED",
				  1, types, values, NULL, SPI_OK_SELECT);
	coco_leave(&uc);
	return SPI_processed > 0;
}

/* A time limit for messages: "90 s (coco_target.run_timeout)". */
char *
coco_bg_describe_limit(int ms, bool app_limit)
{
	const char *source = app_limit ? "the app's run_timeout option" : "coco_target.run_timeout";

	if (ms % 1000 == 0)
		return psprintf("%d s (%s)", ms / 1000, source);
	return psprintf("%d ms (%s)", ms, source);
}

/* A role's name for a message, also when the role is gone. */
const char *
coco_bg_role_name(Oid role)
{
	const char *name = GetUserNameFromId(role, true);

	return name ? name : "(dropped)";
}
