/*
 * engine.c — one reconcile of an app: decide, apply, remember.
 *
 * A run holds the app's advisory lock (runs of one app are serialized) and
 * reads staging through one snapshot taken after the lock: what it reads is
 * exactly what it consumes, and declarations committed meanwhile wait for
 * the next run.  Then, in one transaction (reconciliation rule 9, docs/architecture.md):
 *
 *   1. The replaced components: those with staged declarations or a clear
 *      marker (a full run: every component).
 *   2. Root target states (tables): each staged or tracked-in-a-replaced-
 *      component state goes to its provider's pure handler; the decisions
 *      are applied provider by provider; tracking is updated, with the
 *      container's generation moved on destructive or lossy changes.
 *   3. Children (rows) of every container, after its own action (rule 6):
 *      the provider diffs and applies them set-wise.  Children of replaced
 *      components whose rows were written under an older generation are
 *      re-written in full; untouched ones are left stale (rule 7).
 *   4. Deferred container actions (NOT NULL after the rows are in).
 *   5. Staging consumed; the replaced components remember the run
 *      (coco.component.last_run), which is recorded.
 *
 * If the run left components stale and the app has a declaration function,
 * the function is run and a full pass follows, so every child gets its
 * values back.  Before each pass (and before the declaration function) the
 * app's persistent declarations (synced tables) are staged into their
 * components, through a hook (hooks.c), so every pass re-evaluates them.
 */
#include "postgres.h"

#include "access/xact.h"
#include "catalog/pg_type.h"
#include "miscadmin.h"
#include "storage/lmgr.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/json.h"
#include "utils/regproc.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"
#include "utils/syscache.h"
#include "utils/timestamp.h"

#include "run.h"

typedef enum ApplyStep
{
	STEP_RETIRE,				/* attachments: the removing half */
	STEP_APPLY,					/* the actions (attachments: the creating half) */
	STEP_FINISH					/* containers: what must follow their children */
} ApplyStep;

static bool
takes_part(RootState *s, ApplyStep step)
{
	CocoAction	a = s->decision.action;

	if (s->skip || s->forget || a == COCO_NO_ACTION)
		return false;
	/*
	 * Sinks outside the transaction run later, from recorded intents; but a
	 * provider whose creating half is a top-level statement (a concurrent
	 * index build) removes with an ordinary one, here, in the run — so an
	 * index switched to a plain build is gone before that build runs.
	 */
	if (s->provider->outside_transaction &&
		!(step == STEP_RETIRE && s->provider->top_level_sql != NULL))
		return false;
	if (s->provider->parent == NULL)
		return step != STEP_RETIRE;
	if (step == STEP_RETIRE)
		return a == COCO_DELETE || a == COCO_REPLACE;
	return step == STEP_APPLY && a != COCO_DELETE;
}

/* Hand each provider its batch of the states taking part in this step. */
static void
apply_root_actions(CocoApp *app, RootState *states, int n, ApplyStep step)
{
	CocoUserContext uc;
	int			start = 0;

	coco_enter_app_owner(app->owner, COCO_SAFE_SEARCH_PATH, &uc);
	/* "already exists, skipping" from idempotent DDL is not news */
	(void) set_config_option("client_min_messages", "warning", PGC_USERSET, PGC_S_SESSION,
							 GUC_ACTION_SAVE, true, 0, false);
	/* states are ordered by provider */
	while (start < n)
	{
		int			end = start;
		CocoPlannedAction *batch;
		int			nbatch = 0;
		const CocoProvider *p = states[start].provider;

		while (end < n && states[end].provider == p)
			end++;
		batch = palloc0(sizeof(CocoPlannedAction) * (end - start));
		for (int i = start; i < end; i++)
		{
			if (!takes_part(&states[i], step))
				continue;
			batch[nbatch].state = &states[i].st;
			batch[nbatch].decision = states[i].decision;
			nbatch++;
		}
		if (nbatch > 0)
		{
			instr_time	t0;
			double		share;

			INSTR_TIME_SET_CURRENT(t0);
			if (step == STEP_APPLY)
				p->apply(batch, nbatch);
			else if (step == STEP_RETIRE && p->retire)
				p->retire(batch, nbatch);
			else if (step == STEP_FINISH && p->finish)
				p->finish(batch, nbatch);
			/* a provider applies its batch at once: each state gets its share */
			share = coco_run_ms_since(t0) / nbatch;
			for (int i = start; i < end; i++)
				if (takes_part(&states[i], step))
					states[i].ms += share;
		}
		start = end;
	}
	coco_leave(&uc);
}

