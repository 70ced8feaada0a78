/*
 * pg_rows.c — the rows of a postgres.table.
 *
 * Rows are tracked by key and fingerprint only (coco.tracked_chunk).  The
 * diff (rowdiff.c) reads every declaration of a table's replaced components
 * once — staged declare_rows queries and staged jsonb rows, converted to
 * the declared column types — against the tracked rows, as the engine's
 * summary pass, and leaves the rows that are new, changed, moved between
 * components, re-written after a lossy change, or no longer declared in a
 * tuplestore.  An unchanged row is read once and never kept or written.
 *
 * The changes are applied set-wise in batches through an ephemeral named
 * relation (a table Citus holds reads array parameters instead, which its
 * planner can plan): one DELETE and one INSERT … ON CONFLICT on the target (as the
 * app owner), and the matching tracking writes (as the extension owner), in
 * the run's transaction (reconciliation rule 9, docs/architecture.md).  A table the run created, whose
 * rows one component declares, is loaded with one INSERT … SELECT instead.
 * coco.plan counts with one SQL statement (a FULL JOIN): pg_rows_plan.c.
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "access/relation.h"
#include "access/xact.h"
#include "catalog/namespace.h"
#include "catalog/pg_class.h"
#include "catalog/pg_operator.h"
#include "catalog/pg_type.h"
#include "miscadmin.h"
#include "nodes/makefuncs.h"
#include "utils/acl.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/json.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/queryenvironment.h"
#include "utils/snapmgr.h"
#include "utils/tuplesort.h"
#include "utils/tuplestore.h"

#include "pg_rows.h"


/*
 * One statement of a batch.  An error it raises (a user's table that lacks
 * a column or a unique index on the key, a trigger, a check) is the
 * user's to see without our statement: re-thrown at once, with the table
 * named instead.
 */
static void
run_batch_sql(const CocoTableSpec *spec, const char *sql, int nargs, Oid *types, Datum *values)
{
	MemoryContext cxt = CurrentMemoryContext;
	volatile int rc = 0;

	PG_TRY();
	{
		rc = SPI_execute_with_args(sql, nargs, types, values, NULL, false, 0);
	}
	PG_CATCH();
	{
		coco_rethrow_without_statement(cxt, sql, psprintf("rows written to table \"%s\"",
														  spec->tn.qualified));
	}
	PG_END_TRY();
	if (rc < 0)
		elog(ERROR, "coco_target: row batch failed (%s): %s", SPI_result_code_string(rc), sql);
}

typedef struct Batch
{
	Tuplestorestate *store;
	int64		nrows;
	int64		ninserts;
	int64		nupdates;
	int64		ndeletes;
	int64		nretracked;		/* updated or moved: tracking updated */
} Batch;

static void
duplicate_across_batches(const CocoTableSpec *spec)
{
	ereport(ERROR,
			(errcode(ERRCODE_UNIQUE_VIOLATION),
			 errmsg("a row key is declared twice for table \"%s\"", spec->tn.qualified),
			 errdetail("A declare_rows query may yield a key once, and one component at a time may declare it.")));
}

/*
 * A batch's rows of one operation as array parameters, one per column; a
 * column whose type has no array type as text (coco_rows_column_as_text).
 */
typedef struct BatchArrays
{
	int			n;
	int64		nrows;
	int		   *attno;			/* in the batch's rows */
	Oid		   *types;			/* the arrays' types */
	FmgrInfo   *as_text;		/* the output function, or fn_oid 0 */
	ArrayBuildState **build;
	Datum	   *values;
} BatchArrays;

static void
batch_arrays_init(BatchArrays *a, const CocoTableSpec *spec, TupleDesc desc, bool keys_only)
{
	a->n = 0;
	a->nrows = 0;
	a->attno = palloc(sizeof(int) * spec->ncolumns);
	a->types = palloc(sizeof(Oid) * spec->ncolumns);
	a->build = palloc(sizeof(ArrayBuildState *) * spec->ncolumns);
	a->values = palloc(sizeof(Datum) * spec->ncolumns);
	a->as_text = palloc0(sizeof(FmgrInfo) * spec->ncolumns);
	for (int i = 0; i < spec->ncolumns; i++)
	{
		Oid			typid = TupleDescAttr(desc, COCO_CH_NFIXED + i)->atttypid;

		if (keys_only && !spec->columns[i].is_key)
			continue;
		a->attno[a->n] = COCO_CH_NFIXED + i + 1;
		if (coco_rows_column_as_text(spec, i))
		{
			Oid			out;
			bool		varlena;

			getTypeOutputInfo(typid, &out, &varlena);
			fmgr_info(out, &a->as_text[a->n]);
			typid = TEXTOID;
		}
		a->types[a->n] = get_array_type(typid);
		a->build[a->n] = initArrayResult(typid, CurrentMemoryContext, false);
		a->n++;
	}
}

