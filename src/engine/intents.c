/*
 * intents.c — sinks outside the transaction (reconciliation rules 5 and 9, docs/architecture.md).
 *
 * A database write and its tracking record commit together; a file cannot.
 * So for providers marked outside_transaction a run does not apply the
 * action: it records the intended record next to the old ones, plus an
 * `intent` (the action and the desired spec), and commits.  Completing the
 * intent — in the background worker, after that commit — runs the sink and
 * then prunes the records down to the intended one: in the same
 * transaction, or, for a statement that must run outside any transaction
 * (CREATE INDEX CONCURRENTLY), in the one after it.
 *
 * A crash before the intent commits leaves the old world and old records.
 * A crash after it, before or during the sink, leaves the intent and both
 * records: the state may be either, and the next completion runs the
 * (idempotent) action again.  A run deciding the state meanwhile sees every
 * record that may be true, so it never skips a write that did not happen.
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"

#include "run.h"

/*
 * A state whose sink acts outside the transaction (rule 9): its intended
 * record joins the old ones and `intent` says what is left to do.  Nothing
 * is applied now; coco_complete_intents() runs the sink once this
 * has committed, and prunes the records after it succeeded.  Until then,
 * a run deciding the state again sees every record that may be true.
 */
void
coco_record_intent(CocoApp *app, RootState *s, RunStats *rs)
{
	CocoDecision *d = &s->decision;
	Oid			types[12] = {INT8OID, INT4OID, JSONBOID, TEXTOID, JSONBOID, BOOLOID, INT8OID, INT4OID,
	INT4OID, TEXTOID, BYTEAOID, TEXTOID};
	Datum		values[12];
	char		nulls[12];
	CocoUserContext uc;
	bool		isnull;
	ProviderStats *ps = coco_run_provider_stats(rs, s->st.provider);
	TargetStats *ts;

	if (s->ts_id == 0 && d->record == NULL)
		return;					/* never made: nothing to undo */
	ts = coco_run_target_stats(rs, s->st.provider, s->st.name);
	/* applied after the commit, by the worker: no time spent here */
	if (d->action == COCO_INSERT)
	{
		ps->inserted++;
		ts->inserted++;
	}
	else if (d->action == COCO_DELETE)
	{
		ps->deleted++;
		ts->deleted++;
	}
	else
	{
		ps->updated++;
		ts->updated++;
	}
	rs->deferred++;

	memset(nulls, ' ', sizeof(nulls));
	values[0] = Int64GetDatum(s->ts_id);
	values[1] = Int32GetDatum(s->comp_id);
	values[2] = d->record ? JsonbPGetDatum(d->record) : (Datum) 0;
	nulls[2] = d->record ? ' ' : 'n';
	values[3] = CStringGetTextDatum(coco_action_name(d->action));
	values[4] = s->st.desired ? JsonbPGetDatum(s->st.desired) : (Datum) 0;
	nulls[4] = s->st.desired ? ' ' : 'n';
	/* a deletion, or a state found missing, may already be gone */
	values[5] = BoolGetDatum(d->action == COCO_DELETE || s->st.prev_may_be_missing);
	values[6] = Int64GetDatum(s->parent_id);
	values[7] = Int32GetDatum(s->parent_generation);
	if (s->parent_id == 0)
		nulls[6] = nulls[7] = 'n';
	values[8] = Int32GetDatum(app->app_id);
	values[9] = CStringGetTextDatum(s->st.provider);
	values[10] = PointerGetDatum(coco_key_to_bytea(s->st.key, s->st.keylen));
	values[11] = CStringGetTextDatum(s->st.name);

	coco_enter_extension_owner(&uc);
	if (s->ts_id == 0)
	{
		if (SPI_execute_with_args("INSERT INTO coco.target_state (app_id, comp_id, provider, key, name, "
								  "records, may_be_missing, parent_id, parent_generation, intent) "
								  "VALUES ($9, $2, $10, $11, $12, pg_catalog.jsonb_build_array($3), true, $7, $8, "
								  "pg_catalog.jsonb_build_object('action', $4, 'desired', $5, 'record', $3)) "
								  "RETURNING ts_id, generation", 12, types, values, nulls, false, 0)
			!= SPI_OK_INSERT_RETURNING)
			elog(ERROR, "coco_target: recording an intent failed");
		s->ts_id = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
		/* its attachments remember the generation they were made in */
		s->generation = DatumGetInt32(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2, &isnull));
	}
	else
		coco_spi_exec("UPDATE coco.target_state t SET comp_id = $2, "
					  "records = CASE WHEN $3 IS NULL OR EXISTS (SELECT FROM pg_catalog.jsonb_array_elements(t.records) r(v) "
					  "  WHERE r.v OPERATOR(pg_catalog.=) $3) THEN t.records "
					  "  ELSE t.records OPERATOR(pg_catalog.||) pg_catalog.jsonb_build_array($3) END, "
					  "may_be_missing = t.may_be_missing OR $6, "
					  "intent = pg_catalog.jsonb_build_object('action', $4, 'desired', $5, 'record', $3), "
					  "parent_id = coalesce($7, t.parent_id), "
					  "parent_generation = coalesce($8, t.parent_generation) "
					  "WHERE t.ts_id OPERATOR(pg_catalog.=) $1",
					  12, types, values, nulls, SPI_OK_UPDATE);
	coco_leave(&uc);
}

