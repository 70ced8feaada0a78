/*
 * sync_table.c — derived tables declared once from their query
 * (coco.sync_table), kept by the app as persistent declarations.
 *
 * A registration (coco.synced_table) holds the table's query, key and
 * options.  Every run of the app expands each registration into exactly
 * the staging that coco.declare_table, declare_rows, declare_index and
 * declare_sql_command would produce, in the component the table owns:
 * the columns are inferred from the query as it is then (infer.c), so a
 * changed source evolves the table as a changed declare_table would.  The
 * engine calls the expansion through its persistent-declarations hook,
 * after the run holds the app's lock and before a pass reads staging.
 *
 * coco.sync_table validates by expanding once, in a subtransaction that is
 * rolled back, so every error a run would raise from the declaration shows
 * when it is made.
 */
#include "postgres.h"

#include "access/xact.h"
#include "catalog/pg_type.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/guc.h"
#include "utils/json.h"
#include "utils/jsonb.h"
#include "utils/memutils.h"

#include "pg_attach.h"

/* A registration, as coco.synced_table keeps it. */
typedef struct SyncedTable
{
	char	   *tbl;			/* "schema.table" */
	int			comp_id;
	ArrayType  *component;
	char	   *query;
	ArrayType  *primary_key;
	Jsonb	   *options;
	char	   *search_path;
} SyncedTable;

/* The options of a registration, checked. */
typedef struct SyncOptions
{
	char	   *managed_by;
	Jsonb	   *table_options;	/* for the table: {"protect": …, "distribution": …},
								 * NULL: none */
	int			ncolumns;		/* column overrides */
	char	  **column_names;
	JsonbValue *columns;
	int			nindexes;
	char	  **index_names;
	JsonbValue *indexes;
	int			ncommands;		/* sql_commands */
	char	  **command_names;
	JsonbValue *commands;
} SyncOptions;

static void
bad_option(const char *msg, const char *hint)
{
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			 errmsg("%s", msg),
			 hint ? errhint("%s", hint) : 0));
}

/* The members of a JSON object, in its (jsonb) order; nested values binary. */
static int
object_members(JsonbContainer *obj, char ***names, JsonbValue **values)
{
	int			n = JsonContainerSize(obj);
	JsonbIterator *it = JsonbIteratorInit(obj);
	JsonbValue	v;
	JsonbIteratorToken tok;
	int			i = 0;

	*names = palloc(sizeof(char *) * Max(n, 1));
	*values = palloc(sizeof(JsonbValue) * Max(n, 1));
	while ((tok = JsonbIteratorNext(&it, &v, true)) != WJB_DONE)
	{
		if (tok == WJB_KEY)
			(*names)[i] = pnstrdup(v.val.string.val, v.val.string.len);
		else if (tok == WJB_VALUE)
			(*values)[i++] = v;
	}
	return i;
}

static bool
is_object(const JsonbValue *v)
{
	return v->type == jbvBinary && JsonContainerIsObject(v->val.binary.data);
}

static JsonbValue *
member(const JsonbValue *obj, const char *name)
{
	return getKeyJsonValueFromContainer(obj->val.binary.data, name, strlen(name), NULL);
}

/* An object option ("columns", "indexes", "sql_commands"): name → object. */
static int
object_option(const char *option, JsonbValue *v, char ***names, JsonbValue **values)
{
	int			n;

	if (!is_object(v))
		bad_option(psprintf("sync_table option \"%s\" must be a JSON object", option), NULL);
	n = object_members(v->val.binary.data, names, values);
	for (int i = 0; i < n; i++)
		if (!is_object(&(*values)[i]))
			bad_option(psprintf("entry \"%s\" of sync_table option \"%s\" must be a JSON object",
								(*names)[i], option), NULL);
	return n;
}

