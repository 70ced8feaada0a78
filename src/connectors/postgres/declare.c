/*
 * declare.c — the declaration API: what should exist, staged durably until
 * the app is reconciled.
 *
 * Declarations are validated here, at the boundary, so that bad input is
 * refused when it is given and nothing half-declared reaches a run:
 * identifiers, type names, row values (converted to the column types exactly
 * as jsonb_to_record does, which is also how the run converts them) and
 * query columns.  Staging is written as the extension owner.  A later
 * declaration of a key in the same component replaces the staged one
 * (src/store/staging.c says why it is deleted and inserted, never updated).
 *
 * A declare_rows query is staged as a query, not as rows: the run evaluates
 * it (as the app owner, with the declaring session's search_path) in the
 * diff against tracking, so an unchanged row is never staged, kept or
 * written anywhere.
 */
#include "postgres.h"

#include "access/heapam.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "access/tableam.h"
#include "access/xact.h"
#include "catalog/namespace.h"
#include "catalog/pg_type.h"
#include "commands/sequence.h"
#include "executor/executor.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "nodes/execnodes.h"
#include "storage/proc.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/fmgrprotos.h"
#include "utils/json.h"
#include "utils/jsonb.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/plancache.h"
#include "utils/portal.h"

#include "pg_rows.h"

/* ---- the declared spec of a table, cached within a transaction --------- */

typedef struct TableCache
{
	MemoryContext cxt;
	LocalTransactionId lxid;
	int			app_id;
	char	   *qualified;
	CocoTableSpec *spec;
	TupleDesc	tupdesc;		/* the declared columns, for row conversion */
	FmgrInfo	to_record;		/* jsonb_to_record, with its own cache */
	SPIPlanPtr	insert_plan;	/* INSERT INTO coco.staged_row */
	SPIPlanPtr	replace_plan;	/* DELETE of a row the component staged */
	int			replaced_in_a_row;	/* replacements since the last new key, at
									 * most REPLACEMENT_RUN */
} TableCache;

static TableCache table_cache;

/*
 * Converting a declared row runs user code (a domain's CHECK, a type's
 * input function), which may call the API again; the cache in use must not
 * be rebuilt under the conversion.
 */
static int	table_cache_busy = 0;

static void
check_table_cache_idle(void)
{
	if (table_cache_busy > 0)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_IN_USE),
				 errmsg("declarations cannot change while a declared row is being converted"),
				 errdetail("A domain check or a type's input function called coco_target's API "
						   "from inside coco.declare_row().")));
}

static void
forget_table_cache(void)
{
	check_table_cache_idle();
	table_cache.spec = NULL;
	table_cache.replaced_in_a_row = 0;
	if (table_cache.insert_plan)
		SPI_freeplan(table_cache.insert_plan);
	table_cache.insert_plan = NULL;
	if (table_cache.replace_plan)
		SPI_freeplan(table_cache.replace_plan);
	table_cache.replace_plan = NULL;
	if (table_cache.cxt)
		MemoryContextReset(table_cache.cxt);
}

/*
 * After a rollback (of the transaction or of a subtransaction, which may
 * have taken the staged table it describes) the next lookup rebuilds (and
 * frees) the cache.
 */
static void
invalidate_on_subxact_abort(SubXactEvent event, SubTransactionId mySubid,
							SubTransactionId parentSubid, void *arg)
{
	if (event == SUBXACT_EVENT_ABORT_SUB)
		table_cache.lxid = InvalidLocalTransactionId;
}

static void
invalidate_on_xact_abort(XactEvent event, void *arg)
{
	if (event == XACT_EVENT_ABORT || event == XACT_EVENT_PARALLEL_ABORT)
		table_cache.lxid = InvalidLocalTransactionId;
}

void
coco_declare_init(void)
{
	RegisterSubXactCallback(invalidate_on_subxact_abort, NULL);
	RegisterXactCallback(invalidate_on_xact_abort, NULL);
}

