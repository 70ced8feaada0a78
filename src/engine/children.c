/*
 * children.c — the children of containers in one run (rows of tables).
 *
 * For every container with children in play, each replaced component is
 * either clean — it declares exactly the children it has, by count and
 * digest from one streaming summary pass — or diffed by the provider.  A
 * container created by this run has nothing tracked, so whoever declares is
 * diffed without a summary.  After a diff the component's row set records
 * the count and digest the diff tallied, under the container's current
 * generation, and the count is checked against the tracked children: fewer
 * tracked than declared means a key came twice.
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "utils/builtins.h"

#include "run.h"

/*
 * One replaced component's children of a container: what it declares now
 * (count and digest, added up over its staged declarations) and what it
 * has (its row set).
 */
typedef struct ComponentRows
{
	int			comp_id;
	bool		declares;
	int64		declared_rows;
	CocoDigest	declared;
	bool		has_set;
	bool		set_current;	/* written under the container's generation */
	bool		set_known;		/* digest known */
	int64		set_rows;
	CocoDigest	set_digest;
} ComponentRows;

static ComponentRows *
component_rows(ComponentRows *list, int *n, int comp_id)
{
	for (int i = 0; i < *n; i++)
		if (list[i].comp_id == comp_id)
			return &list[i];
	memset(&list[*n], 0, sizeof(ComponentRows));
	list[*n].comp_id = comp_id;
	return &list[(*n)++];
}

static bool
is_fresh(RootState *states, int nstates, int64 ts_id)
{
	for (int i = 0; i < nstates; i++)
		if (states[i].ts_id == ts_id)
			return states[i].decision.action == COCO_INSERT ||
				states[i].decision.action == COCO_REPLACE;
	return false;
}

/* A component declaring exactly the rows it has needs no diff. */
static bool
component_clean(const ComponentRows *c)
{
	return c->declares && c->has_set && c->set_current && c->set_known &&
		c->declared_rows == c->set_rows &&
		c->declared.lo == c->set_digest.lo && c->declared.hi == c->set_digest.hi;
}

/*
 * After a diff: the components diffed must now track exactly as many
 * children as they declared.  Fewer means a key was declared twice, one
 * copy unchanged (the diff only sees changed rows, so the copies did not
 * meet there).
 */
static void
check_distinct_keys(CocoApp *app, int64 ts_id, const char *name, ComponentRows *comps,
					int ncomps, int *dirty, int ndirty, CocoChildSync *sync)
{
	int64		declared = coco_child_tally_total(sync->tally);
	int64		before = 0;
	bool		known = true;
	int64		tracked;

	for (int d = 0; d < ndirty; d++)
		for (int c = 0; c < ncomps; c++)
			if (comps[c].comp_id == dirty[d] && comps[c].has_set)
			{
				if (comps[c].set_current && comps[c].set_known)
					before += comps[c].set_rows;
				else
					known = false;
			}
	if (known)
		tracked = before + sync->inserted - sync->deleted;
	else
	{
		Oid			t[2] = {INT8OID, INT4ARRAYOID};
		Datum		v[2] = {Int64GetDatum(ts_id), PointerGetDatum(coco_run_int_array(dirty, ndirty))};
		CocoUserContext uc;

		coco_enter_extension_owner(&uc);
		tracked = coco_spi_int8("SELECT COALESCE(pg_catalog.sum(nrows), 0)::pg_catalog.int8 FROM coco.tracked_chunk "
								"WHERE target_id OPERATOR(pg_catalog.=) $1 AND comp_id OPERATOR(pg_catalog.=) ANY ($2)",
								2, t, v, NULL);
		coco_leave(&uc);
	}
	if (declared != tracked)
		ereport(ERROR,
				(errcode(ERRCODE_UNIQUE_VIOLATION),
				 errmsg("rows declared for table \"%s\" repeat a primary key", name),
				 errdetail(INT64_FORMAT " rows were declared, with " INT64_FORMAT " distinct keys.",
						   declared, tracked),
				 errhint("A declare_rows query may yield a key once, and one component at a time may declare it.")));
}

