/*
 * pg_index.c — the @index attachment of a postgres.table: B-tree, hash,
 * GIN, GiST, BRIN and pgvector's hnsw and ivfflat indexes, built in the run
 * or concurrently by the worker after it; coco.declare_index().
 *
 * The record is the spec: a changed index is dropped and built again.  An
 * index is built after its table and rows are in place, so a fresh table's
 * index is built once, not maintained row by row.
 */
#include "postgres.h"

#include "catalog/namespace.h"
#include "catalog/pg_type.h"
#include "commands/defrem.h"
#include "nodes/parsenodes.h"
#include "parser/parser.h"
#include "utils/builtins.h"
#include "utils/json.h"
#include "utils/array.h"
#include "utils/lsyscache.h"
#include "utils/jsonb.h"
#include "utils/numeric.h"
#include "utils/syscache.h"

#include "pg_attach.h"

/* ---- @index ------------------------------------------------------------- */

/* The lock a build (ShareLock) or a drop (AccessExclusiveLock) of an index
 * of the spec's table takes on the table. */
static void
lock_indexed_table(Jsonb *spec, LOCKMODE mode)
{
	CocoTableName tn;

	tn.schema = attach_spec_text(spec, "schema");
	tn.name = attach_spec_text(spec, "table");
	if (tn.schema == NULL || tn.name == NULL)
		return;
	tn.qualified = psprintf("%s.%s", tn.schema, tn.name);
	coco_lock_target_table(&tn, mode);
}

static void
index_retire(CocoPlannedAction *actions, int n)
{
	for (int i = 0; i < n; i++)
	{
		const CocoTargetState *st = actions[i].state;

		/* the index as it was recorded: every previous record names the same one */
		for (int p = 0; p < st->nprev; p++)
		{
			lock_indexed_table(st->prev[p], AccessExclusiveLock);
			attach_exec_sql(psprintf("DROP INDEX IF EXISTS %s",
							  coco_quote_qualified(attach_spec_text(st->prev[p], "schema"),
												   attach_spec_text(st->prev[p], "index_name"))),
					 "dropping index", st->name);
		}
	}
}

/*
 * The pgvector type of the indexed column: halfvec or sparsevec (or a
 * domain over one), else vector.  Read from the table when the index is
 * built: the declaration names only the metric, and the table exists by
 * then (pgvector's classes are per type: vector_l2_ops, halfvec_l2_ops, …).
 */
static const char *
vector_column_type(Jsonb *spec)
{
	Oid			nsp = get_namespace_oid(attach_spec_text(spec, "schema"), true);
	Oid			rel = OidIsValid(nsp) ? get_relname_relid(attach_spec_text(spec, "table"), nsp) : InvalidOid;
	JsonbValue *columns = getKeyJsonValueFromContainer(&spec->root, "columns", 7, NULL);
	JsonbValue *column;
	AttrNumber	att;
	HeapTuple	tup;
	char	   *typname;

	if (!OidIsValid(rel) || columns == NULL || columns->type != jbvBinary)
		return "vector";
	column = getIthJsonbValueFromContainer(columns->val.binary.data, 0);
	att = column ? get_attnum(rel, pnstrdup(column->val.string.val, column->val.string.len)) : InvalidAttrNumber;
	if (att == InvalidAttrNumber)
		return "vector";
	tup = SearchSysCache1(TYPEOID, ObjectIdGetDatum(getBaseType(get_atttype(rel, att))));
	if (!HeapTupleIsValid(tup))
		return "vector";
	typname = pstrdup(NameStr(((Form_pg_type) GETSTRUCT(tup))->typname));
	ReleaseSysCache(tup);
	if (strcmp(typname, "halfvec") == 0 || strcmp(typname, "sparsevec") == 0)
		return typname;
	/* vector, or a type CREATE INDEX will refuse with vector's class */
	return "vector";
}

