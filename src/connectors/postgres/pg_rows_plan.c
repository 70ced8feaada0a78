/*
 * pg_rows_plan.c — coco.plan for the rows of a postgres.table: what a sync
 * would do, counted and never applied, and every failure it would hit,
 * reported as a row of the plan instead of raised:
 *
 *   - a key the declarations repeat (a declare_rows query, or two
 *     declarations in the replaced components): the run's diff fails
 *     with 23505;
 *   - a key that a component the run does not replace already tracks: the
 *     run's tracking insert fails with 23505;
 *   - a declared column a user's table lacks (42703), or cannot take from
 *     the declared type (42804), and a user's table that is gone (42P01);
 *   - a declared value that does not convert to its column's type, named
 *     by column and row; and anything else that stops the declarations
 *     from being read (the query's own errors), with the run's SQLSTATE.
 *
 * With rows => true the rows that would change are listed too, each with
 * the columns whose value differs from the table's row now.
 *
 * Every statement that evaluates the declarations runs in a
 * subtransaction: its failure is the one the run would hit.  Only reads
 * happen, as the app owner, through the run's snapshot.
 */
#include "postgres.h"

#include "catalog/namespace.h"
#include "catalog/pg_type.h"
#include "nodes/makefuncs.h"
#include "parser/parse_coerce.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/json.h"
#include "utils/lsyscache.h"
#include "utils/snapmgr.h"

#include "pg_rows.h"

/* error rows per table and kind of failure: enough to see the pattern */
#define PLAN_ERRORS_PER_KIND 100
/* rows whose conversions are tried in one subtransaction */
#define PLAN_PROBE_BATCH 1000

/* What the plan of one table's rows works with. */
typedef struct RowsPlan
{
	CocoChildSync *sync;
	CocoTableSpec *spec;
	List	   *queries;
	char	   *search_path;
	Oid			types[6];
	Datum		values[6];
	char	   *stmt;			/* the statement try_statement runs */
	int			nargs;
} RowsPlan;

/*
 * An error caught in a subtransaction that says nothing about the
 * declarations (a cancel, no memory, a deadlock, a broken invariant) is
 * raised again, as it would stop the run for reasons of its own.
 */
static void
raise_if_not_ours(ErrorData *err)
{
	char	   *cls;

	if (err == NULL)
		return;
	cls = unpack_sql_state(err->sqlerrcode);
	if (strncmp(cls, "40", 2) == 0 || strncmp(cls, "53", 2) == 0 || strncmp(cls, "57", 2) == 0 ||
		strncmp(cls, "58", 2) == 0 || strncmp(cls, "XX", 2) == 0)
		ReThrowError(err);
}

/*
 * Call fn(arg) in a subtransaction.  Returns NULL, or the error that
 * rolled it back (raise_if_not_ours raises the others).  The rollback
 * restores the user, the settings and the active snapshot fn set.
 */
static ErrorData *
try_call(void (*fn) (void *), void *arg)
{
	ErrorData  *err = coco_subxact_call(fn, arg);

	raise_if_not_ours(err);
	return err;
}

/* The statement p->stmt, as the app owner with the declarations'
 * search_path, through the run's snapshot. */
static void
run_statement(void *arg)
{
	RowsPlan   *p = arg;
	CocoUserContext uc;

	coco_enter_app_owner(p->sync->owner, p->search_path, &uc);
	(void) set_config_option("work_mem", psprintf("%d", coco_work_mem),
							 PGC_USERSET, PGC_S_SESSION, GUC_ACTION_SAVE, true, 0, false);
	coco_push_snapshot(p->sync->snapshot);
	if (SPI_execute_with_args(p->stmt, p->nargs, p->types, p->values, NULL, true, 0) != SPI_OK_SELECT)
		elog(ERROR, "coco_target: planning the rows of %s failed", p->spec->tn.qualified);
	PopActiveSnapshot();
	coco_leave(&uc);
}

static ErrorData *
try_statement(RowsPlan *p)
{
	/* the statement's coco.tracked_fingerprint() calls tally the rows */
	CocoChildTally *prev = coco_child_tally_collect(p->sync->tally);
	ErrorData  *err = try_call(run_statement, p);

	(void) coco_child_tally_collect(prev);
	return err;
}

