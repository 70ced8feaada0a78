/*
 * sql_provider.c — providers written in SQL or PL/pgSQL, and the generic
 * declaration of target states.
 *
 * coco.register_provider(name, reconcile_fn, apply_fn) records two
 * functions in coco.provider; the engine finds such a provider by name like
 * a C one, through a CocoProvider whose callbacks call the functions:
 *
 *   reconcile_fn(key jsonb, desired jsonb, prev jsonb[], prev_may_be_missing boolean)
 *     RETURNS jsonb  -- {"action": "none"|"insert"|"upsert"|"replace"|"delete",
 *                    --  "record": …  (default: desired), "detail": …}
 *   apply_fn(actions jsonb) RETURNS void
 *     -- [{"key", "action", "desired", "prev", "detail"}, …]
 *
 * Both run as the app's owner in a restricted security context (they are
 * the app's work), with the search_path pinned to pg_catalog, pg_temp.
 * coco.declare_target_state(app, provider, key, spec, component) declares a
 * state of such a provider — or of a C provider that takes JSON specs
 * (generic_specs) — under a stable key in its jsonb spelling.
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "catalog/pg_proc.h"
#include "catalog/pg_type.h"
#include "miscadmin.h"
#include "storage/proc.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/json.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/regproc.h"
#include "utils/syscache.h"

#include "sql_provider.h"

typedef struct SqlProvider
{
	char	   *name;
	Oid			reconcile_fn;
	Oid			apply_fn;
	CocoProvider routine;
} SqlProvider;

static MemoryContext sql_cxt = NULL;
static List *sql_providers = NIL;
static LocalTransactionId sql_lxid = InvalidLocalTransactionId;

static void sql_reconcile(const CocoTargetState *state, CocoDecision *decision);
static void sql_apply(CocoPlannedAction *actions, int nactions);

/* Registrations may change between transactions: look them up afresh. */
static SqlProvider *
find_sql_provider(const char *name)
{
	Oid			types[1] = {TEXTOID};
	Datum		values[1] = {CStringGetTextDatum(name)};
	CocoUserContext uc;
	ListCell   *lc;
	SqlProvider *p;
	MemoryContext old;
	bool		isnull;

	if (sql_lxid != MyProc->lxid)
	{
		if (sql_cxt == NULL)
			sql_cxt = AllocSetContextCreate(TopMemoryContext, "coco_target SQL providers",
											ALLOCSET_SMALL_SIZES);
		MemoryContextReset(sql_cxt);
		sql_providers = NIL;
		sql_lxid = MyProc->lxid;
	}
	foreach(lc, sql_providers)
	{
		p = lfirst(lc);
		if (strcmp(p->name, name) == 0)
			return p;
	}

	coco_enter_extension_owner(&uc);
	coco_spi_exec("SELECT reconcile_fn, apply_fn FROM coco.provider WHERE name OPERATOR(pg_catalog.=) $1",
				  1, types, values, NULL, SPI_OK_SELECT);
	coco_leave(&uc);
	if (SPI_processed == 0)
		return NULL;
	old = MemoryContextSwitchTo(sql_cxt);
	p = palloc0(sizeof(SqlProvider));
	p->name = pstrdup(name);
	p->reconcile_fn = DatumGetObjectId(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
	p->apply_fn = DatumGetObjectId(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2, &isnull));
	p->routine.name = p->name;
	p->routine.reconcile = sql_reconcile;
	p->routine.apply = sql_apply;
	p->routine.generic_specs = true;
	sql_providers = lappend(sql_providers, p);
	MemoryContextSwitchTo(old);
	return p;
}

const CocoProvider *
coco_lookup_sql_provider(const char *name)
{
	SqlProvider *p = find_sql_provider(name);

	return p ? &p->routine : NULL;
}

static char *
function_call(const SqlProvider *p, Oid fn, int nargs)
{
	StringInfoData sql;
	const char *what = fn == p->reconcile_fn ? "reconcile" : "apply";

	initStringInfo(&sql);
	appendStringInfo(&sql, "SELECT %s(",
					 coco_function_call_name(fn, psprintf("the %s function of provider \"%s\"",
														 what, p->name)));
	for (int i = 1; i <= nargs; i++)
		appendStringInfo(&sql, "%s$%d", i > 1 ? ", " : "", i);
	appendStringInfoChar(&sql, ')');
	return sql.data;
}