/* pgvector's operator class for a metric and the column's type, qualified with its schema. */
static char *
vector_opclass(Jsonb *spec, const char *method, const char *metric)
{
	char	   *opclass = psprintf("%s_%s_ops", vector_column_type(spec), metric);
	Oid			types[2] = {TEXTOID, TEXTOID};
	Datum		values[2] = {CStringGetTextDatum(opclass), CStringGetTextDatum(method)};
	char	   *schema;

	if (SPI_execute_with_args("SELECT n.nspname FROM pg_catalog.pg_opclass c "
							  "JOIN pg_catalog.pg_namespace n ON n.oid OPERATOR(pg_catalog.=) c.opcnamespace "
							  "JOIN pg_catalog.pg_am a ON a.oid OPERATOR(pg_catalog.=) c.opcmethod "
							  "WHERE c.opcname OPERATOR(pg_catalog.=) $1 AND a.amname OPERATOR(pg_catalog.=) $2",
							  2, types, values, NULL, true, 1) != SPI_OK_SELECT)
		elog(ERROR, "coco_target: looking up operator class %s failed", opclass);
	if (SPI_processed == 0)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("operator class \"%s\" for index method \"%s\" does not exist", opclass, method),
				 errhint("Install the vector extension (pgvector) in this database: version 0.7 or later "
						 "for halfvec and sparsevec columns. ivfflat does not index sparsevec: use hnsw.")));
	schema = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1);
	return coco_quote_qualified(schema, opclass);
}

static void check_index_statement(Jsonb *spec, const char *sql);

/*
 * The CREATE INDEX statement of a spec; names were validated when declared.
 * Without `opclass`, a vector index's operator class is left out (it is
 * looked up only when the index is built: pgvector may come later).
 */
static char *
index_sql(Jsonb *spec, bool concurrently, bool opclass)
{
	StringInfoData sql;
	char	   *include = attach_spec_identifiers(spec, "include");
	char	   *where = attach_spec_text(spec, "where");
	char	   *metric = attach_spec_text(spec, "metric");
	char	   *method = attach_spec_text(spec, "method");
	char	   *columns = attach_spec_identifiers(spec, "columns");
	JsonbValue *with = getKeyJsonValueFromContainer(&spec->root, "with", 4, NULL);
	JsonbValue *exprs = getKeyJsonValueFromContainer(&spec->root, "expressions", 11, NULL);

	/* expressions follow the plain columns, each in parentheses */
	if (exprs && exprs->type == jbvBinary)
	{
		StringInfoData all;

		initStringInfo(&all);
		appendStringInfoString(&all, columns);
		for (int i = 0; i < (int) JsonContainerSize(exprs->val.binary.data); i++)
		{
			JsonbValue *e = getIthJsonbValueFromContainer(exprs->val.binary.data, i);

			appendStringInfo(&all, "%s(%.*s)", all.len > 0 ? ", " : "",
							 e->val.string.len, e->val.string.val);
		}
		columns = all.data;
	}

	/* a vector index has one column, with the metric's operator class */
	if (metric && opclass)
		columns = psprintf("%s %s", columns, vector_opclass(spec, method, metric));
	initStringInfo(&sql);
	appendStringInfo(&sql, "CREATE %sINDEX %s%s ON %s USING %s (%s)",
					 attach_spec_bool(spec, "unique") ? "UNIQUE " : "",
					 concurrently ? "CONCURRENTLY " : "",
					 quote_identifier(attach_spec_text(spec, "index_name")),
					 coco_quote_qualified(attach_spec_text(spec, "schema"), attach_spec_text(spec, "table")),
					 quote_identifier(method), columns);
	if (include[0] != '\0')
		appendStringInfo(&sql, " INCLUDE (%s)", include);
	if (with && with->type == jbvBinary && JsonContainerSize(with->val.binary.data) > 0)
	{
		/* storage parameters: validated identifiers and integers */
		JsonbIterator *it = JsonbIteratorInit(with->val.binary.data);
		JsonbValue	v;
		JsonbIteratorToken tok;
		bool		first = true;

		appendStringInfoString(&sql, " WITH (");
		while ((tok = JsonbIteratorNext(&it, &v, true)) != WJB_DONE)
		{
			if (tok == WJB_KEY)
				appendStringInfo(&sql, "%s%s = ", first ? "" : ", ",
								 quote_identifier(pnstrdup(v.val.string.val, v.val.string.len)));
			else if (tok == WJB_VALUE)
				appendStringInfoString(&sql, DatumGetCString(DirectFunctionCall1(numeric_out,
																				 NumericGetDatum(v.val.numeric))));
			if (tok == WJB_VALUE)
				first = false;
		}
		appendStringInfoChar(&sql, ')');
	}
	if (where)
		appendStringInfo(&sql, " WHERE (%s)", where);
	check_index_statement(spec, sql.data);
	return sql.data;
}

