/*
 * pg_table.c — the postgres.table connector: tables in this database.
 *
 * The handler is pure: it compares the declared spec with the tracking
 * records (a table's record is its last applied spec) and decides.  The
 * primary key is the record's main part; every other column is a sub-record.
 * A changed primary key rebuilds the table (destructive); a dropped or
 * retyped column is lossy; added columns and nullability changes are not;
 * a changed Citus distribution moves the rows (pg_citus.c).
 * The sink applies the decisions as the app owner; NOT NULL on added or
 * re-typed columns is set after the rows were written (finish).
 *
 * Registered through the public API like any other connector.
 */
#include "postgres.h"

#include "catalog/namespace.h"
#include "catalog/pg_type.h"
#include "fmgr.h"
#include "utils/builtins.h"
#include "utils/json.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"

#include "pg_attach.h"
#include "pg_connector.h"

/* ---- the handler ------------------------------------------------------- */

static void
table_record(const CocoTableSpec *spec, CocoCompositeRecord *rec)
{
	StringInfoData main;
	int			n = 0;

	initStringInfo(&main);
	for (int i = 0; i < spec->nkeys; i++)
	{
		CocoColumn *c = &spec->columns[spec->key_index[i]];

		appendStringInfo(&main, "%s %s,", c->name, c->type);
	}
	coco_fingerprint_bytes(main.data, main.len, &rec->main);

	rec->sub_names = palloc(sizeof(char *) * Max(spec->ncolumns, 1));
	rec->subs = palloc(sizeof(CocoFingerprint) * Max(spec->ncolumns, 1));
	for (int i = 0; i < spec->ncolumns; i++)
	{
		CocoColumn *c = &spec->columns[i];
		char	   *sub;

		if (c->is_key)
			continue;
		sub = psprintf("%s|%s", c->type, c->nullable ? "null" : "not null");
		rec->sub_names[n] = c->name;
		coco_fingerprint_bytes(sub, strlen(sub), &rec->subs[n]);
		n++;
	}
	rec->nsubs = n;
}

/*
 * A type's family of stable-key encodings: the integer types encode alike,
 * and so do text and varchar, so a key retyped within a family keeps the
 * keys already tracked.
 */
static const char *
key_family(const char *type)
{
	if (strcmp(type, "smallint") == 0 || strcmp(type, "integer") == 0 || strcmp(type, "bigint") == 0)
		return "integer";
	if (strcmp(type, "text") == 0 || strncmp(type, "character varying", 17) == 0)
		return "text";
	return type;
}

/* Whether keys tracked under spec b can be read as keys of spec a. */
static bool
same_key_encoding(const CocoTableSpec *a, const CocoTableSpec *b)
{
	if (a->nkeys != b->nkeys)
		return false;
	for (int i = 0; i < a->nkeys; i++)
	{
		const CocoColumn *ca = &a->columns[a->key_index[i]];
		const CocoColumn *cb = &b->columns[b->key_index[i]];

		if (strcmp(ca->name, cb->name) != 0 ||
			strcmp(key_family(ca->type), key_family(cb->type)) != 0)
			return false;
	}
	return true;
}

static CocoColumn *
find_column(CocoTableSpec *spec, const char *name)
{
	int			i = coco_table_spec_column(spec, name);

	return i < 0 ? NULL : &spec->columns[i];
}

static void
add_column_action(StringInfo out, bool *first, const char *name, const char *action,
				  const CocoColumn *col)
{
	appendStringInfoString(out, *first ? "" : ", ");
	*first = false;
	appendStringInfoString(out, "{\"name\": ");
	escape_json(out, name);
	appendStringInfoString(out, ", \"action\": ");
	escape_json(out, action);
	if (col)
	{
		appendStringInfoString(out, ", \"type\": ");
		escape_json(out, col->type);
		appendStringInfo(out, ", \"nullable\": %s", col->nullable ? "true" : "false");
	}
	appendStringInfoChar(out, '}');
}

static Jsonb *
json_text(const char *s)
{
	return DatumGetJsonbP(DirectFunctionCall1(jsonb_in, CStringGetDatum(s)));
}

/* A stored spec's "distribution", as JSON text ("null": none). */
static char *
distribution_text(Jsonb *spec)
{
	JsonbValue *v = getKeyJsonValueFromContainer(&spec->root, "distribution", 12, NULL);

	if (v == NULL || v->type != jbvBinary)
		return "null";
	return JsonbToCString(NULL, v->val.binary.data, v->val.binary.len);
}