static CocoAction
action_from_name(const char *name)
{
	static const CocoAction all[] = {COCO_INSERT, COCO_UPSERT, COCO_REPLACE, COCO_DELETE};

	for (int i = 0; i < (int) lengthof(all); i++)
		if (strcmp(coco_action_name(all[i]), name) == 0)
			return all[i];
	elog(ERROR, "coco_target: unknown action \"%s\" in an intent", name);
	return COCO_NO_ACTION;		/* keep the compiler quiet */
}

static Jsonb *
intent_part(Jsonb *intent, const char *field)
{
	JsonbValue *v = getKeyJsonValueFromContainer(&intent->root, field, strlen(field), NULL);

	return (v == NULL || v->type == jbvNull) ? NULL : JsonbValueToJsonb(v);
}

/* The app's pending intents, as states with their decisions. */
static RootState *
load_intents(int app_id, int *n, char ***intent_texts_out)
{
	Oid			types[1] = {INT4OID};
	Datum		values[1] = {Int32GetDatum(app_id)};
	CocoUserContext uc;
	SPITupleTable *tt;
	RootState  *states;
	char	  **intent_texts;

	coco_enter_extension_owner(&uc);
	coco_spi_exec("SELECT ts_id, provider, key, name, records, may_be_missing, intent, intent::pg_catalog.text "
				  "FROM coco.target_state WHERE app_id OPERATOR(pg_catalog.=) $1 AND intent IS NOT NULL "
				  "ORDER BY ts_id",
				  1, types, values, NULL, SPI_OK_SELECT);
	coco_leave(&uc);
	tt = SPI_tuptable;
	*n = (int) SPI_processed;
	states = palloc0(sizeof(RootState) * Max(*n, 1));
	intent_texts = palloc0(sizeof(char *) * Max(*n, 1));
	*intent_texts_out = intent_texts;
	for (int i = 0; i < *n; i++)
	{
		RootState  *s = &states[i];
		HeapTuple	tup = tt->vals[i];
		bool		isnull;
		bytea	   *key = DatumGetByteaPCopy(SPI_getbinval(tup, tt->tupdesc, 3, &isnull));
		Jsonb	   *intent = DatumGetJsonbPCopy(SPI_getbinval(tup, tt->tupdesc, 7, &isnull));

		s->ts_id = DatumGetInt64(SPI_getbinval(tup, tt->tupdesc, 1, &isnull));
		s->st.provider = TextDatumGetCString(SPI_getbinval(tup, tt->tupdesc, 2, &isnull));
		s->st.key = VARDATA(key);
		s->st.keylen = VARSIZE(key) - VARHDRSZ;
		s->st.name = TextDatumGetCString(SPI_getbinval(tup, tt->tupdesc, 4, &isnull));
		coco_run_set_prev(&s->st, DatumGetJsonbPCopy(SPI_getbinval(tup, tt->tupdesc, 5, &isnull)));
		s->st.prev_may_be_missing = DatumGetBool(SPI_getbinval(tup, tt->tupdesc, 6, &isnull));
		s->st.desired = intent_part(intent, "desired");
		s->decision.record = intent_part(intent, "record");
		{
			JsonbValue *a = getKeyJsonValueFromContainer(&intent->root, "action", 6, NULL);

			s->decision.action = action_from_name(pnstrdup(a->val.string.val, a->val.string.len));
		}
		s->provider = coco_run_provider(s->st.provider);
		intent_texts[i] = TextDatumGetCString(SPI_getbinval(tup, tt->tupdesc, 8, &isnull));
	}
	return states;
}