/* Look the spec up in staging first, then in tracking. */
static Jsonb *
find_table_spec(const CocoApp *app, const CocoTableName *tn)
{
	StringInfoData key;
	Oid			types[3] = {INT4OID, TEXTOID, BYTEAOID};
	Datum		values[3];
	CocoUserContext uc;
	Jsonb	   *spec = NULL;
	bool		isnull;

	initStringInfo(&key);
	coco_table_key(tn, &key);
	values[0] = Int32GetDatum(app->app_id);
	values[1] = CStringGetTextDatum(COCO_TABLE_PROVIDER);
	values[2] = PointerGetDatum(coco_key_buf_to_bytea(&key));

	coco_enter_extension_owner(&uc);
	coco_spi_exec("SELECT spec FROM coco.staged_state WHERE app_id OPERATOR(pg_catalog.=) $1 "
				  "AND provider OPERATOR(pg_catalog.=) $2 AND key OPERATOR(pg_catalog.=) $3 "
				  "UNION ALL "
				  "SELECT records OPERATOR(pg_catalog.->) -1 FROM coco.target_state "
				  "WHERE app_id OPERATOR(pg_catalog.=) $1 AND provider OPERATOR(pg_catalog.=) $2 "
				  "AND key OPERATOR(pg_catalog.=) $3 LIMIT 1",
				  3, types, values, NULL, SPI_OK_SELECT);
	coco_leave(&uc);
	if (SPI_processed > 0)
	{
		Datum		d = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);

		if (!isnull)
			spec = DatumGetJsonbPCopy(d);
	}
	return spec;
}

CocoTableSpec *
coco_declared_table_spec(const CocoApp *app, const CocoTableName *tn)
{
	Jsonb	   *json;
	MemoryContext old;

	if (table_cache.spec && table_cache.lxid == MyProc->lxid &&
		table_cache.app_id == app->app_id && strcmp(table_cache.qualified, tn->qualified) == 0)
		return table_cache.spec;

	json = find_table_spec(app, tn);
	if (json == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_TABLE),
				 errmsg("table \"%s\" is not declared in app \"%s\"", tn->qualified, app->name),
				 errhint("Declare the table with coco.declare_table() before its rows.")));

	if (table_cache.cxt == NULL)
		table_cache.cxt = AllocSetContextCreate(TopMemoryContext, "coco_target table cache",
												ALLOCSET_DEFAULT_SIZES);
	forget_table_cache();
	old = MemoryContextSwitchTo(table_cache.cxt);
	table_cache.spec = coco_table_spec_parse(json);
	table_cache.qualified = pstrdup(tn->qualified);
	table_cache.app_id = app->app_id;
	table_cache.lxid = MyProc->lxid;
	table_cache.tupdesc = CreateTemplateTupleDesc(table_cache.spec->ncolumns);
	for (int i = 0; i < table_cache.spec->ncolumns; i++)
	{
		Oid			typid;
		int32		typmod;

		coco_resolve_type(table_cache.spec->columns[i].type, &typid, &typmod);
		TupleDescInitEntry(table_cache.tupdesc, i + 1, table_cache.spec->columns[i].name,
						   typid, typmod, 0);
	}
	table_cache.tupdesc = BlessTupleDesc(table_cache.tupdesc);
	fmgr_info_cxt(fmgr_internal_function("jsonb_to_record"), &table_cache.to_record,
				  table_cache.cxt);

	MemoryContextSwitchTo(old);
	return table_cache.spec;
}

/* ---- declare_table ------------------------------------------------------ */

/*
 * Stage a table's declaration: its spec built and checked from the columns,
 * key and table options (NULL: none), staged in `component`
 * (coco.declare_table, and the expansion of a synced table).
 */
void
coco_stage_table(const CocoApp *app, const CocoTableName *tn, Jsonb *columns,
				 ArrayType *primary_key, const char *managed_by, ArrayType *component,
				 Jsonb *options)
{
	Jsonb	   *spec;
	StringInfoData key;

	spec = coco_table_spec_build(tn, columns, primary_key, managed_by);
	if (options != NULL)
		spec = coco_table_spec_with_options(tn, spec, options);
	initStringInfo(&key);
	coco_table_key(tn, &key);
	if (!coco_stage_state(app, component, COCO_TABLE_PROVIDER, NULL, &key, tn->qualified, spec))
		coco_stage_conflict(app, component, COCO_TABLE_PROVIDER, NULL, &key,
							psprintf("table \"%s\" is declared twice", tn->qualified));
	forget_table_cache();
}

PG_FUNCTION_INFO_V1(coco_declare_table);
Datum
coco_declare_table(PG_FUNCTION_ARGS)
{
	CocoApp    *app;
	CocoTableName tn;

	SPI_connect();
	app = coco_app_lookup(text_to_cstring(coco_text_arg(fcinfo, 0, "app")));
	coco_declaring(app);
	coco_parse_table_name(text_to_cstring(coco_text_arg(fcinfo, 1, "table_name")), &tn);
	if (PG_ARGISNULL(2) || PG_ARGISNULL(3))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("columns and primary_key must not be null")));
	/* options came in 0.6; a NULL is none, as declare_index's */
	coco_stage_table(app, &tn, PG_GETARG_JSONB_P(2), PG_GETARG_ARRAYTYPE_P(3),
					 text_to_cstring(coco_text_arg(fcinfo, 4, "managed_by")),
					 coco_component_arg(fcinfo, 5),
					 PG_NARGS() > 6 && !PG_ARGISNULL(6) ? PG_GETARG_JSONB_P(6) : NULL);
	SPI_finish();
	PG_RETURN_VOID();
}