static void
batch_arrays_add(BatchArrays *a, TupleTableSlot *slot)
{
	for (int j = 0; j < a->n; j++)
	{
		bool		isnull;
		Datum		v = slot_getattr(slot, a->attno[j], &isnull);

		if (!isnull && OidIsValid(a->as_text[j].fn_oid))
			v = CStringGetTextDatum(OutputFunctionCall(&a->as_text[j], v));
		(void) accumArrayResult(a->build[j], v, isnull, a->build[j]->element_type,
								CurrentMemoryContext);
	}
	a->nrows++;
}

static void
batch_arrays_finish(BatchArrays *a)
{
	for (int j = 0; j < a->n; j++)
		a->values[j] = makeArrayResult(a->build[j], CurrentMemoryContext);
}

/* the settings under which a value's text form reads back as the value */
static const char *const exact_text[] = {
	"extra_float_digits", "3",
	"DateStyle", "ISO, YMD",
	"IntervalStyle", "postgres",
	"TimeZone", "UTC",
	"xmloption", "content",
};

/*
 * The batch's writes to a table Citus holds: its deletions, new and changed
 * rows, each as one statement over array parameters (Citus plans these; it
 * cannot plan a statement that reads an ephemeral named relation).
 */
static void
write_target_from_arrays(Batch *b, const CocoTableSpec *spec, const RowStatements *st,
						 TupleDesc desc)
{
	MemoryContext cxt = AllocSetContextCreate(CurrentMemoryContext, "coco_target row arrays",
											  ALLOCSET_DEFAULT_SIZES);
	MemoryContext old = MemoryContextSwitchTo(cxt);
	TupleTableSlot *slot = MakeSingleTupleTableSlot(desc, &TTSOpsMinimalTuple);
	BatchArrays deletes;
	BatchArrays inserts;
	BatchArrays updates;
	int			nest = NewGUCNestLevel();

	/*
	 * Values sent as text must come back exactly, whatever the session's
	 * settings: floats in full, times in ISO form with their offsets.
	 */
	for (int i = 0; i < (int) lengthof(exact_text); i += 2)
		(void) set_config_option(exact_text[i], exact_text[i + 1], PGC_USERSET, PGC_S_SESSION,
								 GUC_ACTION_SAVE, true, 0, false);

	batch_arrays_init(&deletes, spec, desc, true);
	batch_arrays_init(&inserts, spec, desc, false);
	batch_arrays_init(&updates, spec, desc, false);
	tuplestore_rescan(b->store);
	while (tuplestore_gettupleslot(b->store, true, false, slot))
	{
		bool		isnull;

		switch (DatumGetInt32(slot_getattr(slot, COCO_CH_OP + 1, &isnull)))
		{
			case COCO_OP_DELETE:
				batch_arrays_add(&deletes, slot);
				break;
			case COCO_OP_INSERT:
				batch_arrays_add(&inserts, slot);
				break;
			case COCO_OP_UPDATE:
				batch_arrays_add(&updates, slot);
				break;
		}
	}
	ExecDropSingleTupleTableSlot(slot);
	batch_arrays_finish(&deletes);
	batch_arrays_finish(&inserts);
	batch_arrays_finish(&updates);
	PG_TRY();
	{
		if (deletes.nrows > 0)
			run_batch_sql(spec, st->delete_target, deletes.n, deletes.types, deletes.values);
		if (inserts.nrows > 0)
			run_batch_sql(spec, st->insert_target, inserts.n, inserts.types, inserts.values);
		if (updates.nrows > 0)
			run_batch_sql(spec, st->upsert_target, updates.n, updates.types, updates.values);
	}
	PG_CATCH();
	{
		coco_citus_rethrow(old, &spec->tn, "rows written to");
	}
	PG_END_TRY();
	AtEOXact_GUC(true, nest);
	MemoryContextSwitchTo(old);
	MemoryContextDelete(cxt);
}