/* Attachments remember the container they belong to and its generation. */
static void
resolve_parents(CocoApp *app, RootState *tables, int ntables, RootState *atts, int natts)
{
	for (int i = 0; i < natts; i++)
	{
		RootState  *a = &atts[i];
		char	   *parent;
		bool		found = false;

		if (a->skip || a->forget || a->decision.record == NULL)
			continue;
		parent = coco_run_container_name(a);
		for (int t = 0; t < ntables; t++)
		{
			if (strcmp(tables[t].st.provider, a->provider->parent) == 0 &&
				strcmp(tables[t].st.name, parent) == 0 && tables[t].ts_id != 0)
			{
				a->parent_id = tables[t].ts_id;
				a->parent_generation = tables[t].generation;
				found = true;
			}
		}
		if (!found)
		{
			Oid			types[3] = {INT4OID, TEXTOID, TEXTOID};
			Datum		values[3] = {Int32GetDatum(app->app_id),
				CStringGetTextDatum(a->provider->parent), CStringGetTextDatum(parent)};
			CocoUserContext uc;

			coco_enter_extension_owner(&uc);
			coco_spi_exec("SELECT ts_id, generation FROM coco.target_state "
						  "WHERE app_id OPERATOR(pg_catalog.=) $1 AND provider OPERATOR(pg_catalog.=) $2 "
						  "AND name OPERATOR(pg_catalog.=) $3",
						  3, types, values, NULL, SPI_OK_SELECT);
			coco_leave(&uc);
			if (SPI_processed == 0)
				ereport(ERROR,
						(errcode(ERRCODE_UNDEFINED_TABLE),
						 errmsg("\"%s\" is declared for \"%s\", which the app does not declare",
								a->st.name, parent),
						 errhint("Declare \"%s\" in the app too.", parent)));
			{
				bool		isnull;

				a->parent_id = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
				a->parent_generation = DatumGetInt32(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2, &isnull));
			}
		}
	}
}

