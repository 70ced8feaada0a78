/*
 * table_spec.c — the spec of a declared table, checked and canonicalised.
 *
 * A spec is stored as jsonb (it is both the staged declaration and, later,
 * the table's tracking record):
 *   {"schema": s, "table": t, "managed_by": "system"|"user",
 *    "primary_key": [names], "columns": [{"name", "type", "nullable"}],
 *    "distribution": {…} (only when declared: Citus, applied by pg_citus.c)}
 * with types in canonical form and key columns NOT NULL.
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/formatting.h"
#include "utils/json.h"
#include "utils/jsonb.h"
#include "utils/lsyscache.h"
#include "utils/numeric.h"

#include "pg_connector.h"

#define TABLE_OPTIONS_HINT "Table options are {\"protect\": true|false, \"distribution\": {…}}."

static void
bad_columns(const char *msg, const char *detail)
{
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			 errmsg("%s", msg),
			 detail ? errdetail("%s", detail) : 0,
			 errhint("columns is a JSON array of {\"name\": …, \"type\": …, \"nullable\": true|false}.")));
}

static char *
json_string_field(JsonbContainer *obj, const char *field, bool required)
{
	JsonbValue *v = getKeyJsonValueFromContainer(obj, field, strlen(field), NULL);

	if (v == NULL)
	{
		if (required)
			bad_columns(psprintf("column entry lacks \"%s\"", field), NULL);
		return NULL;
	}
	if (v->type != jbvString)
		bad_columns(psprintf("\"%s\" of a column must be a string", field), NULL);
	if (memchr(v->val.string.val, '\0', v->val.string.len) != NULL)
		bad_columns(psprintf("\"%s\" of a column contains a NUL character", field), NULL);
	return pnstrdup(v->val.string.val, v->val.string.len);
}

/* The declared columns: names, canonical types and nullability, in order. */
static void
read_columns(Jsonb *columns, List **names, List **types, List **nullables)
{
	JsonbIterator *it;
	JsonbValue	v;
	JsonbIteratorToken tok;
	ListCell   *lc;

	if (!JB_ROOT_IS_ARRAY(columns) || JB_ROOT_IS_SCALAR(columns) || JB_ROOT_COUNT(columns) == 0)
		bad_columns("columns must be a non-empty JSON array", NULL);

	it = JsonbIteratorInit(&columns->root);
	while ((tok = JsonbIteratorNext(&it, &v, true)) != WJB_DONE)
	{
		JsonbContainer *obj;
		char	   *name;
		char	   *type;
		JsonbValue *nullable;
		JsonbIterator *fit;
		JsonbValue	fv;
		JsonbIteratorToken ftok;

		if (tok != WJB_ELEM)
			continue;
		if (v.type != jbvBinary || !JsonContainerIsObject(v.val.binary.data))
			bad_columns("each column must be a JSON object", NULL);
		obj = v.val.binary.data;

		/* refuse unknown fields: a typo must not be silently ignored */
		fit = JsonbIteratorInit(obj);
		while ((ftok = JsonbIteratorNext(&fit, &fv, true)) != WJB_DONE)
		{
			if (ftok == WJB_KEY)
			{
				char	   *f = pnstrdup(fv.val.string.val, fv.val.string.len);

				if (strcmp(f, "name") != 0 && strcmp(f, "type") != 0 && strcmp(f, "nullable") != 0)
					bad_columns(psprintf("unknown column field \"%s\"", f), NULL);
			}
		}

		name = json_string_field(obj, "name", true);
		coco_validate_identifier(name, "column name");
		foreach(lc, *names)
		{
			if (strcmp((char *) lfirst(lc), name) == 0)
				ereport(ERROR,
						(errcode(ERRCODE_DUPLICATE_COLUMN),
						 errmsg("column \"%s\" is declared more than once", name)));
		}
		type = coco_canonical_type(json_string_field(obj, "type", true), name);

		nullable = getKeyJsonValueFromContainer(obj, "nullable", 8, NULL);
		if (nullable && nullable->type != jbvBool)
			bad_columns(psprintf("\"nullable\" of column \"%s\" must be true or false", name), NULL);

		*names = lappend(*names, name);
		*types = lappend(*types, type);
		*nullables = lappend_int(*nullables, nullable ? nullable->val.boolean : true);
	}
}