/*
 * The CREATE INDEX of a spec must parse as exactly that one statement, with
 * the spec's name, table, method, columns, expressions, included columns
 * and predicate.  Expressions and the predicate go in as text (a raw
 * expression cannot be deparsed), each checked alone when declared; a
 * comment or a quote that reaches past one of them could still change the
 * statement around it, or carry another one in.  Checked when declared and
 * again before the statement runs.
 */
static void
check_index_statement(Jsonb *spec, const char *sql)
{
	ErrorData  *error;
	List	   *stmts = attach_raw_parse(sql, &error);
	IndexStmt  *ix = NULL;
	char	   *name = attach_spec_text(spec, "index_name");
	char	   *where = attach_spec_text(spec, "where");
	int			ncolumns = attach_spec_array_size(spec, "columns");
	bool		same;

	/* a syntax error is a statement that is not the spec's; anything else is raised */
	if (error && error->sqlerrcode != ERRCODE_SYNTAX_ERROR)
		ReThrowError(error);
	if (list_length(stmts) == 1 && IsA(linitial_node(RawStmt, stmts)->stmt, IndexStmt))
		ix = (IndexStmt *) linitial_node(RawStmt, stmts)->stmt;
	same = ix != NULL &&
		strcmp(ix->idxname, name) == 0 &&
		ix->relation->schemaname != NULL &&
		strcmp(ix->relation->schemaname, attach_spec_text(spec, "schema")) == 0 &&
		strcmp(ix->relation->relname, attach_spec_text(spec, "table")) == 0 &&
		strcmp(ix->accessMethod, attach_spec_text(spec, "method")) == 0 &&
		ix->unique == attach_spec_bool(spec, "unique") &&
		list_length(ix->indexParams) == ncolumns + attach_spec_array_size(spec, "expressions") &&
		list_length(ix->indexIncludingParams) == attach_spec_array_size(spec, "include") &&
		(ix->whereClause != NULL) == (where != NULL);
	/* the named columns come first, as names; the expressions after them */
	for (int i = 0; same && i < list_length(ix->indexParams); i++)
	{
		IndexElem  *e = list_nth_node(IndexElem, ix->indexParams, i);

		same = (i < ncolumns) == (e->name != NULL && e->expr == NULL);
	}
	if (!same)
		ereport(ERROR,
				(errcode(ERRCODE_SYNTAX_ERROR),
				 errmsg("the expressions or predicate of index \"%s\" do not make one CREATE INDEX statement",
						name),
				 errdetail("A comment or a quoted string in one of them reaches past it and changes the "
						   "statement around it."),
				 errhint("Give each expression, and the predicate, as a complete SQL expression of its own.")));
}

static void
index_apply(CocoPlannedAction *actions, int n)
{
	for (int i = 0; i < n; i++)
	{
		lock_indexed_table(actions[i].state->desired, ShareLock);
		attach_exec_sql(index_sql(actions[i].state->desired, false, true), "creating index", actions[i].state->name);
	}
}

/*
 * A concurrent build runs at top level, outside any transaction block.  A
 * build interrupted earlier may have left an index of this name (invalid,
 * or built but not yet recorded): it is dropped first, here, in the
 * transaction before the build.
 */
