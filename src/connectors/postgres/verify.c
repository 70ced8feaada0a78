/*
 * verify.c — coco.verify(app, repair): find rows changed behind the
 * reconciler's back.
 *
 * Every run checks what is cheap to check (tables, columns, indexes, files:
 * catalog look-ups and stats).  Rows are not: finding a row deleted or
 * edited by hand means reading the whole table.  coco.verify does that on
 * demand: it fingerprints each row of each of the app's tables exactly as
 * tracking did (coco.row_fingerprint over the declared columns) and joins
 * them with the tracked fingerprints.
 *
 * Repairing needs the rows' declared values, which only declarations hold.
 * So repair marks the drifted rows' tracking as unknown (a fingerprint no
 * row has) and their components' row sets as undigested: the next run that
 * declares those components re-writes exactly those rows.  An app with a
 * declaration function is updated at once.
 *
 * Rows whose key is not tracked (inserted by hand) are only reported,
 * unless the caller asks to remove them: then they are deleted from the
 * tables the app manages, never from a user-managed table.
 */
#include "postgres.h"

#include "catalog/namespace.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/json.h"
#include "utils/jsonb.h"
#include "utils/lsyscache.h"

#include "pg_rows.h"

typedef struct TableDrift
{
	char	   *name;
	int64		missing;		/* tracked, not in the table */
	int64		changed;		/* in the table with other values */
	int64		untracked;		/* in the table, not tracked */
	int64		removed;		/* untracked rows deleted (remove_untracked) */
	int64		marked;			/* tracking marked for re-writing */
	int64		unchecked;		/* written before a column change: presence only */
	char	   *error;			/* why the table could not be verified */
} TableDrift;

/*
 * Whether Citus holds the table: its rows are in shards on other nodes,
 * which "ONLY" would not read (the coordinator's table is an empty shell),
 * and Citus plans a join of it with the local tracking only when it is
 * read on its own first (a materialized CTE).
 */
static bool
citus_table(const CocoTableSpec *spec)
{
	return coco_citus_table_kind(coco_citus_relid(&spec->tn), NULL) != COCO_CITUS_NONE;
}

/*
 * Delete the untracked rows of a table the app manages, by key, as the app
 * owner.  The app's run lock is held: no run tracks a key meanwhile.
 */
static int64
remove_untracked_rows(CocoApp *app, const CocoTableSpec *spec, Datum *keys, int nkeys)
{
	Oid			types[1] = {BYTEAARRAYOID};
	Datum		values[1] = {PointerGetDatum(construct_array(keys, nkeys, BYTEAOID, -1, false, TYPALIGN_INT))};
	CocoUserContext uc;
	int64		n;

	coco_enter_app_owner(app->owner, COCO_SAFE_SEARCH_PATH, &uc);
	coco_spi_exec(psprintf("DELETE FROM %s%s x WHERE %s OPERATOR(pg_catalog.=) ANY ($1)",
						   citus_table(spec) ? "" : "ONLY ",
						   coco_quote_qualified(spec->tn.schema, spec->tn.name),
						   coco_rows_key_expr(spec)),
				  1, types, values, NULL, SPI_OK_DELETE);
	n = SPI_processed;
	coco_leave(&uc);
	return n;
}

/*
 * Compare one table with its tracking; mark drifted rows when asked, and
 * delete untracked ones when asked (system-managed tables only).
 */
