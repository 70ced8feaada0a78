/*
 * run_guard.c — one run at a time in a backend.
 *
 * User code runs in the middle of a run: declare_rows queries, declaration
 * functions, SQL providers, SQL commands, index expressions, triggers on a
 * user's table.  It may call the API again.  A nested run, or a change to
 * the staging or tracking of the app being run, would pull the state of
 * the outer run from under it, so both are refused: a run cannot start
 * while another is in progress in the backend, and the app being run can
 * only be declared into while its declaration function runs.
 *
 * The guard is dropped when the run ends, and with the (sub)transaction a
 * failed run aborts; a refusal caught by user code leaves the outer run's
 * guard in place.
 */
#include "postgres.h"

#include "access/xact.h"
#include "utils/memutils.h"

#include "coco_internal.h"

static int	guard_app_id = 0;	/* 0: no run in progress */
static Oid	guard_owner = InvalidOid;	/* the app's owner: the run's work is done as it */
static char guard_app_name[NAMEDATALEN * 2];
static SubTransactionId guard_subid = InvalidSubTransactionId;
static bool guard_declaring = false;

static void
refuse(const char *what, const char *app_name)
{
	ereport(ERROR,
			(errcode(ERRCODE_OBJECT_IN_USE),
			 errmsg("%s is not allowed while app \"%s\" is being reconciled in this session",
					what, app_name),
			 errdetail("User code that a run calls (declare_rows queries, declaration functions, "
					   "SQL providers, SQL commands, triggers) cannot start runs or change the "
					   "declarations of the app being run."),
			 errhint("Submit the work with coco.submit() instead, or call it after the run.")));
}

/* A run of `app` starts: refused when one is in progress already. */
void
coco_run_guard_enter(const CocoApp *app, const char *what)
{
	if (guard_app_id != 0)
		refuse(what, guard_app_name);
	guard_app_id = app->app_id;
	guard_owner = app->owner;
	strlcpy(guard_app_name, app->name, sizeof(guard_app_name));
	guard_subid = GetCurrentSubTransactionId();
	guard_declaring = false;
}

void
coco_run_guard_leave(void)
{
	guard_app_id = 0;
	guard_owner = InvalidOid;
	guard_declaring = false;
}

/*
 * The owner of the app being run, whose rights the run's work is done
 * with (InvalidOid outside a run): for sinks that call user code.
 */
Oid
coco_run_owner(void)
{
	if (guard_app_id == 0)
		elog(ERROR, "coco_target: the run's owner was asked for outside a run");
	return guard_owner;
}

/* The app's declaration function is running: it may declare into the app. */
void
coco_run_guard_declaring(bool declaring)
{
	guard_declaring = declaring;
}

/* Something every run depends on is about to change (a provider's functions). */
void
coco_run_guard_check_idle(const char *what)
{
	if (guard_app_id != 0)
		refuse(what, guard_app_name);
}

bool
coco_run_in_progress(void)
{
	return guard_app_id != 0;
}

/* Staging of `app` is about to change (a declaration, a cleared component). */
void
coco_run_guard_check_staging(const CocoApp *app, const char *what)
{
	if (guard_app_id != 0 && guard_app_id == app->app_id && !guard_declaring)
		refuse(what, guard_app_name);
}

static void
guard_xact_callback(XactEvent event, void *arg)
{
	if (event == XACT_EVENT_ABORT || event == XACT_EVENT_PARALLEL_ABORT ||
		event == XACT_EVENT_COMMIT || event == XACT_EVENT_PARALLEL_COMMIT ||
		event == XACT_EVENT_PREPARE)
		coco_run_guard_leave();
}

static void
guard_subxact_callback(SubXactEvent event, SubTransactionId mySubid,
					   SubTransactionId parentSubid, void *arg)
{
	/* the run failed and its error was caught above the run */
	if (event == SUBXACT_EVENT_ABORT_SUB && guard_app_id != 0 && mySubid == guard_subid)
		coco_run_guard_leave();
}

void
coco_run_guard_init(void)
{
	RegisterXactCallback(guard_xact_callback, NULL);
	RegisterSubXactCallback(guard_subxact_callback, NULL);
}
