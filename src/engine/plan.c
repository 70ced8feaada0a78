/*
 * plan.c — coco.plan(app, full, rows, update, row_limit): what the next
 * reconcile (or, with update, the next coco.update) would do, applying
 * nothing and leaving staging and tracking as they are.
 *
 * It runs the deciding half of a pass (the same code a reconcile runs) and,
 * for the children of each container, its provider's plan_children (the
 * diff counted instead of applied).  Each step carries hazard labels a
 * reviewer cares about: the engine's rewrites_rows, deletes_rows and
 * after_commit (done by the worker after the run commits), and those each
 * provider's plan_action adds (postgres: drops_table, drops_column,
 * rewrites_table, drops_index, access_exclusive_lock, blocks_writes,
 * runs_sql; localfs: writes_files, removes_files).
 *
 * What a run would fail on, the providers report as rows whose action is
 * "error" instead of failing the plan (coco_plan_error), and with rows =>
 * true they list the children that would change (coco_plan_child), up to
 * row_limit.  The app's persistent declarations are staged, and a preview
 * of coco.update runs the app's declaration function, in a subtransaction
 * that is rolled back once the plan is made.
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "funcapi.h"
#include "utils/builtins.h"
#include "utils/json.h"

#include "run.h"

/* the most children coco.plan lists: enough to review, not a dump */
#define PLAN_MAX_ROW_LIMIT 1000000

typedef struct PlanOut
{
	Tuplestorestate *store;
	TupleDesc	desc;
} PlanOut;

struct CocoPlanReport
{
	PlanOut    *out;
	int64		room;			/* children still to list */
};

static void
emit(PlanOut *out, const char *provider, Jsonb *key, const char *action, const char *detail)
{
	Datum		values[4];
	bool		nulls[4] = {false, key == NULL, false, false};

	values[0] = CStringGetTextDatum(provider);
	values[1] = key ? JsonbPGetDatum(key) : (Datum) 0;
	values[2] = CStringGetTextDatum(action);
	values[3] = DirectFunctionCall1(jsonb_in, CStringGetDatum(detail));
	tuplestore_putvalues(out->store, out->desc, values, nulls);
}

void
coco_plan_error(CocoPlanReport *r, const char *provider, Jsonb *key, const char *detail)
{
	emit(r->out, provider, key, "error", detail);
}

int64
coco_plan_room(const CocoPlanReport *r)
{
	return r->room;
}

void
coco_plan_child(CocoPlanReport *r, const char *provider, Jsonb *key, const char *action,
				const char *detail)
{
	if (r->room <= 0)
		return;
	emit(r->out, provider, key, action, detail);
	r->room--;
}

static char *
jsonb_text(Jsonb *j)
{
	return j ? JsonbToCString(NULL, &j->root, VARSIZE(j)) : "null";
}

static void
plan_root_state(PlanOut *out, RootState *s)
{
	CocoDecision *d = &s->decision;
	Jsonb	   *key = coco_key_to_jsonb(s->st.key, s->st.keylen);
	const char *action;
	StringInfoData h;
	StringInfoData detail;

	if (s->skip)
		return;
	initStringInfo(&h);
	if (s->retain)
	{
		/* no longer declared, kept because it is protected */
		initStringInfo(&detail);
		appendStringInfo(&detail, "{\"name\": ");
		escape_json(&detail, s->st.name);
		appendStringInfoString(&detail, ", \"protected\": true, \"hazards\": []}");
		emit(out, s->st.provider, key, "keep", detail.data);
		return;
	}
	if (s->forget)
		action = "forget";
	else if (d->action == COCO_NO_ACTION)
		action = d->record == NULL && s->ts_id != 0 ? "forget" : "none";
	else
	{
		CocoPlannedAction pa = {&s->st, *d, NULL};

		action = s->provider->plan_action ? s->provider->plan_action(&pa, &h) : NULL;
		if (action == NULL)
			action = d->action == COCO_INSERT ? "create" :
				d->action == COCO_DELETE ? "drop" :
				d->action == COCO_REPLACE ? "replace" : "update";
		if (s->provider->outside_transaction)
			appendStringInfoString(&h, ", \"after_commit\"");
	}
	if (d->invalidation == COCO_INVALIDATE_DESTRUCTIVE || d->invalidation == COCO_INVALIDATE_LOSSY)
		appendStringInfoString(&h, ", \"rewrites_rows\"");

	initStringInfo(&detail);
	appendStringInfo(&detail, "{\"name\": ");
	escape_json(&detail, s->st.name);
	appendStringInfo(&detail, ", \"invalidation\": \"%s\", \"hazards\": [%s], \"detail\": %s%s}",
					 d->invalidation == COCO_INVALIDATE_DESTRUCTIVE ? "destructive" :
					 d->invalidation == COCO_INVALIDATE_LOSSY ? "lossy" : "none",
					 h.len > 2 ? h.data + 2 : "",	/* without the leading ", " */
					 jsonb_text(d->detail),
					 s->st.prev_may_be_missing && s->ts_id != 0 ? ", \"drift\": true" : "");
	emit(out, s->st.provider, key, action, detail.data);
}

