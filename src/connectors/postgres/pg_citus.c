/*
 * pg_citus.c — tables that Citus distributes, and the distribution a
 * declared table asks for.
 *
 * Citus is optional and nothing here links against it: whether it is
 * installed in this database is pg_extension's to say, which tables it
 * distributes its catalog pg_dist_partition's, and its functions are
 * called through SPI by their pg_catalog names.
 *
 * A declared table's "distribution" option, in Citus's own terms:
 *   {"column": c, "colocate_with": t, "shard_count": n}   hash-distributed
 *   {"reference": true}                                   a reference table
 * is checked when declared, stored canonical in the table's spec (so it is
 * part of its tracking record), applied right after the run creates the
 * table, and applied again when a change rebuilds it or changes the
 * distribution.  A Citus table's rows are written from array parameters
 * (pg_rows.c): Citus cannot plan a statement that reads the ephemeral named
 * relation the rows of a local table are written from.
 */
#include "postgres.h"

#include "catalog/namespace.h"
#include "catalog/pg_type.h"
#include "commands/extension.h"
#include "nodes/makefuncs.h"
#include "utils/builtins.h"
#include "utils/json.h"
#include "utils/jsonb.h"
#include "utils/lsyscache.h"
#include "utils/numeric.h"

#include "pg_connector.h"

/* Citus caps a table's shard count at this. */
#define CITUS_MAX_SHARD_COUNT 64000

bool
coco_citus_installed(void)
{
	return OidIsValid(get_extension_oid("citus", true));
}

static void
bad_distribution(const CocoTableName *tn, const char *msg)
{
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			 errmsg("option \"distribution\" of table \"%s\": %s", tn->qualified, msg),
			 errhint("distribution is {\"column\": …, \"colocate_with\": …, \"shard_count\": …} "
					 "for a distributed table, or {\"reference\": true} for a reference table.")));
}

static char *
jsonb_string(const CocoTableName *tn, JsonbValue *v, const char *field)
{
	if (v->type != jbvString || v->val.string.len == 0 ||
		memchr(v->val.string.val, '\0', v->val.string.len) != NULL)
		bad_distribution(tn, psprintf("\"%s\" must be a non-empty string", field));
	return pnstrdup(v->val.string.val, v->val.string.len);
}

/*
 * The "distribution" option of a table declared with `spec`, checked, as
 * the canonical JSON text stored in the spec ("null" for none): a
 * colocate_with table is schema-qualified as declare_table qualifies table
 * names, so the run resolves it the same whatever its search_path.
 */