/* A container read back from tracking, whose children may be in play. */
typedef struct Container
{
	int64		ts_id;
	const CocoProvider *provider;
	char	   *name;
	Jsonb	   *record;
	bytea	   *record_fp;		/* its fingerprint, as coco.verify computes it */
	int			generation;
	int			schema_version;
} Container;

/* Whether any replaced component stages children of the container. */
static bool
declares_any_child(const CocoPass *pass, Datum *values)
{
	Oid			types[3] = {INT4OID, INT4ARRAYOID, TEXTOID};

	coco_run_snap_exec(pass, "SELECT 1 FROM coco.staged_query WHERE app_id OPERATOR(pg_catalog.=) $1 "
					   "AND tbl OPERATOR(pg_catalog.=) $3 AND comp_id OPERATOR(pg_catalog.=) ANY ($2) "
					   "UNION ALL SELECT 1 FROM coco.staged_row WHERE app_id OPERATOR(pg_catalog.=) $1 "
					   "AND tbl OPERATOR(pg_catalog.=) $3 AND comp_id OPERATOR(pg_catalog.=) ANY ($2) LIMIT 1",
					   3, types, values, true, SPI_OK_SELECT);
	return SPI_processed > 0;
}

/* Every replaced component that stages children of a container is diffed
 * (a fresh one: nothing is tracked under its generation). */
static void
mark_declaring(const CocoPass *pass, Datum *values, ComponentRows *comps, int *ncomps)
{
	Oid			types[3] = {INT4OID, INT4ARRAYOID, TEXTOID};
	bool		isnull;

	coco_run_snap_exec(pass, "SELECT comp_id FROM coco.staged_query WHERE app_id OPERATOR(pg_catalog.=) $1 "
					   "AND tbl OPERATOR(pg_catalog.=) $3 AND comp_id OPERATOR(pg_catalog.=) ANY ($2) "
					   "UNION SELECT comp_id FROM coco.staged_row WHERE app_id OPERATOR(pg_catalog.=) $1 "
					   "AND tbl OPERATOR(pg_catalog.=) $3 AND comp_id OPERATOR(pg_catalog.=) ANY ($2)",
					   3, types, values, true, SPI_OK_SELECT);
	for (uint64 r = 0; r < SPI_processed; r++)
		component_rows(comps, ncomps,
					   DatumGetInt32(SPI_getbinval(SPI_tuptable->vals[r], SPI_tuptable->tupdesc, 1,
												   &isnull)))->declares = true;
}

/* What the replaced components have: their row sets' counts and digests. */
static void
load_row_sets(const Container *c, ArrayType *replaced_arr, ComponentRows *comps, int *ncomps)
{
	Oid			types[2] = {INT8OID, INT4ARRAYOID};
	Datum		values[2] = {Int64GetDatum(c->ts_id), PointerGetDatum(replaced_arr)};
	CocoUserContext uc;
	bool		isnull;

	coco_enter_extension_owner(&uc);
	coco_spi_exec("SELECT comp_id, generation, schema_version, nrows, digest FROM coco.row_set "
				  "WHERE target_id OPERATOR(pg_catalog.=) $1 AND comp_id OPERATOR(pg_catalog.=) ANY ($2)",
				  2, types, values, NULL, SPI_OK_SELECT);
	for (uint64 r = 0; r < SPI_processed; r++)
	{
		HeapTuple	t = SPI_tuptable->vals[r];
		TupleDesc	d = SPI_tuptable->tupdesc;
		ComponentRows *cr = component_rows(comps, ncomps,
										   DatumGetInt32(SPI_getbinval(t, d, 1, &isnull)));
		Datum		digest;

		cr->has_set = true;
		cr->set_current = DatumGetInt32(SPI_getbinval(t, d, 2, &isnull)) == c->generation &&
			DatumGetInt32(SPI_getbinval(t, d, 3, &isnull)) == c->schema_version;
		cr->set_rows = DatumGetInt64(SPI_getbinval(t, d, 4, &isnull));
		digest = SPI_getbinval(t, d, 5, &isnull);
		cr->set_known = !isnull;
		if (!isnull)
			coco_digest_from_bytea(DatumGetByteaPP(digest), &cr->set_digest);
	}
	coco_leave(&uc);
}