/* The children of one container: what a sync would do, counted. */
static void
plan_children(CocoPlanReport *report, CocoApp *app, RunDecisions *rd, int64 ts_id,
			  Jsonb *record, Jsonb *key, RootState *decided, const CocoProvider *p)
{
	CocoChildSync sync;
	StringInfoData detail;
	const char *hazards;
	bool		rebuilt = decided &&
		(decided->decision.action == COCO_INSERT || decided->decision.action == COCO_REPLACE);
	bool		lossy = decided && decided->decision.invalidation == COCO_INVALIDATE_LOSSY;

	coco_run_init_sync(&sync, app, &rd->pass, rebuilt ? 0 : ts_id, record, rd->replaced, rd->nreplaced);
	if (lossy)
	{
		sync.rewrite_comps = rd->replaced;
		sync.nrewrite = rd->nreplaced;
	}
	sync.plan = report;
	initStringInfo(&detail);
	appendStringInfoChar(&detail, '{');
	p->plan_children(&sync, &detail);
	if (sync.inserted + sync.updated + sync.deleted + sync.unchanged == 0)
		return;
	hazards = sync.deleted > 0 ? (lossy ? "\"deletes_rows\", \"rewrites_rows\"" : "\"deletes_rows\"") :
		(lossy ? "\"rewrites_rows\"" : "");
	appendStringInfo(&detail, "\"insert\": " INT64_FORMAT ", \"update\": " INT64_FORMAT
					 ", \"delete\": " INT64_FORMAT ", \"unchanged\": " INT64_FORMAT
					 ", \"hazards\": [%s]}",
					 sync.inserted, sync.updated, sync.deleted, sync.unchanged, hazards);
	emit(report->out, p->child_name, key,
		 sync.inserted + sync.updated + sync.deleted > 0 ? "sync" : "none", detail.data);
}

/* Everything the next run would do, into the report. */
static void
plan_app(CocoPlanReport *report, CocoApp *app, bool full)
{
	RunDecisions rd;
	RunStats	rs;
	CocoUserContext uc;
	Oid			types[1] = {INT4OID};
	Datum		values[1];
	SPITupleTable *containers;
	uint64		ncontainers;

	memset(&rs, 0, sizeof(rs));
	/* what a run would refuse is shown, not refused */
	rs.drop_guard = COCO_DROP_NOTICED;
	coco_run_decide(app, full, &rd, &rs);

	for (int i = 0; i < rd.ntables; i++)
		plan_root_state(report->out, &rd.tables[i]);
	for (int i = 0; i < rd.natts; i++)
		plan_root_state(report->out, &rd.atts[i]);

	/* children: of every container that exists after the run, tracked or new */
	values[0] = Int32GetDatum(app->app_id);
	coco_enter_extension_owner(&uc);
	coco_spi_exec("SELECT ts_id, records OPERATOR(pg_catalog.->) -1, provider, key, retained FROM coco.target_state "
				  "WHERE app_id OPERATOR(pg_catalog.=) $1 ORDER BY ts_id",
				  1, types, values, NULL, SPI_OK_SELECT);
	coco_leave(&uc);
	containers = SPI_tuptable;
	ncontainers = SPI_processed;
	for (uint64 c = 0; c < ncontainers; c++)
	{
		HeapTuple	tup = containers->vals[c];
		TupleDesc	desc = containers->tupdesc;
		bool		isnull;
		const CocoProvider *p = coco_lookup_provider(TextDatumGetCString(SPI_getbinval(tup, desc, 3, &isnull)));
		int64		ts_id = DatumGetInt64(SPI_getbinval(tup, desc, 1, &isnull));
		Jsonb	   *record;
		bytea	   *key;
		RootState  *decided = NULL;

		if (p == NULL || p->plan_children == NULL)
			continue;
		record = DatumGetJsonbPCopy(SPI_getbinval(tup, desc, 2, &isnull));
		key = DatumGetByteaPP(SPI_getbinval(tup, desc, 4, &isnull));
		for (int i = 0; i < rd.ntables; i++)
			if (rd.tables[i].ts_id == ts_id)
				decided = &rd.tables[i];
		if (decided && decided->decision.record == NULL)
			continue;			/* going away: its children go with it */
		/* kept because it is protected (now, or by an earlier run and not
		 * declared again): its children are left as they are */
		if (decided ? decided->retain : DatumGetBool(SPI_getbinval(tup, desc, 5, &isnull)))
			continue;
		plan_children(report, app, &rd, ts_id, decided ? decided->decision.record : record,
					  coco_key_to_jsonb(VARDATA_ANY(key), VARSIZE_ANY_EXHDR(key)), decided, p);
	}
	for (int i = 0; i < rd.ntables; i++)
		if (rd.tables[i].ts_id == 0 && rd.tables[i].decision.record != NULL &&
			rd.tables[i].provider->plan_children != NULL)
			plan_children(report, app, &rd, 0, rd.tables[i].decision.record,
						  coco_key_to_jsonb(rd.tables[i].st.key, rd.tables[i].st.keylen),
						  &rd.tables[i], rd.tables[i].provider);
	coco_run_end(&rd);
}

