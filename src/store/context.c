/*
 * context.c — context keys: stable names for the resources targets live in.
 *
 * A target state's key names its context ("local", "exports"), never the
 * context's settings, so a superuser can move a directory root without the
 * reconciler losing track of what it wrote there.  Connectors look the
 * settings up when they apply actions (coco_context_settings), which is
 * also where the app owner's right to use the context is checked.
 *
 * Who may define what: kinds that reach outside the database (localfs) are
 * superuser-only, because they hand every allowed app's owner the server
 * process's file access below the root.
 */
#include "postgres.h"

#include "catalog/pg_authid.h"
#include "catalog/pg_type.h"
#include "miscadmin.h"
#include "utils/acl.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"
#include "utils/syscache.h"

#include "coco_internal.h"

#define LOCAL_CONTEXT "local"

/*
 * The kinds a context can be, each registered by its connector with what
 * its settings need (init.c).  Every kind so far reaches outside the
 * database, so only a superuser defines its contexts: they hand every
 * allowed app's owner the server process's access to what they name.
 */
typedef struct ContextKind
{
	const char *kind;
	const char *reach;			/* what a context of the kind hands its users */
	CocoContextSettingsCheck check;
	const char *const *providers;	/* whose keys start with a context key */
} ContextKind;

#define MAX_CONTEXT_KINDS 8
static ContextKind kinds[MAX_CONTEXT_KINDS];
static int	nkinds = 0;

void
coco_register_context_kind(const char *kind, const char *reach, CocoContextSettingsCheck check,
						   const char *const *providers)
{
	if (nkinds >= MAX_CONTEXT_KINDS)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("too many context kinds registered (at most %d)", MAX_CONTEXT_KINDS)));
	kinds[nkinds].kind = kind;
	kinds[nkinds].reach = reach;
	kinds[nkinds].check = check;
	kinds[nkinds].providers = providers;
	nkinds++;
}

static void
check_kind_settings(const char *key, const char *kind, Jsonb *settings)
{
	StringInfoData names;

	for (int i = 0; i < nkinds; i++)
	{
		if (strcmp(kinds[i].kind, kind) != 0)
			continue;
		if (!superuser())
			ereport(ERROR,
					(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
					 errmsg("permission denied to define %s context \"%s\"", kind, key),
					 errdetail("A %s context gives its users %s.", kind, kinds[i].reach),
					 errhint("Ask a superuser to define it and list your role in its users.")));
		kinds[i].check(key, settings);
		return;
	}
	initStringInfo(&names);
	for (int i = 0; i < nkinds; i++)
		appendStringInfo(&names, "%s%s", i > 0 ? ", " : "", kinds[i].kind);
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			 errmsg("unknown context kind \"%s\"", kind),
			 errhint("The kinds are %s; \"local\" (this database) is built in.", names.data)));
}

static void
check_context_key(const char *key)
{
	coco_validate_identifier(key, "context key");
	if (strcmp(key, LOCAL_CONTEXT) == 0)
		ereport(ERROR,
				(errcode(ERRCODE_RESERVED_NAME),
				 errmsg("context \"%s\" is built in", key),
				 errdetail("It stands for this database.")));
}

/*
 * coco.provide_context(key, kind, settings, users): define a context, or
 * change its settings and users (its key stays, so tracked states stay
 * attached).  The kind of an existing context cannot change.
 */
PG_FUNCTION_INFO_V1(coco_provide_context);
Datum
coco_provide_context(PG_FUNCTION_ARGS)
{
	char	   *key = text_to_cstring(coco_text_arg(fcinfo, 0, "context key"));
	char	   *kind = text_to_cstring(coco_text_arg(fcinfo, 1, "context kind"));
	Jsonb	   *settings;
	ArrayType  *users;
	Oid			types[5] = {TEXTOID, TEXTOID, JSONBOID, REGROLEARRAYOID, REGROLEOID};
	Datum		values[5];
	CocoUserContext uc;
	bool		isnull;
	char	   *old_kind;

	coco_require_arg(fcinfo, 2, "settings");
	coco_require_arg(fcinfo, 3, "users");
	settings = PG_GETARG_JSONB_P(2);
	users = PG_GETARG_ARRAYTYPE_P(3);
	check_context_key(key);
	if (!JB_ROOT_IS_OBJECT(settings))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("settings of context \"%s\" must be a JSON object", key)));
	if (ARR_NDIM(users) > 1 || array_contains_nulls(users))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("users of context \"%s\" must be a one-dimensional array of roles without nulls", key)));
	check_kind_settings(key, kind, settings);

	values[0] = CStringGetTextDatum(key);
	values[1] = CStringGetTextDatum(kind);
	values[2] = JsonbPGetDatum(settings);
	values[3] = PointerGetDatum(users);
	values[4] = ObjectIdGetDatum(GetUserId());
	SPI_connect();
	coco_enter_extension_owner(&uc);
	coco_spi_exec("SELECT kind FROM coco.context WHERE key OPERATOR(pg_catalog.=) $1 FOR UPDATE",
				  1, types, values, NULL, SPI_OK_SELECT);
	old_kind = SPI_processed > 0 ? SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1) : NULL;
	if (old_kind && strcmp(old_kind, kind) != 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("context \"%s\" is of kind \"%s\", not \"%s\"", key, old_kind, kind),
				 errhint("Targets are tracked under the context's key: use a new key for another kind.")));
	(void) coco_spi_int8("INSERT INTO coco.context AS c (key, kind, settings, users, defined_by) "
						 "VALUES ($1, $2, $3, $4, $5) ON CONFLICT (key) DO UPDATE "
						 "SET settings = excluded.settings, users = excluded.users, "
						 "defined_by = excluded.defined_by, updated_at = pg_catalog.now() RETURNING 1",
						 5, types, values, &isnull);
	coco_leave(&uc);
	SPI_finish();
	PG_RETURN_VOID();
}

