/*
 * identifiers.c — validation of user-supplied names, functions and
 * arguments.
 *
 * Every identifier a user hands the API is checked here, at the boundary,
 * against a full match of [A-Za-z_][A-Za-z0-9_]* of at most NAMEDATALEN-1
 * bytes, and is later used exactly as given (always quoted).  (Table names
 * and column types are the postgres connector's: pg_names.c.)
 * The API's functions are not STRICT (a NULL must be an error, not a silent
 * NULL result), so required arguments are checked here too.
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "catalog/namespace.h"
#include "catalog/pg_proc.h"
#include "catalog/pg_type.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/lsyscache.h"
#include "utils/regproc.h"
#include "utils/syscache.h"

#include "coco_internal.h"

void
coco_validate_identifier(const char *ident, const char *what)
{
	size_t		len = strlen(ident);

	if (len == 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_NAME),
				 errmsg("%s must not be empty", what)));
	if (len >= NAMEDATALEN)
		ereport(ERROR,
				(errcode(ERRCODE_NAME_TOO_LONG),
				 errmsg("%s \"%s\" is too long", what, ident),
				 errdetail("Names may have at most %d bytes; PostgreSQL would truncate longer ones.",
						   NAMEDATALEN - 1)));
	for (size_t i = 0; i < len; i++)
	{
		char		c = ident[i];
		bool		ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' ||
			(i > 0 && c >= '0' && c <= '9');

		if (!ok)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_NAME),
					 errmsg("invalid %s \"%s\"", what, ident),
					 errdetail("Names must match [A-Za-z_][A-Za-z0-9_]*.")));
	}
}

/* ---- required arguments -------------------------------------------------- */

void
coco_require_arg(FunctionCallInfo fcinfo, int n, const char *what)
{
	if (PG_ARGISNULL(n))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("%s must not be null", what)));
}

text *
coco_text_arg(FunctionCallInfo fcinfo, int n, const char *what)
{
	coco_require_arg(fcinfo, n, what);
	return PG_GETARG_TEXT_PP(n);
}

ArrayType *
coco_component_arg(FunctionCallInfo fcinfo, int n)
{
	if (PG_ARGISNULL(n))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("component must not be null"),
				 errhint("The root component is '{}'.")));
	return PG_GETARG_ARRAYTYPE_P(n);
}

/* ---- functions kept by OID ------------------------------------------------- */

/*
 * The quoted, schema-qualified name to call function `fn` by.  Apps and
 * providers keep their functions by OID, and a function can be dropped
 * at any time after (a temporary one with its session): then `what` (as
 * "the declaration function of app \"x\"") is reported missing.
 */
char *
coco_function_call_name(Oid fn, const char *what)
{
	HeapTuple	tup = SearchSysCache1(PROCOID, ObjectIdGetDatum(fn));
	Form_pg_proc form;
	char	   *nspname;
	char	   *name;

	if (!HeapTupleIsValid(tup))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_FUNCTION),
				 errmsg("%s no longer exists", what),
				 errdetail("It was the function with OID %u, which has been dropped.", fn),
				 errhint("Register the function again.")));
	form = (Form_pg_proc) GETSTRUCT(tup);
	nspname = get_namespace_name(form->pronamespace);
	name = nspname ? quote_qualified_identifier(nspname, NameStr(form->proname)) : NULL;
	ReleaseSysCache(tup);
	if (name == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_FUNCTION),
				 errmsg("%s no longer exists", what),
				 errdetail("The schema of function %u has been dropped.", fn)));
	return name;
}

/*
 * A function kept for later runs must outlive the session that names it:
 * a temporary one goes when its session ends.
 */
void
coco_check_lasting_function(Oid fn, const char *what)
{
	Oid			nsp = get_func_namespace(fn);

	if (OidIsValid(nsp) && isAnyTempNamespace(nsp))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_OBJECT_DEFINITION),
				 errmsg("%s cannot be a temporary function", what),
				 errdetail("Function %s is dropped when its session ends, and later runs need it.",
						   format_procedure(fn)),
				 errhint("Create the function in a permanent schema.")));
}
