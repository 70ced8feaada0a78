/*
 * pg_rows_sql.c — the statements over a table's declared rows: the
 * declarations of the replaced components as one query (staged
 * declare_rows queries and staged jsonb rows, converted to the declared
 * column types), the diff coco.plan counts, and the set-wise statements a
 * batch of changes is applied with.
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "access/relation.h"
#include "access/transam.h"
#include "access/xact.h"
#include "catalog/namespace.h"
#include "catalog/pg_class.h"
#include "catalog/pg_proc.h"
#include "catalog/pg_type.h"
#include "miscadmin.h"
#include "nodes/makefuncs.h"
#include "nodes/nodeFuncs.h"
#include "optimizer/optimizer.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/json.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/plancache.h"
#include "utils/queryenvironment.h"
#include "utils/snapmgr.h"
#include "utils/tuplestore.h"

#include "pg_rows.h"


static List *
load_staged_queries(const CocoChildSync *sync, const char *tbl)
{
	Oid			types[2] = {INT4OID, TEXTOID};
	Datum		values[2] = {Int32GetDatum(sync->app_id), CStringGetTextDatum(tbl)};
	List	   *result = NIL;
	SPIPlanPtr	plan;

	plan = SPI_prepare("SELECT q.comp_id, q.query, q.columns, q.search_path, q.row_count, q.seq, "
					   "EXISTS (SELECT FROM coco.staged_row r WHERE r.app_id OPERATOR(pg_catalog.=) $1 "
					   "AND r.tbl OPERATOR(pg_catalog.=) $2 AND r.comp_id OPERATOR(pg_catalog.=) q.comp_id) "
					   "FROM coco.staged_query q "
					   "WHERE q.app_id OPERATOR(pg_catalog.=) $1 AND q.tbl OPERATOR(pg_catalog.=) $2 "
					   "ORDER BY q.seq", 2, types);
	if (SPI_execute_snapshot(plan, values, NULL, sync->snapshot, InvalidSnapshot,
							 true, false, 0) != SPI_OK_SELECT)
		elog(ERROR, "coco_target: reading staged queries failed");
	for (uint64 i = 0; i < SPI_processed; i++)
	{
		HeapTuple	tup = SPI_tuptable->vals[i];
		TupleDesc	desc = SPI_tuptable->tupdesc;
		StagedQuery *q = palloc0(sizeof(StagedQuery));
		bool		isnull;
		Datum	   *cols;
		int			ncols;

		q->comp_id = DatumGetInt32(SPI_getbinval(tup, desc, 1, &isnull));
		q->query = TextDatumGetCString(SPI_getbinval(tup, desc, 2, &isnull));
		deconstruct_array(DatumGetArrayTypeP(SPI_getbinval(tup, desc, 3, &isnull)),
						  TEXTOID, -1, false, TYPALIGN_INT, &cols, NULL, &ncols);
		for (int c = 0; c < ncols; c++)
			q->columns = lappend(q->columns, TextDatumGetCString(cols[c]));
		q->search_path = TextDatumGetCString(SPI_getbinval(tup, desc, 4, &isnull));
		q->row_count = DatumGetInt64(SPI_getbinval(tup, desc, 5, &isnull));
		if (isnull)
			q->row_count = -1;
		q->seq = DatumGetInt64(SPI_getbinval(tup, desc, 6, &isnull));
		q->comp_has_rows = DatumGetBool(SPI_getbinval(tup, desc, 7, &isnull));
		result = lappend(result, q);
	}
	SPI_freeplan(plan);
	return result;
}

static bool
list_has_string(List *list, const char *s)
{
	ListCell   *lc;

	foreach(lc, list)
		if (strcmp((char *) lfirst(lc), s) == 0)
		return true;
	return false;
}

/*
 * The declared rows of one query as every run sees them: each declared
 * column in order, cast to its declared type, NULL where the query lacks
 * it.  declare_rows digests exactly this list, so its digest and the run's
 * agree.
 */