typedef enum IntentStep
{
	INTENT_RETIRE_ATTACHMENTS,	/* files go before their directory changes */
	INTENT_MAKE_CONTAINERS,
	INTENT_MAKE_ATTACHMENTS,
	INTENT_REMOVE_CONTAINERS
} IntentStep;

/*
 * One step over the intents.  A creation that must run at top level is not
 * applied here: its statement is handed back in *top_level (when the caller
 * can run it), and its state marked so it is not pruned yet.
 */
static void
run_step(RootState *states, char **intent_texts, int n, IntentStep step, List **top_level,
		 MemoryContext top_cxt)
{
	for (int i = 0; i < n; i++)
	{
		RootState  *s = &states[i];
		bool		attachment = s->provider->parent != NULL;
		bool		removes = s->decision.action == COCO_DELETE;
		CocoPlannedAction act = {.state = &s->st, .decision = s->decision};

		switch (step)
		{
			case INTENT_RETIRE_ATTACHMENTS:
				/* a provider with a top-level statement removed in the run
				 * itself (engine.c), and its build replaces any leftover */
				if (attachment && (removes || s->decision.action == COCO_REPLACE) && s->provider->retire &&
					s->provider->top_level_sql == NULL)
					s->provider->retire(&act, 1);
				break;
			case INTENT_MAKE_CONTAINERS:
				if (!attachment && !removes)
					s->provider->apply(&act, 1);
				break;
			case INTENT_MAKE_ATTACHMENTS:
				if (attachment && !removes && s->provider->top_level_sql && top_level)
				{
					char	   *sql = s->provider->top_level_sql(&act);
					CocoTopLevelWork *w = MemoryContextAllocZero(top_cxt, sizeof(CocoTopLevelWork));

					w->ts_id = s->ts_id;
					w->name = MemoryContextStrdup(top_cxt, s->st.name);
					w->sql = MemoryContextStrdup(top_cxt, sql);
					w->intent = MemoryContextStrdup(top_cxt, intent_texts[i]);
					{
						/* the list outlives this transaction */
						MemoryContext old = MemoryContextSwitchTo(top_cxt);

						*top_level = lappend(*top_level, w);
						MemoryContextSwitchTo(old);
					}
					s->skip = true; /* pruned once the statement ran */
				}
				else if (attachment && !removes)
					s->provider->apply(&act, 1);
				break;
			case INTENT_REMOVE_CONTAINERS:
				if (!attachment && removes)
					s->provider->apply(&act, 1);
				break;
		}
	}
}

/*
 * The sink succeeded: the intended record is the only one left.  With
 * `intent`, only if that is still the state's intent (a run may have
 * recorded a newer one meanwhile, to be completed next).  As the extension
 * owner.
 */
static void
prune_records(int64 ts_id, const char *intent)
{
	Oid			types[2] = {INT8OID, TEXTOID};
	Datum		values[2] = {Int64GetDatum(ts_id), intent ? CStringGetTextDatum(intent) : (Datum) 0};
	char		nulls[2] = {' ', intent ? ' ' : 'n'};

	coco_spi_exec("UPDATE coco.target_state SET records = pg_catalog.jsonb_build_array(intent "
				  "OPERATOR(pg_catalog.->) 'record'), may_be_missing = false, intent = NULL "
				  "WHERE ts_id OPERATOR(pg_catalog.=) $1 "
				  "AND ($2 IS NULL OR intent::pg_catalog.text OPERATOR(pg_catalog.=) $2)",
				  2, types, values, nulls, SPI_OK_UPDATE);
}

