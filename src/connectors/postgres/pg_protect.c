/*
 * pg_protect.c — coco.unprotect(app, table_name): clear the protection of a
 * table the app tracks.
 *
 * The protection lives in tracking (coco.target_state.protected, set by a
 * run that applied a declaration with "protect": true; see
 * src/engine/protect.c), so that removing the declaration does not remove
 * it.  Clearing it changes nothing now: a table still declared stays; one
 * that is only kept (retained) is dropped by the app's next run.
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "utils/builtins.h"

#include "pg_connector.h"

PG_FUNCTION_INFO_V1(coco_unprotect);
Datum
coco_unprotect(PG_FUNCTION_ARGS)
{
	CocoApp    *app;
	CocoTableName tn;
	StringInfoData key;
	Oid			types[3] = {INT4OID, TEXTOID, BYTEAOID};
	Datum		values[3];
	CocoUserContext uc;
	uint64		found;

	/* a run has read the protection already: changing it under the run
	 * (from a declaration function, a SQL command) is an operator's act
	 * done at the wrong moment */
	coco_run_guard_check_idle("coco.unprotect()");
	SPI_connect();
	app = coco_app_lookup(text_to_cstring(coco_text_arg(fcinfo, 0, "app")));
	coco_parse_table_name(text_to_cstring(coco_text_arg(fcinfo, 1, "table_name")), &tn);
	initStringInfo(&key);
	coco_table_key(&tn, &key);
	values[0] = Int32GetDatum(app->app_id);
	values[1] = CStringGetTextDatum(COCO_TABLE_PROVIDER);
	values[2] = PointerGetDatum(coco_key_buf_to_bytea(&key));

	coco_enter_extension_owner(&uc);
	coco_spi_exec("UPDATE coco.target_state SET protected = false "
				  "WHERE app_id OPERATOR(pg_catalog.=) $1 AND provider OPERATOR(pg_catalog.=) $2 "
				  "AND key OPERATOR(pg_catalog.=) $3",
				  3, types, values, NULL, SPI_OK_UPDATE);
	found = SPI_processed;
	coco_leave(&uc);
	if (found == 0)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_TABLE),
				 errmsg("table \"%s\" is not tracked by app \"%s\"", tn.qualified, app->name),
				 errdetail("Only a table that a run of the app made exist can be protected or unprotected."),
				 errhint("coco.target_states lists the tables an app tracks.")));
	SPI_finish();
	PG_RETURN_VOID();
}
