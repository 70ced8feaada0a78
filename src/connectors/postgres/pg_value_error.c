/*
 * pg_value_error.c — errors about the rows declared for a table, in the
 * words of the declaration.
 *
 * The declared rows are converted to the column types inside the run's
 * statements, where an error knows neither the column nor the row.  So a
 * statement over the declared rows runs in a subtransaction: when it fails
 * with a data exception, the subtransaction is rolled back and the rows
 * are read again, each converted on its own (in a subtransaction of its
 * own), until the value that does not convert is found.  The error then
 * names the table, the column and the row's key, keeps the SQLSTATE, and
 * gives the original message as its detail.  Any other error is re-thrown
 * as it was, without the text of the internal statement.
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "utils/builtins.h"
#include "utils/json.h"
#include "utils/jsonb.h"
#include "utils/memutils.h"

#include "pg_rows.h"

/*
 * The context line SPI adds for one of our statements, and the statement
 * itself as the error's internal query: neither is shown to the user.
 */
static void
coco_forget_statement(ErrorData *edata, const char *sql, const char *context)
{
	char	   *line = psprintf("SQL statement \"%s\"", sql);
	char	   *at = edata->context ? strstr(edata->context, line) : NULL;

	if (at != NULL)
	{
		StringInfoData out;
		const char *rest = at + strlen(line);

		initStringInfo(&out);
		appendBinaryStringInfo(&out, edata->context, at - edata->context);
		if (context)
			appendStringInfoString(&out, context);
		else if (*rest == '\n')
			rest++;
		appendStringInfoString(&out, rest);
		if (out.len > 0 && out.data[out.len - 1] == '\n')
			out.data[--out.len] = '\0';
		edata->context = out.len > 0 ? out.data : NULL;
	}
	if (edata->internalquery && strcmp(edata->internalquery, sql) == 0)
	{
		edata->internalquery = NULL;
		edata->internalpos = 0;
	}
}

/*
 * In the PG_CATCH of one of our statements: re-throw its error at once
 * (nothing else runs in between, so no subtransaction is needed), shown
 * with `context` instead of the statement.
 */
void
coco_rethrow_without_statement(MemoryContext cxt, const char *sql, const char *context)
{
	ErrorData  *edata;

	MemoryContextSwitchTo(cxt);
	/* a caller's PG_CATCH builds them in ErrorContext, which the flush resets */
	sql = pstrdup(sql);
	context = context ? pstrdup(context) : NULL;
	edata = CopyErrorData();
	FlushErrorState();
	coco_forget_statement(edata, sql, context);
	ReThrowError(edata);
}

typedef struct ConversionCheck
{
	const char *sql;
	int			nargs;
	Oid		   *types;
	Datum	   *values;
	char	   *nulls;
} ConversionCheck;

static void
run_conversion_check(void *arg)
{
	ConversionCheck *cc = arg;

	if (SPI_execute_with_args(cc->sql, cc->nargs, cc->types, cc->values, cc->nulls, true, 0) < 0)
		elog(ERROR, "coco_target: a conversion check failed to run");
}

/* Does `sql` run with these arguments?  A failure is rolled back, not thrown. */
static bool
converts(const char *sql, int nargs, Oid *types, Datum *values, char *nulls)
{
	ConversionCheck cc = {sql, nargs, types, values, nulls};

	return coco_subxact_call(run_conversion_check, &cc) == NULL;
}

/* A row key as an object of its columns: {"id": 4} */
char *
coco_describe_row_key(const CocoTableSpec *spec, const char *key, int len)
{
	Jsonb	   *j = coco_key_to_jsonb(key, len);
	JsonbIterator *it = JsonbIteratorInit(&j->root);
	JsonbValue	v;
	JsonbIteratorToken tok;
	StringInfoData out;
	int			i = 0;

	initStringInfo(&out);
	appendStringInfoChar(&out, '{');
	while ((tok = JsonbIteratorNext(&it, &v, true)) != WJB_DONE)
	{
		if (tok != WJB_ELEM || i >= spec->nkeys)
			continue;
		if (i > 0)
			appendStringInfoString(&out, ", ");
		escape_json(&out, spec->columns[spec->key_index[i++]].name);
		appendStringInfoString(&out, ": ");
		appendStringInfoString(&out, JsonbToCString(NULL, &JsonbValueToJsonb(&v)->root, 0));
	}
	appendStringInfoChar(&out, '}');
	return out.data;
}