typedef struct PlanPreview
{
	CocoPlanReport *report;
	CocoApp    *app;
	bool		full;
	bool		update;
} PlanPreview;

/* The staging and the plan of plan_in_subtransaction; never kept. */
static bool
stage_and_plan(void *arg)
{
	PlanPreview *pp = arg;
	int			npersistent = coco_declare_persistent(pp->app);

	/* as a run of coco.update: synced tables alone need no function */
	if (pp->update && (OidIsValid(pp->app->declare_fn) || npersistent == 0))
		coco_run_declare_fn(pp->app);
	/* a run of coco.update is a full run */
	plan_app(pp->report, pp->app, pp->update ? true : pp->full);
	return false;
}

/*
 * The plan of the next run: the app's persistent declarations are staged
 * (and, for the next coco.update, its declaration function runs) in a
 * subtransaction, the plan is made against what was staged, and the
 * subtransaction is rolled back, so nothing staged (or written anywhere
 * else) remains.  The plan's rows are in a tuplestore of the query's,
 * which outlives the subtransaction.  An error goes on up once the
 * subtransaction is rolled back.
 */
static void
plan_in_subtransaction(CocoPlanReport *report, CocoApp *app, bool full, bool update)
{
	PlanPreview pp = {report, app, full, update};
	ErrorData  *err = coco_subxact_try(stage_and_plan, &pp);

	if (err != NULL)
		ReThrowError(err);
}

static bool
bool_arg(FunctionCallInfo fcinfo, int n, const char *what)
{
	coco_require_arg(fcinfo, n, what);
	return PG_GETARG_BOOL(n);
}

/*
 * coco.plan(app, full, rows, update, row_limit).  The calls of version
 * 0.3, coco.plan(app) and coco.plan(app, full), are this function with
 * the later arguments defaulted.
 */
PG_FUNCTION_INFO_V1(coco_plan);
Datum
coco_plan(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	PlanOut		out;
	CocoPlanReport report;
	CocoApp    *app;
	bool		full;
	bool		update = false;
	int32		row_limit = 0;

	coco_require_arg(fcinfo, 0, "app name");
	full = bool_arg(fcinfo, 1, "full");
	/* the 0.3 definition (before ALTER EXTENSION … UPDATE) has two: its
	 * call is refused by the app look-up's version check */
	if (PG_NARGS() >= 5)
	{
		update = bool_arg(fcinfo, 3, "update");
		coco_require_arg(fcinfo, 4, "row_limit");
		row_limit = PG_GETARG_INT32(4);
		if (row_limit < 0 || row_limit > PLAN_MAX_ROW_LIMIT)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_ROW_COUNT_IN_LIMIT_CLAUSE),
					 errmsg("row_limit must be between 0 and %d, not %d", PLAN_MAX_ROW_LIMIT, row_limit),
					 errhint("The counts of each table's rows cover every row; the listing is for review.")));
		if (!bool_arg(fcinfo, 2, "rows"))
			row_limit = 0;
	}
	InitMaterializedSRF(fcinfo, 0);
	out.store = rsinfo->setResult;
	out.desc = rsinfo->setDesc;
	report.out = &out;
	report.room = row_limit;

	SPI_connect();
	app = coco_app_lookup(text_to_cstring(PG_GETARG_TEXT_PP(0)));
	coco_run_guard_enter(app, update ? "coco.plan(update => true)" : "coco.plan()");
	plan_in_subtransaction(&report, app, full, update);
	coco_run_guard_leave();
	SPI_finish();
	return (Datum) 0;
}