static void
table_reconcile(const CocoTargetState *st, CocoDecision *d)
{
	CocoTableSpec *desired = st->desired ? coco_table_spec_parse(st->desired) : NULL;
	CocoTableSpec **prev = palloc(sizeof(CocoTableSpec *) * Max(st->nprev, 1));
	bool		any_system = false;
	CocoCompositeRecord drec;
	CocoCompositeRecord *prec;
	CocoCompositeDiff diff;
	StringInfoData cols;
	bool		first = true;
	bool		lossy = false;
	bool		redistribute = false;

	memset(d, 0, sizeof(*d));
	for (int i = 0; i < st->nprev; i++)
	{
		prev[i] = coco_table_spec_parse(st->prev[i]);
		if (strcmp(prev[i]->managed_by, "system") == 0)
			any_system = true;
	}

	if (desired == NULL)
	{
		d->record = NULL;
		d->action = any_system ? COCO_DELETE : COCO_NO_ACTION;
		if (any_system)
			d->detail = json_text("{\"op\": \"drop\"}");
		return;
	}
	d->record = st->desired;

	table_record(desired, &drec);
	prec = palloc(sizeof(CocoCompositeRecord) * Max(st->nprev, 1));
	for (int i = 0; i < st->nprev; i++)
		table_record(prev[i], &prec[i]);

	/*
	 * A user's table is never created, altered or dropped; switching the
	 * management either way changes nothing on this run.  But when its
	 * primary key changed (the user altered the table), the rows tracked
	 * under the old key cannot be found by the new one: they are forgotten
	 * (destructive, with no DDL), stay in the user's table, and the rows
	 * declared now are written under the new key.
	 */
	if (strcmp(desired->managed_by, "user") == 0 || (st->nprev > 0 && !any_system))
	{
		for (int i = 0; i < st->nprev; i++)
			if (!same_key_encoding(desired, prev[i]))
			{
				d->action = COCO_UPSERT;
				d->invalidation = COCO_INVALIDATE_DESTRUCTIVE;
				d->detail = json_text("{\"op\": \"rekey\"}");
				break;
			}
		return;
	}
	coco_composite_diff(&drec, prec, st->nprev, st->prev_may_be_missing, &diff);

	if (diff.main == COCO_INSERT)
	{
		d->action = COCO_INSERT;
		d->detail = json_text("{\"op\": \"create\"}");
		return;
	}
	if (diff.main == COCO_REPLACE)
	{
		d->action = COCO_REPLACE;
		d->invalidation = COCO_INVALIDATE_DESTRUCTIVE;
		d->detail = json_text("{\"op\": \"replace\"}");
		return;
	}

	initStringInfo(&cols);
	for (int i = 0; i < diff.nsubs; i++)
	{
		const char *name = diff.sub_names[i];
		CocoColumn *want = find_column(desired, name);

		switch (diff.subs[i])
		{
			case COCO_NO_ACTION:
				break;
			case COCO_INSERT:
				add_column_action(&cols, &first, name, "add", want);
				break;
			case COCO_UPSERT:
				/* may or may not be there: make the catalog match */
				add_column_action(&cols, &first, name, "ensure", want);
				lossy = true;
				break;
			case COCO_DELETE:
				add_column_action(&cols, &first, name, "drop", NULL);
				lossy = true;
				break;
			case COCO_REPLACE:
				{
					bool		retype = false;
					bool		was_not_null = false;

					for (int p = 0; p < st->nprev; p++)
					{
						CocoColumn *had = find_column(prev[p], name);

						if (had == NULL || strcmp(had->type, want->type) != 0)
							retype = true;
						else if (!had->nullable)
							was_not_null = true;
					}
					if (retype)
					{
						add_column_action(&cols, &first, name, "retype", want);
						lossy = true;
					}
					else if (want->nullable && was_not_null)
						add_column_action(&cols, &first, name, "drop_not_null", want);
					else if (!want->nullable)
						add_column_action(&cols, &first, name, "set_not_null", want);
					break;
				}
		}
	}

	/* a changed distribution moves the rows: no row is lost */
	for (int i = 0; i < st->nprev; i++)
		if (!coco_table_spec_same_distribution(&desired->dist, &prev[i]->dist))
			redistribute = true;

	if (diff.main == COCO_NO_ACTION && first && !redistribute)
		return;					/* nothing changed */

	d->action = COCO_UPSERT;
	d->invalidation = (lossy || diff.main == COCO_UPSERT) ? COCO_INVALIDATE_LOSSY : COCO_INVALIDATE_NONE;
	d->detail = json_text(psprintf("{\"op\": \"%s\", \"columns\": [%s]%s}",
								   diff.main == COCO_UPSERT ? "ensure" : "alter", cols.data,
								   redistribute ?
								   psprintf(", \"redistribute\": true, \"distribution\": {\"from\": %s, \"to\": %s}",
											distribution_text(st->prev[st->nprev - 1]),
											distribution_text(st->desired)) : ""));
}