/* Only the fields `allowed` (NULL-ended) in each entry of an option. */
static void
check_fields(const char *option, const char *entry, const JsonbValue *obj,
			 const char *const *allowed, const char *hint)
{
	char	  **names;
	JsonbValue *values;
	int			n = object_members(obj->val.binary.data, &names, &values);

	for (int i = 0; i < n; i++)
	{
		bool		ok = false;

		for (int a = 0; allowed[a]; a++)
			ok |= strcmp(names[i], allowed[a]) == 0;
		if (!ok)
			bad_option(psprintf("unknown field \"%s\" in entry \"%s\" of sync_table option \"%s\"",
								names[i], entry, option), hint);
	}
}

/* "name": value, added to the table-level options' members */
static void
add_table_option(StringInfo members, const char *name, JsonbValue *value)
{
	Jsonb	   *j = JsonbValueToJsonb(value);

	if (members->len > 0)
		appendStringInfoString(members, ", ");
	escape_json(members, name);
	appendStringInfo(members, ": %s", JsonbToCString(NULL, &j->root, VARSIZE(j)));
}

static void
parse_options(Jsonb *options, SyncOptions *o)
{
	static const char *const column_fields[] = {"type", "nullable", NULL};
	static const char *const command_fields[] = {"setup", "teardown", NULL};
	char	  **names;
	JsonbValue *values;
	int			n;
	StringInfoData table_options;

	memset(o, 0, sizeof(*o));
	o->managed_by = "system";
	initStringInfo(&table_options);
	if (!JB_ROOT_IS_OBJECT(options))
		bad_option("sync_table options must be a JSON object", NULL);
	n = object_members(&options->root, &names, &values);
	for (int i = 0; i < n; i++)
	{
		JsonbValue *v = &values[i];

		if (strcmp(names[i], "managed_by") == 0)
		{
			if (v->type != jbvString)
				bad_option("sync_table option \"managed_by\" must be a string",
						   "managed_by is 'system' or 'user', as for coco.declare_table().");
			o->managed_by = pnstrdup(v->val.string.val, v->val.string.len);
		}
		else if (strcmp(names[i], "protect") == 0)
		{
			if (v->type != jbvBool)
				bad_option("sync_table option \"protect\" must be true or false", NULL);
			add_table_option(&table_options, "protect", v);
		}
		else if (strcmp(names[i], "distribution") == 0)
			add_table_option(&table_options, "distribution", v);	/* checked as
																	 * declare_table
																	 * checks it */
		else if (strcmp(names[i], "columns") == 0)
		{
			o->ncolumns = object_option("columns", v, &o->column_names, &o->columns);
			for (int c = 0; c < o->ncolumns; c++)
			{
				JsonbValue *f;

				check_fields("columns", o->column_names[c], &o->columns[c], column_fields,
							 "A column override is {\"type\": …, \"nullable\": true|false}.");
				f = member(&o->columns[c], "type");
				if (f && f->type != jbvString)
					bad_option(psprintf("\"type\" of the override of column \"%s\" must be a string",
										o->column_names[c]), NULL);
				f = member(&o->columns[c], "nullable");
				if (f && f->type != jbvBool)
					bad_option(psprintf("\"nullable\" of the override of column \"%s\" must be true or false",
										o->column_names[c]), NULL);
			}
		}
		else if (strcmp(names[i], "indexes") == 0)
		{
			o->nindexes = object_option("indexes", v, &o->index_names, &o->indexes);
			for (int x = 0; x < o->nindexes; x++)
			{
				JsonbValue *f = member(&o->indexes[x], "method");

				if (f && f->type != jbvString)
					bad_option(psprintf("\"method\" of index \"%s\" must be a string", o->index_names[x]),
							   NULL);
				f = member(&o->indexes[x], "columns");
				if (f && (f->type != jbvBinary || !JsonContainerIsArray(f->val.binary.data)))
					bad_option(psprintf("\"columns\" of index \"%s\" must be an array of column names",
										o->index_names[x]), NULL);
			}
		}
		else if (strcmp(names[i], "sql_commands") == 0)
		{
			o->ncommands = object_option("sql_commands", v, &o->command_names, &o->commands);
			for (int c = 0; c < o->ncommands; c++)
			{
				JsonbValue *f;

				check_fields("sql_commands", o->command_names[c], &o->commands[c], command_fields,
							 "A sql_command is {\"setup\": …, \"teardown\": …}.");
				f = member(&o->commands[c], "setup");
				if (f == NULL || f->type != jbvString)
					bad_option(psprintf("\"setup\" of sql_command \"%s\" must be a string",
										o->command_names[c]), NULL);
				f = member(&o->commands[c], "teardown");
				if (f && f->type != jbvString && f->type != jbvNull)
					bad_option(psprintf("\"teardown\" of sql_command \"%s\" must be a string or null",
										o->command_names[c]), NULL);
			}
		}
		else
			bad_option(psprintf("unknown sync_table option \"%s\"", names[i]),
					   "The options are managed_by, columns, indexes, sql_commands, protect and distribution.");
	}
	if (table_options.len > 0)
		o->table_options = DatumGetJsonbP(DirectFunctionCall1(jsonb_in,
															  CStringGetDatum(psprintf("{%s}", table_options.data))));
}

