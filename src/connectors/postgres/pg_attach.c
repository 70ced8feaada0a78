/*
 * pg_attach.c — what the attachments of a postgres.table share (@index in
 * pg_index.c, @sql_command in pg_sql_command.c).
 *
 * An attachment is a target state under its table's key plus a symbol
 * ("@index", "@sql_command") and a name, so it never clashes with rows.
 * Its tracking record is its whole spec: a change replaces it (the previous
 * index is dropped, the previous teardown SQL runs) and removal undoes it
 * with what the record says.  The engine hands attachments to their sink in
 * two steps: `retire` (drop, teardown) before the table changes, `apply`
 * (create, setup) after the table and its rows are in place — so an index
 * on a freshly loaded table is built once, not maintained row by row.  When
 * the table is rebuilt, its attachments are made again; when it is dropped,
 * they go with it.
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

/* ---- specs ------------------------------------------------------------ */

char *
attach_spec_text(Jsonb *spec, const char *field)
{
	JsonbValue *v = getKeyJsonValueFromContainer(&spec->root, field, strlen(field), NULL);

	return (v && v->type == jbvString) ? pnstrdup(v->val.string.val, v->val.string.len) : NULL;
}

/* The table an attachment's spec names, as its state is named: schema.table. */
char *
attach_container_name(Jsonb *spec)
{
	char	   *schema = attach_spec_text(spec, "schema");
	char	   *table = attach_spec_text(spec, "table");

	if (schema == NULL || table == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_CORRUPTED),
				 errmsg("an attachment's record names no table")));
	return psprintf("%s.%s", schema, table);
}

bool
attach_spec_bool(Jsonb *spec, const char *field)
{
	JsonbValue *v = getKeyJsonValueFromContainer(&spec->root, field, strlen(field), NULL);

	return v && v->type == jbvBool && v->val.boolean;
}

/* "a", "b" from a JSON array of identifiers */
char *
attach_spec_identifiers(Jsonb *spec, const char *field)
{
	JsonbValue *v = getKeyJsonValueFromContainer(&spec->root, field, strlen(field), NULL);
	StringInfoData out;
	int			n;

	initStringInfo(&out);
	if (v == NULL || v->type != jbvBinary)
		return out.data;
	n = JsonContainerSize(v->val.binary.data);
	for (int i = 0; i < n; i++)
	{
		JsonbValue *e = getIthJsonbValueFromContainer(v->val.binary.data, i);

		appendStringInfo(&out, "%s%s", i > 0 ? ", " : "",
						 quote_identifier(pnstrdup(e->val.string.val, e->val.string.len)));
	}
	return out.data;
}

/* The key of an attachment: the table's key, the symbol, the name. */
void
attach_key(const CocoTableName *tn, const char *symbol, const char *name, StringInfo buf)
{
	coco_key_begin_tuple(buf);
	coco_key_put_str(buf, "local", 5);
	coco_key_put_str(buf, tn->schema, strlen(tn->schema));
	coco_key_put_str(buf, tn->name, strlen(tn->name));
	coco_key_put_symbol(buf, symbol, strlen(symbol));
	coco_key_put_str(buf, name, strlen(name));
	coco_key_end_tuple(buf);
}

/* ---- the shared handler: the record is the spec ------------------------- */

void
attach_reconcile(const CocoTargetState *st, CocoDecision *d)
{
	memset(d, 0, sizeof(*d));
	d->record = st->desired;
	if (st->desired == NULL)
	{
		d->action = st->nprev > 0 ? COCO_DELETE : COCO_NO_ACTION;
		return;
	}
	if (st->nprev == 0)
	{
		d->action = COCO_INSERT;
		return;
	}
	for (int i = 0; i < st->nprev; i++)
	{
		if (compareJsonbContainers(&st->desired->root, &st->prev[i]->root) != 0)
		{
			d->action = COCO_REPLACE;
			return;
		}
	}
	d->action = st->prev_may_be_missing ? COCO_REPLACE : COCO_NO_ACTION;
}

void
attach_exec_sql(const char *sql, const char *what, const char *name)
{
	MemoryContext cxt = CurrentMemoryContext;
	volatile int rc = 0;

	PG_TRY();
	{
		rc = SPI_execute(sql, false, 0);
	}
	PG_CATCH();
	{
		/* naming the attachment instead of the statement */
		coco_rethrow_without_statement(cxt, sql, psprintf("%s \"%s\"", what, name));
	}
	PG_END_TRY();

	/* what SPI cannot run at all was refused when declared; still, say what */
	if (rc < 0)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("the %s of \"%s\" cannot run inside a run: %s", what, name,
						SPI_result_code_string(rc)),
				 errhint("Transaction control and COPY to or from the client cannot be part of it.")));
}

/*
 * Parse SQL an attachment's spec gives (an index expression or predicate,
 * a SQL command), raw.  When it does not parse: NIL, and the error in
 * *error (its state cleared), so that the caller can name the input.
 */
List *
attach_raw_parse(const char *sql, ErrorData **error)
{
	MemoryContext cxt = CurrentMemoryContext;
	List	   *stmts = NIL;

	*error = NULL;
	PG_TRY();
	{
		stmts = raw_parser(sql, RAW_PARSE_DEFAULT);
	}
	PG_CATCH();
	{
		MemoryContextSwitchTo(cxt);
		*error = CopyErrorData();
		FlushErrorState();
		stmts = NIL;
	}
	PG_END_TRY();
	return stmts;
}

int
attach_spec_array_size(Jsonb *spec, const char *field)
{
	JsonbValue *v = getKeyJsonValueFromContainer(&spec->root, field, strlen(field), NULL);

	return (v && v->type == jbvBinary) ? (int) JsonContainerSize(v->val.binary.data) : 0;
}

/* ---- staging ------------------------------------------------------------ */

/*
 * Stage an attachment, replacing what the component staged under its key.
 * `sibling` is another provider serving the same keys (an index built
 * plainly or concurrently): an index declared again the other way replaces
 * the earlier declaration too.
 */
void
attach_stage(CocoApp *app, const CocoTableName *tn, const char *provider, const char *sibling,
				 const char *symbol, const char *name, Jsonb *spec, ArrayType *component)
{
	StringInfoData key;
	char	   *display = psprintf("%s%s/%s", tn->qualified, symbol, name);

	/* the table must be declared in the app */
	(void) coco_declared_table_spec(app, tn);
	initStringInfo(&key);
	attach_key(tn, symbol, name, &key);
	if (!coco_stage_state(app, component, provider, sibling, &key, display, spec))
		coco_stage_conflict(app, component, provider, sibling, &key,
							psprintf("\"%s\" is declared twice", display));
}