/* ---- declare_row -------------------------------------------------------- */

/*
 * The component that staged the row's key, as its path (and *comp_id), or
 * NULL when none does.
 */
static char *
staged_row_component(int app_id, const char *table, StringInfo keybuf, int *comp_id)
{
	Oid			types[3] = {INT4OID, BYTEAOID, TEXTOID};
	Datum		values[3];
	CocoUserContext uc;
	char	   *path = NULL;
	bool		isnull;
	int			rc;

	values[0] = Int32GetDatum(app_id);
	values[1] = PointerGetDatum(coco_key_buf_to_bytea(keybuf));
	values[2] = CStringGetTextDatum(table);
	coco_enter_extension_owner(&uc);
	rc = SPI_execute_with_args("SELECT c.comp_id, c.path::text FROM coco.staged_row s JOIN coco.component c "
							   "ON c.comp_id OPERATOR(pg_catalog.=) s.comp_id "
							   "WHERE s.app_id OPERATOR(pg_catalog.=) $1 AND s.key OPERATOR(pg_catalog.=) $2 "
							   "AND s.tbl OPERATOR(pg_catalog.=) $3",
							   3, types, values, NULL, false, 1);
	if (rc == SPI_OK_SELECT && SPI_processed > 0)
	{
		*comp_id = DatumGetInt32(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
		path = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2);
	}
	coco_leave(&uc);
	return path;
}

/* A row key another component staged: the error names both components. */
static void
row_declared_elsewhere(const char *keytext, const CocoTableName *tn, int app_id,
					   StringInfo keybuf, ArrayType *component)
{
	int			other;
	char	   *first = staged_row_component(app_id, tn->qualified, keybuf, &other);
	char	   *now = OidOutputFunctionCall(F_ARRAY_OUT, PointerGetDatum(component));

	ereport(ERROR,
			(errcode(ERRCODE_UNIQUE_VIOLATION),
			 errmsg("row with key %s is declared twice for table \"%s\"", keytext, tn->qualified),
			 first == NULL ? errdetail("Another component declared it concurrently.") :
			 errdetail("Component %s declared it, and then component %s.", first, now),
			 errhint("Reconcile the app, or clear the component, before declaring it again.")));
}

/*
 * How often a row's replacement is tried again when a concurrent
 * transaction staged the same key between our delete and our insert.
 */
#define ROW_STAGE_ATTEMPTS 20

/*
 * Replacements in a row after which declare_row stops trying the fast path
 * (in READ COMMITTED).  Small, so that a statement over rows staged before
 * soon stops paying for it; not one, so that keys staged and new in turn
 * keep it (measured: docs/performance.md).
 */
#define REPLACEMENT_RUN 8

/* Convert a jsonb row to the declared column types, as jsonb_to_record does. */
static HeapTupleHeader
row_to_record(Jsonb *row)
{
	LOCAL_FCINFO(fcinfo, 1);
	ReturnSetInfo rsinfo;
	Datum		result;

	MemSet(&rsinfo, 0, sizeof(rsinfo));
	rsinfo.type = T_ReturnSetInfo;
	rsinfo.expectedDesc = table_cache.tupdesc;
	rsinfo.allowedModes = (int) SFRM_ValuePerCall;
	InitFunctionCallInfoData(*fcinfo, &table_cache.to_record, 1, InvalidOid, NULL,
							 (Node *) &rsinfo);
	fcinfo->args[0].value = JsonbPGetDatum(row);
	fcinfo->args[0].isnull = false;
	result = FunctionCallInvoke(fcinfo);
	if (fcinfo->isnull)
		elog(ERROR, "coco_target: row conversion returned null");
	return DatumGetHeapTupleHeader(result);
}

/*
 * A declared row with a value that does not convert: the error names the
 * column (the first that does not convert on its own) and the row's key.
 */
