/*
 * run.c — what the files of a run share, below the engine's passes: the
 * run's snapshot and pass id, its statistics, the app's run lock, and
 * helpers over SPI results and tracked records.  engine.c, children.c,
 * intents.c and plan.c call down into it; it calls none of them.
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "miscadmin.h"
#include "storage/lmgr.h"
#include "utils/builtins.h"
#include "utils/snapmgr.h"

#include "run.h"

/* advisory lock class of app locks: 'coco' */
#define COCO_LOCK_CLASS 0x636f636f

ProviderStats *
coco_run_provider_stats(RunStats *rs, const char *name)
{
	for (int i = 0; i < rs->nproviders; i++)
		if (strcmp(rs->by_provider[i].name, name) == 0)
			return &rs->by_provider[i];
	if (rs->nproviders >= (int) lengthof(rs->by_provider))
		elog(ERROR, "coco_target: too many providers in one run");
	memset(&rs->by_provider[rs->nproviders], 0, sizeof(ProviderStats));
	rs->by_provider[rs->nproviders].name = pstrdup(name);
	return &rs->by_provider[rs->nproviders++];
}

/* The run's snapshot as the active one, seeing this transaction's writes. */
void
coco_push_snapshot(Snapshot snapshot)
{
	PushCopiedSnapshot(snapshot);
	UpdateActiveSnapshotCommandId();
}

/* A statement over staging, through the run's snapshot. */
void
coco_run_snap_exec(const CocoPass *pass, const char *sql, int nargs, Oid *types, Datum *values,
				   bool read_only, int expected)
{
	SPIPlanPtr	plan = SPI_prepare(sql, nargs, types);
	int			rc;

	if (plan == NULL)
		elog(ERROR, "coco_target: SPI_prepare failed for: %s", sql);
	rc = SPI_execute_snapshot(plan, values, NULL, pass->snapshot, InvalidSnapshot,
							  read_only, false, 0);
	if (rc != expected)
		elog(ERROR, "coco_target: unexpected SPI result %s for: %s", SPI_result_code_string(rc), sql);
	SPI_freeplan(plan);
}

/*
 * Serialize runs of one app.  The app's row is locked first and the
 * advisory lock second, in every path: declarations take a key-share lock on
 * the row through their foreign keys, so a drop (which locks the row for
 * update) waits for a declaring transaction to finish instead of
 * deadlocking with its reconcile.  Finding no row after waiting means the
 * app was dropped meanwhile.
 */
void
coco_lock_app(CocoApp *app, bool for_drop)
{
	LOCKTAG		tag;
	Oid			types[1] = {INT4OID};
	Datum		values[1] = {Int32GetDatum(app->app_id)};
	CocoUserContext uc;
	bool		isnull;

	coco_enter_extension_owner(&uc);
	(void) coco_spi_int8(for_drop ?
						 "SELECT 1 FROM coco.app WHERE app_id OPERATOR(pg_catalog.=) $1 FOR UPDATE" :
						 "SELECT 1 FROM coco.app WHERE app_id OPERATOR(pg_catalog.=) $1 FOR KEY SHARE",
						 1, types, values, &isnull);
	coco_leave(&uc);
	if (isnull)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("app \"%s\" does not exist", app->name),
				 errdetail("It was dropped while this call waited for it.")));
	SET_LOCKTAG_ADVISORY(tag, MyDatabaseId, COCO_LOCK_CLASS, (uint32) app->app_id, 2);
	(void) LockAcquire(&tag, ExclusiveLock, false, false);
}

int *
coco_run_int_column(int *n)
{
	int		   *out = palloc(sizeof(int) * Max(SPI_processed, 1));
	bool		isnull;

	for (uint64 i = 0; i < SPI_processed; i++)
		out[i] = DatumGetInt32(SPI_getbinval(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1, &isnull));
	*n = (int) SPI_processed;
	return out;
}

ArrayType *
coco_run_int_array(const int *values, int n)
{
	Datum	   *d = palloc(sizeof(Datum) * Max(n, 1));

	for (int i = 0; i < n; i++)
		d[i] = Int32GetDatum(values[i]);
	return construct_array(d, n, INT4OID, 4, true, TYPALIGN_INT);
}