static char *
index_concurrently_sql(const CocoPlannedAction *action)
{
	Jsonb	   *spec = action->state->desired;
	char	   *qname = coco_quote_qualified(attach_spec_text(spec, "schema"), attach_spec_text(spec, "index_name"));
	Oid			nsp = get_namespace_oid(attach_spec_text(spec, "schema"), true);
	Oid			index = OidIsValid(nsp) ? get_relname_relid(attach_spec_text(spec, "index_name"), nsp) : InvalidOid;

	if (OidIsValid(index))
		attach_exec_sql(psprintf("DROP INDEX IF EXISTS %s", qname), "dropping a leftover index", action->state->name);
	return index_sql(spec, true, true);
}

/*
 * Whether the table's decision retypes the column of a pgvector index (an
 * "alter" or "ensure" of it).  pgvector's operator classes are per type,
 * and PostgreSQL rebuilds the index within ALTER COLUMN … TYPE with the
 * class it has (vector_cosine_ops does not take a halfvec); after a
 * retype whose values do not convert, it would also build it on NULLs
 * (ivfflat's lists come from the rows it is built on) and then maintain it
 * row by row while the rows are written again.
 */
static bool
vector_column_retyped(const CocoDecision *table, Jsonb *spec)
{
	JsonbValue *columns;
	JsonbValue *indexed;

	if (table == NULL || table->action != COCO_UPSERT || table->detail == NULL ||
		attach_spec_text(spec, "metric") == NULL)
		return false;
	columns = getKeyJsonValueFromContainer(&table->detail->root, "columns", 7, NULL);
	indexed = getKeyJsonValueFromContainer(&spec->root, "columns", 7, NULL);
	if (columns == NULL || columns->type != jbvBinary || indexed == NULL || indexed->type != jbvBinary)
		return false;
	for (int i = 0; i < (int) JsonContainerSize(columns->val.binary.data); i++)
	{
		JsonbValue *c = getIthJsonbValueFromContainer(columns->val.binary.data, i);
		JsonbValue *name;
		JsonbValue *action;

		if (c == NULL || c->type != jbvBinary)
			continue;
		name = getKeyJsonValueFromContainer(c->val.binary.data, "name", 4, NULL);
		action = getKeyJsonValueFromContainer(c->val.binary.data, "action", 6, NULL);
		if (name == NULL || action == NULL || name->type != jbvString || action->type != jbvString)
			continue;
		if (!((action->val.string.len == 6 && strncmp(action->val.string.val, "retype", 6) == 0) ||
			  (action->val.string.len == 6 && strncmp(action->val.string.val, "ensure", 6) == 0)))
			continue;
		for (int k = 0; k < (int) JsonContainerSize(indexed->val.binary.data); k++)
		{
			JsonbValue *col = getIthJsonbValueFromContainer(indexed->val.binary.data, k);

			if (col && col->type == jbvString && col->val.string.len == name->val.string.len &&
				strncmp(col->val.string.val, name->val.string.val, name->val.string.len) == 0)
				return true;
		}
	}
	return false;
}

/*
 * The spec is the record (attach_reconcile); a pgvector index whose column
 * the table retypes in this run is made again: dropped before the column
 * changes, built after the rows are written, with the new type's class.
 */
static void
index_reconcile(const CocoTargetState *st, CocoDecision *d)
{
	attach_reconcile(st, d);
	if (d->action == COCO_NO_ACTION && st->desired != NULL &&
		vector_column_retyped(st->container, st->desired))
		d->action = COCO_REPLACE;
}

/* Drift: the index was dropped behind the reconciler's back. */
static bool
index_matches_record(const CocoTargetState *st)
{
	Jsonb	   *rec = st->prev[st->nprev - 1];
	Oid			nsp = get_namespace_oid(attach_spec_text(rec, "schema"), true);

	return OidIsValid(nsp) && OidIsValid(get_relname_relid(attach_spec_text(rec, "index_name"), nsp));
}