char *
coco_rows_select_list(const CocoTableSpec *spec, List *query_columns)
{
	StringInfoData out;

	initStringInfo(&out);
	for (int i = 0; i < spec->ncolumns; i++)
	{
		const char *name = spec->columns[i].name;
		char	   *qtype = coco_qualified_type(spec->columns[i].type);

		if (list_has_string(query_columns, name))
			appendStringInfo(&out, "%su.%s::%s AS %s", i > 0 ? ", " : "",
							 quote_identifier(name), qtype, quote_identifier(name));
		else
			appendStringInfo(&out, "%sNULL::%s AS %s", i > 0 ? ", " : "", qtype,
							 quote_identifier(name));
	}
	return out.data;
}

/* coco.row_key(<key columns of x>) */
char *
coco_rows_key_expr(const CocoTableSpec *spec)
{
	StringInfoData out;

	initStringInfo(&out);
	appendStringInfoString(&out, "coco.row_key(");
	for (int i = 0; i < spec->nkeys; i++)
		appendStringInfo(&out, "%sx.%s", i > 0 ? ", " : "",
						 quote_identifier(spec->columns[spec->key_index[i]].name));
	appendStringInfoChar(&out, ')');
	return out.data;
}

/*
 * Every row the replaced components declare for the table, as
 * ("coco#c" component, declared columns…): staged jsonb rows converted
 * exactly as declare_row checked them, and staged queries with each column
 * cast to its declared type.  Parameters: $1 app_id, $3 replaced
 * components, $5 the table's tracking name.
 *
 * Where a component has several row sources for the table (queries, or
 * queries and staged rows), a later declaration of a key replaces an
 * earlier one: each (component, key) keeps the rows of its latest source
 * (coco.staging_seq).  The rows of one query share its seq, so a query that
 * yields a key twice still reaches the "declared twice" check.  With one
 * source per component the statement is the plain UNION ALL: no window, no
 * sort.
 */
static char *
declared_sql(const CocoTableSpec *spec, List *queries, bool ignore_declarations,
			 char **ctid_queries)
{
	StringInfoData sql;
	ListCell   *lc;
	bool		latest_only = false;
	const char *no_ctid = ctid_queries ? ", NULL::pg_catalog.tid" : "";

	if (!ignore_declarations)
		foreach(lc, queries)
			latest_only |= ((StagedQuery *) lfirst(lc))->shared;
	/* the window over every source of a component keeps no ctid */
	Assert(!(latest_only && ctid_queries));

	initStringInfo(&sql);
	if (latest_only)
	{
		appendStringInfoString(&sql, "SELECT w.\"coco#c\"");
		for (int i = 0; i < spec->ncolumns; i++)
			appendStringInfo(&sql, ", w.%s", quote_identifier(spec->columns[i].name));
		appendStringInfo(&sql, " FROM (SELECT x.*, pg_catalog.max(x.\"coco#s\") "
						 "OVER (PARTITION BY x.\"coco#c\", %s) AS \"coco#m\" FROM (",
						 coco_rows_key_expr(spec));
	}
	appendStringInfoString(&sql, "SELECT s.comp_id AS \"coco#c\"");
	if (latest_only)
		appendStringInfoString(&sql, ", s.seq AS \"coco#s\"");
	for (int i = 0; i < spec->ncolumns; i++)
		appendStringInfo(&sql, ", r.%s", quote_identifier(spec->columns[i].name));
	appendStringInfoString(&sql, no_ctid);
	appendStringInfoString(&sql, " FROM coco.staged_row s CROSS JOIN LATERAL "
						   "pg_catalog.jsonb_to_record(s.\"row\") AS r(");
	for (int i = 0; i < spec->ncolumns; i++)
		appendStringInfo(&sql, "%s%s %s", i > 0 ? ", " : "",
						 quote_identifier(spec->columns[i].name),
						 coco_qualified_type(spec->columns[i].type));
	appendStringInfo(&sql, ") WHERE s.app_id OPERATOR(pg_catalog.=) $1 "
					 "AND s.tbl OPERATOR(pg_catalog.=) $5 AND s.comp_id OPERATOR(pg_catalog.=) ANY ($3)%s",
					 ignore_declarations ? " AND false" : "");
	if (!ignore_declarations)
	{
		foreach(lc, queries)
		{
			StagedQuery *q = lfirst(lc);
			char	   *ctid_query = ctid_queries ? ctid_queries[foreach_current_index(lc)] : NULL;

			/* OFFSET 0: keys are computed over this, and a constant NULL
			 * key must not be folded into the key function when planning */
			appendStringInfo(&sql, " UNION ALL (SELECT %d", q->comp_id);
			if (latest_only)
				appendStringInfo(&sql, ", " INT64_FORMAT "::pg_catalog.int8", q->seq);
			appendStringInfo(&sql, ", %s%s FROM (\n%s\n) u OFFSET 0)",
							 coco_rows_select_list(spec, q->columns),
							 ctid_query ? ", u." COCO_CTID_COLUMN_SQL : no_ctid,
							 ctid_query ? ctid_query : q->query);
		}
	}
	if (latest_only)
		appendStringInfoString(&sql, ") x) w WHERE w.\"coco#s\" OPERATOR(pg_catalog.=) w.\"coco#m\"");
	return sql.data;
}