static void
verify_table(CocoApp *app, int64 ts_id, Jsonb *record, bool repair, bool remove_untracked,
			 TableDrift *out)
{
	CocoTableSpec *spec = coco_table_spec_parse(record);
	char	   *qname = coco_quote_qualified(spec->tn.schema, spec->tn.name);
	StringInfoData cols;
	StringInfoData actual;
	Oid			types[2] = {INT8OID, BYTEAARRAYOID};
	Datum		values[2] = {Int64GetDatum(ts_id), (Datum) 0};
	CocoUserContext uc;
	Datum	   *keys;
	int			nkeys = 0;
	Datum	   *extra;
	int			nextra = 0;
	Oid			nsp = get_namespace_oid(spec->tn.schema, true);
	bool		citus;

	out->name = pstrdup(spec->tn.qualified);
	/* a table gone is drift every run finds and repairs by itself */
	if (!OidIsValid(nsp) || !OidIsValid(get_relname_relid(spec->tn.name, nsp)))
		return;
	citus = citus_table(spec);

	initStringInfo(&cols);
	for (int i = 0; i < spec->ncolumns; i++)
		appendStringInfo(&cols, "%sx.%s", i > 0 ? ", " : "", quote_identifier(spec->columns[i].name));
	initStringInfo(&actual);
	appendStringInfo(&actual, "SELECT %s AS k, coco.row_fingerprint(%s) AS fp FROM ",
					 coco_rows_key_expr(spec), cols.data);
	if (!citus)
		appendStringInfo(&actual, "ONLY %s x", qname);
	else
	{
		/*
		 * The rows come from the shards as they are, and are fingerprinted
		 * here: on a worker, a value that carries a type's oid (an enum, an
		 * array of a user's type) would fingerprint otherwise.
		 */
		appendStringInfo(&actual, "(WITH shards AS MATERIALIZED (SELECT %s FROM %s x) "
						 "SELECT * FROM shards) x", cols.data, qname);
	}

	/* read as the app owner: the table is the app's to read */
	coco_enter_app_owner(app->owner, COCO_SAFE_SEARCH_PATH, &uc);
	/*
	 * A row written before its table's spec last changed (a column added,
	 * retyped or moved) was fingerprinted over the columns of that time:
	 * only its presence can be checked, until its component is declared
	 * again.  Row sets from before 0.4 have no record fingerprint: compared.
	 */
	coco_spi_exec(psprintf("%sSELECT t.key IS NULL, x.k IS NULL, COALESCE(t.key, x.k), t.current "
						   "FROM (SELECT r.key, r.fp, (s.target_id IS NULL OR "
						   "        (s.generation OPERATOR(pg_catalog.=) ts.generation AND "
						   "         s.schema_version OPERATOR(pg_catalog.=) ts.schema_version AND "
						   "         (s.record_fp IS NULL OR s.record_fp OPERATOR(pg_catalog.=) "
						   "          coco.fingerprint(pg_catalog.jsonb_send(ts.records OPERATOR(pg_catalog.->) -1))))) "
						   "        AS current "
						   "      FROM coco.tracked_row r "
						   "      JOIN coco.target_state ts ON ts.ts_id OPERATOR(pg_catalog.=) r.target_id "
						   "      LEFT JOIN coco.row_set s ON s.target_id OPERATOR(pg_catalog.=) r.target_id "
						   "       AND s.comp_id OPERATOR(pg_catalog.=) r.comp_id "
						   "      WHERE r.target_id OPERATOR(pg_catalog.=) $1) t "
						   "FULL JOIN %s x ON x.k OPERATOR(pg_catalog.=) t.key "
						   "WHERE t.key IS NULL OR x.k IS NULL OR NOT t.current "
						   "   OR x.fp OPERATOR(pg_catalog.<>) t.fp",
						   citus ? psprintf("WITH actual AS MATERIALIZED (%s) ", actual.data) : "",
						   citus ? "actual" : psprintf("(%s)", actual.data)),
				  1, types, values, NULL, SPI_OK_SELECT);
	coco_leave(&uc);
	keys = palloc(sizeof(Datum) * Max(SPI_processed, 1));
	extra = palloc(sizeof(Datum) * Max(SPI_processed, 1));
	for (uint64 r = 0; r < SPI_processed; r++)
	{
		HeapTuple	tup = SPI_tuptable->vals[r];
		bool		isnull;
		Datum		key = PointerGetDatum(DatumGetByteaPCopy(SPI_getbinval(tup, SPI_tuptable->tupdesc, 3, &isnull)));

		if (DatumGetBool(SPI_getbinval(tup, SPI_tuptable->tupdesc, 1, &isnull)))
		{
			out->untracked++;
			extra[nextra++] = key;
			continue;
		}
		if (DatumGetBool(SPI_getbinval(tup, SPI_tuptable->tupdesc, 2, &isnull)))
			out->missing++;
		else if (!DatumGetBool(SPI_getbinval(tup, SPI_tuptable->tupdesc, 4, &isnull)))
		{
			out->unchecked++;
			continue;
		}
		else
			out->changed++;
		keys[nkeys++] = key;
	}
	/* a user-managed table's rows are the user's: never removed */
	if (remove_untracked && nextra > 0 && strcmp(spec->managed_by, "system") == 0)
		out->removed = remove_untracked_rows(app, spec, extra, nextra);
	if (!repair || nkeys == 0)
		return;

	values[1] = PointerGetDatum(construct_array(keys, nkeys, BYTEAOID, -1, false, TYPALIGN_INT));
	coco_enter_extension_owner(&uc);
	/* no row fingerprint is marked: the next diff re-writes the row */
	out->marked = coco_tracking_mark(DatumGetInt64(values[0]), values[1], &values[1]);
	types[1] = INT4ARRAYOID;
	coco_spi_exec("UPDATE coco.row_set SET digest = NULL WHERE target_id OPERATOR(pg_catalog.=) $1 "
				  "AND comp_id OPERATOR(pg_catalog.=) ANY ($2)",
				  2, types, values, NULL, SPI_OK_UPDATE);
	coco_leave(&uc);
}

typedef struct TableCheck
{
	CocoApp    *app;
	int64		ts_id;
	Jsonb	   *record;
	bool		repair;
	bool		remove_untracked;
	TableDrift *out;
} TableCheck;

static void
verify_table_step(void *arg)
{
	TableCheck *tc = arg;

	verify_table(tc->app, tc->ts_id, tc->record, tc->repair, tc->remove_untracked, tc->out);
}