/* The opening of an error's detail: the table, the run's SQLSTATE and message. */
static void
error_detail(StringInfo out, const CocoTableSpec *spec, const char *sqlstate, const char *message)
{
	initStringInfo(out);
	appendStringInfoString(out, "{\"table\": ");
	escape_json(out, spec->tn.qualified);
	appendStringInfo(out, ", \"sqlstate\": \"%s\", \"message\": ", sqlstate);
	escape_json(out, message);
}

static Jsonb *
table_key(const CocoTableSpec *spec)
{
	StringInfoData key;

	initStringInfo(&key);
	coco_table_key(&spec->tn, &key);
	return coco_key_to_jsonb(key.data, key.len);
}

static Jsonb *
bytea_key(Datum d)
{
	bytea	   *b = DatumGetByteaPP(d);

	return coco_key_to_jsonb(VARDATA_ANY(b), VARSIZE_ANY_EXHDR(b));
}

/*
 * The columns of a user's table that the run would write and cannot: the
 * table gone, a declared column missing or of a type the declared one is
 * not assigned to.  A missing key column fails deletions too.  (The run
 * makes a table the extension manages match its declaration.)
 */
static void
check_user_table(RowsPlan *p, bool writes, bool deletes)
{
	CocoTableSpec *spec = p->spec;
	Oid			relid;
	StringInfoData d;

	if (strcmp(spec->managed_by, "user") != 0 || !(writes || deletes))
		return;
	/* a look-up only, as the run's statements would make it */
	relid = RangeVarGetRelid(makeRangeVar(spec->tn.schema, spec->tn.name, -1), NoLock, true);
	if (!OidIsValid(relid))
	{
		error_detail(&d, spec, "42P01", psprintf("relation \"%s\" does not exist", spec->tn.qualified));
		appendStringInfoChar(&d, '}');
		coco_plan_error(p->sync->plan, COCO_TABLE_PROVIDER, table_key(spec), d.data);
		return;
	}
	for (int i = 0; i < spec->ncolumns; i++)
	{
		CocoColumn *c = &spec->columns[i];
		AttrNumber	att = get_attnum(relid, c->name);
		Oid			typid;
		int32		typmod;
		Oid			atttype;

		if (!(writes || (deletes && c->is_key)))
			continue;
		coco_resolve_type(c->type, &typid, &typmod);
		atttype = att == InvalidAttrNumber ? InvalidOid : get_atttype(relid, att);
		if (att == InvalidAttrNumber)
			error_detail(&d, spec, "42703", psprintf("column \"%s\" of relation \"%s\" does not exist",
													 c->name, spec->tn.qualified));
		else if (!can_coerce_type(1, &typid, &atttype, COERCION_ASSIGNMENT))
			error_detail(&d, spec, "42804", psprintf("column \"%s\" is of type %s but is declared as %s",
													 c->name, format_type_be(atttype),
													 format_type_be(typid)));
		else
			continue;
		appendStringInfoString(&d, ", \"column\": ");
		escape_json(&d, c->name);
		appendStringInfoChar(&d, '}');
		coco_plan_error(p->sync->plan, COCO_TABLE_PROVIDER, table_key(spec), d.data);
	}
}

/*
 * Keys the run would refuse, as the run finds them: repeated by the
 * declarations of the replaced components (its diff), and declared in a
 * replaced component while a component the run does not replace tracks
 * them (its tracking insert).  Each with the components involved.
 */
