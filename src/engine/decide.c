/*
 * decide.c — the deciding half of a pass: pure, no target changes.
 *
 * Through the pass's snapshot it reads the replaced components and the
 * root target states in play (staged, tracked in a replaced component, or
 * attachments of a container in play), checks them for drift, and hands
 * each to its provider's handler: containers first, then attachments,
 * knowing what happens to their containers.  coco.plan stops here; a run
 * goes on to apply (engine.c).
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/snapmgr.h"

#include "run.h"

static int *
replaced_components(const CocoPass *pass, int app_id, bool full, int *n)
{
	Oid			types[1] = {INT4OID};
	Datum		values[1] = {Int32GetDatum(app_id)};

	if (full)
		coco_run_snap_exec(pass, "SELECT comp_id FROM coco.component WHERE app_id OPERATOR(pg_catalog.=) $1",
				  1, types, values, true, SPI_OK_SELECT);
	else
		coco_run_snap_exec(pass, "SELECT comp_id FROM coco.staged_state WHERE app_id OPERATOR(pg_catalog.=) $1 "
				  "UNION SELECT comp_id FROM coco.staged_row WHERE app_id OPERATOR(pg_catalog.=) $1 "
				  "UNION SELECT comp_id FROM coco.staged_query WHERE app_id OPERATOR(pg_catalog.=) $1 "
				  "UNION SELECT comp_id FROM coco.cleared_component WHERE app_id OPERATOR(pg_catalog.=) $1",
				  1, types, values, true, SPI_OK_SELECT);
	return coco_run_int_column(n);
}

/*
 * The target states of the given providers that this run decides: those
 * staged, those tracked in a replaced component, and (for attachments) those
 * whose container is in play — the latter as bystanders.
 */