/* The first column of a jsonb row that does not convert as jsonb_to_record converts it, or -1. */
int
coco_bad_json_column(const CocoTableSpec *spec, Jsonb *row)
{
	Oid			types[1] = {JSONBOID};
	Datum		values[1] = {JsonbPGetDatum(row)};

	for (int i = 0; i < spec->ncolumns; i++)
		if (!converts(psprintf("SELECT 1 FROM pg_catalog.jsonb_to_record($1) AS r(%s %s)",
							   quote_identifier(spec->columns[i].name),
							   coco_qualified_type(spec->columns[i].type)),
					  1, types, values, NULL))
			return i;
	return -1;
}

/* The staged jsonb rows: the first value that does not convert. */
static bool
find_in_staged_rows(const CocoTableSpec *spec, int nparams, Oid *types, Datum *values,
					int *col, char **key)
{
	Portal		portal;
	bool		found = false;

	portal = SPI_cursor_open_with_args(NULL,
									   "SELECT s.key, s.\"row\" FROM coco.staged_row s "
									   "WHERE s.app_id OPERATOR(pg_catalog.=) $1 "
									   "AND s.tbl OPERATOR(pg_catalog.=) $5 "
									   "AND s.comp_id OPERATOR(pg_catalog.=) ANY ($3)",
									   nparams, types, values, NULL, true, 0);
	while (!found)
	{
		SPITupleTable *tt;
		uint64		n;

		SPI_cursor_fetch(portal, true, 100);
		tt = SPI_tuptable;
		n = SPI_processed;
		if (n == 0)
			break;
		/* the checks below run statements: tt and n are the fetch's */
		for (uint64 r = 0; r < n && !found; r++)
		{
			bool		isnull;
			bytea	   *k = DatumGetByteaPP(SPI_getbinval(tt->vals[r], tt->tupdesc, 1, &isnull));
			Jsonb	   *row = DatumGetJsonbP(SPI_getbinval(tt->vals[r], tt->tupdesc, 2, &isnull));

			*col = coco_bad_json_column(spec, row);
			if (*col >= 0)
			{
				*key = coco_describe_row_key(spec, VARDATA_ANY(k), VARSIZE_ANY_EXHDR(k));
				found = true;
			}
		}
	}
	SPI_cursor_close(portal);
	return found;
}

/* One staged query's rows: the first value that does not convert. */
static bool
find_in_query(const CocoTableSpec *spec, StagedQuery *q, int *col, char **key)
{
	int			ncols = list_length(q->columns);
	int		   *pos = palloc(sizeof(int) * Max(ncols, 1));
	StringInfoData sql;
	Portal		portal;
	bool		found = false;
	ListCell   *lc;

	initStringInfo(&sql);
	appendStringInfoString(&sql, "SELECT ");
	foreach(lc, q->columns)
	{
		int			i = foreach_current_index(lc);

		pos[i] = coco_table_spec_column(spec, lfirst(lc));
		appendStringInfo(&sql, "%su.%s", i > 0 ? ", " : "", quote_identifier(lfirst(lc)));
	}
	appendStringInfo(&sql, " FROM (\n%s\n) u", q->query);	/* lint-spi: the declare_rows query, SQL by design */
	portal = SPI_cursor_open_with_args(NULL, sql.data, 0, NULL, NULL, NULL, true, 0);
	while (!found)
	{
		SPITupleTable *tt;
		uint64		n;

		SPI_cursor_fetch(portal, true, 100);
		tt = SPI_tuptable;
		n = SPI_processed;
		if (n == 0)
			break;
		/* the checks below run statements: tt and n are the fetch's */
		for (uint64 r = 0; r < n && !found; r++)
		{
			StringInfoData k;
			bool		key_known = true;

			*col = -1;
			for (int i = 0; i < ncols; i++)
			{
				Oid			type = SPI_gettypeid(tt->tupdesc, i + 1);
				bool		isnull;
				Datum		v = SPI_getbinval(tt->vals[r], tt->tupdesc, i + 1, &isnull);

				if (!isnull &&
					!converts(psprintf("SELECT $1::%s", coco_qualified_type(spec->columns[pos[i]].type)),
							  1, &type, &v, NULL))
				{
					*col = pos[i];
					break;
				}
			}
			if (*col < 0)
				continue;
			/* its key, from the key columns as the run converts them */
			initStringInfo(&k);
			coco_key_begin_tuple(&k);
			for (int n = 0; n < spec->nkeys && key_known; n++)
			{
				int			i;
				Oid			type;
				Datum		v;
				bool		isnull;
				Oid			typid;
				int32		typmod;

				for (i = 0; i < ncols && pos[i] != spec->key_index[n]; i++)
					;
				type = SPI_gettypeid(tt->tupdesc, i + 1);
				v = SPI_getbinval(tt->vals[r], tt->tupdesc, i + 1, &isnull);
				coco_resolve_type(spec->columns[pos[i]].type, &typid, &typmod);
				if (isnull || pos[i] == *col ||
					!converts(psprintf("SELECT $1::%s", coco_qualified_type(spec->columns[pos[i]].type)),
							  1, &type, &v, NULL))
					key_known = false;
				else
				{
					coco_key_put_datum(&k, SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc,
														 1, &isnull), typid);
				}
			}
			coco_key_end_tuple(&k);
			*key = key_known ? coco_describe_row_key(spec, k.data, k.len) : NULL;
			found = true;
		}
	}
	SPI_cursor_close(portal);
	return found;
}

