/*
 * identifiers.c — validation of user-supplied names, types and arguments.
 *
 * Every identifier a user hands the API is checked here, at the boundary,
 * against a full match of [A-Za-z_][A-Za-z0-9_]* of at most NAMEDATALEN-1
 * bytes, and is later used exactly as given (always quoted).  Type names go
 * through the server's own type parser and are stored in canonical form.
 * The API's functions are not STRICT (a NULL must be an error, not a silent
 * NULL result), so required arguments are checked here too.
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "catalog/namespace.h"
#include "catalog/pg_proc.h"
#include "catalog/pg_type.h"
#include "parser/parse_type.h"
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

void
coco_parse_table_name(const char *text, CocoTableName *out)
{
	const char *dot = strchr(text, '.');

	if (dot == NULL)
	{
		out->schema = pstrdup("public");
		out->name = pstrdup(text);
	}
	else
	{
		out->schema = pnstrdup(text, dot - text);
		out->name = pstrdup(dot + 1);
	}
	coco_validate_identifier(out->schema, "schema name");
	coco_validate_identifier(out->name, "table name");
	out->qualified = psprintf("%s.%s", out->schema, out->name);
}

/* The key of a table target state: ("local", schema, table). */
void
coco_table_key(const CocoTableName *tn, StringInfo buf)
{
	coco_key_begin_tuple(buf);
	coco_key_put_str(buf, "local", 5);
	coco_key_put_str(buf, tn->schema, strlen(tn->schema));
	coco_key_put_str(buf, tn->name, strlen(tn->name));
	coco_key_end_tuple(buf);
}

/* Parse a type name with the search_path pinned, so resolution cannot vary. */
void
coco_resolve_type(const char *canonical, Oid *typid, int32 *typmod)
{
	int			nest = NewGUCNestLevel();

	(void) set_config_option("search_path", COCO_SAFE_SEARCH_PATH,
							 PGC_USERSET, PGC_S_SESSION, GUC_ACTION_SAVE, true, 0, false);
	parseTypeString(canonical, typid, typmod, false);
	AtEOXact_GUC(true, nest);
}

/*
 * The canonical spelling of a user's type name: resolved in the caller's
 * search_path, spelled so that it resolves the same way with the search_path
 * pinned (types outside pg_catalog come out schema-qualified).
 */
char *
coco_canonical_type(const char *type_text, const char *column)
{
	Oid			typid;
	int32		typmod;
	char		typtype;
	char	   *canonical;
	int			nest;

	parseTypeString(type_text, &typid, &typmod, false);
	typtype = get_typtype(typid);
	if (typtype == TYPTYPE_PSEUDO)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_TABLE_DEFINITION),
				 errmsg("column \"%s\" cannot be of pseudo-type %s", column, format_type_be(typid))));

	nest = NewGUCNestLevel();
	(void) set_config_option("search_path", COCO_SAFE_SEARCH_PATH,
							 PGC_USERSET, PGC_S_SESSION, GUC_ACTION_SAVE, true, 0, false);
	canonical = format_type_with_typemod(typid, typmod);
	AtEOXact_GUC(true, nest);
	return canonical;
}

/* A spelling that resolves the same under any search_path (for casts inside
 * statements that must run with the user's search_path). */
char *
coco_qualified_type(const char *canonical)
{
	Oid			typid;
	int32		typmod;

	coco_resolve_type(canonical, &typid, &typmod);
	return format_type_extended(typid, typmod,
								FORMAT_TYPE_TYPEMOD_GIVEN | FORMAT_TYPE_FORCE_QUALIFY);
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
