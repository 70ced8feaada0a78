/*
 * staging.c — declared target states, staged until a run consumes them.
 * Every connector stages its states here (the postgres connector's rows and
 * queries have tables of their own, written by the connector).
 *
 * Within one component a later declaration of a key replaces the earlier
 * staged one, whether it was staged in this transaction or in an earlier
 * committed one.  The earlier row is deleted and a new one inserted, never
 * updated in place: a run consumes staging with a DELETE through its own
 * snapshot, and in READ COMMITTED a DELETE that meets an updated row
 * follows the update and would consume the newer declaration, which the
 * run never read.  A deleted row it simply skips, and the new row, which
 * its snapshot does not see, stays staged for the next run.
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"

#include "coco_internal.h"

/*
 * How often a replacement is tried again when a concurrent transaction
 * staged the same key between our delete and our insert (each attempt
 * waits for that transaction, so this only runs out under a storm).
 */
#define COCO_STAGE_ATTEMPTS 20

/* The component (path as text) that staged the key under `provider`, or NULL. */
static char *
staged_component(int app_id, const char *provider, StringInfo key, int *comp_id)
{
	Oid			types[3] = {INT4OID, TEXTOID, BYTEAOID};
	Datum		values[3];
	char	   *path = NULL;
	bool		isnull;
	int			rc;

	values[0] = Int32GetDatum(app_id);
	values[1] = CStringGetTextDatum(provider);
	values[2] = PointerGetDatum(coco_key_buf_to_bytea(key));
	rc = SPI_execute_with_args("SELECT c.comp_id, c.path::text FROM coco.staged_state s "
							   "JOIN coco.component c ON c.comp_id OPERATOR(pg_catalog.=) s.comp_id "
							   "WHERE s.app_id OPERATOR(pg_catalog.=) $1 AND s.provider OPERATOR(pg_catalog.=) $2 "
							   "AND s.key OPERATOR(pg_catalog.=) $3",
							   3, types, values, NULL, false, 1);
	if (rc != SPI_OK_SELECT)
		elog(ERROR, "coco_target: reading staging failed: %s", SPI_result_code_string(rc));
	if (SPI_processed > 0)
	{
		*comp_id = DatumGetInt32(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
		path = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2);
	}
	return path;
}

/*
 * Stage one declared target state (as the extension owner), replacing what
 * the same component staged under the key — under `provider`, or under
 * `sibling`, another provider serving the same keys (an index built plainly
 * or concurrently).  Returns false, staging nothing, when another component
 * staged the key: the caller reports that with coco_stage_conflict.
 */
bool
coco_stage_state(const CocoApp *app, ArrayType *component, const char *provider,
				 const char *sibling, StringInfo key, const char *name, Jsonb *spec)
{
	Oid			types[7] = {INT4OID, INT4OID, TEXTOID, BYTEAOID, TEXTOID, JSONBOID, TEXTOID};
	Datum		values[7];
	int			comp_id = coco_component_id(app->app_id, component);
	CocoUserContext uc;
	bool		staged = false;

	values[0] = Int32GetDatum(app->app_id);
	values[1] = Int32GetDatum(comp_id);
	values[2] = CStringGetTextDatum(provider);
	values[3] = PointerGetDatum(coco_key_buf_to_bytea(key));
	values[4] = CStringGetTextDatum(name);
	values[5] = JsonbPGetDatum(spec);
	values[6] = CStringGetTextDatum(sibling ? sibling : provider);
	coco_enter_extension_owner(&uc);
	if (sibling)
	{
		int			other;

		/* the same index declared the other way in this component: replaced */
		coco_spi_exec("DELETE FROM coco.staged_state WHERE app_id OPERATOR(pg_catalog.=) $1 "
					  "AND comp_id OPERATOR(pg_catalog.=) $2 AND provider OPERATOR(pg_catalog.=) $7 "
					  "AND key OPERATOR(pg_catalog.=) $4", 7, types, values, NULL, SPI_OK_DELETE);
		if (staged_component(app->app_id, sibling, key, &other) != NULL)
		{
			coco_leave(&uc);
			return false;
		}
	}
	for (int attempt = 0; !staged; attempt++)
	{
		bool		conflict;
		int			other;

		(void) coco_spi_int8("INSERT INTO coco.staged_state (app_id, comp_id, provider, key, name, spec) "
							 "VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING RETURNING 1",
							 6, types, values, &conflict);
		if (!conflict)
		{
			staged = true;
			break;
		}
		/* staged before: this component's declaration is replaced */
		coco_spi_exec("DELETE FROM coco.staged_state WHERE app_id OPERATOR(pg_catalog.=) $1 "
					  "AND comp_id OPERATOR(pg_catalog.=) $2 AND provider OPERATOR(pg_catalog.=) $3 "
					  "AND key OPERATOR(pg_catalog.=) $4", 4, types, values, NULL, SPI_OK_DELETE);
		if (SPI_processed == 0 &&
			staged_component(app->app_id, provider, key, &other) != NULL && other != comp_id)
			break;				/* another component's */
		/* else a concurrent declaration of the key came and went: again */
		if (attempt + 1 >= COCO_STAGE_ATTEMPTS)
			ereport(ERROR,
					(errcode(ERRCODE_T_R_SERIALIZATION_FAILURE),
					 errmsg("could not replace the staged declaration of %s: it is being declared concurrently",
							name),
					 errdetail("Other transactions staged the same key %d times while this one replaced it.",
							   COCO_STAGE_ATTEMPTS),
					 errhint("Retry the transaction.")));
	}
	coco_leave(&uc);
	return staged;
}