static void
apply_batch(Batch *b, const CocoTableSpec *spec, const RowStatements *st, TupleDesc desc,
			CocoChildSync *sync, CocoTrackedChunks *chunks)
{
	EphemeralNamedRelation enr;
	CocoUserContext uc;

	if (b->nrows == 0)
		return;
	enr = palloc0(sizeof(EphemeralNamedRelationData));
	enr->md.name = BATCH_ENR;
	enr->md.reliddesc = InvalidOid;
	enr->md.tupdesc = desc;
	enr->md.enrtype = ENR_NAMED_TUPLESTORE;
	enr->md.enrtuples = b->nrows;
	enr->reldata = b->store;
	if (SPI_register_relation(enr) != SPI_OK_REL_REGISTER)
		elog(ERROR, "coco_target: could not register the row batch");

	coco_enter_app_owner(sync->owner, COCO_SAFE_SEARCH_PATH, &uc);
	if (b->ndeletes + b->ninserts + b->nupdates > 0)
		coco_lock_target_table(&spec->tn, RowExclusiveLock);
	if (st->from_arrays)
		write_target_from_arrays(b, spec, st, desc);
	else
	{
		if (b->ndeletes > 0)
			run_batch_sql(spec, st->delete_target, 0, NULL, NULL);
		if (b->ninserts > 0)
			run_batch_sql(spec, st->insert_target, 0, NULL, NULL);
		if (b->nupdates > 0)
			run_batch_sql(spec, st->upsert_target, 0, NULL, NULL);
	}
	coco_leave(&uc);

	coco_enter_extension_owner(&uc);
	{
		int64		written;

		/* each batch row names its tracked row by its chunk */
		coco_tracking_write(b->store, desc, chunks, sync->app_id, sync->container_id, spec, &written);
		if (written != b->ndeletes + b->nretracked)
			duplicate_across_batches(spec);
	}
	coco_leave(&uc);

	SPI_unregister_relation(BATCH_ENR);
}


/*
 * The summary pass of one table leaves its diff behind, so that a sync of
 * the same table in the same pass does not read the declarations again.
 * The diff's memory belongs to the transaction: the pass id and table say
 * whether it is still this one.
 */
static CocoRowDiff *kept_diff = NULL;
static int64 kept_pass = 0;
static int64 kept_container = 0;
static SubTransactionId kept_subid = InvalidSubTransactionId;

/* On abort the diff's temporary files are the resource owner's to close. */
static void
forget_kept_diff(bool close_files)
{
	if (kept_diff != NULL)
		coco_rowdiff_free(kept_diff, close_files);
	kept_diff = NULL;
	kept_pass = kept_container = 0;
}

static CocoRowDiff *
take_kept_diff(int64 pass_id, int64 container_id)
{
	CocoRowDiff *d = NULL;

	if (kept_diff != NULL && kept_pass == pass_id && kept_container == container_id)
	{
		d = kept_diff;
		kept_diff = NULL;
		kept_pass = kept_container = 0;
	}
	else
		forget_kept_diff(true);
	return d;
}

/*
 * A kept diff not used (its components were clean) goes when its
 * transaction or subtransaction ends, before the end would close its
 * temporary files for it.
 */
static void
rows_xact_callback(XactEvent event, void *arg)
{
	if (event == XACT_EVENT_PRE_COMMIT || event == XACT_EVENT_PARALLEL_PRE_COMMIT ||
		event == XACT_EVENT_PRE_PREPARE)
		forget_kept_diff(true);
	else if (event == XACT_EVENT_ABORT || event == XACT_EVENT_PARALLEL_ABORT)
		forget_kept_diff(false);
}

static void
rows_subxact_callback(SubXactEvent event, SubTransactionId mySubid,
					  SubTransactionId parentSubid, void *arg)
{
	if (event == SUBXACT_EVENT_PRE_COMMIT_SUB && mySubid == kept_subid)
		forget_kept_diff(true);
	else if (event == SUBXACT_EVENT_ABORT_SUB && mySubid == kept_subid)
		forget_kept_diff(false);
}

static void
keep_diff(CocoRowDiff *d, int64 pass_id, int64 container_id)
{
	static bool callbacks = false;

	if (!callbacks)
	{
		RegisterXactCallback(rows_xact_callback, NULL);
		RegisterSubXactCallback(rows_subxact_callback, NULL);
		callbacks = true;
	}
	kept_diff = d;
	kept_pass = pass_id;
	kept_container = container_id;
	kept_subid = GetCurrentSubTransactionId();
}