char *
coco_citus_distribution_option(const CocoTableName *tn, Jsonb *spec_json, JsonbValue *opt)
{
	CocoTableSpec *spec = coco_table_spec_parse(spec_json);
	JsonbContainer *c;
	JsonbIterator *it;
	JsonbValue	v;
	JsonbIteratorToken tok;
	JsonbValue *column;
	JsonbValue *colocate;
	JsonbValue *shards;
	JsonbValue *reference;
	StringInfoData out;
	int			col;

	if (opt->type == jbvNull)
		return "null";
	if (opt->type != jbvBinary || !JsonContainerIsObject(opt->val.binary.data))
		bad_distribution(tn, "it must be a JSON object");
	c = opt->val.binary.data;
	it = JsonbIteratorInit(c);
	while ((tok = JsonbIteratorNext(&it, &v, true)) != WJB_DONE)
	{
		char	   *k;

		if (tok != WJB_KEY)
			continue;
		k = pnstrdup(v.val.string.val, v.val.string.len);
		if (strcmp(k, "column") != 0 && strcmp(k, "colocate_with") != 0 &&
			strcmp(k, "shard_count") != 0 && strcmp(k, "reference") != 0)
			bad_distribution(tn, psprintf("unknown field \"%s\"", k));
	}

	if (!coco_citus_installed())
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("table \"%s\" cannot be distributed: the citus extension is not installed in this database",
						tn->qualified),
				 errhint("Install Citus and run CREATE EXTENSION citus, or declare the table without \"distribution\".")));
	if (strcmp(spec->managed_by, "system") != 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("option \"distribution\" of table \"%s\" applies only to a table the system manages",
						tn->qualified),
				 errhint("A user-managed table is distributed by its owner (create_distributed_table); "
						 "its rows are written to it either way.")));

	reference = getKeyJsonValueFromContainer(c, "reference", 9, NULL);
	column = getKeyJsonValueFromContainer(c, "column", 6, NULL);
	colocate = getKeyJsonValueFromContainer(c, "colocate_with", 13, NULL);
	shards = getKeyJsonValueFromContainer(c, "shard_count", 11, NULL);
	if (reference != NULL)
	{
		if (reference->type != jbvBool || !reference->val.boolean)
			bad_distribution(tn, "\"reference\" must be true (leave out \"distribution\" for a local table)");
		if (column || colocate || shards)
			bad_distribution(tn, "a reference table has no \"column\", \"colocate_with\" or \"shard_count\"");
		return "{\"reference\": true}";
	}
	if (column == NULL)
		bad_distribution(tn, "\"column\" is required (or \"reference\": true)");

	initStringInfo(&out);
	appendStringInfoString(&out, "{\"column\": ");
	col = coco_table_spec_column(spec, jsonb_string(tn, column, "column"));
	if (col < 0)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_COLUMN),
				 errmsg("distribution column \"%s\" is not a declared column of table \"%s\"",
						jsonb_string(tn, column, "column"), tn->qualified)));
	if (!spec->columns[col].is_key)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_TABLE_DEFINITION),
				 errmsg("distribution column \"%s\" of table \"%s\" is not part of its primary key",
						spec->columns[col].name, tn->qualified),
				 errdetail("Citus enforces a primary key only when it includes the distribution column."),
				 errhint("Distribute by a primary key column, or add the column to the primary key.")));
	escape_json(&out, spec->columns[col].name);
	if (colocate != NULL)
	{
		char	   *with = jsonb_string(tn, colocate, "colocate_with");

		appendStringInfoString(&out, ", \"colocate_with\": ");
		if (strcmp(with, "default") == 0 || strcmp(with, "none") == 0)
			escape_json(&out, with);
		else
		{
			CocoTableName other;

			coco_parse_table_name(with, &other);
			escape_json(&out, other.qualified);
		}
	}
	if (shards != NULL)
	{
		Numeric		n = shards->type == jbvNumeric ? shards->val.numeric : NULL;
		int			count = 0;

		if (n != NULL && !numeric_is_nan(n) && !numeric_is_inf(n))
		{
			char	   *s = DatumGetCString(DirectFunctionCall1(numeric_out, NumericGetDatum(n)));

			if (strspn(s, "0123456789") == strlen(s) && strlen(s) <= 5)
				count = atoi(s);
		}
		if (count < 1 || count > CITUS_MAX_SHARD_COUNT)
			bad_distribution(tn, psprintf("\"shard_count\" must be an integer from 1 to %d",
										  CITUS_MAX_SHARD_COUNT));
		if (colocate != NULL && strcmp(jsonb_string(tn, colocate, "colocate_with"), "default") != 0 &&
			strcmp(jsonb_string(tn, colocate, "colocate_with"), "none") != 0)
			bad_distribution(tn, "\"shard_count\" cannot be given with \"colocate_with\" a table "
							 "(the table's colocation group fixes the shard count)");
		appendStringInfo(&out, ", \"shard_count\": %d", count);
	}
	appendStringInfoChar(&out, '}');
	return out.data;
}

/* The distribution a stored spec asks for (none when it has none). */
void
coco_citus_parse_distribution(JsonbContainer *root, CocoDistribution *dist)
{
	JsonbValue *v = getKeyJsonValueFromContainer(root, "distribution", 12, NULL);
	JsonbValue *f;

	memset(dist, 0, sizeof(*dist));
	if (v == NULL || v->type != jbvBinary || !JsonContainerIsObject(v->val.binary.data))
		return;
	if ((f = getKeyJsonValueFromContainer(v->val.binary.data, "reference", 9, NULL)) != NULL)
	{
		dist->kind = COCO_DIST_REFERENCE;
		return;
	}
	dist->kind = COCO_DIST_HASH;
	if ((f = getKeyJsonValueFromContainer(v->val.binary.data, "column", 6, NULL)) && f->type == jbvString)
		dist->column = pnstrdup(f->val.string.val, f->val.string.len);
	if ((f = getKeyJsonValueFromContainer(v->val.binary.data, "colocate_with", 13, NULL)) &&
		f->type == jbvString)
		dist->colocate_with = pnstrdup(f->val.string.val, f->val.string.len);
	if ((f = getKeyJsonValueFromContainer(v->val.binary.data, "shard_count", 11, NULL)) &&
		f->type == jbvNumeric)
		dist->shard_count = DatumGetInt32(DirectFunctionCall1(numeric_int4,
															  NumericGetDatum(f->val.numeric)));
}

/* Whether two specs ask for the same distribution. */
bool
coco_citus_same_distribution(const CocoDistribution *a, const CocoDistribution *b)
{
	if (a->kind != b->kind)
		return false;
	if (a->kind != COCO_DIST_HASH)
		return true;
	return strcmp(a->column ? a->column : "", b->column ? b->column : "") == 0 &&
		strcmp(a->colocate_with ? a->colocate_with : "default",
			   b->colocate_with ? b->colocate_with : "default") == 0 &&
		a->shard_count == b->shard_count;
}

/*
 * How Citus holds the table now: not at all, hash-distributed (by
 * *column), a reference table, or otherwise (a Citus local or single-shard
 * table).  Any of the last three is written to from arrays.
 */