static void
bad_row_value(const CocoTableSpec *spec, const CocoTableName *tn, Jsonb *row, ErrorData *edata)
{
	int			col;
	StringInfoData key;

	/* a domain's check or a type's input function may have failed on its own */
	if (ERRCODE_TO_CATEGORY(edata->sqlerrcode) != ERRCODE_DATA_EXCEPTION ||
		(col = coco_bad_json_column(spec, row)) < 0)
		ReThrowError(edata);
	initStringInfo(&key);
	appendStringInfoChar(&key, '{');
	for (int i = 0; i < spec->nkeys; i++)
	{
		const char *name = spec->columns[spec->key_index[i]].name;
		JsonbValue	v;

		if (i > 0)
			appendStringInfoString(&key, ", ");
		escape_json(&key, name);
		appendStringInfoString(&key, ": ");
		if (getKeyJsonValueFromContainer(&row->root, name, strlen(name), &v) == NULL)
			appendStringInfoString(&key, "null");
		else
			appendStringInfoString(&key, JsonbToCString(NULL, &JsonbValueToJsonb(&v)->root, 0));
	}
	appendStringInfoChar(&key, '}');
	ereport(ERROR,
			(errcode(edata->sqlerrcode),
			 errmsg("value for column \"%s\" of table \"%s\" at key %s does not convert to %s",
					spec->columns[col].name, tn->qualified, key.data, spec->columns[col].type),
			 errdetail_internal("%s", edata->message),
			 errhint("Declare values of the column's type, or change the column's declared type.")));
}

typedef struct RowDeform
{
	Jsonb	   *row;
	Datum	   *vals;			/* one per column of the table's spec */
	bool	   *nulls;
} RowDeform;

/* The declared row as the table's column values (converting each). */
static void
deform_declared_row(void *arg)
{
	RowDeform  *rd = arg;
	HeapTupleHeader rec = row_to_record(rd->row);
	HeapTupleData tuple;

	tuple.t_len = HeapTupleHeaderGetDatumLength(rec);
	ItemPointerSetInvalid(&tuple.t_self);
	tuple.t_tableOid = InvalidOid;
	tuple.t_data = rec;
	heap_deform_tuple(&tuple, table_cache.tupdesc, rd->vals, rd->nulls);
}

/*
 * Stage a row whose key nothing staged yet: one heap insert and its index
 * entries, without planning or starting an INSERT, which costs more than
 * the row.  The extension writes its own table directly, as it writes it
 * for the caller whoever that is: coco.staged_row has no trigger, rule,
 * check or foreign key, and neither privileges nor row security apply to
 * a heap insert.  False when the primary key already holds the key (or
 * another transaction is staging it): the row inserted is deleted again,
 * and the caller replaces the staged one, as the extension owner.
 */
static bool
stage_new_row(Datum *args)
{
	Oid			relid = get_relname_relid("staged_row", get_namespace_oid("coco", false));
	Relation	rel = table_open(relid, RowExclusiveLock);
	TupleDesc	desc = RelationGetDescr(rel);
	EState	   *estate = CreateExecutorState();
	ResultRelInfo *rri = makeNode(ResultRelInfo);
	TupleTableSlot *slot = table_slot_create(rel, NULL);
	List	   *conflicts;
	bool		staged;

	InitResultRelInfo(rri, rel, 1, NULL, 0);
	ExecOpenIndices(rri, false);
	ExecClearTuple(slot);
	/* (app_id, comp_id, tbl, key, row, seq): seq is the staging order */
	Assert(desc->natts == 6);
	for (int i = 0; i < 5; i++)
		slot->tts_values[i] = args[i];
	slot->tts_values[5] = Int64GetDatum(nextval_internal(get_relname_relid("staging_seq", RelationGetNamespace(rel)), false));
	memset(slot->tts_isnull, false, sizeof(bool) * desc->natts);
	ExecStoreVirtualTuple(slot);
	table_tuple_insert(rel, slot, GetCurrentCommandId(true), 0, NULL);
	conflicts = ExecInsertIndexTuples(rri, slot, estate, false, true, NULL, NIL);
	staged = conflicts == NIL;
	if (!staged)
	{
		/* the insert must be visible to the delete that takes it back */
		CommandCounterIncrement();
		simple_heap_delete(rel, &slot->tts_tid);
	}
	ExecDropSingleTupleTableSlot(slot);
	ExecCloseIndices(rri);
	FreeExecutorState(estate);
	table_close(rel, NoLock);
	if (!staged)
		CommandCounterIncrement();
	return staged;
}

/* A plan of declare_row's, kept for the session in the table cache. */
static SPIPlanPtr
prepare_kept(const char *sql, int nargs, Oid *types)
{
	SPIPlanPtr	plan = SPI_prepare(sql, nargs, types);

	if (plan == NULL)
		elog(ERROR, "coco_target: SPI_prepare failed: %s", SPI_result_code_string(SPI_result));
	SPI_keepplan(plan);
	return plan;
}