/*
 * Remember the diffed components' row sets.  Complete: each holds exactly
 * the children it declared, under the current generation, as the diff
 * tallied them.  Partial (a pass that stopped early): no digest, so the
 * next pass diffs them again and counts what they track.
 */
static void
record_row_sets(CocoApp *app, const Container *c, int *dirty, int ndirty,
				const CocoChildTally *tally, bool partial)
{
	Oid			types[6] = {INT4OID, INT8OID, INT4ARRAYOID, INT4OID, INT4OID, BYTEAOID};
	Datum		values[6] = {Int32GetDatum(app->app_id), Int64GetDatum(c->ts_id),
		PointerGetDatum(coco_run_int_array(dirty, ndirty)),
		Int32GetDatum(c->generation), Int32GetDatum(c->schema_version),
	PointerGetDatum(c->record_fp)};
	CocoUserContext uc;

	coco_enter_extension_owner(&uc);
	coco_spi_exec("DELETE FROM coco.row_set WHERE target_id OPERATOR(pg_catalog.=) $2 "
				  "AND comp_id OPERATOR(pg_catalog.=) ANY ($3)",
				  6, types, values, NULL, SPI_OK_DELETE);
	if (partial)
		coco_spi_exec("INSERT INTO coco.row_set (app_id, target_id, comp_id, generation, schema_version, nrows, digest, record_fp) "
					  "SELECT $1, $2, c, $4, $5, 0, NULL, $6 FROM pg_catalog.unnest($3) c",
					  6, types, values, NULL, SPI_OK_INSERT);
	else
	{
		for (int d = 0; d < ndirty; d++)
		{
			int64		nrows;
			CocoDigest	digest;
			Datum		v[8];
			Oid			t[8] = {INT4OID, INT8OID, INT4OID, INT4OID, INT4OID, INT8OID, BYTEAOID, BYTEAOID};

			if (!coco_child_tally_get(tally, dirty[d], &nrows, &digest) || nrows == 0)
				continue;
			v[0] = values[0];
			v[1] = values[1];
			v[2] = Int32GetDatum(dirty[d]);
			v[3] = values[3];
			v[4] = values[4];
			v[5] = Int64GetDatum(nrows);
			v[6] = PointerGetDatum(coco_digest_to_bytea(&digest));
			v[7] = values[5];
			coco_spi_exec("INSERT INTO coco.row_set (app_id, target_id, comp_id, generation, schema_version, nrows, digest, record_fp) "
						  "VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
						  8, t, v, NULL, SPI_OK_INSERT);
		}
	}
	coco_leave(&uc);
}

/*
 * Each row set keeps the fingerprint of the container's record its rows
 * were written under (a table's columns in their order), so that
 * coco.verify compares only the rows whose fingerprints still hold.
 * Components that declare exactly what they have: their rows' fingerprints
 * hold for the record as it is now (they digest to what is declared under
 * it).
 */
static void
record_clean_row_sets(const Container *c, int *clean, int nclean)
{
	Oid			types[3] = {INT8OID, INT4ARRAYOID, BYTEAOID};
	Datum		values[3] = {Int64GetDatum(c->ts_id), PointerGetDatum(coco_run_int_array(clean, nclean)),
	PointerGetDatum(c->record_fp)};
	CocoUserContext uc;

	if (nclean == 0)
		return;
	coco_enter_extension_owner(&uc);
	coco_spi_exec("UPDATE coco.row_set SET record_fp = $3 "
				  "WHERE target_id OPERATOR(pg_catalog.=) $1 AND comp_id OPERATOR(pg_catalog.=) ANY ($2) "
				  "AND record_fp IS DISTINCT FROM $3",
				  3, types, values, NULL, SPI_OK_UPDATE);
	coco_leave(&uc);
}