static void
report_keys(RowsPlan *p)
{
	ErrorData  *err;

	/* kind 1: repeated; kind 2: another component has it; then the paths
	 * of the components involved */
	p->stmt = psprintf("WITH d AS MATERIALIZED (SELECT %s AS k, x.\"coco#c\" AS c FROM (%s) x) "
					  "(SELECT 1, d.k, (SELECT pg_catalog.jsonb_agg(cc.path ORDER BY cc.path) "
					  "FROM coco.component cc WHERE cc.comp_id OPERATOR(pg_catalog.=) ANY (pg_catalog.array_agg(d.c))) "
					  "FROM d GROUP BY d.k HAVING pg_catalog.count(*) OPERATOR(pg_catalog.>) 1 "
					  "ORDER BY d.k LIMIT %d) UNION ALL "
					  "(SELECT DISTINCT 2, d.k, (SELECT pg_catalog.jsonb_agg(cc.path ORDER BY cc.path) "
					  "FROM coco.component cc WHERE cc.comp_id OPERATOR(pg_catalog.=) ANY (ARRAY[d.c, t.comp_id])) "
					  "FROM d JOIN coco.tracked_row t "
					  "ON t.target_id OPERATOR(pg_catalog.=) $2 AND t.key OPERATOR(pg_catalog.=) d.k "
					  "AND t.comp_id OPERATOR(pg_catalog.<>) ALL ($3) ORDER BY 2 LIMIT %d)",
					  coco_rows_key_expr(p->spec), build_declared_sql(p->spec, p->queries, false),
					  PLAN_ERRORS_PER_KIND, PLAN_ERRORS_PER_KIND);
	err = try_statement(p);
	if (err != NULL)
		return;					/* the count's statement failed already */
	for (uint64 i = 0; i < SPI_processed; i++)
	{
		HeapTuple	tup = SPI_tuptable->vals[i];
		TupleDesc	desc = SPI_tuptable->tupdesc;
		bool		isnull;
		bool		twice = DatumGetInt32(SPI_getbinval(tup, desc, 1, &isnull)) == 1;
		Datum		kd = SPI_getbinval(tup, desc, 2, &isnull);
		Jsonb	   *key = bytea_key(kd);
		char	   *keytext = JsonbToCString(NULL, &key->root, VARSIZE(key));
		/* named as the run names it: by column */
		char	   *named = coco_describe_row_key(p->spec, VARDATA_ANY(DatumGetByteaPP(kd)),
												VARSIZE_ANY_EXHDR(DatumGetByteaPP(kd)));
		StringInfoData d;

		error_detail(&d, p->spec, "23505", twice ?
					 psprintf("row with key %s is declared twice for table \"%s\"", named,
							  p->spec->tn.qualified) :
					 psprintf("row with key %s is declared for table \"%s\" while another component has it",
							  named, p->spec->tn.qualified));
		appendStringInfo(&d, ", \"key\": %s, \"components\": %s}", keytext,
						 DatumGetCString(DirectFunctionCall1(jsonb_out, SPI_getbinval(tup, desc, 3, &isnull))));
		coco_plan_error(p->sync->plan, COCO_ROW_PROVIDER, key, d.data);
	}
}

/* A component's path, in a jsonb array: the "components" of an error. */
static char *
component_path(int comp_id)
{
	Oid			types[1] = {INT4OID};
	Datum		values[1] = {Int32GetDatum(comp_id)};
	CocoUserContext uc;
	char	   *out;

	coco_enter_extension_owner(&uc);
	coco_spi_exec("SELECT pg_catalog.jsonb_build_array(path)::pg_catalog.text FROM coco.component "
				  "WHERE comp_id OPERATOR(pg_catalog.=) $1", 1, types, values, NULL, SPI_OK_SELECT);
	coco_leave(&uc);
	out = SPI_processed == 1 ? SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1) : "[]";
	SPI_freetuptable(SPI_tuptable);
	return out;
}

/* Values from..from+n of a fetched batch, each cast by `cast` (SELECT $1::T). */
typedef struct Probe
{
	SPIPlanPtr	cast;
	SPITupleTable *batch;
	uint64		from;
	uint64		n;
} Probe;

static void
probe_values(void *arg)
{
	Probe	   *pr = arg;

	for (uint64 i = pr->from; i < pr->from + pr->n; i++)
	{
		bool		isnull;
		Datum		v = SPI_getbinval(pr->batch->vals[i], pr->batch->tupdesc, 2, &isnull);

		if (SPI_execute_plan(pr->cast, &v, isnull ? "n" : " ", true, 1) != SPI_OK_SELECT)
			elog(ERROR, "coco_target: a conversion failed to run");
		SPI_freetuptable(SPI_tuptable);
	}
}

/* Whether values from..from+n of a batch convert, in one subtransaction:
 * NULL, or the error of one that does not. */
static ErrorData *
probe_batch(SPIPlanPtr cast, SPITupleTable *batch, uint64 from, uint64 n)
{
	Probe		pr = {cast, batch, from, n};

	return try_call(probe_values, &pr);
}