/* $1 app, $2 container, $3 replaced components, $4 to re-write, $5 the table */
static void
row_params(CocoChildSync *sync, const CocoTableSpec *spec, Oid *types, Datum *values)
{
	types[0] = INT4OID;
	types[1] = INT8OID;
	types[2] = INT4ARRAYOID;
	types[3] = INT4ARRAYOID;
	types[4] = TEXTOID;
	values[0] = Int32GetDatum(sync->app_id);
	values[1] = Int64GetDatum(sync->container_id);
	values[2] = PointerGetDatum(coco_run_int_array(sync->replaced_comps, sync->nreplaced));
	values[3] = PointerGetDatum(coco_run_int_array(sync->rewrite_comps, sync->nrewrite));
	values[4] = CStringGetTextDatum(spec->tn.qualified);
}

/*
 * The one read of the declarations: the tracked rows of the replaced
 * components first (as the extension owner), then every declared row (as
 * the app owner): counted, digested and diffed as it streams.  The summary
 * pass defers the tracked rows instead when the declarations are cheap to
 * read again (coco_rows_cheap_to_reread): a no-op (every component clean)
 * then costs the read alone, and a dirty component's sync loads them and
 * reads the declarations again for the values of the rows that change.
 */
static void
read_step(void *d)
{
	coco_rowdiff_read_declared((CocoRowDiff *) d);
}

/*
 * Declarations read before their tracked rows are read a second time for
 * the rows that change.  Where a component's one query can return the
 * ctid of each row's source row (pg_rows_ctid.c), the statement returned
 * returns it too, and *read_back reads those rows again by ctid, with a
 * tid[] parameter per component of *comps after the statement's five.
 * Not where a component has several sources: a window picks their rows.
 * Otherwise the statement is `sql`, and *read_back NULL.  As the app
 * owner, under the search_path the declarations are read with.
 */
static char *
with_ctids(const CocoTableSpec *spec, List *queries, char *sql, char **read_back, int **comps,
		   int *ncomps)
{
	int			n = list_length(queries);
	char	  **ctid_queries = palloc0(sizeof(char *) * Max(n, 1));
	char	  **at = palloc0(sizeof(char *) * Max(n, 1));
	ListCell   *lc;

	*read_back = NULL;
	*comps = palloc(sizeof(int) * Max(n, 1));
	*ncomps = 0;
	foreach(lc, queries)
		if (((StagedQuery *) lfirst(lc))->shared)
			return sql;
	foreach(lc, queries)
	{
		StagedQuery *q = lfirst(lc);
		int			i = foreach_current_index(lc);

		if (coco_rows_query_with_ctid(q->query, 6 + *ncomps, &ctid_queries[i], &at[i]))
			(*comps)[(*ncomps)++] = q->comp_id;
	}
	if (*ncomps == 0)
		return sql;
	*read_back = build_ctid_read_sql(spec, queries, at);
	return build_declared_ctid_sql(spec, queries, ctid_queries);
}

static CocoRowDiff *
read_declared(CocoChildSync *sync, const CocoTableSpec *spec, List *queries,
			  const char *search_path, bool summary)
{
	bool		deferred = false;
	Oid			types[5];
	Datum		values[5];
	CocoUserContext uc;
	CocoRowDiff *d;
	char	   *sql;
	char	   *read_back = NULL;
	int		   *ctid_comps = NULL;
	int			nctid_comps = 0;

	row_params(sync, spec, types, values);
	/* with declarations ignored, the statement reads no row but still
	 * describes them */
	sql = build_declared_sql(spec, queries, sync->ignore_declarations);
	if (summary)
	{
		coco_enter_app_owner(sync->owner, search_path, &uc);
		deferred = coco_rows_cheap_to_reread(sql, 5, types);
		if (deferred && !sync->ignore_declarations)
			sql = with_ctids(spec, queries, sql, &read_back, &ctid_comps, &nctid_comps);
		coco_leave(&uc);
		ereport(DEBUG1,
				(errmsg_internal("coco_target: the declarations of table \"%s\" are read %s",
								 spec->tn.qualified,
								 !deferred ? "once, after its tracked rows" :
								 read_back ? "before its tracked rows, with the ctids of their rows" :
								 "before its tracked rows")));
	}
	d = coco_rowdiff_create(spec, sql, 5, types, values, sync->rewrite_comps, sync->nrewrite);
	if (read_back)
		coco_rowdiff_read_by_ctid(d, read_back, ctid_comps, nctid_comps);
	coco_rowdiff_set_search_path(d, search_path);
	if (deferred)
		coco_rowdiff_defer_tracked(d, sync->container_id, sync->replaced_comps, sync->nreplaced);
	else
	{
		coco_enter_extension_owner(&uc);
		coco_rowdiff_load_tracked(d, sync->container_id, sync->replaced_comps, sync->nreplaced);
		coco_leave(&uc);
	}
	coco_enter_app_owner(sync->owner, search_path, &uc);
	coco_push_snapshot(sync->snapshot);
	coco_rows_guard(spec, queries, sql, 5, types, values, read_step, d);
	PopActiveSnapshot();
	coco_leave(&uc);
	return d;
}