PG_FUNCTION_INFO_V1(coco_declare_row);
Datum
coco_declare_row(PG_FUNCTION_ARGS)
{
	CocoApp    *app;
	CocoTableName tn;
	CocoTableSpec *spec;
	Jsonb	   *row;
	int			comp_id;
	JsonbIterator *it;
	JsonbValue	v;
	JsonbIteratorToken tok;
	Datum	   *vals;
	bool	   *nulls;
	RowDeform	rd;
	StringInfoData key;
	Datum		args[5];
	Oid			row_types[5] = {INT4OID, INT4OID, TEXTOID, BYTEAOID, JSONBOID};
	CocoUserContext uc;
	int			rc;
	ErrorData  *edata;
	bool		delete_first;

	SPI_connect();
	app = coco_app_lookup(text_to_cstring(coco_text_arg(fcinfo, 0, "app")));
	coco_declaring(app);
	coco_parse_table_name(text_to_cstring(coco_text_arg(fcinfo, 1, "table_name")), &tn);
	if (PG_ARGISNULL(2))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("row must not be null")));
	row = PG_GETARG_JSONB_P(2);
	spec = coco_declared_table_spec(app, &tn);
	comp_id = coco_component_id(app->app_id, coco_component_arg(fcinfo, 3));

	if (!JB_ROOT_IS_OBJECT(row))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("a declared row must be a JSON object keyed by column name")));
	it = JsonbIteratorInit(&row->root);
	while ((tok = JsonbIteratorNext(&it, &v, true)) != WJB_DONE)
	{
		if (tok == WJB_KEY)
		{
			char	   *col = pnstrdup(v.val.string.val, v.val.string.len);

			if (coco_table_spec_column(spec, col) < 0)
				ereport(ERROR,
						(errcode(ERRCODE_UNDEFINED_COLUMN),
						 errmsg("row has unknown column \"%s\" for table \"%s\"", col, tn.qualified)));
		}
	}

	vals = palloc(sizeof(Datum) * spec->ncolumns);
	nulls = palloc(sizeof(bool) * spec->ncolumns);
	/* in a subtransaction, so that a value that does not convert can be named */
	table_cache_busy++;
	rd.row = row;
	rd.vals = vals;
	rd.nulls = nulls;
	edata = coco_subxact_call(deform_declared_row, &rd);
	table_cache_busy--;
	if (edata != NULL)
		bad_row_value(spec, &tn, row, edata);

	initStringInfo(&key);
	coco_key_begin_tuple(&key);
	for (int i = 0; i < spec->nkeys; i++)
	{
		int			pos = spec->key_index[i];

		if (nulls[pos])
			ereport(ERROR,
					(errcode(ERRCODE_NOT_NULL_VIOLATION),
					 errmsg("row for table \"%s\" lacks a value for key column \"%s\"",
							tn.qualified, spec->columns[pos].name)));
		coco_key_put_datum(&key, vals[pos], TupleDescAttr(table_cache.tupdesc, pos)->atttypid);
	}
	coco_key_end_tuple(&key);

	args[0] = Int32GetDatum(app->app_id);
	args[1] = Int32GetDatum(comp_id);
	args[2] = CStringGetTextDatum(tn.qualified);
	args[3] = PointerGetDatum(coco_key_buf_to_bytea(&key));
	args[4] = JsonbPGetDatum(row);

	/*
	 * In READ COMMITTED a replacement deletes the staged row first: each
	 * statement sees what committed before it, and a row a run consumed
	 * meanwhile is skipped.  Under a transaction snapshot (REPEATABLE READ,
	 * SERIALIZABLE) that delete would fail on such a row with 40001, where
	 * an insert finds no conflict: there the insert comes first, as before
	 * any replacement.
	 */
	delete_first = !IsolationUsesXactSnapshot();

	/*
	 * Rows declared again come in runs (a statement over rows declared
	 * before): after a run of replacements the fast path, which would only
	 * find the key staged, is skipped until a row is new again.  Short runs
	 * keep it: a new key costs more through the statements than through it.
	 */
	if ((!delete_first || table_cache.replaced_in_a_row < REPLACEMENT_RUN) &&
		stage_new_row(args))
	{
		table_cache.replaced_in_a_row = 0;
		SPI_finish();
		PG_RETURN_VOID();
	}
	coco_enter_extension_owner(&uc);
	if (table_cache.replace_plan == NULL)
		table_cache.replace_plan =
			prepare_kept("DELETE FROM coco.staged_row WHERE app_id OPERATOR(pg_catalog.=) $1 "
						 "AND comp_id OPERATOR(pg_catalog.=) $2 AND tbl OPERATOR(pg_catalog.=) $3 "
						 "AND key OPERATOR(pg_catalog.=) $4", 4, row_types);
	/* seq (coco.staging_seq, the column's default): the staging order */
	if (table_cache.insert_plan == NULL)
		table_cache.insert_plan =
			prepare_kept("INSERT INTO coco.staged_row (app_id, comp_id, tbl, key, \"row\") "
						 "VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING", 5, row_types);
	/*
	 * The key is staged already, or being staged (or new, past a run of
	 * replacements): the earlier row is deleted and this one inserted,
	 * never updated in place (see src/store/staging.c).  The delete waits
	 * for a transaction replacing or consuming the staged row, the insert
	 * for one staging the same key; if that one commits, its row is deleted
	 * on the next round, unless another component staged it.
	 */
	for (int attempt = 0;; attempt++)
	{
		int			other;
		bool		deleting = delete_first || attempt > 0;
		uint64		deleted = 0;

		if (deleting)
		{
			rc = SPI_execute_plan(table_cache.replace_plan, args, NULL, false, 0);
			if (rc != SPI_OK_DELETE)
				elog(ERROR, "coco_target: replacing a staged row failed: %s", SPI_result_code_string(rc));
			deleted = SPI_processed;
		}
		rc = SPI_execute_plan(table_cache.insert_plan, args, NULL, false, 0);
		if (rc != SPI_OK_INSERT)
			elog(ERROR, "coco_target: staging a row failed: %s", SPI_result_code_string(rc));
		if (SPI_processed > 0)
		{
			table_cache.replaced_in_a_row = deleted == 0 ? 0 :
				Min(table_cache.replaced_in_a_row + 1, REPLACEMENT_RUN);
			break;
		}
		if (deleting && deleted == 0 &&
			staged_row_component(app->app_id, tn.qualified, &key, &other) != NULL &&
			other != comp_id)
		{
			coco_leave(&uc);
			row_declared_elsewhere(coco_describe_row_key(spec, key.data, key.len), &tn,
								   app->app_id, &key, coco_component_arg(fcinfo, 3));
		}
		if (attempt + 1 >= ROW_STAGE_ATTEMPTS)
			ereport(ERROR,
					(errcode(ERRCODE_T_R_SERIALIZATION_FAILURE),
					 errmsg("could not replace the staged row with key %s of table \"%s\": it is being declared concurrently",
							coco_describe_row_key(spec, key.data, key.len), tn.qualified),
					 errhint("Retry the transaction.")));
	}
	coco_leave(&uc);
	SPI_finish();
	PG_RETURN_VOID();
}

