/*
 * apps.c — the SQL-callable functions on a whole app that are not a
 * connector's: coco.drop_app() and coco.set_app_option().  (coco.create_app()
 * is the store's: it only writes the app's row.)
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "utils/builtins.h"
#include "utils/timestamp.h"

#include "coco_internal.h"

PG_FUNCTION_INFO_V1(coco_drop_app);
Datum
coco_drop_app(PG_FUNCTION_ARGS)
{
	CocoApp    *app;

	coco_require_arg(fcinfo, 0, "app name");
	coco_require_arg(fcinfo, 1, "keep_targets");
	SPI_connect();
	app = coco_app_lookup(text_to_cstring(PG_GETARG_TEXT_PP(0)));
	/* its triggers on source tables go with it, removed by the extension */
	coco_lock_app(app, true);
	coco_refresh_unwatch_all(app);
	coco_engine_drop_app(app, PG_GETARG_BOOL(1));
	coco_forget_cached_app();
	SPI_finish();
	PG_RETURN_VOID();
}

/*
 * coco.set_app_option(app, auto_submit, run_timeout, refresh) — per-app
 * options; a NULL leaves an option as it is.  auto_submit: the commit of
 * every transaction that declared into the app submits a run (submit.c).
 * run_timeout: a time limit for the app's worker runs, below
 * coco_target.run_timeout (the smaller applies); 0 removes it.  refresh:
 * source-driven refresh — the extension keeps a statement trigger on each
 * source table of the app's persistent queries, which queues a run when a
 * writing transaction commits (refresh.c); switching it on or off puts the
 * triggers in place or removes them now, under the app lock.  Owner or
 * member only, like every call on the app.
 */
PG_FUNCTION_INFO_V1(coco_set_app_option);
Datum
coco_set_app_option(PG_FUNCTION_ARGS)
{
	CocoApp    *app;
	CocoUserContext uc;
	Oid			types[4] = {INT4OID, BOOLOID, INTERVALOID, BOOLOID};
	Datum		values[4];
	char		nulls[4] = {' ', ' ', ' ', ' '};
	bool		refresh_given;

	coco_require_arg(fcinfo, 0, "app name");
	SPI_connect();
	app = coco_app_lookup(text_to_cstring(PG_GETARG_TEXT_PP(0)));
	if (!PG_ARGISNULL(1) && PG_GETARG_BOOL(1) && !coco_worker_available())
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("auto_submit requires the coco_target background worker"),
				 errdetail("The coco_target library was not loaded through shared_preload_libraries, so no worker runs."),
				 errhint("Add coco_target to shared_preload_libraries in postgresql.conf and restart the server.")));
	if (PG_NARGS() > 3 && !PG_ARGISNULL(3) && PG_GETARG_BOOL(3) && !coco_worker_available())
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("refresh requires the coco_target background worker"),
				 errdetail("The coco_target library was not loaded through shared_preload_libraries, so no worker runs."),
				 errhint("Add coco_target to shared_preload_libraries in postgresql.conf and restart the server.")));
	/* negative as the worker reads it (EXTRACT counts a year as 365.25 days) */
	if (!PG_ARGISNULL(2))
	{
		Oid			itype[1] = {INTERVALOID};
		Datum		ivalue[1] = {PG_GETARG_DATUM(2)};
		bool		isnull;

		if (coco_spi_int8("SELECT 1 WHERE EXTRACT(EPOCH FROM $1) OPERATOR(pg_catalog.<) 0",
						  1, itype, ivalue, &isnull) == 1 && !isnull)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("run_timeout of app \"%s\" must not be negative", app->name),
					 errhint("0 removes the app's own time limit; coco_target.run_timeout still applies.")));
	}
	refresh_given = PG_NARGS() > 3 && !PG_ARGISNULL(3);
	values[0] = Int32GetDatum(app->app_id);
	values[1] = PG_ARGISNULL(1) ? (Datum) 0 : PG_GETARG_DATUM(1);
	values[2] = PG_ARGISNULL(2) ? (Datum) 0 : PG_GETARG_DATUM(2);
	values[3] = refresh_given ? PG_GETARG_DATUM(3) : (Datum) 0;
	nulls[1] = PG_ARGISNULL(1) ? 'n' : ' ';
	nulls[2] = PG_ARGISNULL(2) ? 'n' : ' ';
	nulls[3] = refresh_given ? ' ' : 'n';
	/* the triggers change under the app lock, as at a run */
	if (refresh_given)
		coco_lock_app(app, false);
	coco_enter_extension_owner(&uc);
	coco_spi_exec("UPDATE coco.app SET auto_submit = coalesce($2, auto_submit), "
				  "run_timeout = CASE WHEN $3 IS NULL THEN run_timeout "
				  "                   WHEN $3 OPERATOR(pg_catalog.=) '0'::pg_catalog.interval THEN NULL "
				  "                   ELSE $3 END, "
				  "refresh = coalesce($4, refresh) "
				  "WHERE app_id OPERATOR(pg_catalog.=) $1",
				  4, types, values, nulls, SPI_OK_UPDATE);
	coco_leave(&uc);
	/* on: every source gets its trigger, or none does (42501); off: all go */
	if (refresh_given)
		coco_refresh_follow_sources(app);
	if (!PG_ARGISNULL(1))
	{
		/* switched on: what is staged now is submitted at commit, too */
		app->auto_submit = PG_GETARG_BOOL(1);
		coco_declaring(app);
	}
	/* later declarations in this transaction see the new values */
	coco_forget_cached_app();
	SPI_finish();
	PG_RETURN_VOID();
}