/* ---- the sink ---------------------------------------------------------- */

static void
exec_ddl(const char *sql)
{
	int			rc = SPI_execute(sql, false, 0);

	if (rc < 0)
		elog(ERROR, "coco_target: DDL failed (%s): %s", SPI_result_code_string(rc), sql);
}

static char *
column_definition(const CocoColumn *c, bool with_not_null)
{
	return psprintf("%s %s%s", quote_identifier(c->name), c->type,
					(with_not_null && !c->nullable) ? " NOT NULL" : "");
}

static void
create_table(const CocoTableSpec *spec, bool if_not_exists)
{
	StringInfoData sql;
	char	   *qname = coco_quote_qualified(spec->tn.schema, spec->tn.name);

	if (!OidIsValid(get_namespace_oid(spec->tn.schema, true)))
		exec_ddl(psprintf("CREATE SCHEMA IF NOT EXISTS %s", quote_identifier(spec->tn.schema)));

	initStringInfo(&sql);
	appendStringInfo(&sql, "CREATE TABLE %s%s (", if_not_exists ? "IF NOT EXISTS " : "", qname);
	for (int i = 0; i < spec->ncolumns; i++)
		appendStringInfo(&sql, "%s, ", column_definition(&spec->columns[i], true));
	appendStringInfoString(&sql, "PRIMARY KEY (");
	for (int i = 0; i < spec->nkeys; i++)
		appendStringInfo(&sql, "%s%s", i > 0 ? ", " : "",
						 quote_identifier(spec->columns[spec->key_index[i]].name));
	appendStringInfoString(&sql, "))");
	exec_ddl(sql.data);
}

static bool
table_exists(const CocoTableName *tn)
{
	Oid			nsp = get_namespace_oid(tn->schema, true);

	return OidIsValid(nsp) && OidIsValid(get_relname_relid(tn->name, nsp));
}

/* What retype_column splices, each field assigned by name (test/lint_spi.sh
 * follows assignments, not initializers). */
typedef struct ColumnRetype
{
	const char *quoted_table;
	const char *quoted_column;
	const char *new_type;
} ColumnRetype;

/* ALTER COLUMN … TYPE … USING: the step retype_column tries */
static void
alter_type_keeping_values(void *arg)
{
	ColumnRetype *r = arg;

	exec_ddl(psprintf("ALTER TABLE %s ALTER COLUMN %s TYPE %s USING %s::%s",
					  r->quoted_table, r->quoted_column, r->new_type,
					  r->quoted_column, r->new_type));
}

/*
 * Try ALTER COLUMN … TYPE … USING, which keeps convertible data; if the data
 * does not convert, change the type with every value set to NULL (the values
 * are lost; the run re-writes every row since the change is lossy).  Not
 * dropping the column keeps what depends on it: PostgreSQL rebuilds its
 * indexes as part of the change, so none is lost until a later run.
 */
static void
retype_column(const char *qname, const CocoColumn *c)
{
	const char *col = quote_identifier(c->name);
	ColumnRetype r;
	ErrorData  *edata;

	r.quoted_table = qname;
	r.quoted_column = col;
	r.new_type = c->type;
	edata = coco_subxact_call(alter_type_keeping_values, &r);
	if (edata != NULL)
	{
		/* only data that does not convert falls back; a cancel, a lock
		 * timeout or anything else ends the run */
		if (ERRCODE_TO_CATEGORY(edata->sqlerrcode) != ERRCODE_DATA_EXCEPTION &&
			edata->sqlerrcode != ERRCODE_DATATYPE_MISMATCH &&
			edata->sqlerrcode != ERRCODE_CANNOT_COERCE &&
			edata->sqlerrcode != ERRCODE_UNDEFINED_FUNCTION)
			ReThrowError(edata);
		/* NOT NULL comes back after the rows are written (finish) */
		exec_ddl(psprintf("ALTER TABLE %s ALTER COLUMN %s DROP NOT NULL, "
						  "ALTER COLUMN %s TYPE %s USING NULL",
						  qname, col, col, c->type));
	}
	if (c->nullable)
		exec_ddl(psprintf("ALTER TABLE %s ALTER COLUMN %s DROP NOT NULL", qname, col));
}