/* The primary key names declared columns of key types, once each; they
 * become NOT NULL. */
static void
check_primary_key(const CocoTableName *tn, Datum *keys, int nkeys, List *names, List *types,
				  List *nullables)
{
	ListCell   *lc1,
			   *lc2;

	for (int i = 0; i < nkeys; i++)
	{
		char	   *k = TextDatumGetCString(keys[i]);
		int			pos = 0;
		bool		found = false;

		for (int j = 0; j < i; j++)
			if (strcmp(TextDatumGetCString(keys[j]), k) == 0)
				ereport(ERROR,
						(errcode(ERRCODE_DUPLICATE_COLUMN),
						 errmsg("primary key column \"%s\" is named more than once", k)));
		forboth(lc1, names, lc2, types)
		{
			if (strcmp((char *) lfirst(lc1), k) == 0)
			{
				Oid			typid;
				int32		typmod;

				found = true;
				coco_resolve_type((char *) lfirst(lc2), &typid, &typmod);
				if (!coco_key_type_supported(typid))
					ereport(ERROR,
							(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
							 errmsg("primary key column \"%s\" has type %s, which cannot be part of a stable key",
									k, (char *) lfirst(lc2)),
							 errhint("%s", COCO_KEY_TYPES_HINT)));
				list_nth_cell(nullables, pos)->int_value = false;	/* key columns are NOT NULL */
			}
			pos++;
		}
		if (!found)
			ereport(ERROR,
					(errcode(ERRCODE_UNDEFINED_COLUMN),
					 errmsg("primary key column \"%s\" is not a declared column of table \"%s\"",
							k, tn->qualified)));
	}
}

/* A table's spec from its declaration: validated, types canonical. */
Jsonb *
coco_table_spec_build(const CocoTableName *tn, Jsonb *columns, ArrayType *primary_key,
					  const char *managed_by)
{
	List	   *names = NIL;
	List	   *types = NIL;
	List	   *nullables = NIL;
	Datum	   *keys;
	bool	   *keynulls;
	int			nkeys;
	StringInfoData out;
	ListCell   *lc1,
			   *lc2,
			   *lc3;

	if (strcmp(managed_by, "system") != 0 && strcmp(managed_by, "user") != 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid managed_by \"%s\"", managed_by),
				 errhint("managed_by is 'system' (the reconciler owns the table) or 'user' (it only manages the rows).")));

	read_columns(columns, &names, &types, &nullables);
	if (ARR_NDIM(primary_key) != 1 || array_contains_nulls(primary_key))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_TABLE_DEFINITION),
				 errmsg("primary_key must be a non-empty array of column names without nulls")));
	deconstruct_array(primary_key, TEXTOID, -1, false, TYPALIGN_INT, &keys, &keynulls, &nkeys);
	check_primary_key(tn, keys, nkeys, names, types, nullables);

	initStringInfo(&out);
	appendStringInfoString(&out, "{\"schema\": ");
	escape_json(&out, tn->schema);
	appendStringInfoString(&out, ", \"table\": ");
	escape_json(&out, tn->name);
	appendStringInfoString(&out, ", \"managed_by\": ");
	escape_json(&out, managed_by);
	appendStringInfoString(&out, ", \"primary_key\": [");
	for (int i = 0; i < nkeys; i++)
	{
		if (i > 0)
			appendStringInfoString(&out, ", ");
		escape_json(&out, TextDatumGetCString(keys[i]));
	}
	appendStringInfoString(&out, "], \"columns\": [");
	forthree(lc1, names, lc2, types, lc3, nullables)
	{
		if (lc1 != list_head(names))
			appendStringInfoString(&out, ", ");
		appendStringInfoString(&out, "{\"name\": ");
		escape_json(&out, (char *) lfirst(lc1));
		appendStringInfoString(&out, ", \"type\": ");
		escape_json(&out, (char *) lfirst(lc2));
		appendStringInfo(&out, ", \"nullable\": %s}", lfirst_int(lc3) ? "true" : "false");
	}
	appendStringInfoString(&out, "]}");
	return DatumGetJsonbP(DirectFunctionCall1(jsonb_in, CStringGetDatum(out.data)));
}