/* Tracking of root states after their actions were applied. */
static void
record_root_states(CocoApp *app, const CocoPass *pass, RootState *states, int n, int *all_comps,
				   int nall, RunStats *rs)
{
	CocoUserContext uc;

	for (int i = 0; i < n; i++)
	{
		RootState  *s = &states[i];
		CocoDecision *d = &s->decision;
		ProviderStats *ps;
		TargetStats *ts;
		Oid			types[10] = {INT8OID, INT4OID, JSONBOID, INT4OID, INT4OID, TEXTOID, BYTEAOID, TEXTOID,
		INT8OID, INT4OID};
		Datum		values[10];
		char		nulls[10] = {' ', ' ', ' ', ' ', ' ', ' ', ' ', ' ', ' ', ' '};

		if (s->skip)
			continue;
		if (s->forget)
		{
			/* gone with its container: no action, no count */
			coco_run_forget_state(s->ts_id);
			continue;
		}
		if (s->retain)
		{
			/* protected and no longer declared: kept, children and all */
			rs->kept++;
			coco_protect_record(app, s);
			continue;
		}
		if (s->provider->outside_transaction && d->action != COCO_NO_ACTION)
		{
			coco_record_intent(app, s, rs);
			coco_protect_record(app, s);
			continue;
		}
		ps = coco_run_provider_stats(rs, s->st.provider);
		if (d->record == NULL)
		{
			if (s->ts_id == 0)
				continue;
			ps->deleted++;
			ts = coco_run_target_stats(rs, s->st.provider, s->st.name);
			ts->deleted++;
			ts->ms += s->ms;
			if (s->provider->sync_children)
			{
				CocoChildSync sync;
				instr_time	t0;
				TargetStats *children = coco_run_target_stats(rs, s->provider->child_name,
															  s->st.name);

				/* a dropped container takes its children with it; otherwise
				 * (a user's table) the children are deleted one by one */
				coco_run_init_sync(&sync, app, pass, s->ts_id, s->st.prev[s->st.nprev - 1], all_comps,
								   nall);
				sync.container_gone = (d->action == COCO_DELETE);
				sync.ignore_declarations = true;
				INSTR_TIME_SET_CURRENT(t0);
				s->provider->sync_children(&sync);
				coco_run_count_children(rs, s->provider, &sync, children);
				children->ms += coco_run_ms_since(t0);
			}
			coco_run_forget_state(s->ts_id);
			continue;
		}

		ts = coco_run_target_stats(rs, s->st.provider, s->st.name);
		ts->ms += s->ms;
		switch (d->action)
		{
			case COCO_INSERT:
				ps->inserted++;
				ts->inserted++;
				break;
			case COCO_NO_ACTION:
				ps->unchanged++;
				ts->unchanged++;
				break;
			default:
				ps->updated++;
				ts->updated++;
		}

		values[0] = Int64GetDatum(s->ts_id);
		values[1] = Int32GetDatum(s->comp_id);
		values[2] = JsonbPGetDatum(d->record);
		values[3] = Int32GetDatum(d->invalidation == COCO_INVALIDATE_DESTRUCTIVE ? 1 : 0);
		values[4] = Int32GetDatum(d->invalidation == COCO_INVALIDATE_LOSSY ? 1 : 0);
		values[5] = CStringGetTextDatum(s->st.provider);
		values[6] = PointerGetDatum(coco_key_to_bytea(s->st.key, s->st.keylen));
		values[7] = CStringGetTextDatum(s->st.name);
		values[8] = Int64GetDatum(s->parent_id);
		values[9] = Int32GetDatum(s->parent_generation);
		if (s->parent_id == 0)
			nulls[8] = nulls[9] = 'n';

		coco_enter_extension_owner(&uc);
		if (s->ts_id == 0)
		{
			Datum		ins[8] = {Int32GetDatum(app->app_id), values[1], values[5], values[6],
			values[7], values[2], values[8], values[9]};
			Oid			instypes[8] = {INT4OID, INT4OID, TEXTOID, BYTEAOID, TEXTOID, JSONBOID, INT8OID, INT4OID};
			char		insnulls[8] = {' ', ' ', ' ', ' ', ' ', ' ', nulls[8], nulls[9]};
			bool		isnull;

			if (SPI_execute_with_args("INSERT INTO coco.target_state "
									  "(app_id, comp_id, provider, key, name, records, parent_id, parent_generation) "
									  "VALUES ($1, $2, $3, $4, $5, pg_catalog.jsonb_build_array($6), $7, $8) "
									  "RETURNING ts_id, generation", 8, instypes, ins, insnulls, false, 0)
				!= SPI_OK_INSERT_RETURNING)
				elog(ERROR, "coco_target: recording a target state failed");
			s->ts_id = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
			s->generation = DatumGetInt32(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2, &isnull));
		}
		else
		{
			coco_spi_exec("UPDATE coco.target_state SET comp_id = $2, "
						  "records = pg_catalog.jsonb_build_array($3), may_be_missing = false, "
						  "generation = generation OPERATOR(pg_catalog.+) $4, "
						  "schema_version = schema_version OPERATOR(pg_catalog.+) $5, "
						  "parent_id = $9, parent_generation = $10 "
						  "WHERE ts_id OPERATOR(pg_catalog.=) $1",
						  10, types, values, nulls, SPI_OK_UPDATE);
			if (d->invalidation == COCO_INVALIDATE_DESTRUCTIVE)
				s->generation++;
			if (d->invalidation == COCO_INVALIDATE_DESTRUCTIVE)
			{
				/* rebuilt: every child record is forgotten (rule 7) */
				coco_spi_exec("DELETE FROM coco.tracked_chunk WHERE target_id OPERATOR(pg_catalog.=) $1",
							  1, types, values, NULL, SPI_OK_DELETE);
			}
		}
		coco_leave(&uc);
		coco_protect_record(app, s);
	}
}