char *
build_declared_sql(const CocoTableSpec *spec, List *queries, bool ignore_declarations)
{
	return declared_sql(spec, queries, ignore_declarations, NULL);
}

/*
 * The same rows with one more column, COCO_CTID_COLUMN: the ctid of the
 * row each came from, where ctid_queries (one per query, in order; NULL
 * for none) has the query that returns it (pg_rows_ctid.c); NULL for the
 * rest.  Not for a component with several sources.
 */
char *
build_declared_ctid_sql(const CocoTableSpec *spec, List *queries, char **ctid_queries)
{
	return declared_sql(spec, queries, false, ctid_queries);
}

/*
 * The second read of those rows by ctid: the rows of each query with an
 * entry in `at` (that query, restricted to the ctids of a parameter), as
 * build_declared_ctid_sql gives them.  NULL when no query has one.
 */
char *
build_ctid_read_sql(const CocoTableSpec *spec, List *queries, char **at)
{
	StringInfoData sql;
	ListCell   *lc;

	initStringInfo(&sql);
	foreach(lc, queries)
	{
		StagedQuery *q = lfirst(lc);
		char	   *query = at[foreach_current_index(lc)];

		if (query == NULL)
			continue;
		appendStringInfo(&sql, "%s(SELECT %d, %s, u." COCO_CTID_COLUMN_SQL " FROM (\n%s\n) u)",
						 sql.len > 0 ? " UNION ALL " : "", q->comp_id,
						 coco_rows_select_list(spec, q->columns), query);
	}
	return sql.len > 0 ? sql.data : NULL;
}

/* coco.tracked_fingerprint(component, key, columns…) over x */
static char *
tracked_fingerprint_expr(const CocoTableSpec *spec)
{
	StringInfoData out;

	initStringInfo(&out);
	appendStringInfo(&out, "coco.tracked_fingerprint(x.\"coco#c\", %s", coco_rows_key_expr(spec));
	for (int i = 0; i < spec->ncolumns; i++)
		appendStringInfo(&out, ", x.%s", quote_identifier(spec->columns[i].name));
	appendStringInfoChar(&out, ')');
	return out.data;
}

/*
 * coco.plan's diff statement: declared rows FULL JOIN tracked rows of the
 * replaced components; only what changed comes out.  $2 target_id, $4
 * components to re-write in full.
 */