CocoCitusKind
coco_citus_table_kind(Oid relid, char **column)
{
	Oid			types[1] = {OIDOID};
	Datum		values[1] = {ObjectIdGetDatum(relid)};
	CocoCitusKind kind = COCO_CITUS_NONE;
	bool		isnull;
	char		method;
	char		model;

	if (column)
		*column = NULL;
	if (!OidIsValid(relid) || !coco_citus_installed())
		return COCO_CITUS_NONE;
	/* not read-only: a fresh snapshot sees what this run's DDL just did */
	if (SPI_execute_with_args("SELECT p.partmethod, p.repmodel, "
							  "CASE WHEN p.partmethod OPERATOR(pg_catalog.=) 'h' THEN "
							  "pg_catalog.column_to_column_name(p.logicalrelid, p.partkey) END "
							  "FROM pg_catalog.pg_dist_partition p "
							  "WHERE p.logicalrelid OPERATOR(pg_catalog.=) $1",
							  1, types, values, NULL, false, 1) != SPI_OK_SELECT)
		elog(ERROR, "coco_target: reading pg_dist_partition failed");
	if (SPI_processed == 0)
		return COCO_CITUS_NONE;
	method = DatumGetChar(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
	model = DatumGetChar(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2, &isnull));
	if (method == 'h')
	{
		kind = COCO_CITUS_HASH;
		if (column)
			*column = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 3);
	}
	else if (method == 'n' && model == 't')
		kind = COCO_CITUS_REFERENCE;
	else
		kind = COCO_CITUS_OTHER;
	return kind;
}

/* The table's oid by its declared name, or InvalidOid. */
Oid
coco_citus_relid(const CocoTableName *tn)
{
	return RangeVarGetRelid(makeRangeVar(tn->schema, tn->name, -1), NoLock, true);
}

/* colocate_with as Citus parses it: a table name quoted */
static char *
colocate_with_arg(const char *with)
{
	CocoTableName other;

	if (with == NULL || strcmp(with, "default") == 0 || strcmp(with, "none") == 0)
		return with ? pstrdup(with) : "default";
	coco_parse_table_name(with, &other);
	return coco_quote_qualified(other.schema, other.name);
}

static void
citus_call(const char *sql, int nargs, Oid *types, Datum *values, const char *nulls)
{
	if (SPI_execute_with_args(sql, nargs, types, values, nulls, false, 0) != SPI_OK_SELECT)
		elog(ERROR, "coco_target: %s failed", sql);
}

/*
 * Make Citus hold the table as its spec asks, as the app owner (Citus lets
 * only a table's owner distribute it).  `rebuild`: the declared
 * distribution changed, so a table Citus already holds is undistributed
 * and distributed again even where it looks the same (a new shard count or
 * colocation); otherwise a table already held as asked is left alone.
 */
void
coco_citus_apply_distribution(const CocoTableSpec *spec, bool rebuild)
{
	Oid			relid = coco_citus_relid(&spec->tn);
	char	   *column;
	CocoCitusKind now;
	Oid			types[4] = {REGCLASSOID, TEXTOID, TEXTOID, INT4OID};
	Datum		values[4];
	char		nulls[5] = "    ";

	if (!OidIsValid(relid))
		return;
	if (spec->dist.kind != COCO_DIST_NONE && !coco_citus_installed())
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("table \"%s\" cannot be distributed: the citus extension is not installed in this database",
						spec->tn.qualified),
				 errhint("Install Citus and run CREATE EXTENSION citus, or declare the table without \"distribution\".")));
	now = coco_citus_table_kind(relid, &column);
	if (!rebuild)
	{
		if (spec->dist.kind == COCO_DIST_NONE && now == COCO_CITUS_NONE)
			return;
		if (spec->dist.kind == COCO_DIST_REFERENCE && now == COCO_CITUS_REFERENCE)
			return;
		if (spec->dist.kind == COCO_DIST_HASH && now == COCO_CITUS_HASH &&
			column != NULL && strcmp(column, spec->dist.column) == 0)
			return;
	}
	values[0] = ObjectIdGetDatum(relid);
	if (now != COCO_CITUS_NONE)
	{
		/* a new local table takes the name: look it up again */
		citus_call("SELECT pg_catalog.undistribute_table($1)", 1, types, values, NULL);
		values[0] = ObjectIdGetDatum(coco_citus_relid(&spec->tn));
	}
	if (spec->dist.kind == COCO_DIST_REFERENCE)
		citus_call("SELECT pg_catalog.create_reference_table($1)", 1, types, values, NULL);
	else if (spec->dist.kind == COCO_DIST_HASH)
	{
		values[1] = CStringGetTextDatum(spec->dist.column);
		values[2] = CStringGetTextDatum(colocate_with_arg(spec->dist.colocate_with));
		values[3] = Int32GetDatum(spec->dist.shard_count);
		if (spec->dist.shard_count == 0)
			nulls[3] = 'n';
		citus_call("SELECT pg_catalog.create_distributed_table($1, $2, colocate_with => $3, "
				   "shard_count => $4)", 4, types, values, nulls);
	}
}