/* ---- expansion ---------------------------------------------------------- */

static char *
json_text(const JsonbValue *v)
{
	return pnstrdup(v->val.string.val, v->val.string.len);
}

/*
 * An index's "columns" as a text[]: each a column of the table (`table`,
 * its column names), so that a wrong name shows now, not at the run.
 */
static ArrayType *
index_columns(const char *index, JsonbValue *columns, const CocoTableName *tn, ArrayType *table)
{
	int			n = columns ? JsonContainerSize(columns->val.binary.data) : 0;
	Datum	   *elems = palloc(sizeof(Datum) * Max(n, 1));
	Datum	   *names;
	int			nnames;

	deconstruct_array(table, TEXTOID, -1, false, TYPALIGN_INT, &names, NULL, &nnames);
	for (int i = 0; i < n; i++)
	{
		JsonbValue *e = getIthJsonbValueFromContainer(columns->val.binary.data, i);
		char	   *name;
		bool		found = false;

		if (e->type != jbvString)
			bad_option(psprintf("\"columns\" of index \"%s\" must be an array of column names", index),
					   NULL);
		name = json_text(e);
		for (int c = 0; c < nnames; c++)
			found |= strcmp(TextDatumGetCString(names[c]), name) == 0;
		if (!found)
			ereport(ERROR,
					(errcode(ERRCODE_UNDEFINED_COLUMN),
					 errmsg("index \"%s\" of synced table \"%s\" names column \"%s\", which the query does not return",
							index, tn->qualified, name)));
		elems[i] = CStringGetTextDatum(name);
	}
	return construct_array(elems, n, TEXTOID, -1, false, TYPALIGN_INT);
}

/*
 * The table's columns: inferred from the query (as the app owner, with the
 * registration's search_path), overrides merged in, key columns NOT NULL.
 * Returns them as coco.declare_table takes them; *names gets their names.
 */