/*
 * The children of one container: which replaced components are clean
 * (declare exactly what they have), then a sync of the others.  Returns
 * false when the pass must stop here (its change budget is spent).
 */
static bool
sync_container(CocoApp *app, const CocoPass *pass, const Container *c, int *replaced,
			   int nreplaced, RootState *states, int nstates, RunStats *rs)
{
	const CocoProvider *p = c->provider;
	ArrayType  *replaced_arr = coco_run_int_array(replaced, nreplaced);
	Datum		values[3] = {Int32GetDatum(app->app_id), PointerGetDatum(replaced_arr),
	CStringGetTextDatum(c->name)};
	CocoChildSync sync;
	ComponentRows *comps = palloc(sizeof(ComponentRows) * Max(nreplaced, 1));	/* one per replaced component at most */
	int			ncomps = 0;
	int		   *dirty = palloc(sizeof(int) * Max(nreplaced, 1));
	int			ndirty = 0;
	int		   *clean = palloc(sizeof(int) * Max(nreplaced, 1));
	int			nclean = 0;
	int		   *rewrite = palloc(sizeof(int) * Max(nreplaced, 1));
	int			nrewrite = 0;
	int64		clean_rows = 0;
	bool		declares_any;
	bool		fresh;
	Oid			types[2] = {INT8OID, INT4ARRAYOID};
	Datum		v2[2];
	CocoUserContext uc;
	instr_time	t0;
	TargetStats *ts;
	bool		go_on;

	INSTR_TIME_SET_CURRENT(t0);
	declares_any = declares_any_child(pass, values);
	load_row_sets(c, replaced_arr, comps, &ncomps);
	if (!declares_any && ncomps == 0)
		return true;			/* no child of this container is in play */
	/* the container's children in the run's breakdown, timed from here */
	ts = coco_run_target_stats(rs, p->child_name, c->name);

	/*
	 * Rows written under an older generation or schema are written again in
	 * full; such a component is never clean, so this is also what the sync
	 * re-writes.  A summary that diffs as it reads needs it first.
	 */
	for (int i = 0; i < ncomps; i++)
		if (comps[i].has_set && !comps[i].set_current)
			rewrite[nrewrite++] = comps[i].comp_id;

	/* what they declare now, per component, from one streaming pass */
	coco_run_init_sync(&sync, app, pass, c->ts_id, c->record, replaced, nreplaced);
	fresh = is_fresh(states, nstates, c->ts_id);
	if (fresh)
		mark_declaring(pass, values, comps, &ncomps);
	else if (p->summarize_children && declares_any)
	{
		sync.rewrite_comps = rewrite;
		sync.nrewrite = nrewrite;
		p->summarize_children(&sync);
		for (int r = 0; r < nreplaced; r++)
		{
			int64		n;
			CocoDigest	digest;

			if (coco_child_tally_get(sync.tally, replaced[r], &n, &digest))
			{
				ComponentRows *cr = component_rows(comps, &ncomps, replaced[r]);

				cr->declares = true;
				cr->declared_rows = n;
				cr->declared = digest;
			}
		}
	}

	/* only components that do not declare exactly what they have are diffed */
	for (int i = 0; i < ncomps; i++)
	{
		if (component_clean(&comps[i]))
		{
			clean_rows += comps[i].set_rows;
			clean[nclean++] = comps[i].comp_id;
			continue;
		}
		dirty[ndirty++] = comps[i].comp_id;
	}
	record_clean_row_sets(c, clean, nclean);
	coco_run_provider_stats(rs, p->child_name)->unchanged += clean_rows;
	ts->unchanged += clean_rows;
	if (ndirty == 0)
	{
		ts->ms += coco_run_ms_since(t0);
		return true;
	}

	coco_run_init_sync(&sync, app, pass, c->ts_id, c->record, dirty, ndirty);
	coco_progress_phase("writing rows", c->name, 0);
	sync.rewrite_comps = rewrite;
	sync.nrewrite = nrewrite;
	v2[0] = Int64GetDatum(c->ts_id);
	v2[1] = PointerGetDatum(coco_run_int_array(dirty, ndirty));
	coco_enter_extension_owner(&uc);
	sync.exclusive = coco_spi_int8("SELECT NOT EXISTS (SELECT 1 FROM coco.row_set "
								   "WHERE target_id OPERATOR(pg_catalog.=) $1 "
								   "AND comp_id OPERATOR(pg_catalog.<>) ALL ($2))",
								   2, types, v2, NULL) != 0;
	coco_leave(&uc);
	sync.fresh_container = fresh;
	sync.change_limit = rs->change_budget;
	p->sync_children(&sync);
	coco_run_count_children(rs, p, &sync, ts);
	if (sync.more)
	{
		/* stopped early: the diffed components are partly written, and
		 * containers after this one wait for the next pass too */
		record_row_sets(app, c, dirty, ndirty, sync.tally, true);
		rs->more = true;
		ts->ms += coco_run_ms_since(t0);
		return false;
	}
	check_distinct_keys(app, c->ts_id, c->name, comps, ncomps, dirty, ndirty, &sync);
	record_row_sets(app, c, dirty, ndirty, sync.tally, false);

	/* this container is complete; the budget left goes to the next */
	go_on = true;
	if (rs->change_budget > 0)
	{
		rs->change_budget -= sync.inserted + sync.updated + sync.deleted;
		if (rs->change_budget <= 0)
		{
			rs->more = true;
			go_on = false;
		}
	}
	ts->ms += coco_run_ms_since(t0);
	return go_on;
}