static Datum
prev_array(const CocoTargetState *st)
{
	Datum	   *elems = palloc(sizeof(Datum) * Max(st->nprev, 1));

	for (int i = 0; i < st->nprev; i++)
		elems[i] = JsonbPGetDatum(st->prev[i]);
	return PointerGetDatum(construct_array(elems, st->nprev, JSONBOID, -1, false, TYPALIGN_INT));
}

static CocoAction
parse_action(const char *provider, JsonbValue *v)
{
	char	   *a;

	if (v == NULL || v->type == jbvNull)
		return COCO_NO_ACTION;
	if (v->type != jbvString)
		goto bad;
	a = pnstrdup(v->val.string.val, v->val.string.len);
	if (strcmp(a, "none") == 0)
		return COCO_NO_ACTION;
	if (strcmp(a, "insert") == 0)
		return COCO_INSERT;
	if (strcmp(a, "upsert") == 0)
		return COCO_UPSERT;
	if (strcmp(a, "replace") == 0)
		return COCO_REPLACE;
	if (strcmp(a, "delete") == 0)
		return COCO_DELETE;
bad:
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			 errmsg("reconcile function of provider \"%s\" returned an invalid action", provider),
			 errhint("The action is one of none, insert, upsert, replace, delete.")));
	return COCO_NO_ACTION;
}

static void
sql_reconcile(const CocoTargetState *st, CocoDecision *d)
{
	SqlProvider *p = find_sql_provider(st->provider);
	Oid			types[4] = {JSONBOID, JSONBOID, JSONBARRAYOID, BOOLOID};
	Datum		values[4];
	char		nulls[4] = {' ', ' ', ' ', ' '};
	CocoUserContext uc;
	Jsonb	   *result;
	bool		isnull;
	JsonbValue *v;

	memset(d, 0, sizeof(*d));
	values[0] = JsonbPGetDatum(coco_key_to_jsonb(st->key, st->keylen));
	values[1] = st->desired ? JsonbPGetDatum(st->desired) : (Datum) 0;
	nulls[1] = st->desired ? ' ' : 'n';
	values[2] = prev_array(st);
	values[3] = BoolGetDatum(st->prev_may_be_missing);

	/* the provider's code is the app's work: it runs as the app owner */
	coco_enter_app_owner(coco_run_owner(), COCO_SAFE_SEARCH_PATH, &uc);
	coco_spi_exec(function_call(p, p->reconcile_fn, 4), 4, types, values, nulls, SPI_OK_SELECT);
	coco_leave(&uc);
	result = (SPI_processed > 0) ?
		DatumGetJsonbPCopy(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull)) : NULL;
	if (result == NULL || isnull || !JB_ROOT_IS_OBJECT(result))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("reconcile function of provider \"%s\" must return a JSON object", st->provider)));

	d->action = parse_action(st->provider, getKeyJsonValueFromContainer(&result->root, "action", 6, NULL));
	v = getKeyJsonValueFromContainer(&result->root, "record", 6, NULL);
	if (d->action == COCO_DELETE || (st->desired == NULL && v == NULL))
		d->record = NULL;
	else if (v == NULL)
		d->record = st->desired;
	else
		d->record = v->type == jbvNull ? NULL : JsonbValueToJsonb(v);
	v = getKeyJsonValueFromContainer(&result->root, "detail", 6, NULL);
	d->detail = v ? JsonbValueToJsonb(v) : NULL;
}

static const char *
action_text(CocoAction a)
{
	return coco_action_name(a);
}