/*
 * Count and digest, per replaced component, the rows it declares now —
 * one streaming pass with no join.  The engine compares them with each
 * component's row set and diffs only the components that differ.
 */
void
coco_rows_summarize(CocoChildSync *sync)
{
	CocoTableSpec *spec = coco_table_spec_parse(sync->record);
	char	   *search_path;
	List	   *queries = replaced_queries(sync, spec, &search_path);

	CocoRowDiff *d;

	forget_kept_diff(true);
	d = read_declared(sync, spec, queries, search_path, true);
	coco_rowdiff_publish_tally(d, sync->tally, NULL, 0);
	keep_diff(d, sync->pass_id, sync->container_id);
}

/*
 * The table this run created, found again by name for its bulk load, under
 * the lock the load writes with.  User code has run since CREATE TABLE (the
 * queries of tables loaded before it, a SQL provider's apply function) and
 * may have dropped, renamed, replaced or altered what now has the name;
 * rows go straight into the heap only if it is still a plain table of
 * exactly the declared columns and types, with nothing an INSERT would run
 * (triggers, rules, row security, CHECK constraints, generated columns,
 * partitions), that the app owner may insert into.  Anything else is
 * refused: nothing is written around it.
 */
static Oid
open_created_table(const CocoTableSpec *spec, Oid owner)
{
	RangeVar   *rv = makeRangeVar(spec->tn.schema, spec->tn.name, -1);
	Oid			relid = RangeVarGetRelid(rv, RowExclusiveLock, true);
	const char *why = NULL;

	if (!OidIsValid(relid))
		why = "it was dropped or renamed";
	else
	{
		Relation	rel = relation_open(relid, NoLock);
		Form_pg_class form = RelationGetForm(rel);
		TupleDesc	desc = RelationGetDescr(rel);

		if (form->relkind != RELKIND_RELATION || form->relispartition)
			why = "another relation took its name";
		else if (form->relhastriggers || form->relhasrules || form->relrowsecurity ||
				 (desc->constr && (desc->constr->num_check > 0 || desc->constr->has_generated_stored)))
			why = "a trigger, rule, policy or constraint was added to it";
		else if (desc->natts != spec->ncolumns)
			why = "its columns were changed";
		for (int i = 0; why == NULL && i < desc->natts; i++)
		{
			Form_pg_attribute att = TupleDescAttr(desc, i);
			Oid			typid;
			int32		typmod;

			coco_resolve_type(spec->columns[i].type, &typid, &typmod);
			if (att->attisdropped || att->attgenerated != '\0' ||
				strcmp(NameStr(att->attname), spec->columns[i].name) != 0 ||
				att->atttypid != typid || att->atttypmod != typmod)
				why = "its columns were changed";
		}
		if (why == NULL && pg_class_aclcheck(relid, owner, ACL_INSERT) != ACLCHECK_OK)
			why = "the app's owner may no longer insert into it";
		relation_close(rel, NoLock);
	}
	if (why != NULL)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("table \"%s\" was changed while the run was loading it", spec->tn.qualified),
				 errdetail("The run created the table, and since then %s.", why),
				 errhint("User code that a run calls (declare_rows queries, SQL providers) must not "
						 "alter the tables the run creates.")));
	return relid;
}

/* A load, as a step coco_rows_guard runs: into a table the run created
 * (relid), or one INSERT … SELECT into a user's table. */
typedef struct LoadStep
{
	const CocoTableSpec *spec;
	CocoChildSync *sync;
	char	   *sql;
	Oid		   *types;
	Datum	   *values;
	Oid			relid;
} LoadStep;

