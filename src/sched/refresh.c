/*
 * refresh.c — source-driven refresh, the writing side: coco.refresh_trigger(),
 * the statement trigger the extension keeps on each source table of an app
 * with the refresh option (refresh_sources.c creates and removes them).
 *
 * When it fires, it notes the app for the current (sub)transaction; just
 * before the transaction commits, a run of each noted app is queued with
 * origin 'refresh' — unless a run of it is already waiting, which then
 * re-evaluates the app's persistent queries after this commit, as
 * auto-submit joins a waiting run (submit.c) — and the worker is woken
 * after the commit.  The worker starts a refresh run no earlier than
 * coco_target.refresh_delay after it was queued, so a burst of source
 * commits joins a few runs.
 *
 * A source write never waits for a reconcile: nothing here takes the app
 * lock, and the submit lock it takes in share mode is held by a worker only
 * for the short transaction that marks a run running.
 *
 * The function runs as whoever writes the source.  It acts for an app only
 * when the firing trigger is the one the extension registered for that app
 * on that table (coco.refresh_source, read as the extension owner);
 * anything else — a user's own trigger calling it with some app's id — is
 * a silent no-op: writing a table that is not a registered source of an
 * app must not queue runs of that app.
 */
#include "postgres.h"

#include "access/xact.h"
#include "catalog/pg_type.h"
#include "commands/extension.h"
#include "commands/trigger.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "nodes/parsenodes.h"
#include "storage/lmgr.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"

#include "coco_internal.h"

/*
 * The (app, source table) pairs whose registered trigger fired in this
 * transaction, each with the subtransaction that wrote (rolling it back
 * forgets the note).  In TopTransactionContext; one entry per pair and
 * subtransaction.
 */
typedef struct RefreshNote
{
	int			app_id;
	Oid			source;
	SubTransactionId subid;
} RefreshNote;

static List *refresh_notes = NIL;
static bool wake_after_commit = false;

void
coco_refresh_trigger_name(int app_id, char *name)
{
	snprintf(name, NAMEDATALEN, "coco_refresh_%d", app_id);
}

static bool
noted(int app_id, Oid source, SubTransactionId subid)
{
	ListCell   *lc;

	foreach(lc, refresh_notes)
	{
		RefreshNote *n = lfirst(lc);

		if (n->app_id == app_id && n->source == source && n->subid == subid)
			return true;
	}
	return false;
}

static void
note_refresh(int app_id, Oid source)
{
	SubTransactionId subid = GetCurrentSubTransactionId();
	RefreshNote *n;

	if (noted(app_id, source, subid))
		return;
	n = MemoryContextAlloc(TopTransactionContext, sizeof(RefreshNote));
	n->app_id = app_id;
	n->source = source;
	n->subid = subid;
	{
		MemoryContext old = MemoryContextSwitchTo(TopTransactionContext);

		refresh_notes = lappend(refresh_notes, n);
		MemoryContextSwitchTo(old);
	}
}

/*
 * coco.refresh_trigger() — AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE …
 * FOR EACH STATEMENT on a source table, with the app's id as its argument.
 * Notes the app; the run is queued at commit.  Refuses to be called other
 * than as such a trigger (39P01); a trigger that is not the extension's for
 * that app is ignored (its name is checked now, its registration at
 * commit).
 */
PG_FUNCTION_INFO_V1(coco_refresh_trigger);
Datum
coco_refresh_trigger(PG_FUNCTION_ARGS)
{
	TriggerData *td;
	Trigger    *trig;
	char	   *end;
	long		app_id;
	char		expected[NAMEDATALEN];

	if (!CALLED_AS_TRIGGER(fcinfo))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("coco.refresh_trigger() must be called as a trigger")));
	td = (TriggerData *) fcinfo->context;
	trig = td->tg_trigger;
	if (!TRIGGER_FIRED_AFTER(td->tg_event) || !TRIGGER_FIRED_FOR_STATEMENT(td->tg_event))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("trigger \"%s\" on table \"%s\" must fire AFTER … FOR EACH STATEMENT to call coco.refresh_trigger()",
						trig->tgname, RelationGetRelationName(td->tg_relation))));
	if (trig->tgnargs != 1)
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("trigger \"%s\" on table \"%s\" must pass coco.refresh_trigger() one argument, an app id",
						trig->tgname, RelationGetRelationName(td->tg_relation))));
	errno = 0;
	app_id = strtol(trig->tgargs[0], &end, 10);
	if (errno != 0 || *end != '\0' || end == trig->tgargs[0] || app_id <= 0 || app_id > PG_INT32_MAX)
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("trigger \"%s\" on table \"%s\" passes \"%s\" to coco.refresh_trigger(), which is not an app id",
						trig->tgname, RelationGetRelationName(td->tg_relation), trig->tgargs[0])));

	/* only the extension names a trigger so (and only once per table) */
	coco_refresh_trigger_name((int) app_id, expected);
	if (strcmp(trig->tgname, expected) != 0)
	{
		elog(DEBUG1, "coco_target: trigger \"%s\" is not the refresh trigger of app %ld, ignored",
			 trig->tgname, app_id);
		return PointerGetDatum(NULL);
	}
	note_refresh((int) app_id, RelationGetRelid(td->tg_relation));
	return PointerGetDatum(NULL);
}