/* For coco.plan: an index's hazards (a concurrent build lets writes through). */
static const char *
index_plan_action(const CocoPlannedAction *a, StringInfo hazards)
{
	CocoAction	action = a->decision.action;

	if (action != COCO_INSERT)
		appendStringInfoString(hazards, ", \"drops_index\"");
	if (action != COCO_DELETE && strcmp(a->state->provider, INDEX_CONCURRENTLY_PROVIDER) != 0)
		appendStringInfoString(hazards, ", \"blocks_writes\"");
	return NULL;
}

static const CocoProvider index_provider = {
	.name = INDEX_PROVIDER,
	.parent = COCO_TABLE_PROVIDER,
	.reconcile = index_reconcile,
	.apply = index_apply,
	.retire = index_retire,
	.matches_record = index_matches_record,
	.container_name = attach_container_name,
	.plan_action = index_plan_action,
};

static const CocoProvider index_concurrently_provider = {
	.name = INDEX_CONCURRENTLY_PROVIDER,
	.parent = COCO_TABLE_PROVIDER,
	.reconcile = index_reconcile,
	.apply = index_apply,
	.retire = index_retire,
	.matches_record = index_matches_record,
	.outside_transaction = true,
	.top_level_sql = index_concurrently_sql,
	.container_name = attach_container_name,
	.plan_action = index_plan_action,
};

void
coco_pg_index_register(void)
{
	coco_register_root_provider(&index_provider);
	coco_register_root_provider(&index_concurrently_provider);
}

/* ---- the declaration API -------------------------------------------------- */

static void
append_json_identifiers(StringInfo out, const char *field, ArrayType *arr, const char *what)
{
	Datum	   *elems;
	bool	   *nulls;
	int			n;

	if (ARR_NDIM(arr) > 1)
		ereport(ERROR,
				(errcode(ERRCODE_ARRAY_SUBSCRIPT_ERROR),
				 errmsg("%s must be a one-dimensional array", what)));
	deconstruct_array(arr, TEXTOID, -1, false, TYPALIGN_INT, &elems, &nulls, &n);
	appendStringInfo(out, ", \"%s\": [", field);
	for (int i = 0; i < n; i++)
	{
		char	   *ident;

		if (nulls[i])
			ereport(ERROR,
					(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
					 errmsg("%s may not contain nulls", what)));
		ident = TextDatumGetCString(elems[i]);
		coco_validate_identifier(ident, "column name");
		if (i > 0)
			appendStringInfoString(out, ", ");
		escape_json(out, ident);
	}
	appendStringInfoChar(out, ']');
}

/*
 * An index expression or predicate is SQL the app owner runs; it must be
 * one expression, not a way to append statements to the CREATE INDEX.
 */
static char *
check_expression(char *expr, const char *option)
{
	ErrorData  *error;
	List	   *stmts = attach_raw_parse(psprintf("SELECT (%s)", expr), &error);
	SelectStmt *select;

	/* a syntax error names the option, not a position in the caller's query */
	if (error)
		ereport(ERROR,
				(errcode(ERRCODE_SYNTAX_ERROR),
				 errmsg("index option \"%s\" is not a valid SQL expression: %s", option, expr),
				 errdetail("%s", error->message)));
	select = list_length(stmts) == 1 ? (SelectStmt *) linitial_node(RawStmt, stmts)->stmt : NULL;

	/* exactly "SELECT (expr)": no clause may follow the parenthesis */
	if (select == NULL || !IsA(select, SelectStmt) || list_length(select->targetList) != 1 ||
		select->fromClause != NIL || select->whereClause != NULL || select->groupClause != NIL ||
		select->havingClause != NULL || select->windowClause != NIL || select->sortClause != NIL ||
		select->limitCount != NULL || select->limitOffset != NULL || select->lockingClause != NIL ||
		select->withClause != NULL || select->distinctClause != NIL || select->intoClause != NULL ||
		select->op != SETOP_NONE)
		ereport(ERROR,
				(errcode(ERRCODE_SYNTAX_ERROR),
				 errmsg("index option \"%s\" must be a single SQL expression: %s", option, expr)));
	return expr;
}