/* The providers of every kind of context, as a text[]. */
static ArrayType *
context_providers(void)
{
	Datum	   *names = NULL;
	int			n = 0;

	for (int i = 0; i < nkinds; i++)
		for (const char *const *p = kinds[i].providers; p && *p; p++)
		{
			names = names ? repalloc(names, sizeof(Datum) * (n + 1)) : palloc(sizeof(Datum));
			names[n++] = CStringGetTextDatum(*p);
		}
	return construct_array(names, n, TEXTOID, -1, false, TYPALIGN_INT);
}

/* coco.drop_context(key): superuser only; tracked states keep their key. */
PG_FUNCTION_INFO_V1(coco_drop_context);
Datum
coco_drop_context(PG_FUNCTION_ARGS)
{
	char	   *key = text_to_cstring(coco_text_arg(fcinfo, 0, "context key"));
	Oid			types[2] = {TEXTOID, TEXTARRAYOID};
	Datum		values[2] = {CStringGetTextDatum(key), (Datum) 0};
	CocoUserContext uc;

	check_context_key(key);
	if (!superuser())
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("permission denied to drop context \"%s\"", key),
				 errhint("Only a superuser can drop a context.")));
	SPI_connect();
	coco_enter_extension_owner(&uc);
	/* keys of the context kinds' providers start with their context's key */
	values[1] = PointerGetDatum(context_providers());
	if (coco_spi_int8("SELECT pg_catalog.count(*) FROM coco.target_state "
					  "WHERE coco.key_to_jsonb(key) OPERATOR(pg_catalog.->>) 0 OPERATOR(pg_catalog.=) $1 "
					  "AND provider OPERATOR(pg_catalog.=) ANY ($2)",
					  2, types, values, NULL) > 0)
		ereport(ERROR,
				(errcode(ERRCODE_DEPENDENT_OBJECTS_STILL_EXIST),
				 errmsg("context \"%s\" still has tracked targets", key),
				 errhint("Drop or change the apps that declare targets in it first; see coco.target_states.")));
	coco_spi_exec("DELETE FROM coco.context WHERE key OPERATOR(pg_catalog.=) $1",
				  1, types, values, NULL, SPI_OK_DELETE);
	coco_leave(&uc);
	if (SPI_processed == 0)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("context \"%s\" does not exist", key)));
	SPI_finish();
	PG_RETURN_VOID();
}

/*
 * The settings of context `key`, which must be of `kind` and usable by
 * `user` (a superuser, or a role with the privileges of one of its users).
 * Connectors call this when declaring (to refuse early) and when applying
 * (the settings may have changed since).  Must be called inside SPI.
 */
Jsonb *
coco_context_settings(const char *key, const char *kind, Oid user)
{
	Oid			types[1] = {TEXTOID};
	Datum		values[1] = {CStringGetTextDatum(key)};
	CocoUserContext uc;
	SPITupleTable *tt;
	bool		isnull;
	char	   *found_kind;
	ArrayType  *users;
	Datum	   *elems;
	int			nusers;
	bool		allowed;

	if (strcmp(key, LOCAL_CONTEXT) == 0)
		ereport(ERROR,
				(errcode(ERRCODE_WRONG_OBJECT_TYPE),
				 errmsg("context \"%s\" is this database, not of kind \"%s\"", key, kind)));
	coco_enter_extension_owner(&uc);
	coco_spi_exec("SELECT kind, settings, users FROM coco.context WHERE key OPERATOR(pg_catalog.=) $1",
				  1, types, values, NULL, SPI_OK_SELECT);
	coco_leave(&uc);
	if (SPI_processed == 0)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("context \"%s\" does not exist", key),
				 errhint("A superuser defines contexts with coco.provide_context().")));
	tt = SPI_tuptable;
	found_kind = SPI_getvalue(tt->vals[0], tt->tupdesc, 1);
	if (strcmp(found_kind, kind) != 0)
		ereport(ERROR,
				(errcode(ERRCODE_WRONG_OBJECT_TYPE),
				 errmsg("context \"%s\" is of kind \"%s\", not \"%s\"", key, found_kind, kind)));
	users = DatumGetArrayTypeP(SPI_getbinval(tt->vals[0], tt->tupdesc, 3, &isnull));
	deconstruct_array(users, REGROLEOID, sizeof(Oid), true, TYPALIGN_INT, &elems, NULL, &nusers);
	allowed = superuser_arg(user);
	for (int i = 0; i < nusers && !allowed; i++)
		allowed = has_privs_of_role(user, DatumGetObjectId(elems[i]));
	if (!allowed)
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("permission denied to use context \"%s\"", key),
				 errhint("A superuser lists the roles that may use it: coco.provide_context(key, kind, settings, users).")));
	return DatumGetJsonbPCopy(SPI_getbinval(tt->vals[0], tt->tupdesc, 2, &isnull));
}