char *
build_diff_sql(const CocoTableSpec *spec, List *queries, bool ignore_declarations)
{
	StringInfoData sql;
	StringInfoData cols;
	StringInfoData outer;

	initStringInfo(&cols);
	initStringInfo(&outer);
	for (int i = 0; i < spec->ncolumns; i++)
	{
		appendStringInfo(&cols, ", x.%s", quote_identifier(spec->columns[i].name));
		appendStringInfo(&outer, ", d.%s", quote_identifier(spec->columns[i].name));
	}

	initStringInfo(&sql);
	/* OFFSET 0 keeps the subquery whole, so each row is fingerprinted once */
	appendStringInfo(&sql,
					 "SELECT d.\"coco#k\", d.\"coco#f\", d.\"coco#c\", t.key AS \"coco#tk\", "
					 "t.comp_id AS \"coco#tc\", (d.\"coco#c\" OPERATOR(pg_catalog.=) ANY ($4) "
					 "OR t.comp_id OPERATOR(pg_catalog.=) ANY ($4) "
					 "OR (d.\"coco#f\" OPERATOR(pg_catalog.=) t.fp) IS NOT TRUE) AS \"coco#changed\"%s "
					 "FROM (SELECT %s AS \"coco#k\", %s AS \"coco#f\", x.\"coco#c\"%s FROM (%s) x OFFSET 0) d "
					 "FULL JOIN (SELECT key, fp, comp_id FROM coco.tracked_row "
					 "WHERE target_id OPERATOR(pg_catalog.=) $2 "
					 "AND comp_id OPERATOR(pg_catalog.=) ANY ($3)) t "
					 "ON t.key OPERATOR(pg_catalog.=) d.\"coco#k\" "
					 "WHERE d.\"coco#k\" IS NULL OR t.key IS NULL "
					 "OR d.\"coco#f\" OPERATOR(pg_catalog.<>) t.fp "
					 "OR d.\"coco#c\" OPERATOR(pg_catalog.<>) t.comp_id "
					 "OR d.\"coco#c\" OPERATOR(pg_catalog.=) ANY ($4) "
					 "OR t.comp_id OPERATOR(pg_catalog.=) ANY ($4)",
					 outer.data, coco_rows_key_expr(spec), tracked_fingerprint_expr(spec),
					 cols.data, build_declared_sql(spec, queries, ignore_declarations));
	return sql.data;
}


/*
 * Whether column i of a batch goes to a Citus table as text (an array of
 * its values' text forms, cast back in the statement): a type with no
 * array type of its own (an array type, notably) cannot be passed as an
 * array of its values, and unnest would spread a composite value over its
 * fields.  Key types are neither.
 */
bool
coco_rows_column_as_text(const CocoTableSpec *spec, int i)
{
	Oid			typid;
	int32		typmod;

	coco_resolve_type(spec->columns[i].type, &typid, &typmod);
	return !OidIsValid(get_array_type(typid)) || type_is_rowtype(typid);
}

/*
 * SELECT b.c1, b.c2::type, … FROM unnest($1, $2, …) AS b(c1, c2, …): a
 * batch's rows of one operation as array parameters, one per column
 * (pg_rows.c), for a table Citus holds.  keys_only: the key columns.
 * Unqualified on purpose: only the bare name is the multi-array form, which
 * the parser always turns into pg_catalog.unnest, whatever the search_path.
 */