/* ---- declare_rows ------------------------------------------------------- */

/* A query spliced into the run's statements: no trailing semicolons, and on
 * lines of its own so a trailing comment cannot swallow what follows. */
char *
coco_clean_query(const char *query, const char *what)
{
	int			len = strlen(query);

	while (len > 0 && (query[len - 1] == ';' || isspace((unsigned char) query[len - 1])))
		len--;
	if (len == 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%s query must not be empty", what)));
	return pnstrdup(query, len);
}

/* A plain SELECT: no writes hidden in WITH, no row locks. */
bool
coco_query_only_reads(SPIPlanPtr plan)
{
	List	   *sources = SPI_plan_get_plan_sources(plan);
	ListCell   *lc;

	if (list_length(sources) != 1)
		return false;
	foreach(lc, sources)
	{
		CachedPlanSource *src = lfirst(lc);
		ListCell   *q;

		if (src->commandTag != CMDTAG_SELECT)
			return false;
		foreach(q, src->query_list)
		{
			Query	   *query = lfirst_node(Query, q);

			if (query->commandType != CMD_SELECT || query->hasModifyingCTE ||
				query->rowMarks != NIL)
				return false;
		}
	}
	return true;
}

/*
 * Stage a query for a table's rows: `columns` are its output column names,
 * `search_path` the one it is evaluated with, `row_count` the initial
 * load's total in coco.progress (-1: not known).
 */
void
coco_stage_query(const CocoApp *app, int comp_id, const CocoTableName *tn, const char *query,
				 ArrayType *columns, const char *search_path, int64 row_count)
{
	Oid			types[7] = {INT4OID, INT4OID, TEXTOID, TEXTOID, TEXTARRAYOID, TEXTOID, INT8OID};
	Datum		values[7];
	char		nulls[7] = {' ', ' ', ' ', ' ', ' ', ' ', row_count < 0 ? 'n' : ' '};
	CocoUserContext uc;

	values[0] = Int32GetDatum(app->app_id);
	values[1] = Int32GetDatum(comp_id);
	values[2] = CStringGetTextDatum(tn->qualified);
	values[3] = CStringGetTextDatum(query);
	values[4] = PointerGetDatum(columns);
	values[5] = CStringGetTextDatum(search_path);
	values[6] = Int64GetDatum(row_count);
	coco_enter_extension_owner(&uc);

	/*
	 * The same query declared again (a trigger re-declaring on every
	 * statement) replaces the earlier one instead of piling up copies for
	 * the run to evaluate.  Deleted and inserted, not updated: see
	 * src/store/staging.c.
	 */
	coco_spi_exec("DELETE FROM coco.staged_query WHERE app_id OPERATOR(pg_catalog.=) $1 "
				  "AND comp_id OPERATOR(pg_catalog.=) $2 AND tbl OPERATOR(pg_catalog.=) $3 "
				  "AND query OPERATOR(pg_catalog.=) $4 AND search_path OPERATOR(pg_catalog.=) $6",
				  7, types, values, nulls, SPI_OK_DELETE);
	/* seq (coco.staging_seq, the column's default): the staging order */
	coco_spi_exec("INSERT INTO coco.staged_query (app_id, comp_id, tbl, query, columns, search_path, row_count) "
				  "VALUES ($1, $2, $3, $4, $5, $6, $7)", 7, types, values, nulls, SPI_OK_INSERT);
	coco_leave(&uc);
}

PG_FUNCTION_INFO_V1(coco_declare_rows);
Datum
coco_declare_rows(PG_FUNCTION_ARGS)
{
	CocoApp    *app;
	CocoTableName tn;
	CocoTableSpec *spec;
	char	   *query;
	char	   *search_path = coco_current_search_path();
	int			comp_id;
	SPIPlanPtr	plan;
	Portal		portal;
	TupleDesc	desc;
	Datum	   *colnames;
	bool		has_key[INDEX_MAX_KEYS] = {0};
	StringInfoData count_sql;
	CocoUserContext uc;
	volatile int64 count = 0;
	MemoryContext cxt = CurrentMemoryContext;
	bool		isnull;
	List	   *query_columns;

	SPI_connect();
	app = coco_app_lookup(text_to_cstring(coco_text_arg(fcinfo, 0, "app")));
	coco_declaring(app);
	coco_parse_table_name(text_to_cstring(coco_text_arg(fcinfo, 1, "table_name")), &tn);
	query = coco_clean_query(text_to_cstring(coco_text_arg(fcinfo, 2, "query")), "declare_rows");
	spec = coco_declared_table_spec(app, &tn);
	comp_id = coco_component_id(app->app_id, coco_component_arg(fcinfo, 3));

	/* Validate and count as the app owner, with the caller's search_path,
	 * exactly as the run will evaluate it. */
	coco_enter_app_owner(app->owner, search_path, &uc);
	plan = SPI_prepare(query, 0, NULL);
	if (plan == NULL)
		elog(ERROR, "coco_target: SPI_prepare failed: %s", SPI_result_code_string(SPI_result));
	if (!SPI_is_cursor_plan(plan) || !coco_query_only_reads(plan))
		ereport(ERROR,
				(errcode(ERRCODE_WRONG_OBJECT_TYPE),
				 errmsg("declare_rows query must be a single SELECT (or VALUES) that only reads"),
				 errdetail("Statements that write, data-modifying WITH clauses and FOR UPDATE/SHARE are refused.")));
	portal = SPI_cursor_open(NULL, plan, NULL, NULL, true);
	desc = CreateTupleDescCopy(portal->tupDesc);
	SPI_cursor_close(portal);

	colnames = palloc(sizeof(Datum) * Max(desc->natts, 1));
	for (int i = 0; i < desc->natts; i++)
	{
		char	   *name = NameStr(TupleDescAttr(desc, i)->attname);
		int			pos = coco_table_spec_column(spec, name);

		if (pos < 0)
			ereport(ERROR,
					(errcode(ERRCODE_UNDEFINED_COLUMN),
					 errmsg("declare_rows query column \"%s\" is not a column of table \"%s\"",
							name, tn.qualified),
					 errhint("Name the query's output columns like the table's columns.")));
		for (int j = 0; j < i; j++)
			if (strcmp(NameStr(TupleDescAttr(desc, j)->attname), name) == 0)
				ereport(ERROR,
						(errcode(ERRCODE_DUPLICATE_COLUMN),
						 errmsg("declare_rows query returns column \"%s\" more than once", name)));
		for (int k = 0; k < spec->nkeys; k++)
			if (spec->key_index[k] == pos)
				has_key[k] = true;
		colnames[i] = CStringGetTextDatum(name);
	}
	for (int k = 0; k < spec->nkeys; k++)
		if (!has_key[k])
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_COLUMN_REFERENCE),
					 errmsg("declare_rows query lacks primary key column \"%s\" of table \"%s\"",
							spec->columns[spec->key_index[k]].name, tn.qualified)));

	/*
	 * The select list the run evaluates, cast to the declared types: its
	 * parse checks that each cast exists.  Counting it (which checks every
	 * key value now) reads the source once more than the run does, so only
	 * coco_target.declare_rows_count asks for it; otherwise the run raises
	 * what a key value gets wrong.
	 */
	query_columns = NIL;
	for (int i = 0; i < desc->natts; i++)
		query_columns = lappend(query_columns, pstrdup(NameStr(TupleDescAttr(desc, i)->attname)));
	initStringInfo(&count_sql);
	/* OFFSET 0: a constant key of a query that returns no rows must not be
	 * folded into the key function (which refuses NULL) when planning */
	appendStringInfo(&count_sql, "SELECT pg_catalog.count(%s) FROM (SELECT %s FROM (\n%s\n) u OFFSET 0) x",
					 coco_rows_key_expr(spec), coco_rows_select_list(spec, query_columns), query);
	PG_TRY();
	{
		if (coco_declare_rows_count)
			count = coco_spi_int8(count_sql.data, 0, NULL, NULL, &isnull);
		else if (SPI_prepare(count_sql.data, 0, NULL) == NULL)
			elog(ERROR, "coco_target: SPI_prepare failed: %s", SPI_result_code_string(SPI_result));
	}
	PG_CATCH();
	{
		coco_rethrow_without_statement(cxt, count_sql.data,
									   psprintf("key values of the query declared for table \"%s\"",
												tn.qualified));
	}
	PG_END_TRY();
	coco_leave(&uc);

	coco_stage_query(app, comp_id, &tn, query,
					 construct_array(colnames, desc->natts, TEXTOID, -1, false, TYPALIGN_INT),
					 search_path, coco_declare_rows_count ? count : -1);
	SPI_finish();
	if (!coco_declare_rows_count)
		PG_RETURN_NULL();
	PG_RETURN_INT64(count);
}