/*
 * Delete the app's staging: through the run's snapshot when a run consumes
 * what it read (declarations committed meanwhile stay for the next run), or
 * all of it when the app is dropped.
 */
static void
delete_staging(int app_id, const CocoPass *consuming_pass)
{
	static const char *const tables[] = {"staged_state", "staged_row", "staged_query",
	"cleared_component"};
	Oid			types[1] = {INT4OID};
	Datum		values[1] = {Int32GetDatum(app_id)};
	CocoUserContext uc;

	coco_enter_extension_owner(&uc);
	for (int i = 0; i < (int) lengthof(tables); i++)
	{
		char	   *sql = psprintf("DELETE FROM coco.%s WHERE app_id OPERATOR(pg_catalog.=) $1", tables[i]);

		if (consuming_pass)
			coco_run_snap_exec(consuming_pass, sql, 1, types, values, false, SPI_OK_DELETE);
		else
			coco_spi_exec(sql, 1, types, values, NULL, SPI_OK_DELETE);
	}
	coco_leave(&uc);
}

/* The id of a run recorded at its end, taken at its start. */
static int64
next_run_id(void)
{
	CocoUserContext uc;
	int64		id;

	coco_enter_extension_owner(&uc);
	id = coco_spi_int8("SELECT pg_catalog.nextval('coco.run_run_id_seq'::pg_catalog.regclass)",
					   0, NULL, NULL, NULL);
	coco_leave(&uc);
	return id;
}

/* The replaced components remember the run (coco.components.last_run). */
static void
record_last_run(int *replaced, int nreplaced, int64 run_id)
{
	Oid			types[2] = {INT4ARRAYOID, INT8OID};
	Datum		values[2] = {PointerGetDatum(coco_run_int_array(replaced, nreplaced)),
	Int64GetDatum(run_id)};
	CocoUserContext uc;

	if (run_id == 0 || nreplaced == 0)
		return;
	coco_enter_extension_owner(&uc);
	coco_spi_exec("UPDATE coco.component SET last_run = $2 WHERE comp_id OPERATOR(pg_catalog.=) ANY ($1)",
				  2, types, values, NULL, SPI_OK_UPDATE);
	coco_leave(&uc);
}

static int64
count_stale(int app_id)
{
	Oid			types[1] = {INT4OID};
	Datum		values[1] = {Int32GetDatum(app_id)};
	CocoUserContext uc;
	int64		n;

	coco_enter_extension_owner(&uc);
	n = coco_spi_int8("SELECT pg_catalog.count(*) FROM coco.row_set s JOIN coco.target_state t "
					  "ON t.ts_id OPERATOR(pg_catalog.=) s.target_id "
					  /* a kept table's rows are left as they are: no pass fixes them */
					  "WHERE s.app_id OPERATOR(pg_catalog.=) $1 AND NOT t.retained "
					  "AND (s.generation OPERATOR(pg_catalog.<>) t.generation "
					  "OR s.schema_version OPERATOR(pg_catalog.<>) t.schema_version)",
					  1, types, values, NULL);
	coco_leave(&uc);
	return n;
}

/*
 * May this pass stop after `commit_every` changed rows and leave the rest
 * to a pass in the next transaction?  Only when nothing it does must wait
 * for all the rows (a container's finishing step, as SET NOT NULL after an
 * altered column is filled) or would be done twice (an attachment's
 * removing half, as a teardown: a partial pass records no attachment).
 */
static bool
may_stop_early(RunDecisions *rd)
{
	for (int i = 0; i < rd->ntables; i++)
		if (takes_part(&rd->tables[i], STEP_FINISH) && rd->tables[i].provider->finish &&
			rd->tables[i].decision.action == COCO_UPSERT)
			return false;
	for (int i = 0; i < rd->natts; i++)
		if (takes_part(&rd->atts[i], STEP_RETIRE))
			return false;
	return true;
}

/*
 * One pass over the app's staging; the caller holds the app lock.  In a
 * batched run a pass may stop early (rs->more): then the containers and
 * rows written so far are recorded, but no attachment is made and the
 * staging stays for the next pass, which finds what was written unchanged.
 */