/*
 * The first row of query q whose column `col` does not convert to the
 * declared type: its values read as the query yields them, cast a batch at
 * a time, the failing batch again value by value; reported, and `found`
 * set.  The key is known when the key columns convert (they are tried
 * first); for a key column it is null.  Called in a subtransaction: the
 * query may fail on something else than a conversion.
 */
typedef struct ConversionSearch
{
	RowsPlan   *p;
	StagedQuery *q;
	int			col;
	bool		found;
} ConversionSearch;

static void
find_conversion(void *arg)
{
	ConversionSearch *cs = arg;
	RowsPlan   *p = cs->p;
	StagedQuery *q = cs->q;
	CocoColumn *c = &p->spec->columns[cs->col];
	CocoUserContext uc;
	Portal		portal;
	SPIPlanPtr	cast = NULL;
	StringInfoData keys;

	initStringInfo(&keys);
	for (int i = 0; i < p->spec->nkeys && !c->is_key; i++)
	{
		CocoColumn *k = &p->spec->columns[p->spec->key_index[i]];

		appendStringInfo(&keys, "%su.%s::%s", i > 0 ? ", " : "", quote_identifier(k->name),
						 coco_qualified_type(k->type));
	}
	coco_enter_app_owner(p->sync->owner, q->search_path, &uc);
	coco_push_snapshot(p->sync->snapshot);
	portal = SPI_cursor_open_with_args(NULL, psprintf("SELECT %s, u.%s FROM (\n%s\n) u",
													  c->is_key ? "NULL::pg_catalog.bytea" :
													  psprintf("coco.row_key(%s)", keys.data),
													  quote_identifier(c->name),
													  q->query),	/* lint-spi: a staged declare_rows query, checked when declared, run as the app owner */
									   0, NULL, NULL, NULL, true, 0);
	while (!cs->found)
	{
		SPITupleTable *batch;
		uint64		n;
		ErrorData  *err;

		SPI_cursor_fetch(portal, true, PLAN_PROBE_BATCH);
		batch = SPI_tuptable;
		n = SPI_processed;
		if (n == 0)
			break;
		if (cast == NULL)
		{
			Oid			src = SPI_gettypeid(batch->tupdesc, 2);

			cast = SPI_prepare(psprintf("SELECT $1::%s", coco_qualified_type(c->type)), 1, &src);
			if (cast == NULL)
				elog(ERROR, "coco_target: could not prepare the conversion of column %s", c->name);
		}
		if (probe_batch(cast, batch, 0, n) != NULL)
		{
			for (uint64 i = 0; i < n && !cs->found; i++)
			{
				bool		isnull;
				Datum		key;
				StringInfoData d;

				err = probe_batch(cast, batch, i, 1);
				if (err == NULL)
					continue;
				error_detail(&d, p->spec, unpack_sql_state(err->sqlerrcode), err->message);
				key = SPI_getbinval(batch->vals[i], batch->tupdesc, 1, &isnull);
				appendStringInfo(&d, ", \"key\": %s, \"column\": ",
								 isnull ? "null" : JsonbToCString(NULL, &bytea_key(key)->root, 0));
				escape_json(&d, c->name);
				appendStringInfoString(&d, ", \"value\": ");
				escape_json(&d, SPI_getvalue(batch->vals[i], batch->tupdesc, 2));
				appendStringInfo(&d, ", \"components\": %s}", component_path(q->comp_id));
				coco_plan_error(p->sync->plan, COCO_ROW_PROVIDER, isnull ? NULL : bytea_key(key), d.data);
				cs->found = true;
			}
		}
		SPI_freetuptable(batch);
	}
	SPI_cursor_close(portal);
	if (cast != NULL)
		SPI_freeplan(cast);
	PopActiveSnapshot();
	coco_leave(&uc);
}

static bool
report_row_conversion(RowsPlan *p, StagedQuery *q, int col)
{
	ConversionSearch cs = {p, q, col, false};

	return try_call(find_conversion, &cs) == NULL && cs.found;
}

/*
 * The declarations could not be read: name the declared value that does
 * not convert (column by column, query by query, key columns first) or,
 * failing that, report the error as the run would meet it.
 */