static RootState *
load_root_states(const CocoPass *pass, int app_id, ArrayType *replaced, ArrayType *providers,
				 ArrayType *parents,
				 int *n)
{
	Oid			types[4] = {INT4OID, INT4ARRAYOID, TEXTARRAYOID, INT8ARRAYOID};
	Datum		values[4] = {Int32GetDatum(app_id), PointerGetDatum(replaced),
	PointerGetDatum(providers), PointerGetDatum(parents)};
	RootState  *states;
	SPITupleTable *result;
	uint64		nresult;

	coco_run_snap_exec(pass, "SELECT coalesce(s.provider, t.provider), coalesce(s.key, t.key), "
			  "coalesce(s.name, t.name), s.spec, s.comp_id, t.ts_id, t.records, "
			  "t.may_be_missing, t.comp_id, t.generation, t.schema_version, "
			  "t.parent_id, t.parent_generation, "
			  "s.key IS NULL AND NOT coalesce(t.comp_id OPERATOR(pg_catalog.=) ANY ($2) "
			  "      OR (t.retained AND NOT t.protected), false), "
			  "coalesce(t.protected, false), coalesce(t.retained, false) "
			  "FROM (SELECT * FROM coco.staged_state WHERE app_id OPERATOR(pg_catalog.=) $1 "
			  "      AND provider OPERATOR(pg_catalog.=) ANY ($3)) s "
			  "FULL JOIN (SELECT * FROM coco.target_state WHERE app_id OPERATOR(pg_catalog.=) $1 "
			  "      AND provider OPERATOR(pg_catalog.=) ANY ($3)) t "
			  "ON s.provider OPERATOR(pg_catalog.=) t.provider AND s.key OPERATOR(pg_catalog.=) t.key "
			  "WHERE s.key IS NOT NULL OR t.comp_id OPERATOR(pg_catalog.=) ANY ($2) "
			  "OR t.parent_id OPERATOR(pg_catalog.=) ANY ($4) "
			  "OR (t.retained AND NOT t.protected) "
			  "ORDER BY 1, 2",
			  4, types, values, true, SPI_OK_SELECT);

	/* the loop runs SPI itself (provider look-ups): keep this result */
	result = SPI_tuptable;
	nresult = SPI_processed;
	states = palloc0(sizeof(RootState) * Max(nresult, 1));
	for (uint64 i = 0; i < nresult; i++)
	{
		HeapTuple	tup = result->vals[i];
		TupleDesc	desc = result->tupdesc;
		RootState  *rs = &states[i];
		bool		isnull;
		Datum		d;
		bytea	   *key;

		rs->st.provider = TextDatumGetCString(SPI_getbinval(tup, desc, 1, &isnull));
		key = DatumGetByteaPCopy(SPI_getbinval(tup, desc, 2, &isnull));
		rs->st.key = VARDATA(key);
		rs->st.keylen = VARSIZE(key) - VARHDRSZ;
		rs->st.name = TextDatumGetCString(SPI_getbinval(tup, desc, 3, &isnull));
		d = SPI_getbinval(tup, desc, 4, &isnull);
		rs->st.desired = isnull ? NULL : DatumGetJsonbPCopy(d);
		d = SPI_getbinval(tup, desc, 5, &isnull);
		rs->comp_id = isnull ? 0 : DatumGetInt32(d);
		d = SPI_getbinval(tup, desc, 6, &isnull);
		rs->ts_id = isnull ? 0 : DatumGetInt64(d);
		if (rs->ts_id != 0)
		{
			coco_run_set_prev(&rs->st, DatumGetJsonbPCopy(SPI_getbinval(tup, desc, 7, &isnull)));
			rs->st.prev_may_be_missing = DatumGetBool(SPI_getbinval(tup, desc, 8, &isnull));
			if (rs->comp_id == 0)
				rs->comp_id = DatumGetInt32(SPI_getbinval(tup, desc, 9, &isnull));
			rs->generation = DatumGetInt32(SPI_getbinval(tup, desc, 10, &isnull));
			rs->schema_version = DatumGetInt32(SPI_getbinval(tup, desc, 11, &isnull));
			d = SPI_getbinval(tup, desc, 12, &isnull);
			rs->parent_id = isnull ? 0 : DatumGetInt64(d);
			d = SPI_getbinval(tup, desc, 13, &isnull);
			rs->parent_generation = isnull ? 0 : DatumGetInt32(d);
		}
		rs->bystander = DatumGetBool(SPI_getbinval(tup, desc, 14, &isnull));
		rs->provider = coco_run_provider(rs->st.provider);
		rs->protected = DatumGetBool(SPI_getbinval(tup, desc, 15, &isnull));
		rs->retained = DatumGetBool(SPI_getbinval(tup, desc, 16, &isnull));
		coco_protect_take_option(rs);
	}
	*n = (int) nresult;
	return states;
}

/*
 * Targets changed behind the reconciler's back (a table or index dropped, a
 * column dropped or retyped by hand): cheap catalog look-ups every run.  A
 * state found drifted is decided as possibly missing, so it is made again.
 */
static int
find_drift(RootState *states, int n)
{
	int			found = 0;

	for (int i = 0; i < n; i++)
	{
		RootState  *s = &states[i];

		if (s->st.nprev == 0 || s->provider->matches_record == NULL)
			continue;
		if (!s->provider->matches_record(&s->st))
		{
			s->st.prev_may_be_missing = true;
			found++;
		}
	}
	return found;
}

/*
 * Decide the attachments, knowing what happens to their containers: a
 * dropped container takes them with it; a rebuilt one (now, or since they
 * were made) needs them made again, declared now or not; a user's table no
 * longer declared keeps its rows' table but loses the app's attachments.
 */