static void
run_pass(CocoApp *app, bool full, RunStats *rs)
{
	RunDecisions rd;

	coco_progress_phase("deciding", NULL, 0);
	coco_run_decide(app, full, &rd, rs);
	coco_fault("after_decisions");
	rs->more = false;
	rs->change_budget = (rs->batched && may_stop_early(&rd)) ? coco_commit_every : 0;
	coco_progress_phase("applying tables", NULL, rd.ntables + rd.natts);

	/*
	 * Apply: attachments step back before their containers change;
	 * containers, then their children, then what follows the children; then
	 * attachments are made on containers that are complete.
	 */
	apply_root_actions(app, rd.atts, rd.natts, STEP_RETIRE);
	apply_root_actions(app, rd.tables, rd.ntables, STEP_APPLY);
	coco_fault("after_table_ddl");
	record_root_states(app, &rd.pass, rd.tables, rd.ntables, rd.all, rd.nall, rs);
	coco_sync_children(app, &rd.pass, rd.replaced, rd.nreplaced, rd.tables, rd.ntables, rs);
	if (rs->more)
	{
		coco_run_end(&rd);
		rs->passes++;
		return;
	}
	apply_root_actions(app, rd.tables, rd.ntables, STEP_FINISH);
	coco_fault("before_attachments");
	coco_progress_phase("applying attachments", NULL, rd.natts);
	resolve_parents(app, rd.tables, rd.ntables, rd.atts, rd.natts);
	apply_root_actions(app, rd.atts, rd.natts, STEP_APPLY);
	record_root_states(app, &rd.pass, rd.atts, rd.natts, rd.all, rd.nall, rs);
	coco_fault("before_consume");
	delete_staging(app->app_id, &rd.pass);
	record_last_run(rd.replaced, rd.nreplaced, rs->run_id);

	coco_run_end(&rd);
	rs->passes++;
}

static Jsonb *
stats_jsonb(RunStats *rs, int64 run_id)
{
	StringInfoData out;
	int64		ins = 0,
				upd = 0,
				del = 0,
				unch = 0;

	initStringInfo(&out);
	appendStringInfoString(&out, "{\"providers\": {");
	for (int i = 0; i < rs->nproviders; i++)
	{
		ProviderStats *p = &rs->by_provider[i];
		int64		unchanged = Max(p->unchanged - p->earlier_writes, 0);

		ins += p->inserted;
		upd += p->updated;
		del += p->deleted;
		unch += unchanged;
		if (i > 0)
			appendStringInfoString(&out, ", ");
		escape_json(&out, p->name);
		appendStringInfo(&out, ": {\"inserted\": " INT64_FORMAT ", \"updated\": " INT64_FORMAT
						 ", \"deleted\": " INT64_FORMAT ", \"unchanged\": " INT64_FORMAT "}",
						 p->inserted, p->updated, p->deleted, unchanged);
	}
	appendStringInfo(&out, "}, \"inserted\": " INT64_FORMAT ", \"updated\": " INT64_FORMAT
					 ", \"deleted\": " INT64_FORMAT ", \"unchanged\": " INT64_FORMAT
					 ", \"stale_components\": " INT64_FORMAT ", \"drift\": " INT64_FORMAT
					 ", \"passes\": %d",
					 ins, upd, del, unch, rs->stale, rs->drift, rs->passes);
	/* only apps with targets outside the database ever defer */
	if (rs->deferred > 0)
		appendStringInfo(&out, ", \"deferred\": " INT64_FORMAT, rs->deferred);
	/* only apps with protected targets ever keep one */
	if (rs->kept > 0)
		appendStringInfo(&out, ", \"kept\": " INT64_FORMAT, rs->kept);
	if (rs->more)
		appendStringInfoString(&out, ", \"more\": true");
	if (rs->transactions > 1)
		appendStringInfo(&out, ", \"transactions\": %d", rs->transactions);
	if (rs->completion_run_id > 0)
		appendStringInfo(&out, ", \"completion_run_id\": " INT64_FORMAT, rs->completion_run_id);
	if (run_id > 0)
		appendStringInfo(&out, ", \"run_id\": " INT64_FORMAT, run_id);
	coco_run_targets_json(rs, &out);
	appendStringInfoChar(&out, '}');
	return DatumGetJsonbP(DirectFunctionCall1(jsonb_in, CStringGetDatum(out.data)));
}