static Jsonb *
table_columns(const CocoApp *app, const SyncedTable *st, const CocoTableName *tn,
			  const SyncOptions *o, ArrayType **names)
{
	CocoUserContext uc;
	List	   *columns;
	ListCell   *lc;
	Datum	   *keys;
	int			nkeys;
	Datum	   *colnames;
	int			i = 0;
	StringInfoData out;

	coco_enter_app_owner(app->owner, st->search_path, &uc);
	columns = coco_infer_columns(st->query, tn);
	for (int c = 0; c < o->ncolumns; c++)
	{
		CocoColumn *found = NULL;
		JsonbValue *f;

		foreach(lc, columns)
			if (strcmp(((CocoColumn *) lfirst(lc))->name, o->column_names[c]) == 0)
				found = lfirst(lc);
		if (found == NULL)
			ereport(ERROR,
					(errcode(ERRCODE_UNDEFINED_COLUMN),
					 errmsg("column override \"%s\" names no column of the query of synced table \"%s\"",
							o->column_names[c], tn->qualified),
					 errhint("Override only columns the query returns.")));
		f = member(&o->columns[c], "type");
		if (f)
			found->type = coco_canonical_type(json_text(f), found->name);
		f = member(&o->columns[c], "nullable");
		if (f)
			found->nullable = f->val.boolean;
	}
	coco_leave(&uc);

	deconstruct_array(st->primary_key, TEXTOID, -1, false, TYPALIGN_INT, &keys, NULL, &nkeys);
	for (int k = 0; k < nkeys; k++)
	{
		char	   *key = TextDatumGetCString(keys[k]);
		bool		found = false;

		foreach(lc, columns)
		{
			CocoColumn *col = lfirst(lc);

			if (strcmp(col->name, key) == 0)
			{
				col->nullable = false;
				found = true;
			}
		}
		if (!found)
			ereport(ERROR,
					(errcode(ERRCODE_UNDEFINED_COLUMN),
					 errmsg("primary key column \"%s\" is not a column of the query of synced table \"%s\"",
							key, tn->qualified)));
	}

	colnames = palloc(sizeof(Datum) * list_length(columns));
	initStringInfo(&out);
	appendStringInfoChar(&out, '[');
	foreach(lc, columns)
	{
		CocoColumn *col = lfirst(lc);

		if (i > 0)
			appendStringInfoString(&out, ", ");
		appendStringInfoString(&out, "{\"name\": ");
		escape_json(&out, col->name);
		appendStringInfoString(&out, ", \"type\": ");
		escape_json(&out, col->type);
		appendStringInfo(&out, ", \"nullable\": %s}", col->nullable ? "true" : "false");
		colnames[i++] = CStringGetTextDatum(col->name);
	}
	appendStringInfoChar(&out, ']');
	*names = construct_array(colnames, i, TEXTOID, -1, false, TYPALIGN_INT);
	return DatumGetJsonbP(DirectFunctionCall1(jsonb_in, CStringGetDatum(out.data)));
}

/*
 * Stage one synced table into its component, replacing whatever is staged
 * there: its table, its query, its indexes and sql_commands.  Returns the
 * table's columns.  The caller brackets it with
 * coco_persistent_expansion_begin/_end.
 */
static Jsonb *
expand_synced_table(const CocoApp *app, const SyncedTable *st)
{
	CocoTableName tn;
	SyncOptions o;
	Jsonb	   *columns;
	ArrayType  *names;
	int			nest;

	coco_parse_table_name(st->tbl, &tn);
	parse_options(st->options, &o);
	/* the expansion replaces all the component has staged */
	coco_unstage_component(app->app_id, st->comp_id, false);
	columns = table_columns(app, st, &tn, &o, &names);

	/*
	 * The table's declaration, with the table-level options of
	 * coco.declare_table ("protect", "distribution").  The types are canonical: read with
	 * the search_path pinned, whatever the caller's.
	 */
	nest = NewGUCNestLevel();
	(void) set_config_option("search_path", COCO_SAFE_SEARCH_PATH,
							 PGC_USERSET, PGC_S_SESSION, GUC_ACTION_SAVE, true, 0, false);
	coco_stage_table(app, &tn, columns, st->primary_key, o.managed_by, st->component,
					 o.table_options);
	AtEOXact_GUC(true, nest);
	coco_stage_query(app, st->comp_id, &tn, st->query, names, st->search_path, -1);

	for (int x = 0; x < o.nindexes; x++)
	{
		JsonbValue *method = member(&o.indexes[x], "method");
		Jsonb	   *rest = JsonbValueToJsonb(&o.indexes[x]);

		rest = DatumGetJsonbP(DirectFunctionCall2(jsonb_delete, JsonbPGetDatum(rest),
												  CStringGetTextDatum("columns")));
		rest = DatumGetJsonbP(DirectFunctionCall2(jsonb_delete, JsonbPGetDatum(rest),
												  CStringGetTextDatum("method")));
		coco_stage_index((CocoApp *) app, &tn, o.index_names[x],
						 index_columns(o.index_names[x], member(&o.indexes[x], "columns"), &tn, names),
						 method ? json_text(method) : "btree", rest, st->component);
	}
	for (int c = 0; c < o.ncommands; c++)
	{
		JsonbValue *teardown = member(&o.commands[c], "teardown");

		coco_stage_sql_command((CocoApp *) app, &tn, o.command_names[c],
							   json_text(member(&o.commands[c], "setup")),
							   teardown && teardown->type == jbvString ? json_text(teardown) : NULL,
							   st->component);
	}
	return columns;
}