static char *
select_unnested(const CocoTableSpec *spec, bool keys_only)
{
	StringInfoData cols;
	StringInfoData args;
	StringInfoData names;
	int			n = 0;

	initStringInfo(&cols);
	initStringInfo(&args);
	initStringInfo(&names);
	for (int i = 0; i < spec->ncolumns; i++)
	{
		const char *c = quote_identifier(spec->columns[i].name);

		if (keys_only && !spec->columns[i].is_key)
			continue;
		n++;
		appendStringInfo(&args, "%s$%d", n > 1 ? ", " : "", n);
		appendStringInfo(&names, "%s%s", n > 1 ? ", " : "", c);
		if (coco_rows_column_as_text(spec, i))
			appendStringInfo(&cols, "%sb.%s::%s", n > 1 ? ", " : "", c,
							 coco_qualified_type(spec->columns[i].type));
		else
			appendStringInfo(&cols, "%sb.%s", n > 1 ? ", " : "", c);
	}
	/*
	 * One array is passed twice: Citus sends the statement to the workers
	 * unqualified, where a one-argument unnest() would be looked up on the
	 * role's search_path; the many-argument form is syntax.
	 */
	if (n == 1)
		return psprintf("SELECT %s FROM unnest($1, $1) AS b(%s, \"coco#same\")", cols.data,
						names.data);
	return psprintf("SELECT %s FROM unnest(%s) AS b(%s)", cols.data, args.data, names.data);
}

/*
 * The set-wise statements of a batch.  New rows go in with a plain INSERT
 * where nothing can be in the way (a table created by this run; no other
 * component tracks rows of the table), which is about twice as fast as
 * INSERT … ON CONFLICT; anywhere else an upsert keeps the write idempotent.
 *
 * They read the batch from its ephemeral named relation, or (from_arrays:
 * a table Citus holds, whose planner cannot read one) from array
 * parameters.  The tracking is written by pg_tracking.c.
 */
void
build_statements(const CocoTableSpec *spec, bool fresh_table, bool from_arrays, RowStatements *st)
{
	char	   *qname = coco_quote_qualified(spec->tn.schema, spec->tn.name);
	StringInfoData s;
	StringInfoData cols;
	StringInfoData keys;
	StringInfoData sets;
	char	   *conflict;

	initStringInfo(&s);
	if (from_arrays)
		appendStringInfo(&s, "DELETE FROM %s t USING (%s) b WHERE true", qname,
						 select_unnested(spec, true));
	else
		appendStringInfo(&s, "DELETE FROM %s t USING " BATCH_ENR " b WHERE b.\"coco#op\" OPERATOR(pg_catalog.=) %d",
						 qname, COCO_OP_DELETE);
	for (int i = 0; i < spec->nkeys; i++)
	{
		const char *k = quote_identifier(spec->columns[spec->key_index[i]].name);

		appendStringInfo(&s, " AND t.%s OPERATOR(pg_catalog.=) b.%s", k, k);
	}
	st->delete_target = s.data;
	st->from_arrays = from_arrays;

	initStringInfo(&cols);
	initStringInfo(&keys);
	initStringInfo(&sets);
	for (int i = 0; i < spec->ncolumns; i++)
	{
		const char *c = quote_identifier(spec->columns[i].name);

		appendStringInfo(&cols, "%s%s", i > 0 ? ", " : "", c);
		if (spec->columns[i].is_key)
			appendStringInfo(&keys, "%s%s", keys.len > 0 ? ", " : "", c);
		else
			appendStringInfo(&sets, "%s%s = EXCLUDED.%s", sets.len > 0 ? ", " : "", c, c);
	}
	conflict = sets.len > 0 ?
		psprintf(" ON CONFLICT (%s) DO UPDATE SET %s", keys.data, sets.data) :
		psprintf(" ON CONFLICT (%s) DO NOTHING", keys.data);

	if (from_arrays)
	{
		char	   *rows = select_unnested(spec, false);

		st->insert_target = psprintf("INSERT INTO %s (%s) %s%s", qname, cols.data, rows,
									 fresh_table ? "" : conflict);
		st->upsert_target = psprintf("INSERT INTO %s (%s) %s%s", qname, cols.data, rows, conflict);
	}
	else
	{
		st->insert_target = psprintf("INSERT INTO %s (%s) SELECT %s FROM " BATCH_ENR
									 " WHERE \"coco#op\" OPERATOR(pg_catalog.=) %d%s",
									 qname, cols.data, cols.data, COCO_OP_INSERT,
									 fresh_table ? "" : conflict);
		st->upsert_target = psprintf("INSERT INTO %s (%s) SELECT %s FROM " BATCH_ENR
									 " WHERE \"coco#op\" OPERATOR(pg_catalog.=) %d%s",
									 qname, cols.data, cols.data, COCO_OP_UPDATE, conflict);
	}
}