static void
mark_run_succeeded(int64 run_id, int64 completed)
{
	Oid			types[2] = {INT8OID, INT8OID};
	Datum		values[2] = {Int64GetDatum(run_id), Int64GetDatum(completed)};
	CocoUserContext uc;

	coco_enter_extension_owner(&uc);
	coco_spi_exec("UPDATE coco.run SET status = 'succeeded', finished_at = pg_catalog.now(), "
				  "stats = coalesce(stats, '{}') OPERATOR(pg_catalog.||) "
				  "pg_catalog.jsonb_build_object('completed', $2) "
				  "WHERE run_id OPERATOR(pg_catalog.=) $1 AND status OPERATOR(pg_catalog.=) 'running'",
				  2, types, values, NULL, SPI_OK_UPDATE);
	coco_leave(&uc);
}

/*
 * Complete the app's pending intents: run each sink, then prune the
 * records to the intended one (or forget a removed state).  The caller's
 * transaction is the one that prunes; the app lock serializes this with
 * runs of the app.
 *
 * With top_level (the worker), statements that must run outside any
 * transaction are handed back, allocated in top_cxt, for the caller to run
 * and then prune with coco_prune_intent(); otherwise they are applied as
 * ordinary statements.  With run_id and nothing handed back, the worker's
 * run is marked succeeded.  Returns how many intents were completed.
 */
int64
coco_complete_intents(CocoApp *app, int64 run_id, List **top_level, MemoryContext top_cxt)
{
	RootState  *states;
	char	  **intent_texts;
	int			n;
	int64		completed = 0;
	CocoUserContext uc;

	coco_lock_app(app, false);
	states = load_intents(app->app_id, &n, &intent_texts);

	coco_enter_app_owner(app->owner, COCO_SAFE_SEARCH_PATH, &uc);
	for (IntentStep step = INTENT_RETIRE_ATTACHMENTS; step <= INTENT_REMOVE_CONTAINERS; step++)
		run_step(states, intent_texts, n, step, top_level, top_cxt);
	coco_leave(&uc);

	coco_enter_extension_owner(&uc);
	for (int i = 0; i < n; i++)
	{
		RootState  *s = &states[i];

		if (s->skip)
			continue;
		if (s->decision.record == NULL)
			coco_run_forget_state(s->ts_id);
		else
			prune_records(s->ts_id, NULL);
		completed++;
	}
	coco_leave(&uc);
	if (run_id > 0 && (top_level == NULL || *top_level == NIL))
		mark_run_succeeded(run_id, completed);
	return completed;
}

/*
 * After a top-level statement ran: prune its state's records, unless a run
 * recorded a newer intent for it meanwhile (then that one is completed
 * next).  With run_id, the worker's run is marked succeeded.
 */
void
coco_prune_intent(CocoApp *app, const CocoTopLevelWork *w, int64 run_id, int64 completed)
{
	CocoUserContext uc;

	coco_lock_app(app, false);
	coco_enter_extension_owner(&uc);
	prune_records(w->ts_id, w->intent);
	coco_leave(&uc);
	if (run_id > 0)
		mark_run_succeeded(run_id, completed);
}

/* How many intents of the app wait to be completed. */
int64
coco_pending_intents(int app_id)
{
	Oid			types[1] = {INT4OID};
	Datum		values[1] = {Int32GetDatum(app_id)};
	CocoUserContext uc;
	int64		n;

	coco_enter_extension_owner(&uc);
	n = coco_spi_int8("SELECT pg_catalog.count(*) FROM coco.target_state "
					  "WHERE app_id OPERATOR(pg_catalog.=) $1 AND intent IS NOT NULL",
					  1, types, values, NULL);
	coco_leave(&uc);
	return n;
}