static char *
check_column_name(char *name, const char *option)
{
	coco_validate_identifier(name, "column name");
	return name;
}

/*
 * Copy the index option `field`, a JSON array of strings each checked by
 * `check`, into the spec.  `what` says what it must be, for the error.
 * Returns whether it was given.
 */
static bool
append_string_list(StringInfo spec, Jsonb *options, const char *field, bool non_empty,
				   const char *what, char *(*check) (char *item, const char *option))
{
	JsonbValue *opt = getKeyJsonValueFromContainer(&options->root, field, strlen(field), NULL);
	JsonbContainer *c;

	if (opt == NULL)
		return false;
	c = opt->type == jbvBinary ? opt->val.binary.data : NULL;
	if (c == NULL || !JsonContainerIsArray(c) || (non_empty && JsonContainerSize(c) == 0))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("index option \"%s\" must be %s", field, what)));
	appendStringInfo(spec, ", \"%s\": [", field);
	for (int i = 0; i < (int) JsonContainerSize(c); i++)
	{
		JsonbValue *e = getIthJsonbValueFromContainer(c, i);

		if (e->type != jbvString)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("index option \"%s\" must be %s", field, what)));
		if (i > 0)
			appendStringInfoString(spec, ", ");
		escape_json(spec, check(pnstrdup(e->val.string.val, e->val.string.len), field));
	}
	appendStringInfoChar(spec, ']');
	return true;
}

static bool
is_vector_method(const char *method)
{
	return strcmp(method, "hnsw") == 0 || strcmp(method, "ivfflat") == 0;
}

/*
 * pgvector's hnsw and ivfflat: one column, a metric (cosine, l2, ip) naming
 * the operator class with the column's type (vector_…, halfvec_…, sparsevec_…), and integer build parameters ("with": hnsw's m and
 * ef_construction, ivfflat's lists).  Other methods take neither.
 */
static void
append_vector_options(StringInfo spec, Jsonb *options, const char *method, ArrayType *columns)
{
	JsonbValue *metric = options ? getKeyJsonValueFromContainer(&options->root, "metric", 6, NULL) : NULL;
	JsonbValue *with = options ? getKeyJsonValueFromContainer(&options->root, "with", 4, NULL) : NULL;
	static const char *const metrics[] = {"cosine", "l2", "ip"};
	const char *const *params;
	static const char *const hnsw_params[] = {"m", "ef_construction", NULL};
	static const char *const ivfflat_params[] = {"lists", NULL};
	static const char *const no_params[] = {NULL};
	char	   *m;
	bool		known = false;

	if (!is_vector_method(method))
	{
		if (metric || with)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("index options \"metric\" and \"with\" apply to hnsw and ivfflat indexes, not %s", method)));
		return;
	}
	if (metric == NULL || metric->type != jbvString)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("a %s index needs the option \"metric\"", method),
				 errhint("The metrics are cosine, l2 and ip.")));
	m = pnstrdup(metric->val.string.val, metric->val.string.len);
	for (int i = 0; i < (int) lengthof(metrics); i++)
		known |= strcmp(m, metrics[i]) == 0;
	if (!known)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("unknown metric \"%s\"", m),
				 errhint("The metrics are cosine, l2 and ip.")));
	if (ArrayGetNItems(ARR_NDIM(columns), ARR_DIMS(columns)) != 1 ||
		(options && getKeyJsonValueFromContainer(&options->root, "expressions", 11, NULL)))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("a %s index has exactly one column, and no expressions", method)));
	appendStringInfoString(spec, ", \"metric\": ");
	escape_json(spec, m);
	if (with == NULL)
		return;
	params = strcmp(method, "hnsw") == 0 ? hnsw_params : strcmp(method, "ivfflat") == 0 ? ivfflat_params : no_params;
	if (with->type != jbvBinary || !JsonContainerIsObject(with->val.binary.data))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("index option \"with\" must be a JSON object")));
	{
		JsonbIterator *it = JsonbIteratorInit(with->val.binary.data);
		JsonbValue	v;
		JsonbIteratorToken tok;
		char	   *key = NULL;

		appendStringInfoString(spec, ", \"with\": {");
		while ((tok = JsonbIteratorNext(&it, &v, true)) != WJB_DONE)
		{
			if (tok == WJB_KEY)
			{
				bool		ok = false;

				key = pnstrdup(v.val.string.val, v.val.string.len);
				for (int i = 0; params[i]; i++)
					ok |= strcmp(key, params[i]) == 0;
				if (!ok)
					ereport(ERROR,
							(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
							 errmsg("unknown %s parameter \"%s\"", method, key),
							 errhint("hnsw takes m and ef_construction; ivfflat takes lists.")));
			}
			else if (tok == WJB_VALUE)
			{
				int64		n;

				if (v.type != jbvNumeric)
					ereport(ERROR,
							(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
							 errmsg("%s parameter \"%s\" must be an integer", method, key)));
				n = DatumGetInt64(DirectFunctionCall1(numeric_int8, NumericGetDatum(v.val.numeric)));
				/* numeric_int8 rounds: 1.5 is not an integer */
				if (!DatumGetBool(DirectFunctionCall2(numeric_eq, NumericGetDatum(v.val.numeric),
													  DirectFunctionCall1(int8_numeric, Int64GetDatum(n)))))
					ereport(ERROR,
							(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
							 errmsg("%s parameter \"%s\" must be an integer", method, key)));
				if (n < 1 || n > 100000)
					ereport(ERROR,
							(errcode(ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE),
							 errmsg("%s parameter \"%s\" is out of range", method, key)));
				appendStringInfo(spec, "%s\"%s\": " INT64_FORMAT, spec->data[spec->len - 1] == '{' ? "" : ", ",
								 key, n);
			}
		}
		appendStringInfoChar(spec, '}');
	}
}