static void
apply_column(const char *qname, const char *name, const char *action, CocoColumn *c)
{
	const char *col = quote_identifier(name);

	if (strcmp(action, "add") == 0)
		exec_ddl(psprintf("ALTER TABLE %s ADD COLUMN %s", qname, column_definition(c, false)));
	else if (strcmp(action, "ensure") == 0)
	{
		exec_ddl(psprintf("ALTER TABLE %s ADD COLUMN IF NOT EXISTS %s", qname,
						  column_definition(c, false)));
		retype_column(qname, c);
	}
	else if (strcmp(action, "drop") == 0)
		exec_ddl(psprintf("ALTER TABLE %s DROP COLUMN IF EXISTS %s", qname, col));
	else if (strcmp(action, "retype") == 0)
		retype_column(qname, c);
	else if (strcmp(action, "drop_not_null") == 0)
		exec_ddl(psprintf("ALTER TABLE %s ALTER COLUMN %s DROP NOT NULL", qname, col));
	/* set_not_null waits for the rows: see table_finish */
}

static char *
detail_string(Jsonb *detail, const char *field)
{
	JsonbValue *v = getKeyJsonValueFromContainer(&detail->root, field, strlen(field), NULL);

	return (v && v->type == jbvString) ? pnstrdup(v->val.string.val, v->val.string.len) : NULL;
}

static bool
detail_flag(Jsonb *detail, const char *field)
{
	JsonbValue *v = getKeyJsonValueFromContainer(&detail->root, field, strlen(field), NULL);

	return v != NULL && v->type == jbvBool && v->val.boolean;
}

/* Calls fn for every column entry of an alter/ensure detail. */
static void
for_each_column_action(Jsonb *detail, CocoTableSpec *spec, const char *qname,
					   void (*fn) (const char *qname, const char *name, const char *action, CocoColumn *c))
{
	JsonbValue *cols = getKeyJsonValueFromContainer(&detail->root, "columns", 7, NULL);
	int			n;

	if (cols == NULL || cols->type != jbvBinary)
		return;
	n = JsonContainerSize(cols->val.binary.data);
	for (int i = 0; i < n; i++)
	{
		JsonbValue *e = getIthJsonbValueFromContainer(cols->val.binary.data, i);
		JsonbValue *name = getKeyJsonValueFromContainer(e->val.binary.data, "name", 4, NULL);
		JsonbValue *action = getKeyJsonValueFromContainer(e->val.binary.data, "action", 6, NULL);
		char	   *colname = pnstrdup(name->val.string.val, name->val.string.len);

		fn(qname, colname, pnstrdup(action->val.string.val, action->val.string.len),
		   find_column(spec, colname));
	}
}

static void
table_apply(CocoPlannedAction *actions, int nactions)
{
	List	   *distribute = NIL;	/* after every table exists: a table may
									 * be colocated with another one */

	for (int i = 0; i < nactions; i++)
	{
		const CocoTargetState *st = actions[i].state;
		CocoDecision *d = &actions[i].decision;
		char	   *op = detail_string(d->detail, "op");
		CocoTableSpec *spec = st->desired ? coco_table_spec_parse(st->desired) : NULL;
		CocoTableSpec *prev_spec = st->nprev > 0 ? coco_table_spec_parse(st->prev[st->nprev - 1]) : NULL;
		CocoTableSpec *named = spec ? spec : prev_spec;
		char	   *qname = coco_quote_qualified(named->tn.schema, named->tn.name);

		/* every change of an existing table takes it whole */
		if (strcmp(op, "create") != 0 && strcmp(op, "rekey") != 0)
			coco_lock_target_table(&named->tn, AccessExclusiveLock);
		if (strcmp(op, "create") == 0)
		{
			if (table_exists(&spec->tn))
				ereport(ERROR,
						(errcode(ERRCODE_DUPLICATE_TABLE),
						 errmsg("table \"%s\" already exists and was not created by this app",
								spec->tn.qualified),
						 errhint("Declare it with managed_by => 'user' to manage only its rows, "
								 "or drop it first.")));
			create_table(spec, false);
			distribute = lappend(distribute, coco_citus_distribution_step(spec, false));
		}
		else if (strcmp(op, "replace") == 0)
		{
			exec_ddl(psprintf("DROP TABLE IF EXISTS %s", qname));
			create_table(spec, false);
			distribute = lappend(distribute, coco_citus_distribution_step(spec, false));
		}
		else if (strcmp(op, "ensure") == 0)
		{
			create_table(spec, true);
			for_each_column_action(d->detail, spec, qname, apply_column);
			distribute = lappend(distribute,
								 coco_citus_distribution_step(spec, detail_flag(d->detail, "redistribute")));
		}
		else if (strcmp(op, "alter") == 0)
		{
			for_each_column_action(d->detail, spec, qname, apply_column);
			if (detail_flag(d->detail, "redistribute"))
				distribute = lappend(distribute, coco_citus_distribution_step(spec, true));
		}
		else if (strcmp(op, "drop") == 0)
			exec_ddl(psprintf("DROP TABLE IF EXISTS %s", qname));
		else if (strcmp(op, "rekey") == 0)
			;					/* a user's table: only its tracking changes */
		else
			elog(ERROR, "coco_target: unknown table operation \"%s\"", op);
	}
	coco_citus_distribute(distribute);
}