/* ---- clear_component ---------------------------------------------------- */

PG_FUNCTION_INFO_V1(coco_clear_component);
Datum
coco_clear_component(PG_FUNCTION_ARGS)
{
	CocoApp    *app;
	int			comp_id;

	SPI_connect();
	app = coco_app_lookup(text_to_cstring(coco_text_arg(fcinfo, 0, "app")));
	coco_declaring(app);
	comp_id = coco_component_id(app->app_id, coco_component_arg(fcinfo, 1));

	/*
	 * Unlike declarations, a clear deletes staging, possibly rows a run is
	 * consuming right now: take the app's run lock first, so the clear waits
	 * for that run instead of deadlocking with it when this transaction
	 * reconciles next.
	 */
	coco_lock_app(app, false);
	coco_unstage_component(app->app_id, comp_id, true);
	forget_table_cache();
	SPI_finish();
	PG_RETURN_VOID();
}

/* ---- discard_staged ----------------------------------------------------- */

/*
 * Everything staged for the app — states, rows, queries and clear markers —
 * discarded; returns how many entries.  Tracking is untouched: the next run
 * sees nothing staged.
 */
PG_FUNCTION_INFO_V1(coco_discard_staged);
Datum
coco_discard_staged(PG_FUNCTION_ARGS)
{
	static const char *const tables[] = {"staged_state", "staged_row", "staged_query",
	"cleared_component"};
	CocoApp    *app;
	Oid			types[1] = {INT4OID};
	Datum		values[1];
	CocoUserContext uc;
	int64		discarded = 0;

	SPI_connect();
	app = coco_app_lookup(text_to_cstring(coco_text_arg(fcinfo, 0, "app")));
	coco_declaring(app);
	values[0] = Int32GetDatum(app->app_id);
	/* it deletes staging a run may be consuming: as coco.clear_component */
	coco_lock_app(app, false);
	coco_enter_extension_owner(&uc);
	for (int i = 0; i < (int) lengthof(tables); i++)
	{
		coco_spi_exec(psprintf("DELETE FROM coco.%s WHERE app_id OPERATOR(pg_catalog.=) $1", tables[i]),
					  1, types, values, NULL, SPI_OK_DELETE);
		discarded += SPI_processed;
	}
	coco_leave(&uc);
	forget_table_cache();
	SPI_finish();
	PG_RETURN_INT64(discarded);
}