/*
 * A key another component staged, reported as 23505 with `message`
 * ("… is declared twice"), naming the component that staged it first and
 * this one.
 */
void
coco_stage_conflict(const CocoApp *app, ArrayType *component, const char *provider,
					const char *sibling, StringInfo key, const char *message)
{
	CocoUserContext uc;
	char	   *first;
	char	   *now;
	int			other;

	coco_enter_extension_owner(&uc);
	first = staged_component(app->app_id, provider, key, &other);
	if (first == NULL && sibling)
		first = staged_component(app->app_id, sibling, key, &other);
	coco_leave(&uc);
	now = component ? OidOutputFunctionCall(F_ARRAY_OUT, PointerGetDatum(component)) : "{}";
	ereport(ERROR,
			(errcode(ERRCODE_UNIQUE_VIOLATION),
			 errmsg("%s", message),
			 first == NULL ? errdetail("Another component declared it concurrently.") :
			 errdetail("Component %s declared it, and then component %s.", first, now),
			 errhint("Reconcile the app, or clear the component, before declaring it again.")));
}

/*
 * Delete what is staged in one component of the app (states, rows,
 * queries), as the extension owner; with mark_cleared, stage a clear marker
 * too, so the next run replaces the component with nothing.
 */
void
coco_unstage_component(int app_id, int comp_id, bool mark_cleared)
{
	Oid			types[2] = {INT4OID, INT4OID};
	Datum		values[2] = {Int32GetDatum(app_id), Int32GetDatum(comp_id)};
	CocoUserContext uc;

	coco_enter_extension_owner(&uc);
	coco_spi_exec("DELETE FROM coco.staged_state WHERE app_id OPERATOR(pg_catalog.=) $1 "
				  "AND comp_id OPERATOR(pg_catalog.=) $2", 2, types, values, NULL, SPI_OK_DELETE);
	coco_spi_exec("DELETE FROM coco.staged_row WHERE app_id OPERATOR(pg_catalog.=) $1 "
				  "AND comp_id OPERATOR(pg_catalog.=) $2", 2, types, values, NULL, SPI_OK_DELETE);
	coco_spi_exec("DELETE FROM coco.staged_query WHERE app_id OPERATOR(pg_catalog.=) $1 "
				  "AND comp_id OPERATOR(pg_catalog.=) $2", 2, types, values, NULL, SPI_OK_DELETE);
	if (mark_cleared)
		coco_spi_exec("INSERT INTO coco.cleared_component (app_id, comp_id) VALUES ($1, $2)",
					  2, types, values, NULL, SPI_OK_INSERT);
	coco_leave(&uc);
}
