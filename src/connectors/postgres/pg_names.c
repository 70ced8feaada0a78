/*
 * pg_names.c — table names and column types as users of the postgres
 * connector give them: names validated and split at the boundary, types
 * parsed by the server's own type parser and stored in canonical form.
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "parser/parse_type.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/lsyscache.h"

#include "pg_connector.h"

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

	parseTypeString(type_text, &typid, &typmod, true);
	if (!OidIsValid(typid))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("type \"%s\" of column \"%s\" does not exist", type_text, column)));
	typtype = get_typtype(typid);
	if (typtype == TYPTYPE_PSEUDO)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_TABLE_DEFINITION),
				 errmsg("column \"%s\" cannot be of pseudo-type %s", column, format_type_be(typid))));

	return coco_canonical_type_of(typid, typmod);
}

/* The canonical spelling of a type and typmod (see coco_canonical_type). */
char *
coco_canonical_type_of(Oid typid, int32 typmod)
{
	char	   *canonical;
	int			nest = NewGUCNestLevel();

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