static void
load_step(void *arg)
{
	LoadStep   *l = arg;

	l->sync->inserted = coco_rowdiff_load(l->spec, l->sync->tally, l->sql, 5, l->types, l->values,
										  l->relid, l->sync->app_id, l->sync->container_id);
}

static void
insert_step(void *arg)
{
	LoadStep   *l = arg;

	if (SPI_execute_with_args(l->sql, 5, l->types, l->values, NULL, false, 0) != SPI_OK_INSERT)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("could not load table \"%s\"", l->spec->tn.qualified)));
	l->sync->inserted = SPI_processed;
}

/*
 * A table this run created, whose rows one component declares and no
 * other component tracks: nothing can conflict and nothing is tracked yet,
 * so there is nothing to diff.
 *
 * A table the extension made (managed_by system) has no trigger, rule or
 * policy: its rows and their tracking are written in one read of the
 * declarations, through the heap's multi-insert path (rowdiff.c), as the
 * app owner whose query it is; NOT NULL and the primary key are checked as
 * an INSERT would.  A user's table gets one INSERT … SELECT as the app
 * owner, and its tracking is computed from the table afterwards, read as
 * the app owner too (the table may be a view by then: its functions must
 * not run with more privilege).  A repeated key fails with the table's own
 * unique violation.
 */
static void
bulk_load(CocoChildSync *sync, const CocoTableSpec *spec, List *queries,
		  const char *search_path, Oid *types, Datum *values)
{
	char	   *qname = coco_quote_qualified(spec->tn.schema, spec->tn.name);
	StringInfoData cols;
	StringInfoData xcols;
	CocoUserContext uc;
	LoadStep	insert = {spec, sync, NULL, types, values, InvalidOid};

	/* coco.progress: the rows loaded so far against the rows declared */
	coco_enter_extension_owner(&uc);
	coco_progress_phase("loading rows", spec->tn.qualified,
						coco_rows_declared_count(sync, queries, 5, types, values));
	coco_leave(&uc);

	if (strcmp(spec->managed_by, "system") == 0)
	{
		Oid			relid = open_created_table(spec, sync->owner);

		LoadStep	load = {spec, sync, build_declared_sql(spec, queries, false), types, values, relid};

		coco_enter_app_owner(sync->owner, search_path, &uc);
		coco_push_snapshot(sync->snapshot);
		coco_rows_guard(spec, queries, load.sql, 5, types, values, load_step, &load);
		PopActiveSnapshot();
		coco_leave(&uc);
		coco_fault("after_row_batch");
		return;
	}

	initStringInfo(&cols);
	initStringInfo(&xcols);
	for (int i = 0; i < spec->ncolumns; i++)
	{
		appendStringInfo(&cols, "%s%s", i > 0 ? ", " : "", quote_identifier(spec->columns[i].name));
		appendStringInfo(&xcols, ", x.%s", quote_identifier(spec->columns[i].name));
	}

	coco_enter_app_owner(sync->owner, search_path, &uc);
	coco_lock_target_table(&spec->tn, RowExclusiveLock);
	coco_push_snapshot(sync->snapshot);
	insert.sql = psprintf("INSERT INTO %s (%s) SELECT %s FROM (%s) x", qname, cols.data, cols.data,
						  build_declared_sql(spec, queries, false));
	coco_rows_guard(spec, queries, insert.sql, 5, types, values, insert_step, &insert);
	PopActiveSnapshot();
	coco_leave(&uc);
	coco_progress_advance(sync->inserted);
	coco_fault("after_row_batch");

	/* the table read back as (component, columns…), as the app owner */
	coco_enter_app_owner(sync->owner, COCO_SAFE_SEARCH_PATH, &uc);
	(void) coco_rowdiff_load(spec, sync->tally, psprintf("SELECT %d AS \"coco#c\"%s FROM ONLY %s x",
											sync->replaced_comps[0], xcols.data, qname),
							 0, NULL, NULL, InvalidOid, sync->app_id, sync->container_id);
	coco_leave(&uc);
}

/*
 * The changes in the order they are written.  Where they take more than
 * one batch, those of tracked rows first, by the chunk that tracks each
 * row, then the new rows in the order they were read: each batch then
 * rewrites a run of chunks of its own, and a run rewrites a chunk for its
 * deletions and changes once (once more where a batch ends inside it)
 * rather than once per batch that holds one of its rows, as a batch of
 * rows in the order they were declared in can touch nearly every chunk.
 * New rows keep their order, which is the order the next run reads them
 * in (rowdiff.c's probe).  Sorted in the memory the diff's entries held
 * (coco_rowdiff_release_entries).  Not where the run commits in batches:
 * it applies a few of the changes and diffs again in the next
 * transaction.
 */