/* ---- the "distribution" option (Citus: pg_citus.c applies it) ---------- */

/* Citus caps a table's shard count at this. */
#define MAX_SHARD_COUNT 64000

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
 * A colocate_with table that exists must be one Citus hash-distributes by
 * a column of the distribution column's type (Citus's own conditions,
 * checked when declared rather than when the run distributes).  One that
 * does not exist yet may be a table the same run creates: the run says.
 */
static void
check_colocation(const CocoTableName *tn, const CocoColumn *column, const CocoTableName *other)
{
	Oid			relid = coco_citus_relid(other);
	char	   *other_column;
	Oid			want;
	Oid			have;
	int32		typmod;

	if (!OidIsValid(relid))
		return;
	if (coco_citus_table_kind(relid, &other_column) != COCO_CITUS_HASH)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("option \"distribution\" of table \"%s\": table \"%s\" to colocate with is not a distributed table",
						tn->qualified, other->qualified),
				 errhint("colocate_with names a hash-distributed table (create_distributed_table), \"default\" or \"none\".")));
	coco_resolve_type(column->type, &want, &typmod);
	have = get_atttype(relid, get_attnum(relid, other_column));
	if (have != want)
		ereport(ERROR,
				(errcode(ERRCODE_DATATYPE_MISMATCH),
				 errmsg("option \"distribution\" of table \"%s\": distribution column \"%s\" has type %s, "
						"and table \"%s\" is distributed by column \"%s\" of type %s",
						tn->qualified, column->name, column->type, other->qualified, other_column,
						format_type_be(have)),
				 errhint("Colocated tables are distributed by columns of the same type.")));
}

/*
 * The "distribution" option of a table declared with `spec`, checked, as
 * the canonical JSON text stored in the spec ("null" for none): a
 * colocate_with table is schema-qualified as declare_table qualifies table
 * names, so the run resolves it the same whatever its search_path.
 */
static char *
distribution_option(const CocoTableName *tn, Jsonb *spec_json, JsonbValue *opt)
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
	char	   *name;
	int			col;
	bool		with_table = false;	/* colocate_with names a table */

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

	coco_citus_require(tn);
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
	name = jsonb_string(tn, column, "column");
	col = coco_table_spec_column(spec, name);
	if (col < 0)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_COLUMN),
				 errmsg("distribution column \"%s\" is not a declared column of table \"%s\"",
						name, tn->qualified)));
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
		/* Citus's two words, in any case; anything else names a table */
		if (pg_strcasecmp(with, "default") == 0 || pg_strcasecmp(with, "none") == 0)
			escape_json(&out, asc_tolower(with, strlen(with)));
		else
		{
			CocoTableName other;

			with_table = true;
			coco_parse_table_name(with, &other);
			check_colocation(tn, &spec->columns[col], &other);
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
		if (count < 1 || count > MAX_SHARD_COUNT)
			bad_distribution(tn, psprintf("\"shard_count\" must be an integer from 1 to %d",
										  MAX_SHARD_COUNT));
		if (with_table)
			bad_distribution(tn, "\"shard_count\" cannot be given with \"colocate_with\" a table "
							 "(the table's colocation group fixes the shard count)");
		appendStringInfo(&out, ", \"shard_count\": %d", count);
	}
	appendStringInfoChar(&out, '}');
	return out.data;
}