typedef struct ExpansionContext
{
	const CocoApp *app;
	const SyncedTable *table;
} ExpansionContext;

static void
synced_table_context(void *arg)
{
	const ExpansionContext *c = arg;

	errcontext("synced table \"%s\" of app \"%s\"", c->table->tbl, c->app->name);
}

/*
 * The persistent-declarations hook (hooks.c): every synced table of the
 * app, staged into its component for the pass that follows.
 */
int
coco_expand_synced_tables(const CocoApp *app)
{
	Oid			types[1] = {INT4OID};
	Datum		values[1] = {Int32GetDatum(app->app_id)};
	CocoUserContext uc;
	SyncedTable *tables;
	int			n;

	coco_enter_extension_owner(&uc);
	coco_spi_exec("SELECT s.tbl, s.comp_id, c.path, s.query, s.primary_key, s.options, s.search_path "
				  "FROM coco.synced_table s JOIN coco.component c "
				  "ON c.comp_id OPERATOR(pg_catalog.=) s.comp_id "
				  "WHERE s.app_id OPERATOR(pg_catalog.=) $1 ORDER BY s.tbl",
				  1, types, values, NULL, SPI_OK_SELECT);
	coco_leave(&uc);
	n = (int) SPI_processed;
	tables = palloc0(sizeof(SyncedTable) * Max(n, 1));
	for (int i = 0; i < n; i++)
	{
		HeapTuple	tup = SPI_tuptable->vals[i];
		TupleDesc	desc = SPI_tuptable->tupdesc;
		bool		isnull;

		tables[i].tbl = TextDatumGetCString(SPI_getbinval(tup, desc, 1, &isnull));
		tables[i].comp_id = DatumGetInt32(SPI_getbinval(tup, desc, 2, &isnull));
		tables[i].component = DatumGetArrayTypePCopy(SPI_getbinval(tup, desc, 3, &isnull));
		tables[i].query = TextDatumGetCString(SPI_getbinval(tup, desc, 4, &isnull));
		tables[i].primary_key = DatumGetArrayTypePCopy(SPI_getbinval(tup, desc, 5, &isnull));
		tables[i].options = DatumGetJsonbPCopy(SPI_getbinval(tup, desc, 6, &isnull));
		tables[i].search_path = TextDatumGetCString(SPI_getbinval(tup, desc, 7, &isnull));
	}
	for (int i = 0; i < n; i++)
	{
		ErrorContextCallback context;
		ExpansionContext arg = {app, &tables[i]};

		context.callback = synced_table_context;
		context.arg = &arg;
		context.previous = error_context_stack;
		error_context_stack = &context;
		(void) expand_synced_table(app, &tables[i]);
		error_context_stack = context.previous;
	}
	return n;
}

/* ---- registration -------------------------------------------------------- */

static void
refuse_during_run(const char *what)
{
	if (coco_run_in_progress())
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("%s cannot be called while a run is in progress in this session", what),
				 errdetail("It was called by a declaration function, or by other user code a run calls."),
				 errhint("A synced table is a registration that persists: call coco.sync_table() once, "
						 "outside the declaration function, and every run of the app re-evaluates it.")));
}