typedef struct ChangeSource
{
	Tuplestorestate *store;
	Tuplesortstate *sort;		/* the changes of tracked rows; NULL: none */
	bool		new_rows;		/* sorted, and on to the new rows */
} ChangeSource;

static bool
tracks_a_row(TupleTableSlot *slot)
{
	bool		isnull;

	(void) slot_getattr(slot, COCO_CH_TID + 1, &isnull);
	return !isnull;
}

static void
change_source_open(ChangeSource *src, Tuplestorestate *changes, TupleDesc desc, int64 limit,
				   bool commits_in_batches)
{
	AttrNumber	attno = COCO_CH_TID + 1;
	Oid			sortop = TIDLessOperator;
	Oid			collation = InvalidOid;
	bool		nulls_first = false;
	TupleTableSlot *slot;

	src->store = changes;
	src->sort = NULL;
	src->new_rows = false;
	tuplestore_rescan(changes);
	if (commits_in_batches || tuplestore_tuple_count(changes) <= limit)
		return;
	src->sort = tuplesort_begin_heap(desc, 1, &attno, &sortop, &collation, &nulls_first,
									 Max(coco_work_mem / 8 * 7, 64), NULL, TUPLESORT_NONE);
	slot = MakeSingleTupleTableSlot(desc, &TTSOpsMinimalTuple);
	while (tuplestore_gettupleslot(changes, true, false, slot))
	{
		CHECK_FOR_INTERRUPTS();
		if (tracks_a_row(slot))
			tuplesort_puttupleslot(src->sort, slot);
	}
	ExecDropSingleTupleTableSlot(slot);
	tuplesort_performsort(src->sort);
	tuplestore_rescan(changes);
}

static bool
change_source_next(ChangeSource *src, TupleTableSlot *slot)
{
	if (src->sort == NULL)
		return tuplestore_gettupleslot(src->store, true, false, slot);
	if (!src->new_rows)
	{
		if (tuplesort_gettupleslot(src->sort, true, false, slot, NULL))
			return true;
		src->new_rows = true;
	}
	while (tuplestore_gettupleslot(src->store, true, false, slot))
		if (!tracks_a_row(slot))
			return true;
	return false;
}

static void
change_source_close(ChangeSource *src)
{
	if (src->sort != NULL)
		tuplesort_end(src->sort);
	src->sort = NULL;
}

/* Apply the changes in batches; stop early where the run commits in batches. */
static void
apply_changes(CocoChildSync *sync, const CocoTableSpec *spec, Tuplestorestate *changes,
			  TupleDesc desc, CocoTrackedChunks *chunks)
{
	RowStatements st;
	TupleTableSlot *slot = MakeSingleTupleTableSlot(desc, &TTSOpsMinimalTuple);
	MemoryContext batch_cxt = AllocSetContextCreate(CurrentMemoryContext, "coco_target row batch",
													ALLOCSET_DEFAULT_SIZES);
	int64		limit = sync->change_limit > 0 ?
		Min(coco_batch_size, sync->change_limit) : coco_batch_size;
	bool		done = false;
	ChangeSource src;

	build_statements(spec, sync->fresh_container,
					 coco_citus_table_kind(coco_citus_relid(&spec->tn), NULL) != COCO_CITUS_NONE, &st);
	change_source_open(&src, changes, desc, limit, sync->change_limit > 0);
	while (!done)
	{
		Batch		batch;
		MemoryContext old = MemoryContextSwitchTo(batch_cxt);

		memset(&batch, 0, sizeof(batch));
		batch.store = tuplestore_begin_heap(false, false, work_mem);
		while (batch.nrows < limit)
		{
			bool		isnull;
			int			op;

			if (!change_source_next(&src, slot))
			{
				done = true;
				break;
			}
			op = DatumGetInt32(slot_getattr(slot, COCO_CH_OP + 1, &isnull));
			switch (op)
			{
				case COCO_OP_DELETE:
					batch.ndeletes++;
					sync->deleted++;
					break;
				case COCO_OP_INSERT:
					batch.ninserts++;
					sync->inserted++;
					break;
				case COCO_OP_UPDATE:
					batch.nupdates++;
					sync->updated++;
					batch.nretracked++;
					break;
				default:
					batch.nretracked++;
			}
			tuplestore_puttupleslot(batch.store, slot);
			batch.nrows++;
		}
		/* a tuple read back from disk lives in the batch's memory */
		ExecClearTuple(slot);
		MemoryContextSwitchTo(old);
		apply_batch(&batch, spec, &st, desc, sync, chunks);
		coco_progress_advance(batch.nrows);
		if (batch.nrows > 0)
			coco_fault("after_row_batch");
		tuplestore_end(batch.store);
		MemoryContextReset(batch_cxt);
		if (!done && sync->change_limit > 0 &&
			sync->inserted + sync->updated + sync->deleted >= sync->change_limit)
		{
			/* the rest in the next transaction (unless nothing is left) */
			sync->more = change_source_next(&src, slot);
			break;
		}
	}
	change_source_close(&src);
	ExecDropSingleTupleTableSlot(slot);
	MemoryContextDelete(batch_cxt);
}