/*
 * A worker run committed in batches is several calls, one per transaction;
 * its statistics add up across them.  They are kept between the calls with
 * their provider names copied out of the transaction's memory.
 */
static MemoryContext carry_cxt = NULL;
static RunStats carried;
static int64 carried_run_id = 0;

static bool
carry_stats_in(RunStats *rs, int64 run_id)
{
	if (run_id <= 0 || run_id != carried_run_id)
		return false;
	*rs = carried;
	/* this transaction counts what is unchanged afresh */
	for (int i = 0; i < rs->nproviders; i++)
	{
		ProviderStats *p = &rs->by_provider[i];

		p->earlier_writes = p->inserted + p->updated;
		p->unchanged = 0;
	}
	coco_run_targets_restart(rs);
	return true;
}

static void
carry_stats_out(RunStats *rs, int64 run_id)
{
	MemoryContext cxt;

	carried_run_id = 0;
	if (run_id <= 0 || !rs->more)
		return;
	cxt = AllocSetContextCreate(TopMemoryContext, "coco_target run statistics", ALLOCSET_SMALL_SIZES);
	carried = *rs;
	for (int i = 0; i < carried.nproviders; i++)
		carried.by_provider[i].name = MemoryContextStrdup(cxt, carried.by_provider[i].name);
	coco_run_targets_carry(&carried, cxt);
	if (carry_cxt)
		MemoryContextDelete(carry_cxt);
	carry_cxt = cxt;
	carried_run_id = run_id;
}

/*
 * Reconcile an app: one pass over its staging (after running its
 * declaration function first when asked: coco.update), and a second full
 * pass when the first left components stale and there is a declaration
 * function to give them their values back.  The run is recorded: as a new
 * row of coco.run, or into the queued run `run_id` when one is given.  A
 * full pass that would remove every target of the app is refused unless
 * allow_drop_all (protect.c).
 */
Jsonb *
coco_engine_reconcile(CocoApp *app, bool full, bool declare_first, int64 run_id)
{
	return coco_engine_reconcile_guarded(app, full, declare_first, run_id, false);
}