/*
 * coco.declare_index(app, table_name, index_name, columns, method, options,
 * component).  Options: unique (boolean), where (a predicate, SQL run as the
 * app owner), include (column names), concurrently (built with CREATE INDEX
 * CONCURRENTLY by the worker, outside the run's transaction), and for
 * pgvector's hnsw and ivfflat a metric and build parameters ("with").  The index in the database is named
 * <table>_<index_name>, so equal index names on two tables never collide.
 *
 * coco_stage_index stages one (coco.declare_index, and the indexes of a
 * synced table), validated here so that a bad index is refused when declared.
 */
void
coco_stage_index(CocoApp *app, const CocoTableName *tn, const char *name, ArrayType *columns,
				 const char *method, Jsonb *options, ArrayType *component)
{
	char	   *physical;
	JsonbIterator *it;
	JsonbValue	v;
	JsonbIteratorToken tok;
	StringInfoData spec;
	JsonbValue *opt;
	bool		concurrently = false;
	bool		has_expressions = false;
	Jsonb	   *built;

	coco_validate_identifier(name, "index name");
	physical = psprintf("%s_%s", tn->name, name);
	coco_validate_identifier(physical, "derived index name");
	coco_validate_identifier(method, "index method");
	if (!OidIsValid(get_index_am_oid(method, true)))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("index access method \"%s\" does not exist", method),
				 errhint("btree, hash, gin, gist and brin are built in; hnsw and ivfflat need the vector extension.")));
	if (options && !JB_ROOT_IS_OBJECT(options))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("index options must be a JSON object")));

	initStringInfo(&spec);
	appendStringInfoString(&spec, "{\"schema\": ");
	escape_json(&spec, tn->schema);
	appendStringInfoString(&spec, ", \"table\": ");
	escape_json(&spec, tn->name);
	appendStringInfoString(&spec, ", \"name\": ");
	escape_json(&spec, name);
	appendStringInfoString(&spec, ", \"index_name\": ");
	escape_json(&spec, physical);
	appendStringInfoString(&spec, ", \"method\": ");
	escape_json(&spec, method);
	append_json_identifiers(&spec, "columns", columns, "columns");
	if (options)
	{
		it = JsonbIteratorInit(&options->root);
		while ((tok = JsonbIteratorNext(&it, &v, true)) != WJB_DONE)
		{
			if (tok == WJB_KEY)
			{
				char	   *k = pnstrdup(v.val.string.val, v.val.string.len);

				if (strcmp(k, "unique") != 0 && strcmp(k, "where") != 0 && strcmp(k, "include") != 0 &&
					strcmp(k, "concurrently") != 0 && strcmp(k, "metric") != 0 && strcmp(k, "with") != 0 &&
					strcmp(k, "expressions") != 0)
					ereport(ERROR,
							(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
							 errmsg("unknown index option \"%s\"", k),
							 errhint("Index options are unique, where, include, expressions, concurrently, metric and with.")));
			}
		}
		opt = getKeyJsonValueFromContainer(&options->root, "unique", 6, NULL);
		if (opt)
		{
			if (opt->type != jbvBool)
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						 errmsg("index option \"unique\" must be true or false")));
			appendStringInfo(&spec, ", \"unique\": %s", opt->val.boolean ? "true" : "false");
		}
		opt = getKeyJsonValueFromContainer(&options->root, "where", 5, NULL);
		if (opt)
		{
			if (opt->type != jbvString)
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						 errmsg("index option \"where\" must be a string")));
			appendStringInfoString(&spec, ", \"where\": ");
			escape_json(&spec, check_expression(pnstrdup(opt->val.string.val, opt->val.string.len), "where"));
		}
		has_expressions = append_string_list(&spec, options, "expressions", true,
											 "a non-empty array of SQL expressions", check_expression);
		opt = getKeyJsonValueFromContainer(&options->root, "concurrently", 12, NULL);
		if (opt)
		{
			if (opt->type != jbvBool)
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						 errmsg("index option \"concurrently\" must be true or false")));
			concurrently = opt->val.boolean;
		}
		(void) append_string_list(&spec, options, "include", false, "an array of column names",
								  check_column_name);
	}
	if (!has_expressions && ArrayGetNItems(ARR_NDIM(columns), ARR_DIMS(columns)) == 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("index \"%s\" has no columns", name),
				 errhint("Name columns, or give the option \"expressions\".")));
	append_vector_options(&spec, options, method, columns);
	if (concurrently)
		appendStringInfoString(&spec, ", \"concurrently\": true");
	appendStringInfoChar(&spec, '}');
	built = DatumGetJsonbP(DirectFunctionCall1(jsonb_in, CStringGetDatum(spec.data)));
	(void) index_sql(built, concurrently, false);
	attach_stage(app, tn, concurrently ? INDEX_CONCURRENTLY_PROVIDER : INDEX_PROVIDER,
					 concurrently ? INDEX_PROVIDER : INDEX_CONCURRENTLY_PROVIDER, "@index", name,
					 built, component);
}

PG_FUNCTION_INFO_V1(coco_declare_index);
Datum
coco_declare_index(PG_FUNCTION_ARGS)
{
	CocoApp    *app;
	CocoTableName tn;

	SPI_connect();
	app = coco_app_lookup(text_to_cstring(coco_text_arg(fcinfo, 0, "app")));
	coco_declaring(app);
	coco_parse_table_name(text_to_cstring(coco_text_arg(fcinfo, 1, "table_name")), &tn);
	(void) coco_text_arg(fcinfo, 2, "index_name");
	if (PG_ARGISNULL(3))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("columns must not be null")));
	coco_stage_index(app, &tn, text_to_cstring(PG_GETARG_TEXT_PP(2)), PG_GETARG_ARRAYTYPE_P(3),
					 text_to_cstring(coco_text_arg(fcinfo, 4, "method")),
					 PG_ARGISNULL(5) ? NULL : PG_GETARG_JSONB_P(5), coco_component_arg(fcinfo, 6));
	SPI_finish();
	PG_RETURN_VOID();
}