static void
report_unreadable(RowsPlan *p, ErrorData *err)
{
	ListCell   *lc;
	StringInfoData d;

	foreach(lc, p->queries)
	{
		StagedQuery *q = lfirst(lc);

		for (int pass = 0; pass < 2; pass++)
			for (int i = 0; i < p->spec->ncolumns; i++)
			{
				CocoColumn *c = &p->spec->columns[i];
				ListCell   *qc;
				bool		given = false;

				foreach(qc, q->columns)
					if (strcmp((char *) lfirst(qc), c->name) == 0)
						given = true;
				if (!given || c->is_key != (pass == 0))
					continue;
				p->stmt = psprintf("SELECT pg_catalog.count(u.%s::%s) FROM (\n%s\n) u",
								  quote_identifier(c->name), coco_qualified_type(c->type),
								  q->query);	/* lint-spi: a staged declare_rows query, checked when declared, run as the app owner */
				p->nargs = 0;
				if (try_statement(p) != NULL && report_row_conversion(p, q, i))
					return;
			}
	}
	error_detail(&d, p->spec, unpack_sql_state(err->sqlerrcode), err->message);
	appendStringInfoChar(&d, '}');
	coco_plan_error(p->sync->plan, COCO_TABLE_PROVIDER, table_key(p->spec), d.data);
}

/*
 * The rows that would change, in key order, up to the plan's room: for an
 * insert or update, the columns whose declared value differs (as text)
 * from the row in the table now, every column where there is none.
 */
static void
list_rows(RowsPlan *p)
{
	CocoTableSpec *spec = p->spec;
	Oid			relid = InvalidOid;
	StringInfoData changed;
	StringInfoData join;
	ErrorData  *err;

	/* a table this run makes (or remakes) is empty */
	if (p->sync->container_id != 0)
		relid = RangeVarGetRelid(makeRangeVar(spec->tn.schema, spec->tn.name, -1), NoLock, true);
	initStringInfo(&changed);
	initStringInfo(&join);
	for (int i = 0; i < spec->ncolumns; i++)
	{
		const char *qcol = quote_identifier(spec->columns[i].name);

		if (OidIsValid(relid) && get_attnum(relid, spec->columns[i].name) != InvalidAttrNumber)
			appendStringInfo(&changed, "%stt.\"coco#row\" IS NULL OR "
							 "z.%s::pg_catalog.text IS DISTINCT FROM tt.%s::pg_catalog.text",
							 i > 0 ? ", " : "", qcol, qcol);
		else
			appendStringInfo(&changed, "%strue", i > 0 ? ", " : "");
	}
	if (OidIsValid(relid))
	{
		appendStringInfo(&join, " LEFT JOIN (SELECT true AS \"coco#row\", * FROM ONLY %s) tt ON true",
						 coco_quote_qualified(spec->tn.schema, spec->tn.name));
		for (int i = 0; i < spec->nkeys; i++)
		{
			const char *k = quote_identifier(spec->columns[spec->key_index[i]].name);

			appendStringInfo(&join, " AND tt.%s OPERATOR(pg_catalog.=) z.%s", k, k);
		}
	}
	p->types[5] = INT8OID;
	p->values[5] = Int64GetDatum(coco_plan_room(p->sync->plan));
	p->nargs = 6;
	p->stmt = psprintf("SELECT z.\"coco#k\", z.\"coco#tk\", ARRAY[%s], "
					  "(SELECT pg_catalog.to_jsonb(cc.path)::pg_catalog.text FROM coco.component cc "
					  "WHERE cc.comp_id OPERATOR(pg_catalog.=) coalesce(z.\"coco#c\", z.\"coco#tc\")) "
					  "FROM (%s) z%s WHERE z.\"coco#k\" IS NULL OR z.\"coco#tk\" IS NULL OR z.\"coco#changed\" "
					  "ORDER BY coalesce(z.\"coco#k\", z.\"coco#tk\") LIMIT $6",
					  changed.data, build_diff_sql(spec, p->queries, false), join.data);
	err = try_statement(p);
	p->nargs = 5;
	if (err != NULL)
		return;					/* the table is the user's, and unreadable: its error stands */
	for (uint64 i = 0; i < SPI_processed; i++)
	{
		HeapTuple	tup = SPI_tuptable->vals[i];
		TupleDesc	desc = SPI_tuptable->tupdesc;
		bool		nokey;
		bool		untracked;
		bool		isnull;
		Datum		key = SPI_getbinval(tup, desc, 1, &nokey);
		Datum		tkey = SPI_getbinval(tup, desc, 2, &untracked);
		const char *action = nokey ? "delete" : untracked ? "insert" : "update";
		StringInfoData d;
		bool		first = true;

		initStringInfo(&d);
		appendStringInfoString(&d, "{\"table\": ");
		escape_json(&d, spec->tn.qualified);
		appendStringInfo(&d, ", \"component\": %s, \"columns\": [",
						 TextDatumGetCString(SPI_getbinval(tup, desc, 4, &isnull)));
		if (!nokey)
		{
			Datum	   *flags;
			int			nflags;

			deconstruct_array(DatumGetArrayTypeP(SPI_getbinval(tup, desc, 3, &isnull)), BOOLOID, 1, true,
							  TYPALIGN_CHAR, &flags, NULL, &nflags);
			for (int f = 0; f < nflags; f++)
				if (DatumGetBool(flags[f]))
				{
					if (!first)
						appendStringInfoString(&d, ", ");
					escape_json(&d, spec->columns[f].name);
					first = false;
				}
		}
		appendStringInfoString(&d, "]}");
		coco_plan_child(p->sync->plan, COCO_ROW_PROVIDER, bytea_key(nokey ? tkey : key), action, d.data);
	}
}

