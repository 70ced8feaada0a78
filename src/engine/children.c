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
		tracked = coco_spi_int8("SELECT pg_catalog.count(*) FROM coco.tracked_row "
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
				 errhint("Each row may be declared once between two reconciles.")));
}

/* Children of every container of the app that has work in this run. */
void
coco_sync_children(CocoApp *app, const CocoPass *pass, int *replaced, int nreplaced, RootState *states, int nstates,
				  RunStats *rs)
{
	Oid			types[3] = {INT4OID, INT4ARRAYOID, TEXTOID};
	Datum		values[3];
	ArrayType  *replaced_arr = coco_run_int_array(replaced, nreplaced);
	SPITupleTable *containers;
	uint64		ncontainers;
	CocoUserContext uc;

	values[0] = Int32GetDatum(app->app_id);
	values[1] = PointerGetDatum(replaced_arr);
	coco_enter_extension_owner(&uc);
	coco_spi_exec("SELECT ts_id, provider, name, records OPERATOR(pg_catalog.->) -1, generation, schema_version "
				  "FROM coco.target_state WHERE app_id OPERATOR(pg_catalog.=) $1 ORDER BY ts_id",
				  1, types, values, NULL, SPI_OK_SELECT);
	coco_leave(&uc);
	containers = SPI_tuptable;
	ncontainers = SPI_processed;

	for (uint64 i = 0; i < ncontainers; i++)
	{
		HeapTuple	tup = containers->vals[i];
		TupleDesc	desc = containers->tupdesc;
		bool		isnull;
		int64		ts_id = DatumGetInt64(SPI_getbinval(tup, desc, 1, &isnull));
		char	   *provider = TextDatumGetCString(SPI_getbinval(tup, desc, 2, &isnull));
		char	   *name = TextDatumGetCString(SPI_getbinval(tup, desc, 3, &isnull));
		Jsonb	   *record = DatumGetJsonbPCopy(SPI_getbinval(tup, desc, 4, &isnull));
		int			generation = DatumGetInt32(SPI_getbinval(tup, desc, 5, &isnull));
		int			schema_version = DatumGetInt32(SPI_getbinval(tup, desc, 6, &isnull));
		const CocoProvider *p = coco_lookup_provider(provider);
		Oid			t2[2] = {INT8OID, INT4ARRAYOID};
		Datum		v2[2];
		CocoChildSync sync;
		ComponentRows *comps = palloc(sizeof(ComponentRows) * Max(nreplaced, 1));	/* one per replaced component at most */
		int			ncomps = 0;
		int		   *dirty = palloc(sizeof(int) * Max(nreplaced, 1));
		int			ndirty = 0;
		int		   *rewrite = palloc(sizeof(int) * Max(nreplaced, 1));
		int			nrewrite = 0;
		int64		clean_rows = 0;
		bool		declares_any;
		bool		fresh;

		if (p == NULL || p->sync_children == NULL)
			continue;

		/* is any child of this container in play? */
		values[2] = CStringGetTextDatum(name);
		coco_run_snap_exec(pass, "SELECT 1 FROM coco.staged_query WHERE app_id OPERATOR(pg_catalog.=) $1 "
				  "AND tbl OPERATOR(pg_catalog.=) $3 AND comp_id OPERATOR(pg_catalog.=) ANY ($2) "
				  "UNION ALL SELECT 1 FROM coco.staged_row WHERE app_id OPERATOR(pg_catalog.=) $1 "
				  "AND tbl OPERATOR(pg_catalog.=) $3 AND comp_id OPERATOR(pg_catalog.=) ANY ($2) LIMIT 1",
				  3, types, values, true, SPI_OK_SELECT);
		declares_any = SPI_processed > 0;

		/* what they have */
		v2[0] = Int64GetDatum(ts_id);
		v2[1] = PointerGetDatum(replaced_arr);
		coco_enter_extension_owner(&uc);
		coco_spi_exec("SELECT comp_id, generation, schema_version, nrows, digest FROM coco.row_set "
					  "WHERE target_id OPERATOR(pg_catalog.=) $1 AND comp_id OPERATOR(pg_catalog.=) ANY ($2)",
					  2, t2, v2, NULL, SPI_OK_SELECT);
		for (uint64 r = 0; r < SPI_processed; r++)
		{
			HeapTuple	t = SPI_tuptable->vals[r];
			TupleDesc	d = SPI_tuptable->tupdesc;
			ComponentRows *c = component_rows(comps, &ncomps,
											  DatumGetInt32(SPI_getbinval(t, d, 1, &isnull)));
			Datum		digest;

			c->has_set = true;
			c->set_current = DatumGetInt32(SPI_getbinval(t, d, 2, &isnull)) == generation &&
				DatumGetInt32(SPI_getbinval(t, d, 3, &isnull)) == schema_version;
			c->set_rows = DatumGetInt64(SPI_getbinval(t, d, 4, &isnull));
			digest = SPI_getbinval(t, d, 5, &isnull);
			c->set_known = !isnull;
			if (!isnull)
				coco_digest_from_bytea(DatumGetByteaPP(digest), &c->set_digest);
		}
		coco_leave(&uc);

		if (!declares_any && ncomps == 0)
			continue;			/* no child of this container is in play */

		/*
		 * Rows written under an older generation or schema are written
		 * again in full; such a component is never clean, so this is also
		 * what the sync re-writes.  A summary that diffs as it reads needs
		 * it first.
		 */
		for (int c = 0; c < ncomps; c++)
			if (comps[c].has_set && !comps[c].set_current)
				rewrite[nrewrite++] = comps[c].comp_id;

		/* what they declare now, per component, from one streaming pass */
		coco_run_init_sync(&sync, app, pass, ts_id, record, replaced, nreplaced);
		fresh = is_fresh(states, nstates, ts_id);
		if (fresh)
		{
			/* nothing is tracked under this generation: whoever declares is diffed */
			coco_run_snap_exec(pass, "SELECT comp_id FROM coco.staged_query WHERE app_id OPERATOR(pg_catalog.=) $1 "
					  "AND tbl OPERATOR(pg_catalog.=) $3 AND comp_id OPERATOR(pg_catalog.=) ANY ($2) "
					  "UNION SELECT comp_id FROM coco.staged_row WHERE app_id OPERATOR(pg_catalog.=) $1 "
					  "AND tbl OPERATOR(pg_catalog.=) $3 AND comp_id OPERATOR(pg_catalog.=) ANY ($2)",
					  3, types, values, true, SPI_OK_SELECT);
			for (uint64 r = 0; r < SPI_processed; r++)
				component_rows(comps, &ncomps,
							   DatumGetInt32(SPI_getbinval(SPI_tuptable->vals[r], SPI_tuptable->tupdesc, 1, &isnull)))->declares = true;
		}
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
					ComponentRows *c = component_rows(comps, &ncomps, replaced[r]);

					c->declares = true;
					c->declared_rows = n;
					c->declared = digest;
				}
			}
		}

		/* only components that do not declare exactly what they have are diffed */
		for (int c = 0; c < ncomps; c++)
		{
			if (component_clean(&comps[c]))
			{
				clean_rows += comps[c].set_rows;
				continue;
			}
			dirty[ndirty++] = comps[c].comp_id;
		}
		coco_run_provider_stats(rs, p->child_name)->unchanged += clean_rows;
		if (ndirty == 0)
			continue;

		coco_run_init_sync(&sync, app, pass, ts_id, record, dirty, ndirty);
		coco_progress_phase("writing rows", name, 0);
		sync.rewrite_comps = rewrite;
		sync.nrewrite = nrewrite;
		v2[1] = PointerGetDatum(coco_run_int_array(dirty, ndirty));
		coco_enter_extension_owner(&uc);
		sync.exclusive = coco_spi_int8("SELECT NOT EXISTS (SELECT 1 FROM coco.row_set "
									   "WHERE target_id OPERATOR(pg_catalog.=) $1 "
									   "AND comp_id OPERATOR(pg_catalog.<>) ALL ($2))",
									   2, t2, v2, NULL) != 0;
		coco_leave(&uc);
		sync.fresh_container = fresh;
		sync.change_limit = rs->change_budget;
		p->sync_children(&sync);
		coco_run_count_children(rs, p, &sync);
		if (sync.more)
		{
			/*
			 * Stopped early: the diffed components are partly written.
			 * Their row sets say so (no digest: the next pass diffs them
			 * again and counts what they track).  Containers after this
			 * one wait for that pass too.
			 */
			Oid			t4[5] = {INT4OID, INT8OID, INT4ARRAYOID, INT4OID, INT4OID};
			Datum		v4[5] = {Int32GetDatum(app->app_id), v2[0], v2[1],
			Int32GetDatum(generation), Int32GetDatum(schema_version)};

			coco_enter_extension_owner(&uc);
			coco_spi_exec("DELETE FROM coco.row_set WHERE target_id OPERATOR(pg_catalog.=) $2 "
						  "AND comp_id OPERATOR(pg_catalog.=) ANY ($3)",
						  5, t4, v4, NULL, SPI_OK_DELETE);
			coco_spi_exec("INSERT INTO coco.row_set (app_id, target_id, comp_id, generation, schema_version, nrows, digest) "
						  "SELECT $1, $2, c, $4, $5, 0, NULL FROM pg_catalog.unnest($3) c",
						  5, t4, v4, NULL, SPI_OK_INSERT);
			coco_leave(&uc);
			rs->more = true;
			break;
		}
		check_distinct_keys(app, ts_id, name, comps, ncomps, dirty, ndirty, &sync);

		/*
		 * The diffed components now hold exactly the children they declared,
		 * written under the current generation; the diff tallied their count
		 * and digest.
		 */
		coco_enter_extension_owner(&uc);
		coco_spi_exec("DELETE FROM coco.row_set WHERE target_id OPERATOR(pg_catalog.=) $1 "
					  "AND comp_id OPERATOR(pg_catalog.=) ANY ($2)",
					  2, t2, v2, NULL, SPI_OK_DELETE);
		for (int d = 0; d < ndirty; d++)
		{
			int64		nrows;
			CocoDigest	digest;
			Datum		v3[7];
			Oid			t3b[7] = {INT4OID, INT8OID, INT4OID, INT4OID, INT4OID, INT8OID, BYTEAOID};

			if (!coco_child_tally_get(sync.tally, dirty[d], &nrows, &digest) || nrows == 0)
				continue;
			v3[0] = Int32GetDatum(app->app_id);
			v3[1] = Int64GetDatum(ts_id);
			v3[2] = Int32GetDatum(dirty[d]);
			v3[3] = Int32GetDatum(generation);
			v3[4] = Int32GetDatum(schema_version);
			v3[5] = Int64GetDatum(nrows);
			v3[6] = PointerGetDatum(coco_digest_to_bytea(&digest));
			coco_spi_exec("INSERT INTO coco.row_set (app_id, target_id, comp_id, generation, schema_version, nrows, digest) "
						  "VALUES ($1, $2, $3, $4, $5, $6, $7)", 7, t3b, v3, NULL, SPI_OK_INSERT);
		}
		coco_leave(&uc);

		/* this container is complete; the budget left goes to the next */
		if (rs->change_budget > 0)
		{
			rs->change_budget -= sync.inserted + sync.updated + sync.deleted;
			if (rs->change_budget <= 0)
			{
				rs->more = true;
				break;
			}
		}
	}
}