static void
sql_apply(CocoPlannedAction *actions, int n)
{
	SqlProvider *p = find_sql_provider(actions[0].state->provider);
	StringInfoData batch;
	Oid			types[1] = {JSONBOID};
	Datum		values[1];

	initStringInfo(&batch);
	appendStringInfoChar(&batch, '[');
	for (int i = 0; i < n; i++)
	{
		const CocoTargetState *st = actions[i].state;
		Jsonb	   *key = coco_key_to_jsonb(st->key, st->keylen);

		appendStringInfo(&batch, "%s{\"key\": %s, \"action\": \"%s\", \"desired\": %s, \"prev\": [",
						 i > 0 ? ", " : "",
						 JsonbToCString(NULL, &key->root, VARSIZE(key)),
						 action_text(actions[i].decision.action),
						 st->desired ? JsonbToCString(NULL, &st->desired->root, VARSIZE(st->desired)) : "null");
		for (int r = 0; r < st->nprev; r++)
			appendStringInfo(&batch, "%s%s", r > 0 ? ", " : "",
							 JsonbToCString(NULL, &st->prev[r]->root, VARSIZE(st->prev[r])));
		appendStringInfo(&batch, "], \"detail\": %s}",
						 actions[i].decision.detail ?
						 JsonbToCString(NULL, &actions[i].decision.detail->root,
										VARSIZE(actions[i].decision.detail)) : "null");
	}
	appendStringInfoChar(&batch, ']');
	values[0] = DirectFunctionCall1(jsonb_in, CStringGetDatum(batch.data));
	/* the engine runs sinks as the app owner already */
	coco_spi_exec(function_call(p, p->apply_fn, 1), 1, types, values, NULL, SPI_OK_SELECT);
}

/* ---- SQL-callable ------------------------------------------------------ */

static void
check_function(Oid fn, int nargs, const Oid *argtypes, Oid rettype, const char *what)
{
	HeapTuple	tup = SearchSysCache1(PROCOID, ObjectIdGetDatum(fn));
	Form_pg_proc proc;
	bool		ok;

	if (!HeapTupleIsValid(tup))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_FUNCTION),
				 errmsg("function with OID %u does not exist", fn)));
	proc = (Form_pg_proc) GETSTRUCT(tup);
	ok = proc->pronargs == nargs && proc->prorettype == rettype && !proc->proretset;
	for (int i = 0; ok && i < nargs; i++)
		ok = proc->proargtypes.values[i] == argtypes[i];
	ReleaseSysCache(tup);
	if (!ok)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_FUNCTION_DEFINITION),
				 errmsg("%s %s has the wrong signature", what, format_procedure(fn)),
				 errhint("reconcile_fn(key jsonb, desired jsonb, prev jsonb[], prev_may_be_missing boolean) RETURNS jsonb; "
						 "apply_fn(actions jsonb) RETURNS void.")));
	if (pg_proc_aclcheck(fn, GetUserId(), ACL_EXECUTE) != ACLCHECK_OK)
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("permission denied for function %s", format_procedure(fn))));
}

static void
check_provider_name(const char *name)
{
	bool		ok = name[0] >= 'a' && name[0] <= 'z' && strlen(name) < NAMEDATALEN;

	for (const char *c = name; ok && *c; c++)
		ok = (*c >= 'a' && *c <= 'z') || (*c >= '0' && *c <= '9') || *c == '_' || *c == '.';
	if (!ok)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_NAME),
				 errmsg("invalid provider name \"%s\"", name),
				 errdetail("Provider names are lowercase letters, digits, '_' and '.', starting with a letter.")));
	/* the built-in connectors' namespaces: their names mean their targets */
	if (strncmp(name, "postgres.", 9) == 0 || strncmp(name, "localfs.", 8) == 0)
		ereport(ERROR,
				(errcode(ERRCODE_RESERVED_NAME),
				 errmsg("provider name \"%s\" is reserved", name),
				 errdetail("Names starting with \"postgres.\" or \"localfs.\" belong to the built-in connectors."),
				 errhint("Name the provider after your own connector, as \"myorg.kv\".")));
}

/*
 * coco.register_provider(name, reconcile_fn, apply_fn): a provider written
 * in SQL.  Registering again replaces the functions; only the role that
 * registered a name (or a superuser) may, and the names of providers
 * written in C are taken.
 */