static void
finish_column(const char *qname, const char *name, const char *action, CocoColumn *c)
{
	if (c != NULL && !c->nullable && strcmp(action, "drop_not_null") != 0)
		exec_ddl(psprintf("ALTER TABLE %s ALTER COLUMN %s SET NOT NULL", qname,
						  quote_identifier(name)));
}

/* After the rows are written: NOT NULL on columns that were added, ensured
 * or re-typed, so the catalog ends up matching the declaration. */
static void
table_finish(CocoPlannedAction *actions, int nactions)
{
	for (int i = 0; i < nactions; i++)
	{
		const CocoTargetState *st = actions[i].state;
		CocoDecision *d = &actions[i].decision;
		char	   *op = d->detail ? detail_string(d->detail, "op") : NULL;
		CocoTableSpec *spec;

		if (op == NULL || (strcmp(op, "alter") != 0 && strcmp(op, "ensure") != 0))
			continue;
		spec = coco_table_spec_parse(st->desired);
		coco_lock_target_table(&spec->tn, AccessExclusiveLock);
		for_each_column_action(d->detail, spec,
							   coco_quote_qualified(spec->tn.schema, spec->tn.name),
							   finish_column);
	}
}

/*
 * Drift: a system-managed table that was dropped, or lost or changed a
 * declared column, or (declared with a distribution) that Citus no longer
 * holds as declared, behind the reconciler's back.  A table declared
 * without one is not looked at: distributing it by hand (a sql_command
 * calling create_distributed_table, say) is the user's to do.
 */
static bool
table_matches_record(const CocoTargetState *st)
{
	CocoTableSpec *spec = coco_table_spec_parse(st->prev[st->nprev - 1]);
	Oid			nsp;
	Oid			relid;

	if (strcmp(spec->managed_by, "system") != 0)
		return true;
	nsp = get_namespace_oid(spec->tn.schema, true);
	relid = OidIsValid(nsp) ? get_relname_relid(spec->tn.name, nsp) : InvalidOid;
	if (!OidIsValid(relid))
		return false;
	for (int i = 0; i < spec->ncolumns; i++)
	{
		AttrNumber	att = get_attnum(relid, spec->columns[i].name);
		Oid			typid;
		int32		typmod;
		Oid			coll;

		if (att == InvalidAttrNumber)
			return false;
		get_atttypetypmodcoll(relid, att, &typid, &typmod, &coll);
		if (strcmp(format_type_with_typemod(typid, typmod), spec->columns[i].type) != 0)
		{
			/* the recorded spelling is canonical under the pinned search_path */
			Oid			want;
			int32		wantmod;

			coco_resolve_type(spec->columns[i].type, &want, &wantmod);
			if (want != typid || wantmod != typmod)
				return false;
		}
	}
	if (spec->dist.kind != COCO_DIST_NONE)
	{
		char	   *column;
		CocoCitusKind now = coco_citus_table_kind(relid, &column);

		if (spec->dist.kind == COCO_DIST_REFERENCE ? now != COCO_CITUS_REFERENCE :
			(now != COCO_CITUS_HASH || strcmp(column, spec->dist.column) != 0))
			return false;
	}
	return true;
}