/*
 * The component must hold nothing of the app but this table's own
 * declarations and targets: anything else would be replaced by the table's
 * every run.
 */
static void
check_component_free(const CocoApp *app, const SyncedTable *st)
{
	Oid			types[3] = {INT4OID, INT4OID, TEXTOID};
	Datum		values[3] = {Int32GetDatum(app->app_id), Int32GetDatum(st->comp_id),
	CStringGetTextDatum(st->tbl)};
	CocoUserContext uc;
	char	   *other = NULL;
	char	   *path = NULL;

	coco_enter_extension_owner(&uc);
	/* $3 || '@': the table's attachments are named "<table>@index/<name>" */
	coco_spi_exec("SELECT what FROM ("
				  " SELECT 'synced table ' OPERATOR(pg_catalog.||) tbl AS what FROM coco.synced_table"
				  "  WHERE app_id OPERATOR(pg_catalog.=) $1 AND comp_id OPERATOR(pg_catalog.=) $2"
				  "  AND tbl OPERATOR(pg_catalog.<>) $3"
				  " UNION ALL SELECT 'declaration ' OPERATOR(pg_catalog.||) name FROM coco.staged_state"
				  "  WHERE app_id OPERATOR(pg_catalog.=) $1 AND comp_id OPERATOR(pg_catalog.=) $2"
				  "  AND name OPERATOR(pg_catalog.<>) $3"
				  "  AND pg_catalog.left(name, pg_catalog.length($3) OPERATOR(pg_catalog.+) 1) OPERATOR(pg_catalog.<>) ($3 OPERATOR(pg_catalog.||) '@')"
				  " UNION ALL SELECT 'rows of ' OPERATOR(pg_catalog.||) tbl FROM coco.staged_row"
				  "  WHERE app_id OPERATOR(pg_catalog.=) $1 AND comp_id OPERATOR(pg_catalog.=) $2"
				  "  AND tbl OPERATOR(pg_catalog.<>) $3"
				  " UNION ALL SELECT 'rows of ' OPERATOR(pg_catalog.||) tbl FROM coco.staged_query"
				  "  WHERE app_id OPERATOR(pg_catalog.=) $1 AND comp_id OPERATOR(pg_catalog.=) $2"
				  "  AND tbl OPERATOR(pg_catalog.<>) $3"
				  " UNION ALL SELECT 'target ' OPERATOR(pg_catalog.||) name FROM coco.target_state"
				  "  WHERE app_id OPERATOR(pg_catalog.=) $1 AND comp_id OPERATOR(pg_catalog.=) $2"
				  "  AND name OPERATOR(pg_catalog.<>) $3"
				  "  AND pg_catalog.left(name, pg_catalog.length($3) OPERATOR(pg_catalog.+) 1) OPERATOR(pg_catalog.<>) ($3 OPERATOR(pg_catalog.||) '@')"
				  " UNION ALL SELECT 'rows of ' OPERATOR(pg_catalog.||) t.name FROM coco.row_set r"
				  "  JOIN coco.target_state t ON t.ts_id OPERATOR(pg_catalog.=) r.target_id"
				  "  WHERE r.app_id OPERATOR(pg_catalog.=) $1 AND r.comp_id OPERATOR(pg_catalog.=) $2"
				  "  AND t.name OPERATOR(pg_catalog.<>) $3"
				  ") x LIMIT 1",
				  3, types, values, NULL, SPI_OK_SELECT);
	if (SPI_processed > 0)
	{
		other = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1);
		path = OidOutputFunctionCall(F_ARRAY_OUT, PointerGetDatum(st->component));
	}
	coco_leave(&uc);
	if (other != NULL)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("component %s of app \"%s\" cannot hold synced table \"%s\"",
						path, app->name, st->tbl),
				 errdetail("The component holds %s.", other),
				 errhint("A synced table needs a component of its own: leave component out, "
						 "or name an unused one.")));
}

/*
 * The query's privileges, checked now as the run will need them: started
 * as the app owner (the executor checks them at start) without reading a
 * row.
 */