Jsonb *
coco_engine_reconcile_guarded(CocoApp *app, bool full, bool declare_first, int64 run_id,
							  bool allow_drop_all)
{
	RunStats	rs;
	TimestampTz started = GetCurrentTimestamp();
	Oid			types[8] = {INT4OID, BOOLOID, TIMESTAMPTZOID, TIMESTAMPTZOID, JSONBOID, INT4OID, INT8OID,
	TEXTOID};
	Datum		values[8];
	Jsonb	   *result;
	CocoUserContext uc;
	bool		declare_fn_ran = false;
	int			npersistent;
	int64		pending;

	coco_run_guard_enter(app, declare_first ? "coco.update()" : "coco.reconcile()");
	if (run_id == 0)
		coco_sync_run_started();
	if (!carry_stats_in(&rs, run_id))
	{
		const CocoProvider *const *providers;
		int			n = coco_registered_providers(&providers);

		/* a run reports every container and its children, even at zero */
		memset(&rs, 0, sizeof(rs));
		for (int i = 0; i < n; i++)
			if (providers[i]->child_name != NULL)
			{
				coco_run_provider_stats(&rs, providers[i]->name);
				coco_run_provider_stats(&rs, providers[i]->child_name);
			}
		rs.targets_cxt = CurrentMemoryContext;
	}
	rs.transactions++;
	rs.drop_guard = allow_drop_all ? COCO_DROP_ALLOWED : COCO_DROP_REFUSED;
	rs.batched = run_id > 0 && coco_commit_every > 0;

	coco_lock_app(app, false);
	/* a run in this session takes its id once it holds the lock, in order */
	rs.run_id = run_id > 0 ? run_id : next_run_id();
	if (run_id == 0)
		coco_sync_run_took_id(rs.run_id);	/* recorded should the run fail */
	coco_progress_begin(app->app_id, app->owner);
	if (!SearchSysCacheExists1(AUTHOID, ObjectIdGetDatum(app->owner)))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("the owner of app \"%s\" no longer exists", app->name),
				 errdetail("Work for an app runs as its owner."),
				 errhint("Drop the app with coco.drop_app(app, keep_targets => true).")));
	coco_run_starting(app);
	/* persistent declarations first: a declaration function cannot stage
	 * into their components, and they are re-evaluated by every pass */
	npersistent = coco_declare_persistent(app);
	if (declare_first)
	{
		/* an app of synced tables alone: they are all it declares */
		if (OidIsValid(app->declare_fn) || npersistent == 0)
			coco_run_declare_fn(app);
		declare_fn_ran = true;
	}
	run_pass(app, full, &rs);
	rs.stale = count_stale(app->app_id);
	if (rs.stale > 0 && OidIsValid(app->declare_fn) && !declare_fn_ran && !rs.more)
	{
		/* give the stale components their values back (a full pass: the
		 * persistent declarations are declared again too) */
		coco_declare_persistent(app);
		coco_run_declare_fn(app);
		run_pass(app, true, &rs);
		rs.stale = count_stale(app->app_id);
	}

	/*
	 * Intents for sinks outside the transaction are completed by the worker
	 * once this commits: a worker run stays 'running' until then (worker.c
	 * completes it next); a run in the caller's transaction queues one.
	 */
	pending = coco_pending_intents(app->app_id);
	if (pending > 0 && run_id == 0)
	{
		rs.completion_run_id = coco_queue_completion(app);
	}

	values[0] = Int32GetDatum(app->app_id);
	values[1] = BoolGetDatum(full);
	values[2] = TimestampTzGetDatum(started);
	values[3] = TimestampTzGetDatum(GetCurrentTimestamp());
	values[4] = JsonbPGetDatum(stats_jsonb(&rs, 0));
	values[5] = Int32GetDatum(MyProcPid);
	values[6] = Int64GetDatum(run_id);
	coco_enter_extension_owner(&uc);
	if (run_id > 0)
		coco_spi_exec(pending > 0 || rs.more ?
					  "UPDATE coco.run SET status = 'running', error = NULL, started_at = $3, "
					  "finished_at = NULL, stats = $5, pid = $6 "
					  "WHERE run_id OPERATOR(pg_catalog.=) $7 AND app_id OPERATOR(pg_catalog.=) $1" :
					  "UPDATE coco.run SET status = 'succeeded', error = NULL, started_at = $3, "
					  "finished_at = $4, stats = $5, pid = $6 "
					  "WHERE run_id OPERATOR(pg_catalog.=) $7 AND app_id OPERATOR(pg_catalog.=) $1",
					  7, types, values, NULL, SPI_OK_UPDATE);
	else
	{
		values[6] = Int64GetDatum(rs.run_id);
		values[7] = CStringGetTextDatum(coco_session_origin());
		coco_spi_exec("INSERT INTO coco.run (run_id, app_id, \"full\", status, started_at, finished_at, stats, pid, origin) "
					  "OVERRIDING SYSTEM VALUE VALUES ($7, $1, $2, 'succeeded', $3, $4, $5, $6, $8)",
					  8, types, values, NULL, SPI_OK_INSERT);
		run_id = rs.run_id;
	}
	coco_leave(&uc);
	coco_progress_end();
	/* before carrying: that moves the statistics' names to a new context */
	result = stats_jsonb(&rs, run_id);
	carry_stats_out(&rs, run_id);
	coco_run_guard_leave();
	return result;
}

