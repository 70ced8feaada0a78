/*
 * pg_citus.c — tables that Citus distributes, and the distribution a
 * declared table asks for.
 *
 * Citus is optional and nothing here links against it: whether it is
 * installed in this database is pg_extension's to say, which tables it
 * distributes its catalog pg_dist_partition's, and its functions are
 * called through SPI by their pg_catalog names.
 *
 * A declared table's "distribution" option (checked and stored in its
 * spec by table_spec.c) is applied here: right after the run creates the
 * table, and again when a change rebuilds it or changes the distribution.
 * A Citus table's rows are written from array parameters (pg_rows.c):
 * Citus cannot plan a statement that reads the ephemeral named relation
 * the rows of a local table are written from.
 */
#include "postgres.h"

#include "catalog/namespace.h"
#include "catalog/pg_type.h"
#include "commands/extension.h"
#include "nodes/makefuncs.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"

#include "pg_connector.h"

bool
coco_citus_installed(void)
{
	return OidIsValid(get_extension_oid("citus", true));
}

/* A table is to be distributed: refused where Citus is not installed. */
void
coco_citus_require(const CocoTableName *tn)
{
	if (!coco_citus_installed())
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("table \"%s\" cannot be distributed: the citus extension is not installed in this database",
						tn->qualified),
				 errhint("Install Citus and run CREATE EXTENSION citus, or declare the table without \"distribution\".")));
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

	if (with == NULL || strcmp(with, "default") == 0 || strcmp(with, "none") == 0)	/* canonical */
		return with ? pstrdup(with) : "default";
	coco_parse_table_name(with, &other);
	return coco_quote_qualified(other.schema, other.name);
}

/*
 * In the PG_CATCH of a statement Citus ran for the run (a call of its
 * functions, or a batch of rows written to a table it holds): the error
 * re-thrown naming the table and what was done to it instead of our
 * statement.  Citus raises some errors without a SQLSTATE of their own;
 * those are reported as 0A000 (what Citus cannot do), not as an internal
 * error.
 */
void
coco_citus_rethrow(MemoryContext cxt, const CocoTableName *tn, const char *what)
{
	ErrorData  *edata;

	MemoryContextSwitchTo(cxt);
	edata = CopyErrorData();
	FlushErrorState();
	if (edata->sqlerrcode == ERRCODE_INTERNAL_ERROR)
		edata->sqlerrcode = ERRCODE_FEATURE_NOT_SUPPORTED;
	edata->context = psprintf("%s table \"%s\" (Citus)", what, tn->qualified);
	edata->internalquery = NULL;
	edata->internalpos = 0;
	ReThrowError(edata);
}

static void
citus_call(const CocoTableSpec *spec, const char *what, const char *sql, int nargs, Oid *types,
		   Datum *values, const char *nulls)
{
	MemoryContext cxt = CurrentMemoryContext;

	PG_TRY();
	{
		if (SPI_execute_with_args(sql, nargs, types, values, nulls, false, 0) != SPI_OK_SELECT)
			elog(ERROR, "coco_target: %s failed", sql);
	}
	PG_CATCH();
	{
		coco_citus_rethrow(cxt, &spec->tn, what);
	}
	PG_END_TRY();
}

/*
 * Make Citus hold the table as its spec asks, as the app owner (Citus lets
 * only a table's owner distribute it).  `rebuild`: the declared
 * distribution changed, so a table Citus already holds is undistributed
 * and distributed again even where it looks the same (a new shard count or
 * colocation); otherwise a table already held as asked is left alone, and
 * so is a table declared without a distribution (one a sql_command
 * distributed, say).
 */
static void
apply_distribution(const CocoTableSpec *spec, bool rebuild)
{
	Oid			relid = coco_citus_relid(&spec->tn);
	char	   *column;
	CocoCitusKind now;
	Oid			types[4] = {REGCLASSOID, TEXTOID, TEXTOID, INT4OID};
	Datum		values[4];
	char		nulls[5] = "    ";

	if (!OidIsValid(relid))
		return;
	if (spec->dist.kind != COCO_DIST_NONE)
		coco_citus_require(&spec->tn);
	now = coco_citus_table_kind(relid, &column);
	if (!rebuild)
	{
		if (spec->dist.kind == COCO_DIST_NONE)
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
		citus_call(spec, "undistributing", "SELECT pg_catalog.undistribute_table($1)",
				   1, types, values, NULL);
		values[0] = ObjectIdGetDatum(coco_citus_relid(&spec->tn));
	}
	if (spec->dist.kind == COCO_DIST_REFERENCE)
		citus_call(spec, "making a reference table of", "SELECT pg_catalog.create_reference_table($1)",
				   1, types, values, NULL);
	else if (spec->dist.kind == COCO_DIST_HASH)
	{
		values[1] = CStringGetTextDatum(spec->dist.column);
		values[2] = CStringGetTextDatum(colocate_with_arg(spec->dist.colocate_with));
		values[3] = Int32GetDatum(spec->dist.shard_count);
		if (spec->dist.shard_count == 0)
			nulls[3] = 'n';
		citus_call(spec, "distributing", "SELECT pg_catalog.create_distributed_table($1, $2, "
				   "colocate_with => $3, shard_count => $4)", 4, types, values, nulls);
	}
}

/* A table to distribute once every table of the run's step exists. */
struct CocoDistributionStep
{
	const CocoTableSpec *spec;
	bool		rebuild;
};

CocoDistributionStep *
coco_citus_distribution_step(const CocoTableSpec *spec, bool rebuild)
{
	CocoDistributionStep *step = palloc(sizeof(CocoDistributionStep));

	step->spec = spec;
	step->rebuild = rebuild;
	return step;
}

/* Whether a step's table is to be colocated with another pending one. */
static bool
waits_for_other(CocoDistributionStep *step, List *pending)
{
	const char *with = step->spec->dist.colocate_with;
	ListCell   *lc;

	if (step->spec->dist.kind != COCO_DIST_HASH || with == NULL)
		return false;
	foreach(lc, pending)
	{
		CocoDistributionStep *other = lfirst(lc);

		if (other != step && strcmp(other->spec->tn.qualified, with) == 0)
			return true;
	}
	return false;
}

/*
 * Apply the steps, a table colocated with another one of them after that
 * one, whatever the order of their names (a cycle is left to Citus to
 * refuse).
 */
void
coco_citus_distribute(List *steps)
{
	List	   *pending = list_copy(steps);

	while (pending != NIL)
	{
		CocoDistributionStep *next = NULL;
		ListCell   *lc;

		foreach(lc, pending)
		{
			if (!waits_for_other(lfirst(lc), pending))
			{
				next = lfirst(lc);
				break;
			}
		}
		if (next == NULL)
			next = linitial(pending);
		apply_distribution(next->spec, next->rebuild);
		pending = list_delete_ptr(pending, next);
	}
}