static void
decide_attachments(RootState *tables, int ntables, RootState *atts, int natts)
{
	for (int i = 0; i < natts; i++)
	{
		RootState  *a = &atts[i];
		char	   *parent = coco_run_container_name(a);
		RootState  *p = NULL;

		for (int t = 0; t < ntables; t++)
			if (strcmp(tables[t].st.provider, a->provider->parent) == 0 &&
				strcmp(tables[t].st.name, parent) == 0)
				p = &tables[t];
		a->st.container = p != NULL ? &p->decision : NULL;

		if (p != NULL && p->retain)
		{
			/* kept because it is protected: so are its attachments */
			if (a->st.desired && !a->bystander)
				ereport(ERROR,
						(errcode(ERRCODE_UNDEFINED_TABLE),
						 errmsg("\"%s\" is declared for \"%s\", which is no longer declared",
								a->st.name, parent),
						 errdetail("\"%s\" is kept only because it is protected.", parent),
						 errhint("Declare \"%s\" again, or clear the component of \"%s\".",
								 parent, a->st.name)));
			a->skip = true;
			continue;
		}

		if (p != NULL && p->decision.record == NULL)
		{
			if (a->st.desired && !a->bystander)
				ereport(ERROR,
						(errcode(ERRCODE_UNDEFINED_TABLE),
						 errmsg("\"%s\" is declared for \"%s\", which is no longer declared",
								a->st.name, parent),
						 errhint("Declare \"%s\" again, or clear the component of \"%s\".",
								 parent, a->st.name)));
			if (p->decision.action == COCO_DELETE)
			{
				a->forget = true;
				continue;
			}
			a->st.desired = NULL;
		}
		else if (a->st.prev_may_be_missing ||	/* found missing: drift */
				 (p != NULL && (p->decision.action == COCO_REPLACE ||
								(a->ts_id != 0 && a->parent_generation != p->generation))))
		{
			a->st.prev_may_be_missing = true;
			if (a->bystander && a->provider->outside_transaction && a->provider->top_level_sql == NULL)
			{
				/* its record is not enough to make it again (a file's
				 * content is not kept): it is made when declared again.
				 * (A statement's record is its spec: that is remade.) */
				a->skip = true;
				continue;
			}
			if (a->bystander)
				a->st.desired = a->st.prev[a->st.nprev - 1];
		}
		else if (a->bystander)
		{
			/* the container changes in place: the provider may have to
			 * make it again (an index on a retyped column), from its
			 * record, as for a rebuild */
			if (p != NULL && p->decision.action == COCO_UPSERT &&
				(!a->provider->outside_transaction || a->provider->top_level_sql != NULL))
			{
				a->st.desired = a->st.prev[a->st.nprev - 1];
				a->provider->reconcile(&a->st, &a->decision);
				if (a->decision.action == COCO_REPLACE)
					continue;
				a->st.desired = NULL;
				memset(&a->decision, 0, sizeof(a->decision));
			}
			a->skip = true;
			continue;
		}
		a->provider->reconcile(&a->st, &a->decision);
	}
}

/*
 * Children may only be declared for a container that still exists after
 * this run.  (The children staged are rows: coco.staged_row and
 * coco.staged_query hold them by the container's name.)
 */
static void
check_row_tables(const CocoPass *pass, int app_id, RootState *states, int nstates)
{
	Oid			types[1] = {INT4OID};
	Datum		values[1] = {Int32GetDatum(app_id)};
	uint64		ntables;
	SPITupleTable *tables;

	/* with whether the table is kept only because it is protected */
	coco_run_snap_exec(pass, "SELECT d.tbl, EXISTS (SELECT FROM coco.target_state t "
			  "  WHERE t.app_id OPERATOR(pg_catalog.=) $1 AND t.name OPERATOR(pg_catalog.=) d.tbl "
			  "  AND t.retained) "
			  "FROM (SELECT tbl FROM coco.staged_row WHERE app_id OPERATOR(pg_catalog.=) $1 "
			  "UNION SELECT tbl FROM coco.staged_query WHERE app_id OPERATOR(pg_catalog.=) $1) d",
			  1, types, values, true, SPI_OK_SELECT);
	ntables = SPI_processed;
	tables = SPI_tuptable;
	for (uint64 i = 0; i < ntables; i++)
	{
		bool		isnull;
		char	   *tbl = TextDatumGetCString(SPI_getbinval(tables->vals[i], tables->tupdesc, 1, &isnull));
		bool		retained = DatumGetBool(SPI_getbinval(tables->vals[i], tables->tupdesc, 2, &isnull));

		for (int s = 0; s < nstates; s++)
		{
			if (states[s].provider->child_name == NULL || strcmp(states[s].st.name, tbl) != 0)
				continue;
			if (states[s].decision.record == NULL)
				ereport(ERROR,
						(errcode(ERRCODE_UNDEFINED_TABLE),
						 errmsg("rows are declared for table \"%s\", which is no longer declared", tbl),
						 errhint("Declare the table again in its component, or clear the rows' component.")));
			/* declared again in this run: no longer only kept */
			retained = states[s].retain;
		}
		if (retained)
			ereport(ERROR,
					(errcode(ERRCODE_UNDEFINED_TABLE),
					 errmsg("rows are declared for table \"%s\", which is no longer declared", tbl),
					 errdetail("The table is kept only because it is protected; its rows are left as they are."),
					 errhint("Declare the table again, or clear the rows' component.")));
	}
}