/* The staged queries of the replaced components, and the search_path they
 * were declared under (one for all: they run in one statement). */
List *
replaced_queries(CocoChildSync *sync, const CocoTableSpec *spec, char **search_path)
{
	List	   *queries = load_staged_queries(sync, spec->tn.qualified);
	ListCell   *lc;
	ListCell   *other;

	*search_path = NULL;
	foreach(lc, queries)
	{
		StagedQuery *q = lfirst(lc);
		bool		replaced = false;

		for (int i = 0; i < sync->nreplaced; i++)
			if (sync->replaced_comps[i] == q->comp_id)
				replaced = true;
		if (!replaced)
		{
			queries = foreach_delete_current(queries, lc);
			continue;
		}
		/* another source in the component (all its queries are replaced) */
		q->shared = q->comp_has_rows;
		foreach(other, queries)
			if (lfirst(other) != q && ((StagedQuery *) lfirst(other))->comp_id == q->comp_id)
				q->shared = true;
		if (*search_path == NULL)
			*search_path = q->search_path;
		else if (strcmp(*search_path, q->search_path) != 0)
			ereport(ERROR,
					(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
					 errmsg("declare_rows queries for table \"%s\" were declared under different search_path settings",
							spec->tn.qualified),
					 errhint("Declare them with the same search_path, or schema-qualify the names in the queries.")));
	}
	return queries;
}

/*
 * How many rows the replaced components declare for the table, as they
 * were declared: the staged rows, and what each staged query returned when
 * declare_rows counted it (the run evaluates it again, so this is an
 * estimate).  0 when a query's count is not known.  Parameters as
 * build_declared_sql's; read as the extension owner, through the run's
 * snapshot.
 */
int64
coco_rows_declared_count(const CocoChildSync *sync, List *queries, int nparams, Oid *types,
						 Datum *values)
{
	int64		total = 0;
	bool		isnull;
	ListCell   *lc;
	SPIPlanPtr	plan;

	foreach(lc, queries)
	{
		StagedQuery *q = lfirst(lc);

		if (q->row_count < 0)
			return 0;
		total += q->row_count;
	}
	plan = SPI_prepare("SELECT pg_catalog.count(*) FROM coco.staged_row s "
					   "WHERE s.app_id OPERATOR(pg_catalog.=) $1 AND s.tbl OPERATOR(pg_catalog.=) $5 "
					   "AND s.comp_id OPERATOR(pg_catalog.=) ANY ($3)", nparams, types);
	if (plan == NULL ||
		SPI_execute_snapshot(plan, values, NULL, sync->snapshot, InvalidSnapshot,
							 true, false, 1) != SPI_OK_SELECT)
		elog(ERROR, "coco_target: counting staged rows failed");
	total += DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
	SPI_freeplan(plan);
	return total;
}


/* ---- whether the declarations are cheap to read again -------------------- */

/* a user's function, or a volatile one: its result a second call need not repeat */
static bool
user_or_volatile_function(Oid funcid, void *context)
{
	return funcid >= FirstNormalObjectId || func_volatile(funcid) == PROVOLATILE_VOLATILE;
}

/* our own OFFSET 0, which keeps a query's rows from being folded */
static bool
is_offset_zero(Node *node)
{
	if (node == NULL)
		return true;
	/* OFFSET 0 parses as the cast of an integer constant to bigint */
	node = eval_const_expressions(NULL, node);
	return IsA(node, Const) && !((Const *) node)->constisnull &&
		((Const *) node)->consttype == INT8OID && DatumGetInt64(((Const *) node)->constvalue) == 0;
}