void
coco_rows_sync(CocoChildSync *sync)
{
	CocoTableSpec *spec = coco_table_spec_parse(sync->record);
	List	   *queries;
	char	   *search_path = NULL;
	Oid			types[5];
	Datum		values[5];
	CocoUserContext uc;
	CocoRowDiff *d;

	if (sync->container_gone)
	{
		Oid			t[1] = {INT8OID};
		Datum		v[1] = {Int64GetDatum(sync->container_id)};

		forget_kept_diff(true);
		coco_enter_extension_owner(&uc);
		coco_spi_exec("DELETE FROM coco.tracked_chunk WHERE target_id OPERATOR(pg_catalog.=) $1",
					  1, t, v, NULL, SPI_OK_DELETE);
		coco_leave(&uc);
		return;
	}

	queries = sync->ignore_declarations ? NIL : replaced_queries(sync, spec, &search_path);
	/*
	 * One INSERT … SELECT cannot stop after a batch: not when batching.  Nor
	 * into a table Citus holds: its rows live in shards on other nodes, and
	 * the heap here is an empty shell the load would fill.
	 */
	if (sync->fresh_container && sync->exclusive && sync->nreplaced == 1 &&
		!sync->ignore_declarations && sync->change_limit == 0 &&
		coco_citus_table_kind(coco_citus_relid(&spec->tn), NULL) == COCO_CITUS_NONE)
	{
		forget_kept_diff(true);
		row_params(sync, spec, types, values);
		bulk_load(sync, spec, queries, search_path, types, values);
		return;
	}

	/* the summary pass's reading, or a reading now */
	d = sync->ignore_declarations ? NULL : take_kept_diff(sync->pass_id, sync->container_id);
	if (d == NULL)
		d = read_declared(sync, spec, queries, search_path, false);
	coco_rowdiff_publish_tally(d, sync->tally, sync->replaced_comps, sync->nreplaced);
	coco_enter_extension_owner(&uc);
	coco_rowdiff_load_deferred(d);
	coco_leave(&uc);

	/* the declarations are read again as they were read first */
	search_path = coco_rowdiff_search_path(d);
	if (!coco_rowdiff_finish(d))
	{
		coco_enter_app_owner(sync->owner, search_path, &uc);
		coco_push_snapshot(sync->snapshot);
		coco_rowdiff_duplicate_error(d);
	}
	if (coco_rowdiff_held_key_unknown(d))
	{
		coco_enter_app_owner(sync->owner, search_path, &uc);
		coco_push_snapshot(sync->snapshot);
		coco_rowdiff_find_held_key(d);
		PopActiveSnapshot();
		coco_leave(&uc);
	}
	coco_enter_extension_owner(&uc);
	coco_rowdiff_check_held(d);
	coco_rowdiff_deletions(d);
	coco_leave(&uc);
	coco_enter_app_owner(sync->owner, search_path, &uc);
	coco_push_snapshot(sync->snapshot);
	coco_rowdiff_read_changed(d);
	PopActiveSnapshot();
	coco_leave(&uc);

	/* the writes: each batch as the app owner, its tracking as the extension owner */
	coco_rowdiff_release_entries(d);
	apply_changes(sync, spec, coco_rowdiff_changes(d), coco_rowdiff_changes_desc(d),
				  coco_rowdiff_chunks(d));
	coco_rowdiff_free(d, true);

	sync->unchanged = coco_child_tally_total(sync->tally) - sync->inserted - sync->updated;
}