/* Children of every container of the app that has work in this run. */
void
coco_sync_children(CocoApp *app, const CocoPass *pass, int *replaced, int nreplaced, RootState *states, int nstates,
				   RunStats *rs)
{
	Oid			types[1] = {INT4OID};
	Datum		values[1] = {Int32GetDatum(app->app_id)};
	SPITupleTable *containers;
	uint64		ncontainers;
	CocoUserContext uc;

	coco_enter_extension_owner(&uc);
	coco_spi_exec("SELECT ts_id, provider, name, records OPERATOR(pg_catalog.->) -1, generation, schema_version, "
				  "coco.fingerprint(pg_catalog.jsonb_send(records OPERATOR(pg_catalog.->) -1)) "
				  "FROM coco.target_state WHERE app_id OPERATOR(pg_catalog.=) $1 "
				  /* kept because protected: its children are left as they are */
				  "AND NOT retained ORDER BY ts_id",
				  1, types, values, NULL, SPI_OK_SELECT);
	coco_leave(&uc);
	containers = SPI_tuptable;
	ncontainers = SPI_processed;

	for (uint64 i = 0; i < ncontainers; i++)
	{
		HeapTuple	tup = containers->vals[i];
		TupleDesc	desc = containers->tupdesc;
		bool		isnull;
		Container	c;

		c.provider = coco_lookup_provider(TextDatumGetCString(SPI_getbinval(tup, desc, 2, &isnull)));
		if (c.provider == NULL || c.provider->sync_children == NULL)
			continue;
		c.ts_id = DatumGetInt64(SPI_getbinval(tup, desc, 1, &isnull));
		c.name = TextDatumGetCString(SPI_getbinval(tup, desc, 3, &isnull));
		c.record = DatumGetJsonbPCopy(SPI_getbinval(tup, desc, 4, &isnull));
		c.generation = DatumGetInt32(SPI_getbinval(tup, desc, 5, &isnull));
		c.schema_version = DatumGetInt32(SPI_getbinval(tup, desc, 6, &isnull));
		c.record_fp = DatumGetByteaPCopy(SPI_getbinval(tup, desc, 7, &isnull));
		if (!sync_container(app, pass, &c, replaced, nreplaced, states, nstates, rs))
			break;
	}
}