/*
 * Whether a read of this query tree may not repeat the rows and values of
 * the one before it: a user's or a volatile function; a sample; a foreign
 * table; and what depends on the order rows arrive in, which a parallel
 * plan changes (aggregates, window functions, DISTINCT ON, LIMIT/OFFSET).
 */
static bool
calls_user_work(Node *node, void *context)
{
	if (node == NULL)
		return false;
	if (check_functions_in_node(node, user_or_volatile_function, context))
		return true;
	if (IsA(node, Query))
	{
		Query	   *q = (Query *) node;

		if (q->hasAggs || q->hasWindowFuncs || q->hasDistinctOn || q->limitCount != NULL ||
			!is_offset_zero(q->limitOffset))
			return true;
		return query_tree_walker(q, calls_user_work, context, QTW_EXAMINE_RTES_BEFORE);
	}
	if (IsA(node, RangeTblEntry))
	{
		RangeTblEntry *rte = (RangeTblEntry *) node;

		return rte->tablesample != NULL ||
			(rte->rtekind == RTE_RELATION && rte->relkind == RELKIND_FOREIGN_TABLE);
	}
	return expression_tree_walker(node, calls_user_work, context);
}

/*
 * Leave out the row security policies of the extension's own tables: the
 * staged rows a role reads are its apps' only, through a policy whose
 * aggregate over coco.app repeats within the run's snapshot.  Checked with
 * them, no app but a superuser's would ever be cheap to read again.
 */
static bool
strip_own_policies(Node *node, void *context)
{
	Oid			coco_nsp = *(Oid *) context;

	if (node == NULL)
		return false;
	if (IsA(node, Query))
		return query_tree_walker((Query *) node, strip_own_policies, context,
								 QTW_EXAMINE_RTES_BEFORE);
	if (IsA(node, RangeTblEntry))
	{
		RangeTblEntry *rte = (RangeTblEntry *) node;

		/* the walker goes on into the quals after this: it finds none */
		if (rte->rtekind == RTE_RELATION && get_rel_namespace(rte->relid) == coco_nsp)
			rte->securityQuals = NIL;
		return false;
	}
	return expression_tree_walker(node, strip_own_policies, context);
}

typedef struct RereadCheck
{
	const char *sql;
	int			nparams;
	Oid		   *types;
	bool		cheap;
} RereadCheck;

static void
check_reread(void *arg)
{
	RereadCheck *c = arg;
	SPIPlanPtr	plan = SPI_prepare(c->sql, c->nparams, c->types);
	Oid			coco_nsp = get_namespace_oid("coco", false);
	ListCell   *lc;

	if (plan == NULL)
		return;
	c->cheap = true;
	foreach(lc, SPI_plan_get_plan_sources(plan))
	{
		CachedPlanSource *ps = lfirst(lc);
		ListCell   *q;

		foreach(q, ps->query_list)
		{
			Query	   *query = copyObject(lfirst(q));

			(void) strip_own_policies((Node *) query, &coco_nsp);
			if (calls_user_work((Node *) query, NULL))
				c->cheap = false;
		}
	}
	SPI_freeplan(plan);
}

/*
 * Whether reading the declarations a second time costs a scan and no more,
 * and returns what the first read did: no function (and so no operator)
 * but PostgreSQL's own, none volatile, views expanded, and nothing whose
 * rows depend on chance or on the order of a scan (calls_user_work).  A
 * query that calls a user's function — a transform that may be expensive,
 * or whose result may change — is read once per run.
 * Prepared as the caller (the app owner); a query that does not prepare is
 * not cheap, and its read raises the error.
 */
bool
coco_rows_cheap_to_reread(const char *sql, int nparams, Oid *types)
{
	RereadCheck c = {sql, nparams, types, false};
	ErrorData  *edata = coco_subxact_call(check_reread, &c);

	if (edata != NULL)
	{
		FreeErrorData(edata);
		return false;
	}
	return c.cheap;
}