/*
 * The deciding half of a pass (pure, no target changes): the run's snapshot,
 * the replaced components, the root states and attachments with their
 * decisions, drift found on the way.  coco.plan stops here.
 */
void
coco_run_decide(CocoApp *app, bool full, RunDecisions *rd, RunStats *rs)
{
	Oid			types[1] = {INT4OID};
	Datum		values[1] = {Int32GetDatum(app->app_id)};
	CocoUserContext uc;
	ArrayType  *replaced_arr;

	memset(rd, 0, sizeof(*rd));
	rd->pass.snapshot = RegisterSnapshot(GetTransactionSnapshot());
	coco_enter_extension_owner(&uc);
	rd->pass.pass_id = coco_spi_int8("SELECT pg_catalog.nextval('coco.pass_seq')", 0, NULL, NULL, NULL);
	rd->replaced = replaced_components(&rd->pass, app->app_id, full, &rd->nreplaced);
	coco_run_snap_exec(&rd->pass, "SELECT comp_id FROM coco.component WHERE app_id OPERATOR(pg_catalog.=) $1",
					   1, types, values, true, SPI_OK_SELECT);
	rd->all = coco_run_int_column(&rd->nall);
	replaced_arr = coco_run_int_array(rd->replaced, rd->nreplaced);
	rd->tables = load_root_states(&rd->pass, app->app_id, replaced_arr, coco_provider_names(false),
								  construct_empty_array(INT8OID), &rd->ntables);
	coco_leave(&uc);

	coco_fault("after_staging_read");

	/* decide (pure): containers first, then their attachments */
	rs->drift += find_drift(rd->tables, rd->ntables);
	for (int i = 0; i < rd->ntables; i++)
		rd->tables[i].provider->reconcile(&rd->tables[i].st, &rd->tables[i].decision);
	coco_protect_decide(rd->tables, rd->ntables, rs);
	{
		Datum	   *ids = palloc(sizeof(Datum) * Max(rd->ntables, 1));
		int			nids = 0;

		for (int i = 0; i < rd->ntables; i++)
			if (rd->tables[i].ts_id != 0)
				ids[nids++] = Int64GetDatum(rd->tables[i].ts_id);
		coco_enter_extension_owner(&uc);
		rd->atts = load_root_states(&rd->pass, app->app_id, replaced_arr, coco_provider_names(true),
									construct_array(ids, nids, INT8OID, 8, true, TYPALIGN_DOUBLE),
									&rd->natts);
		coco_leave(&uc);
	}
	rs->drift += find_drift(rd->atts, rd->natts);
	decide_attachments(rd->tables, rd->ntables, rd->atts, rd->natts);
	coco_enter_extension_owner(&uc);
	check_row_tables(&rd->pass, app->app_id, rd->tables, rd->ntables);
	coco_leave(&uc);

	/* nothing is applied yet: a refusal leaves nothing half-done */
	coco_protect_guard(app, full, rd, rs);
}

void
coco_run_end(RunDecisions *rd)
{
	UnregisterSnapshot(rd->pass.snapshot);
	rd->pass.snapshot = NULL;
}