static void
refresh_subxact_callback(SubXactEvent event, SubTransactionId mySubid,
						 SubTransactionId parentSubid, void *arg)
{
	ListCell   *lc;

	if (event != SUBXACT_EVENT_COMMIT_SUB && event != SUBXACT_EVENT_ABORT_SUB)
		return;
	foreach(lc, refresh_notes)
	{
		RefreshNote *n = lfirst(lc);

		if (n->subid != mySubid)
			continue;
		/* rolled back: its writes are gone; committed: the parent's */
		if (event == SUBXACT_EVENT_ABORT_SUB || noted(n->app_id, n->source, parentSubid))
			refresh_notes = foreach_delete_current(refresh_notes, lc);
		else
			n->subid = parentSubid;
	}
}

/* The sources this transaction noted for `app_id`, as an oid[]. */
static Datum
noted_sources(int app_id)
{
	ListCell   *lc;
	Datum	   *elems = palloc(sizeof(Datum) * list_length(refresh_notes));
	int			n = 0;

	foreach(lc, refresh_notes)
	{
		RefreshNote *note = lfirst(lc);

		if (note->app_id == app_id)
			elems[n++] = ObjectIdGetDatum(note->source);
	}
	return PointerGetDatum(construct_array(elems, n, OIDOID, sizeof(Oid), true, TYPALIGN_INT));
}

static void
execute_latest(SPIPlanPtr plan, Datum *values)
{
	int			rc = SPI_execute_snapshot(plan, values, NULL, GetLatestSnapshot(),
										  InvalidSnapshot, false, false, 1);

	if (rc < 0)
		elog(ERROR, "coco_target: unexpected SPI result %s", SPI_result_code_string(rc));
}

/*
 * The statements of queue_refresh_runs, prepared once per backend and kept:
 * every commit that wrote a source runs them, and planning them each time
 * would be most of the writer's cost.  The plan cache re-plans them after
 * the extension's tables change (DROP and CREATE EXTENSION).
 */
static SPIPlanPtr registered_plan = NULL;
static SPIPlanPtr alive_plan = NULL;
static SPIPlanPtr waiting_plan = NULL;
static SPIPlanPtr queue_plan = NULL;

static SPIPlanPtr
prepare_kept(SPIPlanPtr *plan, const char *sql, int nargs, Oid *types)
{
	if (*plan == NULL)
	{
		/* generic: a custom plan each time would cost the planning again */
		SPIPlanPtr	p = SPI_prepare_cursor(sql, nargs, types, CURSOR_OPT_GENERIC_PLAN);

		if (p == NULL || SPI_keepplan(p) != 0)
			elog(ERROR, "coco_target: SPI_prepare failed: %s", SPI_result_code_string(SPI_result));
		*plan = p;
	}
	return *plan;
}

/*
 * Queue a refresh run for each noted app, just before the commit, inside
 * the transaction.  An app is skipped when
 * none of the tables it noted is a registered source of it — with the
 * latest snapshot, so that the registration and the trigger, created in one
 * transaction, are seen together whatever the isolation level — and when a
 * run of it is already waiting (and not being canceled: its row locked):
 * holding the submit lock in share mode until the commit, as auto-submit
 * does, keeps the worker from starting that run before this commits.  An
 * app being dropped is skipped too.  Returns whether any run was queued.
 */