/* The distribution a stored spec asks for (none when it has none). */
static void
parse_distribution(JsonbContainer *root, CocoDistribution *dist)
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
coco_table_spec_same_distribution(const CocoDistribution *a, const CocoDistribution *b)
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

/* ---- table-level options ------------------------------------------------ */

/* one table-level option to add to the spec */
static void
push_option(JsonbParseState **state, const char *name, JsonbValue *value)
{
	JsonbValue	k;

	k.type = jbvString;
	k.val.string.val = (char *) name;
	k.val.string.len = strlen(name);
	(void) pushJsonbValue(state, WJB_KEY, &k);
	(void) pushJsonbValue(state, WJB_VALUE, value);
}

/*
 * A table's spec with its table-level options (declare_table's `options`):
 * the one place they are checked and carried into the staged spec, for
 * every way of declaring a table.  NULL or {} is no option.
 *   "protect": true|false — kept when no longer declared (the engine takes
 *   it out of the spec before the handler sees it: protect.c); absent
 *   leaves the tracked protection as it is.
 *   "distribution": Citus's distribution of the table (pg_citus.c); part of
 *   the table's tracking record.
 */
Jsonb *
coco_table_spec_with_options(const CocoTableName *tn, Jsonb *spec, Jsonb *options)
{
	JsonbIterator *it;
	JsonbValue	v;
	JsonbIteratorToken tok;
	JsonbValue *protect;
	JsonbValue *dist;
	JsonbValue	dist_value;
	JsonbParseState *state = NULL;
	JsonbValue *res;

	if (options == NULL)
		return spec;
	if (!JB_ROOT_IS_OBJECT(options) || JB_ROOT_IS_SCALAR(options))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("options of table \"%s\" must be a JSON object", tn->qualified),
				 errhint(TABLE_OPTIONS_HINT)));
	/* refuse unknown options: a typo must not be silently ignored */
	it = JsonbIteratorInit(&options->root);
	while ((tok = JsonbIteratorNext(&it, &v, true)) != WJB_DONE)
	{
		char	   *k;

		if (tok != WJB_KEY)
			continue;
		k = pnstrdup(v.val.string.val, v.val.string.len);
		if (strcmp(k, "protect") != 0 && strcmp(k, "distribution") != 0)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("unknown option \"%s\" of table \"%s\"", k, tn->qualified),
					 errhint(TABLE_OPTIONS_HINT)));
	}
	protect = getKeyJsonValueFromContainer(&options->root, "protect", 7, NULL);
	if (protect != NULL && protect->type != jbvBool)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("option \"protect\" of table \"%s\" must be true or false", tn->qualified)));
	dist = getKeyJsonValueFromContainer(&options->root, "distribution", 12, NULL);
	if (dist != NULL)
	{
		Jsonb	   *canonical = DatumGetJsonbP(DirectFunctionCall1(jsonb_in,
																   CStringGetDatum(distribution_option(tn, spec, dist))));

		/* none (null) is what no option says: the spec leaves it out */
		dist = NULL;
		if (!JB_ROOT_IS_SCALAR(canonical))
		{
			dist_value.type = jbvBinary;
			dist_value.val.binary.data = &canonical->root;
			dist_value.val.binary.len = VARSIZE(canonical) - VARHDRSZ;
			dist = &dist_value;
		}
	}
	if (protect == NULL && dist == NULL)
		return spec;

	/* the spec's fields, then the options (jsonb orders an object's keys) */
	it = JsonbIteratorInit(&spec->root);
	res = NULL;
	while ((tok = JsonbIteratorNext(&it, &v, true)) != WJB_DONE)
	{
		if (tok == WJB_END_OBJECT)
		{
			if (protect != NULL)
				push_option(&state, "protect", protect);
			if (dist != NULL)
				push_option(&state, "distribution", dist);
		}
		res = pushJsonbValue(&state, tok, tok < WJB_BEGIN_ARRAY ? &v : NULL);
	}
	return JsonbValueToJsonb(res);
}

