/*
 * hooks.c — what the engine needs from the layers above it, handed down by
 * init.c: so that the engine and the connectors, which call it, never call
 * up into the scheduler.
 *
 *  - A declaration into an app (every connector's declare functions call
 *    coco_declaring): the run guard's check, then the scheduler's
 *    auto-submit.
 *  - A run that left intents for sinks outside the transaction, in the
 *    caller's transaction: the scheduler queues the worker run that
 *    completes them.
 *  - A run (or coco.plan) about to read the app's staging: the connector
 *    that keeps persistent declarations (the postgres connector's synced
 *    tables) stages them into their components.
 *  - A run that starts (holding the app lock), and a persistent
 *    declaration of an app that was made, replaced or removed: the
 *    scheduler's source-driven refresh makes its triggers follow the
 *    app's queries.
 *  - A synchronous run that failed: its transaction rolls back, so the
 *    scheduler hands its record to the worker, which outlives it.
 */
#include "postgres.h"

#include "coco_internal.h"

static CocoDeclaredHook declared_hook = NULL;
static CocoCompletionHook completion_hook = NULL;
static CocoAppHook run_start_hook = NULL;
static CocoAppHook persistent_changed_hook = NULL;
static CocoPersistentHook persistent_hook = NULL;
static CocoFailedRunHook failed_run_hook = NULL;

void
coco_set_declared_hook(CocoDeclaredHook hook)
{
	declared_hook = hook;
}

void
coco_set_completion_hook(CocoCompletionHook hook)
{
	completion_hook = hook;
}

void
coco_set_failed_run_hook(CocoFailedRunHook hook)
{
	failed_run_hook = hook;
}

void
coco_set_persistent_hook(CocoPersistentHook hook)
{
	persistent_hook = hook;
}

/*
 * Stage the app's persistent declarations into the components they own,
 * in the caller's transaction: called by a run after it holds the app's
 * lock and before a pass reads staging, so the pass consumes them (and a
 * rollback takes them back).  Returns how many there are.
 */
int
coco_declare_persistent(const CocoApp *app)
{
	volatile int n = 0;

	if (persistent_hook == NULL)
		return 0;
	coco_persistent_expansion_begin();
	PG_TRY();
	{
		n = persistent_hook(app);
	}
	PG_FINALLY();
	{
		coco_persistent_expansion_end();
	}
	PG_END_TRY();
	return n;
}

void
coco_set_run_start_hook(CocoAppHook hook)
{
	run_start_hook = hook;
}

void
coco_set_persistent_changed_hook(CocoAppHook hook)
{
	persistent_changed_hook = hook;
}

/* Called by every run once it holds the app lock. */
void
coco_run_starting(const CocoApp *app)
{
	if (run_start_hook)
		run_start_hook(app);
}

/* Called by every declaration right after looking the app up. */
void
coco_declaring(const CocoApp *app)
{
	coco_run_guard_check_staging(app, "declaring into the app");
	if (declared_hook)
		declared_hook(app);
}

/* The worker run that completes the app's intents once this commits. */
int64
coco_queue_completion(const CocoApp *app)
{
	if (completion_hook == NULL)
		elog(ERROR, "coco_target: no scheduler to complete intents");
	return completion_hook(app);
}

/*
 * Hand on the record of a failed synchronous run.  Called while an error is
 * being handled, or while the backend exits: the hook must not raise one.
 * Without a scheduler (the library not preloaded) it is not recorded.
 */
void
coco_report_failed_run(const CocoFailedRun *report)
{
	if (failed_run_hook)
		failed_run_hook(report);
}

/*
 * Called by coco.sync_table() and its companions once the app's persistent
 * declarations changed, in the caller's transaction: the triggers of
 * source-driven refresh follow now (refused with 42501 when the owner may
 * not put one on a new source), not only at the next run.
 */
void
coco_persistent_changed(const CocoApp *app)
{
	if (persistent_changed_hook)
		persistent_changed_hook(app);
}