static bool
queue_refresh_runs(void)
{
	List	   *apps = NIL;
	ListCell   *lc;
	bool		pushed = false;
	bool		queued = false;
	CocoUserContext uc;
	Oid			types[2] = {INT4OID, OIDARRAYOID};

	foreach(lc, refresh_notes)
		apps = list_append_unique_int(apps, ((RefreshNote *) lfirst(lc))->app_id);
	/* DROP EXTENSION in this transaction: nothing left to queue into */
	if (apps == NIL || !OidIsValid(get_extension_oid("coco_target", true)))
		return false;

	if (!ActiveSnapshotSet())
	{
		PushActiveSnapshot(GetTransactionSnapshot());
		pushed = true;
	}
	SPI_connect();
	coco_enter_extension_owner(&uc);
	prepare_kept(&registered_plan, "SELECT 1 FROM coco.refresh_source "
				 "WHERE app_id OPERATOR(pg_catalog.=) $1 "
				 "AND source::pg_catalog.oid OPERATOR(pg_catalog.=) ANY ($2) LIMIT 1",
				 2, types);
	/*
	 * The queued run's foreign key share-locks the app's row.  coco.drop_app
	 * locks it for update and then drops the triggers, which waits for this
	 * writer: waiting for the row here would deadlock.  An app being
	 * dropped needs no refresh.
	 */
	prepare_kept(&alive_plan, "SELECT 1 FROM coco.app WHERE app_id OPERATOR(pg_catalog.=) $1 "
				 "FOR KEY SHARE SKIP LOCKED", 1, types);
	prepare_kept(&waiting_plan, "SELECT 1 FROM coco.run WHERE app_id OPERATOR(pg_catalog.=) $1 "
				 "AND status OPERATOR(pg_catalog.=) 'queued' LIMIT 1 FOR SHARE SKIP LOCKED",
				 1, types);
	/* queued at commit: a long transaction's run is not due at once */
	prepare_kept(&queue_plan, "INSERT INTO coco.run (app_id, \"full\", status, submitted_at, attempts, origin) "
				 "VALUES ($1, false, 'queued', pg_catalog.clock_timestamp(), 0, 'refresh')",
				 1, types);
	foreach(lc, apps)
	{
		int			app_id = lfirst_int(lc);
		Datum		values[2] = {Int32GetDatum(app_id), noted_sources(app_id)};

		execute_latest(registered_plan, values);
		if (SPI_processed == 0)
		{
			elog(DEBUG1, "coco_target: no registered source of app %d was written, no refresh run", app_id);
			continue;
		}
		execute_latest(alive_plan, values);
		if (SPI_processed == 0)
			continue;			/* being dropped, or gone */
		coco_submit_lock(app_id, ShareLock);
		execute_latest(waiting_plan, values);
		if (SPI_processed > 0)
			continue;			/* that run re-evaluates the queries after this commits */
		if (SPI_execute_plan(queue_plan, values, NULL, false, 0) != SPI_OK_INSERT)
			elog(ERROR, "coco_target: could not queue a refresh run of app %d", app_id);
		queued = true;
	}
	coco_leave(&uc);
	SPI_finish();
	if (pushed)
		PopActiveSnapshot();
	return queued;
}

static void
refresh_xact_callback(XactEvent event, void *arg)
{
	switch (event)
	{
		case XACT_EVENT_PRE_COMMIT:
			if (refresh_notes != NIL && queue_refresh_runs())
				wake_after_commit = true;
			refresh_notes = NIL;
			break;
		case XACT_EVENT_PRE_PREPARE:

			/*
			 * A queued run would keep the app's row share-locked for as long
			 * as the transaction stays prepared, holding back coco.drop_app
			 * for any time a writer chooses.  Nothing is queued: the writes
			 * reach the app's tables at its next run.
			 */
			if (refresh_notes != NIL)
				ereport(WARNING,
						(errmsg("coco_target: writes to sources in a prepared transaction queue no refresh run"),
						 errhint("They reach the derived tables at the app's next run: the next write "
								 "to a source, coco.submit(), or a schedule.")));
			refresh_notes = NIL;
			break;
		case XACT_EVENT_COMMIT:
		case XACT_EVENT_PARALLEL_COMMIT:
			if (wake_after_commit && coco_worker_available())
				coco_worker_wake(MyDatabaseId);
			wake_after_commit = false;
			refresh_notes = NIL;	/* freed with TopTransactionContext */
			break;
		case XACT_EVENT_ABORT:
		case XACT_EVENT_PARALLEL_ABORT:
		case XACT_EVENT_PREPARE:
			wake_after_commit = false;
			refresh_notes = NIL;
			break;
		default:
			break;
	}
}

void
coco_refresh_init(void)
{
	RegisterXactCallback(refresh_xact_callback, NULL);
	RegisterSubXactCallback(refresh_subxact_callback, NULL);
}