void
coco_engine_drop_app(CocoApp *app, bool keep_targets)
{
	Oid			types[1] = {INT4OID};
	Datum		values[1] = {Int32GetDatum(app->app_id)};
	CocoUserContext uc;

	coco_run_guard_enter(app, "coco.drop_app()");
	coco_lock_app(app, true);
	delete_staging(app->app_id, NULL);
	if (!keep_targets)
	{
		RunStats	rs;

		if (!SearchSysCacheExists1(AUTHOID, ObjectIdGetDatum(app->owner)))
			ereport(ERROR,
					(errcode(ERRCODE_UNDEFINED_OBJECT),
					 errmsg("the owner of app \"%s\" no longer exists", app->name),
					 errdetail("Its targets would be dropped as its owner."),
					 errhint("Drop the app with coco.drop_app(app, keep_targets => true).")));

		/* nothing declared, every component replaced: everything goes */
		memset(&rs, 0, sizeof(rs));
		rs.drop_guard = COCO_DROP_ALLOWED;
		run_pass(app, true, &rs);
		coco_protect_notice_left(app);

		/*
		 * The app's records are about to go, so targets outside the
		 * transaction are removed now, in this transaction.  Should it roll
		 * back, the app stays and its next run finds them missing (drift)
		 * and writes them again.
		 */
		(void) coco_complete_intents(app, 0, NULL, NULL);
	}
	coco_enter_extension_owner(&uc);
	coco_spi_exec("DELETE FROM coco.tracked_chunk WHERE app_id OPERATOR(pg_catalog.=) $1", 1, types, values, NULL, SPI_OK_DELETE);
	coco_spi_exec("DELETE FROM coco.row_set WHERE app_id OPERATOR(pg_catalog.=) $1", 1, types, values, NULL, SPI_OK_DELETE);
	coco_spi_exec("DELETE FROM coco.target_state WHERE app_id OPERATOR(pg_catalog.=) $1", 1, types, values, NULL, SPI_OK_DELETE);
	coco_spi_exec("DELETE FROM coco.app WHERE app_id OPERATOR(pg_catalog.=) $1", 1, types, values, NULL, SPI_OK_DELETE);
	coco_leave(&uc);
	coco_run_guard_leave();
}

/* ---- SQL-callable ------------------------------------------------------ */

/*
 * allow_drop_all is argument `allow_arg`; the definitions of 0.5 (before
 * ALTER EXTENSION … UPDATE) lack it, and their calls are refused by the app
 * look-up's version check.
 */
static Datum
reconcile_call(FunctionCallInfo fcinfo, bool full, bool declare_first, int allow_arg)
{
	CocoApp    *app;
	Jsonb	   *result;
	Jsonb	   *copy;
	volatile bool allow_drop_all = false;
	CocoSyncRun outer;
	MemoryContext cxt;

	coco_require_arg(fcinfo, 0, "app name");
	if (PG_NARGS() > allow_arg)
	{
		coco_require_arg(fcinfo, allow_arg, "allow_drop_all");
		allow_drop_all = PG_GETARG_BOOL(allow_arg);
	}
	SPI_connect();
	cxt = CurrentMemoryContext;
	app = coco_app_lookup(text_to_cstring(PG_GETARG_TEXT_PP(0)));

	/*
	 * A run that fails rolls back its record with the caller's transaction:
	 * it is handed to the worker (sync_run.c), and the error goes on.
	 */
	coco_sync_run_begin(app, full, &outer);
	PG_TRY();
	{
		result = coco_engine_reconcile_guarded(app, full, declare_first, 0, allow_drop_all);
	}
	PG_CATCH();
	{
		coco_sync_run_failed(cxt);
		coco_sync_run_end(&outer);
		PG_RE_THROW();
	}
	PG_END_TRY();
	coco_sync_run_end(&outer);
	/* the result must outlive SPI's memory */
	copy = SPI_palloc(VARSIZE(result));
	memcpy(copy, result, VARSIZE(result));
	SPI_finish();
	PG_RETURN_JSONB_P(copy);
}

/* coco.reconcile(app, full, allow_drop_all) — reconcile now, in this transaction. */
PG_FUNCTION_INFO_V1(coco_reconcile);
Datum
coco_reconcile(PG_FUNCTION_ARGS)
{
	/* a NULL "full" is refused, as coco.plan and coco.submit refuse it */
	coco_require_arg(fcinfo, 1, "full");
	return reconcile_call(fcinfo, PG_GETARG_BOOL(1), false, 2);
}

/*
 * coco.update(app, allow_drop_all) — run the app's declaration function (as its owner) and
 * reconcile the result as a full run: the in-database "target state =
 * transform(source state)", and what pg_cron schedules.
 */
PG_FUNCTION_INFO_V1(coco_update);
Datum
coco_update(PG_FUNCTION_ARGS)
{
	return reconcile_call(fcinfo, true, true, 1);
}