static void
check_query_privileges(const CocoApp *app, const SyncedTable *st)
{
	CocoUserContext uc;

	coco_enter_app_owner(app->owner, st->search_path, &uc);
	coco_spi_exec(psprintf("SELECT 1 FROM (\n%s\n) q LIMIT 0",
						   st->query),	/* lint-spi: a synced table's query, checked to be one read-only SELECT by the expansion before, run as the app owner */
				  0, NULL, NULL, NULL, SPI_OK_SELECT);
	coco_leave(&uc);
}

typedef struct TrialExpansion
{
	const CocoApp *app;
	const SyncedTable *st;
	MemoryContext cxt;			/* where the columns are copied to */
	Jsonb	   *columns;
} TrialExpansion;

/* The expansion of validate_by_expanding; never kept. */
static bool
expand_and_check(void *arg)
{
	TrialExpansion *te = arg;
	Jsonb	   *columns = expand_synced_table(te->app, te->st);

	check_query_privileges(te->app, te->st);
	te->columns = MemoryContextAlloc(te->cxt, VARSIZE(columns));
	memcpy(te->columns, columns, VARSIZE(columns));
	return false;
}

/* Expand once, in a subtransaction rolled back: every error now, not at the run. */
static Jsonb *
validate_by_expanding(const CocoApp *app, const SyncedTable *st)
{
	TrialExpansion te = {app, st, CurrentMemoryContext, NULL};
	ErrorData  *err;

	coco_persistent_expansion_begin();
	err = coco_subxact_try(expand_and_check, &te);
	coco_persistent_expansion_end();
	if (err != NULL)
		ReThrowError(err);
	return te.columns;
}

/* The registration, inserted or replacing the table's earlier one. */
static void
register_synced_table(const CocoApp *app, const SyncedTable *st)
{
	Oid			types[7] = {INT4OID, TEXTOID, INT4OID, TEXTOID, TEXTARRAYOID, JSONBOID, TEXTOID};
	Datum		values[7];
	CocoUserContext uc;
	bool		isnull;
	int64		old_comp;

	values[0] = Int32GetDatum(app->app_id);
	values[1] = CStringGetTextDatum(st->tbl);
	values[2] = Int32GetDatum(st->comp_id);
	values[3] = CStringGetTextDatum(st->query);
	values[4] = PointerGetDatum(st->primary_key);
	values[5] = JsonbPGetDatum(st->options);
	values[6] = CStringGetTextDatum(st->search_path);
	coco_enter_extension_owner(&uc);
	old_comp = coco_spi_int8("SELECT comp_id FROM coco.synced_table WHERE app_id OPERATOR(pg_catalog.=) $1 "
							 "AND tbl OPERATOR(pg_catalog.=) $2 FOR UPDATE", 2, types, values, &isnull);
	coco_spi_exec("INSERT INTO coco.synced_table (app_id, tbl, comp_id, query, primary_key, options, search_path) "
				  "VALUES ($1, $2, $3, $4, $5, $6, $7) "
				  "ON CONFLICT (app_id, tbl) DO UPDATE SET comp_id = EXCLUDED.comp_id, "
				  "query = EXCLUDED.query, primary_key = EXCLUDED.primary_key, "
				  "options = EXCLUDED.options, search_path = EXCLUDED.search_path, "
				  "declared_at = pg_catalog.now()",
				  7, types, values, NULL, SPI_OK_INSERT);
	coco_leave(&uc);
	/* moved to another component: the old one is declared empty */
	if (!isnull && (int) old_comp != st->comp_id)
		coco_unstage_component(app->app_id, (int) old_comp, true);
}

/*
 * coco.sync_table(app, table_name, query, primary_key, options, component)
 * → the table's columns, as coco.declare_table takes them.
 */