/*
 * Run `step` (a statement over the rows declared for the table in `spec`,
 * with these parameters: $1 app, $3 replaced components, $5 the table) in
 * a subtransaction; see the file's header for what an error in it becomes.
 */
/*
 * A load into a table the run created meets the table's primary key: the
 * declarations repeat a key.  Said so, with the key the server names
 * ("Key (id)=(1) already exists."); any other unique violation (a user's
 * own unique index) stands as it is.
 */
static void
repeated_key(const CocoTableSpec *spec, ErrorData *edata)
{
	StringInfoData cols;

	if (edata->detail == NULL || edata->table_name == NULL ||
		strcmp(edata->table_name, spec->tn.name) != 0)
		return;
	initStringInfo(&cols);
	appendStringInfoString(&cols, "Key (");
	for (int i = 0; i < spec->nkeys; i++)
		appendStringInfo(&cols, "%s%s", i > 0 ? ", " : "",
						 quote_identifier(spec->columns[spec->key_index[i]].name));
	appendStringInfoString(&cols, ")=");
	if (strncmp(edata->detail, cols.data, cols.len) != 0)
		return;
	ereport(ERROR,
			(errcode(ERRCODE_UNIQUE_VIOLATION),
			 errmsg("rows declared for table \"%s\" repeat a primary key", spec->tn.qualified),
			 errdetail("%s A declare_rows query may yield a key once, and one component at a time may declare it.", edata->detail),
			 errhint("Make the declarations' keys unique (coco.plan lists the repeated keys).")));
}

typedef struct ValueSearch
{
	const CocoTableSpec *spec;
	List	   *queries;
	int			nparams;
	Oid		   *types;
	Datum	   *values;
	int			col;			/* found: the column, */
	char	   *key;			/* and the row's key if known */
	bool		found;
} ValueSearch;

/* The declared value that does not convert: in the staged rows, then query by query. */
static void
find_bad_value(void *arg)
{
	ValueSearch *vs = arg;
	ListCell   *lc;

	vs->found = find_in_staged_rows(vs->spec, vs->nparams, vs->types, vs->values, &vs->col, &vs->key);
	foreach(lc, vs->queries)
	{
		if (vs->found)
			break;
		vs->found = find_in_query(vs->spec, lfirst(lc), &vs->col, &vs->key);
	}
}

void
coco_rows_guard(const CocoTableSpec *spec, List *queries, const char *sql,
				int nparams, Oid *types, Datum *values, void (*step) (void *), void *arg)
{
	ErrorData  *edata;
	char	   *where = psprintf("rows declared for table \"%s\"", spec->tn.qualified);
	ValueSearch vs = {spec, queries, nparams, types, values, -1, NULL, false};

	edata = coco_subxact_call(step, arg);
	if (edata == NULL)
		return;

	coco_forget_statement(edata, sql, where);
	if (edata->sqlerrcode == ERRCODE_UNIQUE_VIOLATION)
		repeated_key(spec, edata);
	if (ERRCODE_TO_CATEGORY(edata->sqlerrcode) != ERRCODE_DATA_EXCEPTION)
		ReThrowError(edata);

	/* the search runs user code again: whatever it raises, the error stands */
	if (coco_subxact_call(find_bad_value, &vs) != NULL)
		vs.found = false;
	if (!vs.found)
		ReThrowError(edata);
	ereport(ERROR,
			(errcode(edata->sqlerrcode),
			 vs.key ? errmsg("value for column \"%s\" of table \"%s\" at key %s does not convert to %s",
							 spec->columns[vs.col].name, spec->tn.qualified, vs.key,
							 spec->columns[vs.col].type) :
			 errmsg("value for column \"%s\" of table \"%s\" does not convert to %s",
					spec->columns[vs.col].name, spec->tn.qualified, spec->columns[vs.col].type),
			 errdetail_internal("%s", edata->message),
			 errhint("Declare values of the column's type, or change the column's declared type.")));
}