/*
 * One table in a subtransaction: a table that cannot be read as declared
 * (a declared column dropped by hand, a NULL in a key column of a user's
 * table) is reported with the error, and the others are still verified.
 */
static void
verify_table_guarded(CocoApp *app, int64 ts_id, Jsonb *record, bool repair, bool remove_untracked,
					 TableDrift *out)
{
	TableCheck	tc = {app, ts_id, record, repair, remove_untracked, out};
	ErrorData  *e = coco_subxact_call(verify_table_step, &tc);

	if (e != NULL)
	{
		out->error = e->message;
		out->missing = out->changed = out->untracked = out->removed = out->marked = out->unchecked = 0;
	}
}

/*
 * coco.verify(app, repair, remove_untracked) — returns {"tables": {name:
 * {missing, changed, untracked, removed, marked}}, "drifted": n, "removed":
 * n, "run": <stats of the update that repaired them, for apps with a
 * declaration function>}.
 */
PG_FUNCTION_INFO_V1(coco_verify);
Datum
coco_verify(PG_FUNCTION_ARGS)
{
	CocoApp    *app;
	bool		repair;
	bool		remove_untracked;
	Oid			types[2] = {INT4OID, TEXTOID};
	Datum		values[2];
	CocoUserContext uc;
	SPITupleTable *tables;
	uint64		ntables;
	StringInfoData out;
	int64		drifted = 0;
	int64		removed = 0;
	Jsonb	   *result;

	coco_require_arg(fcinfo, 1, "repair");
	repair = PG_GETARG_BOOL(1);
	coco_require_arg(fcinfo, 2, "remove_untracked");
	remove_untracked = PG_GETARG_BOOL(2);
	SPI_connect();
	app = coco_app_lookup(text_to_cstring(coco_text_arg(fcinfo, 0, "app")));
	coco_run_guard_enter(app, "coco.verify()");
	coco_lock_app(app, false);

	values[0] = Int32GetDatum(app->app_id);
	values[1] = CStringGetTextDatum(COCO_TABLE_PROVIDER);
	coco_enter_extension_owner(&uc);
	coco_spi_exec("SELECT ts_id, records OPERATOR(pg_catalog.->) -1 FROM coco.target_state "
				  "WHERE app_id OPERATOR(pg_catalog.=) $1 AND provider OPERATOR(pg_catalog.=) $2 "
				  "AND NOT may_be_missing ORDER BY name",
				  2, types, values, NULL, SPI_OK_SELECT);
	coco_leave(&uc);
	tables = SPI_tuptable;
	ntables = SPI_processed;

	initStringInfo(&out);
	appendStringInfoString(&out, "{\"tables\": {");
	for (uint64 i = 0; i < ntables; i++)
	{
		bool		isnull;
		int64		ts_id = DatumGetInt64(SPI_getbinval(tables->vals[i], tables->tupdesc, 1, &isnull));
		Jsonb	   *record = DatumGetJsonbPCopy(SPI_getbinval(tables->vals[i], tables->tupdesc, 2, &isnull));
		TableDrift	d = {0};

		d.name = psprintf("table %lld", (long long) ts_id);
		verify_table_guarded(app, ts_id, record, repair, remove_untracked, &d);
		drifted += d.missing + d.changed;
		removed += d.removed;
		if (i > 0)
			appendStringInfoString(&out, ", ");
		escape_json(&out, d.name);
		appendStringInfo(&out, ": {\"missing\": " INT64_FORMAT ", \"changed\": " INT64_FORMAT
						 ", \"untracked\": " INT64_FORMAT ", \"removed\": " INT64_FORMAT
						 ", \"marked\": " INT64_FORMAT ", \"unchecked\": " INT64_FORMAT,
						 d.missing, d.changed, d.untracked, d.removed, d.marked, d.unchecked);
		if (d.error)
		{
			appendStringInfoString(&out, ", \"error\": ");
			escape_json(&out, d.error);
		}
		appendStringInfoChar(&out, '}');
	}
	appendStringInfo(&out, "}, \"drifted\": " INT64_FORMAT ", \"removed\": " INT64_FORMAT,
					 drifted, removed);
	coco_run_guard_leave();
	if (repair && drifted > 0 && OidIsValid(app->declare_fn))
	{
		Jsonb	   *stats = coco_engine_reconcile(app, true, true, 0);

		appendStringInfoString(&out, ", \"run\": ");
		appendStringInfoString(&out, JsonbToCString(NULL, &stats->root, VARSIZE(stats)));
	}
	appendStringInfoChar(&out, '}');
	result = DatumGetJsonbP(DirectFunctionCall1(jsonb_in, CStringGetDatum(out.data)));
	{
		Jsonb	   *copy = SPI_palloc(VARSIZE(result));

		memcpy(copy, result, VARSIZE(result));
		SPI_finish();
		PG_RETURN_JSONB_P(copy);
	}
}