/* The provider of a tracked or declared state, which must be loaded. */
const CocoProvider *
coco_run_provider(const char *name)
{
	const CocoProvider *p = coco_lookup_provider(name);

	if (p == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("provider \"%s\" is not registered", name),
				 errhint("Load the connector that provides it (shared_preload_libraries).")));
	return p;
}

/* A state's previous records, from the jsonb array tracking keeps. */
void
coco_run_set_prev(CocoTargetState *st, Jsonb *records)
{
	int			nrec = JB_ROOT_COUNT(records);

	st->prev = palloc(sizeof(Jsonb *) * Max(nrec, 1));
	st->nprev = 0;
	for (int r = 0; r < nrec; r++)
		st->prev[st->nprev++] = JsonbValueToJsonb(getIthJsonbValueFromContainer(&records->root, r));
}

void
coco_run_init_sync(CocoChildSync *sync, CocoApp *app, const CocoPass *pass, int64 ts_id,
				   Jsonb *record, int *replaced, int nreplaced)
{
	memset(sync, 0, sizeof(*sync));
	sync->app_id = app->app_id;
	sync->owner = app->owner;
	sync->snapshot = pass->snapshot;
	sync->pass_id = pass->pass_id;
	sync->container_id = ts_id;
	sync->record = record;
	sync->replaced_comps = replaced;
	sync->nreplaced = nreplaced;
	sync->tally = coco_child_tally_create();
}

/* A container's children as one sync counted them: the provider's totals
 * and the container's entry in the breakdown (`ts`). */
void
coco_run_count_children(RunStats *rs, const CocoProvider *p, CocoChildSync *sync,
						TargetStats *ts)
{
	ProviderStats *ps = coco_run_provider_stats(rs, p->child_name);

	ps->inserted += sync->inserted;
	ps->updated += sync->updated;
	ps->deleted += sync->deleted;
	ps->unchanged += sync->unchanged;
	ts->inserted += sync->inserted;
	ts->updated += sync->updated;
	ts->deleted += sync->deleted;
	ts->unchanged += sync->unchanged;
}

/* The name of the container an attachment's spec names, as its provider
 * reads it (from its desired spec, or its last record). */
char *
coco_run_container_name(const RootState *a)
{
	Jsonb	   *spec = a->st.desired ? a->st.desired : a->st.prev[a->st.nprev - 1];

	return a->provider->container_name(spec);
}

/* A target state no longer tracked. */
void
coco_run_forget_state(int64 ts_id)
{
	Oid			types[1] = {INT8OID};
	Datum		values[1] = {Int64GetDatum(ts_id)};
	CocoUserContext uc;

	coco_enter_extension_owner(&uc);
	coco_spi_exec("DELETE FROM coco.target_state WHERE ts_id OPERATOR(pg_catalog.=) $1",
				  1, types, values, NULL, SPI_OK_DELETE);
	coco_leave(&uc);
}

/*
 * Run the app's declaration function as its owner, with the search_path of
 * the session that created the app (coco.update, and coco.plan's preview
 * of it).  55000 when the app has none.
 */
void
coco_run_declare_fn(CocoApp *app)
{
	CocoUserContext uc;
	Oid			types[1] = {TEXTOID};
	Datum		values[1];
	char	   *fn;

	if (!OidIsValid(app->declare_fn))
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("app \"%s\" has no declaration function", app->name),
				 errhint("Create the app with coco.create_app(app, declare_fn), declare its tables with coco.sync_table(), or use coco.reconcile().")));
	values[0] = CStringGetTextDatum(app->name);
	fn = coco_function_call_name(app->declare_fn,
								 psprintf("the declaration function of app \"%s\"", app->name));
	coco_enter_app_owner(app->owner, app->search_path, &uc);
	coco_run_guard_declaring(true);
	/* the argument is cast to text, so the call resolves to this function */
	coco_spi_exec(psprintf("SELECT %s($1::pg_catalog.text)", fn), 1, types, values, NULL, SPI_OK_SELECT);
	coco_run_guard_declaring(false);
	coco_leave(&uc);
}