/* Stored specs are always well formed; a spec handed to coco.table_decision
 * by a user may not be. */
static void
malformed_spec(const char *what)
{
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			 errmsg("malformed table spec: %s", what),
			 errhint("A spec has the form stored in coco.target_states.records.")));
}

static char *
spec_string(JsonbContainer *c, const char *field)
{
	JsonbValue *v = (c && JsonContainerIsObject(c)) ?
		getKeyJsonValueFromContainer(c, field, strlen(field), NULL) : NULL;

	if (v == NULL || v->type != jbvString)
		malformed_spec(psprintf("\"%s\" must be a string", field));
	return pnstrdup(v->val.string.val, v->val.string.len);
}

CocoTableSpec *
coco_table_spec_parse(Jsonb *json)
{
	CocoTableSpec *spec = palloc0(sizeof(CocoTableSpec));
	JsonbContainer *root = JB_ROOT_IS_OBJECT(json) ? &json->root : NULL;
	JsonbValue *cols;
	JsonbValue *pk;
	int			n;

	if (root == NULL)
		malformed_spec("it must be a JSON object");
	spec->tn.schema = spec_string(root, "schema");
	spec->tn.name = spec_string(root, "table");
	spec->tn.qualified = psprintf("%s.%s", spec->tn.schema, spec->tn.name);
	spec->managed_by = spec_string(root, "managed_by");
	parse_distribution(root, &spec->dist);

	cols = getKeyJsonValueFromContainer(root, "columns", 7, NULL);
	if (cols == NULL || cols->type != jbvBinary || !JsonContainerIsArray(cols->val.binary.data))
		malformed_spec("\"columns\" must be an array");
	n = JsonContainerSize(cols->val.binary.data);
	spec->ncolumns = n;
	spec->columns = palloc0(sizeof(CocoColumn) * Max(n, 1));
	for (int i = 0; i < n; i++)
	{
		JsonbValue *c = getIthJsonbValueFromContainer(cols->val.binary.data, i);
		JsonbValue *nullable;

		if (c->type != jbvBinary)
			malformed_spec("a column must be an object");
		spec->columns[i].name = spec_string(c->val.binary.data, "name");
		spec->columns[i].type = spec_string(c->val.binary.data, "type");
		nullable = getKeyJsonValueFromContainer(c->val.binary.data, "nullable", 8, NULL);
		if (nullable && nullable->type != jbvBool)
			malformed_spec("\"nullable\" must be true or false");
		spec->columns[i].nullable = nullable ? nullable->val.boolean : true;
	}

	pk = getKeyJsonValueFromContainer(root, "primary_key", 11, NULL);
	if (pk == NULL || pk->type != jbvBinary || !JsonContainerIsArray(pk->val.binary.data))
		malformed_spec("\"primary_key\" must be an array");
	spec->nkeys = JsonContainerSize(pk->val.binary.data);
	spec->key_index = palloc(sizeof(int) * Max(spec->nkeys, 1));
	for (int i = 0; i < spec->nkeys; i++)
	{
		JsonbValue *k = getIthJsonbValueFromContainer(pk->val.binary.data, i);
		char	   *name;
		int			pos;

		if (k->type != jbvString)
			malformed_spec("primary key entries must be strings");
		name = pnstrdup(k->val.string.val, k->val.string.len);
		pos = coco_table_spec_column(spec, name);
		if (pos < 0)
			malformed_spec(psprintf("primary key column \"%s\" is not a column", name));
		spec->key_index[i] = pos;
		spec->columns[pos].is_key = true;
	}
	return spec;
}

int
coco_table_spec_column(const CocoTableSpec *spec, const char *name)
{
	for (int i = 0; i < spec->ncolumns; i++)
		if (strcmp(spec->columns[i].name, name) == 0)
			return i;
	return -1;
}