PG_FUNCTION_INFO_V1(coco_sync_table);
Datum
coco_sync_table(PG_FUNCTION_ARGS)
{
	CocoApp    *app;
	CocoTableName tn;
	SyncedTable st;
	SyncOptions o;
	Jsonb	   *columns;
	Jsonb	   *result;

	refuse_during_run("coco.sync_table()");
	SPI_connect();
	app = coco_app_lookup(text_to_cstring(coco_text_arg(fcinfo, 0, "app")));
	coco_parse_table_name(text_to_cstring(coco_text_arg(fcinfo, 1, "table_name")), &tn);
	memset(&st, 0, sizeof(st));
	st.tbl = tn.qualified;
	st.query = coco_clean_query(text_to_cstring(coco_text_arg(fcinfo, 2, "query")), "sync_table");
	coco_require_arg(fcinfo, 3, "primary_key");
	st.primary_key = PG_GETARG_ARRAYTYPE_P(3);
	if (ARR_NDIM(st.primary_key) != 1 || array_contains_nulls(st.primary_key))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_TABLE_DEFINITION),
				 errmsg("primary_key must be a non-empty array of column names without nulls")));
	coco_require_arg(fcinfo, 4, "options");
	st.options = PG_GETARG_JSONB_P(4);
	parse_options(st.options, &o);
	if (PG_ARGISNULL(5))
	{
		Datum		name = CStringGetTextDatum(tn.qualified);

		st.component = construct_array(&name, 1, TEXTOID, -1, false, TYPALIGN_INT);
	}
	else
		st.component = PG_GETARG_ARRAYTYPE_P(5);
	st.search_path = coco_current_search_path();

	coco_declaring(app);
	/* as clear_component: a registration may clear a component a run is
	 * consuming, so it waits for that run instead of deadlocking with it */
	coco_lock_app(app, false);
	coco_persistent_expansion_begin();
	PG_TRY();
	{
		st.comp_id = coco_component_id(app->app_id, st.component);
	}
	PG_FINALLY();
	{
		coco_persistent_expansion_end();
	}
	PG_END_TRY();
	check_component_free(app, &st);
	columns = validate_by_expanding(app, &st);
	register_synced_table(app, &st);
	/* with source-driven refresh on, the triggers follow the new query now */
	coco_persistent_changed(app);

	result = SPI_palloc(VARSIZE(columns));
	memcpy(result, columns, VARSIZE(columns));
	SPI_finish();
	PG_RETURN_JSONB_P(result);
}

/* coco.unsync_table(app, table_name): the next run drops the table. */
PG_FUNCTION_INFO_V1(coco_unsync_table);
Datum
coco_unsync_table(PG_FUNCTION_ARGS)
{
	CocoApp    *app;
	CocoTableName tn;
	Oid			types[2] = {INT4OID, TEXTOID};
	Datum		values[2];
	CocoUserContext uc;
	bool		isnull;
	int64		comp_id;

	refuse_during_run("coco.unsync_table()");
	SPI_connect();
	app = coco_app_lookup(text_to_cstring(coco_text_arg(fcinfo, 0, "app")));
	coco_parse_table_name(text_to_cstring(coco_text_arg(fcinfo, 1, "table_name")), &tn);
	coco_declaring(app);
	coco_lock_app(app, false);
	values[0] = Int32GetDatum(app->app_id);
	values[1] = CStringGetTextDatum(tn.qualified);
	coco_enter_extension_owner(&uc);
	comp_id = coco_spi_int8("DELETE FROM coco.synced_table WHERE app_id OPERATOR(pg_catalog.=) $1 "
							"AND tbl OPERATOR(pg_catalog.=) $2 RETURNING comp_id",
							2, types, values, &isnull);
	coco_leave(&uc);
	if (isnull)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("table \"%s\" is not a synced table of app \"%s\"", tn.qualified, app->name),
				 errhint("coco.synced_tables lists the app's synced tables.")));
	coco_unstage_component(app->app_id, (int) comp_id, true);
	coco_persistent_changed(app);
	SPI_finish();
	PG_RETURN_VOID();
}