/* ---- for coco.plan ------------------------------------------------------- */

/* hazards of a table's column actions */
static void
column_hazards(Jsonb *detail, StringInfo h)
{
	JsonbValue *cols = getKeyJsonValueFromContainer(&detail->root, "columns", 7, NULL);

	if (cols == NULL || cols->type != jbvBinary)
		return;
	for (int i = 0; i < (int) JsonContainerSize(cols->val.binary.data); i++)
	{
		JsonbValue *e = getIthJsonbValueFromContainer(cols->val.binary.data, i);
		JsonbValue *a = getKeyJsonValueFromContainer(e->val.binary.data, "action", 6, NULL);
		char	   *action = pnstrdup(a->val.string.val, a->val.string.len);

		if (strcmp(action, "drop") == 0)
			appendStringInfoString(h, ", \"drops_column\"");
		else if (strcmp(action, "retype") == 0)
			appendStringInfoString(h, ", \"rewrites_table\"");
	}
}

/* A table's action is its detail's op (a replacement is a rebuild). */
static const char *
table_plan_action(const CocoPlannedAction *a, StringInfo hazards)
{
	Jsonb	   *detail = a->decision.detail;
	char	   *op = detail ? detail_string(detail, "op") : NULL;
	const char *action = op ? (strcmp(op, "replace") == 0 ? "rebuild" : op) : "none";

	if (strcmp(action, "create") != 0)
		appendStringInfoString(hazards, ", \"access_exclusive_lock\"");
	if (strcmp(action, "rebuild") == 0 || strcmp(action, "drop") == 0)
		appendStringInfoString(hazards, ", \"drops_table\"");
	if (strcmp(action, "alter") == 0 || strcmp(action, "ensure") == 0)
		column_hazards(detail, hazards);
	if (detail != NULL && detail_flag(detail, "redistribute"))
		appendStringInfoString(hazards, ", \"redistributes_table\"");
	return action;
}

static const CocoProvider table_provider = {
	.name = COCO_TABLE_PROVIDER,
	.child_name = COCO_ROW_PROVIDER,
	.reconcile = table_reconcile,
	.apply = table_apply,
	.finish = table_finish,
	.matches_record = table_matches_record,
	.sync_children = coco_rows_sync,
	.summarize_children = coco_rows_summarize,
	.plan_action = table_plan_action,
	.plan_children = coco_rows_plan,
};

void
coco_pg_table_register(void)
{
	coco_register_root_provider(&table_provider);
	coco_pg_index_register();
	coco_pg_sql_command_register();
}

/*
 * coco.table_decision(desired, prev[], prev_may_be_missing) — the handler's
 * decision, for inspection and tests.  Specs are in the stored form.
 */
PG_FUNCTION_INFO_V1(coco_table_decision_sql);
Datum
coco_table_decision_sql(PG_FUNCTION_ARGS)
{
	CocoTargetState st = {0};
	CocoDecision d;
	StringInfoData out;

	st.provider = COCO_TABLE_PROVIDER;
	st.desired = PG_ARGISNULL(0) ? NULL : PG_GETARG_JSONB_P(0);
	st.prev_may_be_missing = PG_ARGISNULL(2) ? false : PG_GETARG_BOOL(2);
	if (!PG_ARGISNULL(1))
	{
		Datum	   *elems;
		bool	   *nulls;

		deconstruct_array(PG_GETARG_ARRAYTYPE_P(1), JSONBOID, -1, false, TYPALIGN_INT,
						  &elems, &nulls, &st.nprev);
		st.prev = palloc(sizeof(Jsonb *) * Max(st.nprev, 1));
		for (int i = 0; i < st.nprev; i++)
		{
			if (nulls[i])
				ereport(ERROR,
						(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
						 errmsg("previous records may not be null")));
			st.prev[i] = DatumGetJsonbP(elems[i]);
		}
	}
	table_reconcile(&st, &d);

	initStringInfo(&out);
	appendStringInfo(&out, "{\"action\": \"%s\", \"invalidation\": \"%s\", \"detail\": %s}",
					 coco_action_name(d.action),
					 d.invalidation == COCO_INVALIDATE_DESTRUCTIVE ? "destructive" :
					 d.invalidation == COCO_INVALIDATE_LOSSY ? "lossy" : "none",
					 d.detail ? JsonbToCString(NULL, &d.detail->root, VARSIZE(d.detail)) : "null");
	PG_RETURN_JSONB_P(json_text(out.data));
}
