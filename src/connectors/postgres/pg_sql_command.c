/*
 * pg_sql_command.c — the @sql_command attachment of a postgres.table: SQL
 * that sets something up for the table (a trigger, a view, grants) and
 * optionally undoes it; coco.declare_sql_command().  The record keeps the
 * whole spec, so the previous teardown runs before a changed setup.
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


#include "pg_attach.h"

/*
 * SQL a run will execute (an sql_command's setup or teardown) must be
 * something a run can execute: no transaction control (the run is one
 * transaction), no COPY with the client.  Parsed when declared, so the
 * mistake shows there and not in every later run.
 */
static void
check_run_sql(const char *sql, const char *what, const char *name)
{
	ErrorData  *error;
	List	   *stmts = attach_raw_parse(sql, &error);
	ListCell   *lc;

	/* a syntax error names the SQL command, not a position in the caller's query */
	if (error && error->sqlerrcode == ERRCODE_SYNTAX_ERROR)
		ereport(ERROR,
				(errcode(ERRCODE_SYNTAX_ERROR),
				 errmsg("the %s of sql_command \"%s\" is not valid SQL", what, name),
				 errdetail("%s", error->message)));
	if (error)
		ReThrowError(error);

	foreach(lc, stmts)
	{
		Node	   *stmt = lfirst_node(RawStmt, lc)->stmt;

		if (IsA(stmt, TransactionStmt) ||
			(IsA(stmt, CopyStmt) && ((CopyStmt *) stmt)->filename == NULL &&
			 !((CopyStmt *) stmt)->is_program))
			ereport(ERROR,
					(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
					 errmsg("the %s of sql_command \"%s\" contains a statement a run cannot execute",
							what, name),
					 errdetail("A run is one transaction: it cannot contain transaction control, "
							   "or COPY to or from the client."),
					 errhint("Leave out COMMIT, ROLLBACK, BEGIN, SAVEPOINT and COPY … STDIN/STDOUT.")));
	}
}

/* ---- @sql_command ------------------------------------------------------- */

static void
sql_command_retire(CocoPlannedAction *actions, int n)
{
	for (int i = 0; i < n; i++)
	{
		const CocoTargetState *st = actions[i].state;

		/* the previous teardown, as recorded, undoes the previous setup */
		for (int p = 0; p < st->nprev; p++)
		{
			char	   *teardown = attach_spec_text(st->prev[p], "teardown");

			if (teardown)
				attach_exec_sql(teardown, "teardown", st->name);
		}
	}
}

static void
sql_command_apply(CocoPlannedAction *actions, int n)
{
	for (int i = 0; i < n; i++)
		attach_exec_sql(attach_spec_text(actions[i].state->desired, "setup"), "setup", actions[i].state->name);
}

static const char *
sql_command_plan_action(const CocoPlannedAction *a, StringInfo hazards)
{
	appendStringInfoString(hazards, ", \"runs_sql\"");
	return NULL;
}

static const CocoProvider sql_command_provider = {
	.name = SQL_COMMAND_PROVIDER,
	.parent = COCO_TABLE_PROVIDER,
	.reconcile = attach_reconcile,
	.apply = sql_command_apply,
	.retire = sql_command_retire,
	.container_name = attach_container_name,
	.plan_action = sql_command_plan_action,
};

void
coco_pg_sql_command_register(void)
{
	coco_register_root_provider(&sql_command_provider);
}

/* ---- the declaration API -------------------------------------------------- */

/*
 * coco.declare_sql_command(app, table_name, name, setup_sql, teardown_sql,
 * component): SQL that sets something up for the table (a trigger, a
 * view, grants) and optionally undoes it.  Both run as the app owner with
 * the search_path pinned to pg_catalog, pg_temp: schema-qualify names.
 * coco_stage_sql_command stages one (coco.declare_sql_command, and the
 * sql_commands of a synced table); teardown may be NULL.
 */
void
coco_stage_sql_command(CocoApp *app, const CocoTableName *tn, const char *name, const char *setup,
					   const char *teardown, ArrayType *component)
{
	StringInfoData spec;

	coco_validate_identifier(name, "sql_command name");
	check_run_sql(setup, "setup", name);
	if (teardown)
		check_run_sql(teardown, "teardown", name);
	initStringInfo(&spec);
	appendStringInfoString(&spec, "{\"schema\": ");
	escape_json(&spec, tn->schema);
	appendStringInfoString(&spec, ", \"table\": ");
	escape_json(&spec, tn->name);
	appendStringInfoString(&spec, ", \"name\": ");
	escape_json(&spec, name);
	appendStringInfoString(&spec, ", \"setup\": ");
	escape_json(&spec, setup);
	appendStringInfoString(&spec, ", \"teardown\": ");
	if (teardown == NULL)
		appendStringInfoString(&spec, "null");
	else
		escape_json(&spec, teardown);
	appendStringInfoChar(&spec, '}');
	attach_stage(app, tn, SQL_COMMAND_PROVIDER, NULL, "@sql_command", name,
				 DatumGetJsonbP(DirectFunctionCall1(jsonb_in, CStringGetDatum(spec.data))),
				 component);
}

PG_FUNCTION_INFO_V1(coco_declare_sql_command);
Datum
coco_declare_sql_command(PG_FUNCTION_ARGS)
{
	CocoApp    *app;
	CocoTableName tn;

	SPI_connect();
	app = coco_app_lookup(text_to_cstring(coco_text_arg(fcinfo, 0, "app")));
	coco_declaring(app);
	coco_parse_table_name(text_to_cstring(coco_text_arg(fcinfo, 1, "table_name")), &tn);
	coco_stage_sql_command(app, &tn, text_to_cstring(coco_text_arg(fcinfo, 2, "name")),
						   text_to_cstring(coco_text_arg(fcinfo, 3, "setup_sql")),
						   PG_ARGISNULL(4) ? NULL : text_to_cstring(PG_GETARG_TEXT_PP(4)),
						   coco_component_arg(fcinfo, 5));
	SPI_finish();
	PG_RETURN_VOID();
}