/*
 * For coco.plan: what a sync of these components would do, counted and not
 * applied, with the failures it would hit and, when asked, its rows.
 * Fills sync->inserted/updated/deleted/unchanged and opens the plan's
 * detail with the table's name.
 */
void
coco_rows_plan(CocoChildSync *sync, StringInfo detail)
{
	RowsPlan	p;
	ErrorData  *err;
	bool		isnull;

	memset(&p, 0, sizeof(p));
	p.sync = sync;
	p.spec = coco_table_spec_parse(sync->record);
	p.queries = replaced_queries(sync, p.spec, &p.search_path);
	p.types[0] = INT4OID;
	p.types[1] = INT8OID;
	p.types[2] = INT4ARRAYOID;
	p.types[3] = INT4ARRAYOID;
	p.types[4] = TEXTOID;
	p.values[0] = Int32GetDatum(sync->app_id);
	p.values[1] = Int64GetDatum(sync->container_id);
	p.values[2] = PointerGetDatum(coco_run_int_array(sync->replaced_comps, sync->nreplaced));
	p.values[3] = PointerGetDatum(coco_run_int_array(sync->rewrite_comps, sync->nrewrite));
	p.values[4] = CStringGetTextDatum(p.spec->tn.qualified);
	p.nargs = 5;
	/* the diff's output columns: key, fingerprint, component, tracked key, … changed */
	p.stmt = psprintf("SELECT pg_catalog.count(*) FILTER (WHERE z.\"coco#k\" IS NULL), "
					 "pg_catalog.count(*) FILTER (WHERE z.\"coco#k\" IS NOT NULL AND z.\"coco#tk\" IS NULL), "
					 "pg_catalog.count(*) FILTER (WHERE z.\"coco#k\" IS NOT NULL AND z.\"coco#tk\" IS NOT NULL "
					 "AND z.\"coco#changed\") FROM (%s) z",
					 build_diff_sql(p.spec, p.queries, false));
	coco_child_tally_reset(sync->tally);
	err = try_statement(&p);
	appendStringInfoString(detail, "\"table\": ");
	escape_json(detail, p.spec->tn.qualified);
	appendStringInfoString(detail, ", ");
	if (err != NULL)
	{
		/* nothing is counted: the run would stop here */
		report_unreadable(&p, err);
		return;
	}
	sync->deleted = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
	sync->inserted = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2, &isnull));
	sync->updated = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 3, &isnull));
	sync->unchanged = coco_child_tally_total(sync->tally) - sync->inserted - sync->updated;

	check_user_table(&p, sync->inserted + sync->updated > 0, sync->deleted > 0);
	report_keys(&p);
	if (coco_plan_room(sync->plan) > 0)
		list_rows(&p);
}