PG_FUNCTION_INFO_V1(coco_register_provider);
Datum
coco_register_provider(PG_FUNCTION_ARGS)
{
	char	   *name;
	Oid			rtypes[4] = {JSONBOID, JSONBOID, JSONBARRAYOID, BOOLOID};
	Oid			atypes[1] = {JSONBOID};
	Oid			types[4] = {TEXTOID, REGPROCEDUREOID, REGPROCEDUREOID, REGROLEOID};
	Datum		values[4];
	CocoUserContext uc;
	bool		isnull;
	Oid			owner;

	if (PG_ARGISNULL(0) || PG_ARGISNULL(1) || PG_ARGISNULL(2))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("provider name and functions must not be null")));
	name = text_to_cstring(PG_GETARG_TEXT_PP(0));
	/* the run holds the providers it looked up: none may be replaced under it */
	coco_run_guard_check_idle("coco.register_provider()");
	if (coco_lookup_c_provider(name) != NULL)
		ereport(ERROR,
				(errcode(ERRCODE_DUPLICATE_OBJECT),
				 errmsg("provider \"%s\" is provided by a C connector", name)));
	check_provider_name(name);
	check_function(PG_GETARG_OID(1), 4, rtypes, JSONBOID, "reconcile function");
	check_function(PG_GETARG_OID(2), 1, atypes, VOIDOID, "apply function");
	coco_check_lasting_function(PG_GETARG_OID(1), "a provider's reconcile function");
	coco_check_lasting_function(PG_GETARG_OID(2), "a provider's apply function");

	SPI_connect();
	values[0] = CStringGetTextDatum(name);
	values[1] = PG_GETARG_DATUM(1);
	values[2] = PG_GETARG_DATUM(2);
	values[3] = ObjectIdGetDatum(GetUserId());
	coco_enter_extension_owner(&uc);
	owner = (Oid) coco_spi_int8("SELECT owner FROM coco.provider WHERE name OPERATOR(pg_catalog.=) $1",
								1, types, values, &isnull);
	coco_leave(&uc);
	if (!isnull && !has_privs_of_role(GetUserId(), owner))
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("provider \"%s\" was registered by another role", name)));
	coco_enter_extension_owner(&uc);
	coco_spi_exec("INSERT INTO coco.provider (name, reconcile_fn, apply_fn, owner) VALUES ($1, $2, $3, $4) "
				  "ON CONFLICT (name) DO UPDATE SET reconcile_fn = EXCLUDED.reconcile_fn, "
				  "apply_fn = EXCLUDED.apply_fn",
				  4, types, values, NULL, SPI_OK_INSERT);
	coco_leave(&uc);
	sql_lxid = InvalidLocalTransactionId;
	SPI_finish();
	PG_RETURN_VOID();
}

/*
 * coco.declare_target_state(app, provider, key, spec, component): a state
 * of a provider that takes JSON specs, under a stable key.
 */
PG_FUNCTION_INFO_V1(coco_declare_target_state);
Datum
coco_declare_target_state(PG_FUNCTION_ARGS)
{
	CocoApp    *app;
	char	   *provider;
	const CocoProvider *p;
	StringInfoData key;
	Jsonb	   *keyjson;

	for (int i = 0; i < 5; i++)
		if (PG_ARGISNULL(i))
			ereport(ERROR,
					(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
					 errmsg("app, provider, key, spec and component must not be null")));
	SPI_connect();
	app = coco_app_lookup(text_to_cstring(PG_GETARG_TEXT_PP(0)));
	coco_declaring(app);
	provider = text_to_cstring(PG_GETARG_TEXT_PP(1));
	p = coco_lookup_provider(provider);
	if (p == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("provider \"%s\" is not registered", provider)));
	if (!p->generic_specs)
		ereport(ERROR,
				(errcode(ERRCODE_WRONG_OBJECT_TYPE),
				 errmsg("provider \"%s\" is declared with its own functions", provider),
				 errhint("Tables, rows and attachments are declared with coco.declare_table, declare_row(s), declare_index and declare_sql_command.")));
	keyjson = PG_GETARG_JSONB_P(2);
	initStringInfo(&key);
	coco_key_from_jsonb(&key, keyjson);
	if (!coco_stage_state(app, PG_GETARG_ARRAYTYPE_P(4), provider, NULL, &key,
						  coco_key_describe(key.data, key.len), PG_GETARG_JSONB_P(3)))
		coco_stage_conflict(app, PG_GETARG_ARRAYTYPE_P(4), provider, NULL, &key,
							psprintf("%s state %s is declared twice", provider,
									 coco_key_describe(key.data, key.len)));
	SPI_finish();
	PG_RETURN_VOID();
}
