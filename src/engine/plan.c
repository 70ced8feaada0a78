/*
 * plan.c — coco.plan(app, full): what the next reconcile would do, applying
 * nothing and leaving staging as it is.
 *
 * It runs the deciding half of a pass (the same code a reconcile runs) and,
 * for the children of each container, its provider's plan_children (the
 * diff counted instead of applied).  Each step carries hazard labels a
 * reviewer cares about: the engine's rewrites_rows, deletes_rows and
 * after_commit (done by the worker after the run commits), and those each
 * provider's plan_action adds (postgres: drops_table, drops_column,
 * rewrites_table, drops_index, access_exclusive_lock, blocks_writes,
 * runs_sql; localfs: writes_files, removes_files).
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "funcapi.h"
#include "utils/builtins.h"
#include "utils/json.h"

#include "run.h"

typedef struct PlanOut
{
	Tuplestorestate *store;
	TupleDesc	desc;
} PlanOut;

static void
emit(PlanOut *out, const char *provider, Jsonb *key, const char *action, const char *detail)
{
	Datum		values[4];
	bool		nulls[4] = {false, false, false, false};

	values[0] = CStringGetTextDatum(provider);
	values[1] = JsonbPGetDatum(key);
	values[2] = CStringGetTextDatum(action);
	values[3] = DirectFunctionCall1(jsonb_in, CStringGetDatum(detail));
	tuplestore_putvalues(out->store, out->desc, values, nulls);
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
plan_children(PlanOut *out, CocoApp *app, RunDecisions *rd, int64 ts_id, Jsonb *record,
			  Jsonb *key, RootState *decided, const CocoProvider *p)
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
	emit(out, p->child_name, key,
		 sync.inserted + sync.updated + sync.deleted > 0 ? "sync" : "none", detail.data);
}

PG_FUNCTION_INFO_V1(coco_plan);
Datum
coco_plan(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	PlanOut		out;
	CocoApp    *app;
	RunDecisions rd;
	RunStats	rs;
	CocoUserContext uc;
	Oid			types[1] = {INT4OID};
	Datum		values[1];
	SPITupleTable *containers;
	uint64		ncontainers;

	coco_require_arg(fcinfo, 0, "app name");
	InitMaterializedSRF(fcinfo, 0);
	out.store = rsinfo->setResult;
	out.desc = rsinfo->setDesc;

	SPI_connect();
	app = coco_app_lookup(text_to_cstring(PG_GETARG_TEXT_PP(0)));
	memset(&rs, 0, sizeof(rs));
	coco_run_guard_enter(app, "coco.plan()");
	coco_run_decide(app, PG_ARGISNULL(1) ? false : PG_GETARG_BOOL(1), &rd, &rs);

	for (int i = 0; i < rd.ntables; i++)
		plan_root_state(&out, &rd.tables[i]);
	for (int i = 0; i < rd.natts; i++)
		plan_root_state(&out, &rd.atts[i]);

	/* children: of every container that exists after the run, tracked or new */
	values[0] = Int32GetDatum(app->app_id);
	coco_enter_extension_owner(&uc);
	coco_spi_exec("SELECT ts_id, records OPERATOR(pg_catalog.->) -1, provider, key FROM coco.target_state "
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
		plan_children(&out, app, &rd, ts_id, decided ? decided->decision.record : record,
					  coco_key_to_jsonb(VARDATA_ANY(key), VARSIZE_ANY_EXHDR(key)), decided, p);
	}
	for (int i = 0; i < rd.ntables; i++)
		if (rd.tables[i].ts_id == 0 && rd.tables[i].decision.record != NULL &&
			rd.tables[i].provider->plan_children != NULL)
			plan_children(&out, app, &rd, 0, rd.tables[i].decision.record,
						  coco_key_to_jsonb(rd.tables[i].st.key, rd.tables[i].st.keylen),
						  &rd.tables[i], rd.tables[i].provider);

	coco_run_end(&rd);
	coco_run_guard_leave();
	SPI_finish();
	return (Datum) 0;
}
