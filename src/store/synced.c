/*
 * synced.c — the components that persistent declarations own.
 *
 * A synced table (coco.sync_table) is re-declared into a component of its
 * own by every run of its app; anything else staged there would be
 * replaced, or would replace it, behind the user's back.  So staging into
 * such a component is refused, except while the persistent declarations
 * themselves are being expanded into it (the run's expansion, and the
 * validation of coco.sync_table).
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "utils/builtins.h"

#include "coco_internal.h"

static int	expansion_depth = 0;

void
coco_persistent_expansion_begin(void)
{
	expansion_depth++;
	/* a component looked up now must be checked again afterwards */
	coco_invalidate_caches();
}

void
coco_persistent_expansion_end(void)
{
	if (expansion_depth > 0)
		expansion_depth--;
	coco_invalidate_caches();
}

/*
 * Refuse staging into component `comp_id` of app `app_id` when a synced
 * table owns it (outside the expansion of persistent declarations).
 */
void
coco_check_component_owner(int app_id, int comp_id)
{
	Oid			types[2] = {INT4OID, INT4OID};
	Datum		values[2] = {Int32GetDatum(app_id), Int32GetDatum(comp_id)};
	CocoUserContext uc;
	char	   *table = NULL;
	char	   *path = NULL;
	char	   *app = NULL;

	if (expansion_depth > 0)
		return;
	coco_enter_extension_owner(&uc);
	coco_spi_exec("SELECT s.tbl, c.path::pg_catalog.text, a.name FROM coco.synced_table s "
				  "JOIN coco.component c ON c.comp_id OPERATOR(pg_catalog.=) s.comp_id "
				  "JOIN coco.app a ON a.app_id OPERATOR(pg_catalog.=) s.app_id "
				  "WHERE s.app_id OPERATOR(pg_catalog.=) $1 AND s.comp_id OPERATOR(pg_catalog.=) $2",
				  2, types, values, NULL, SPI_OK_SELECT);
	if (SPI_processed > 0)
	{
		table = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1);
		path = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2);
		app = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 3);
	}
	coco_leave(&uc);
	if (table != NULL)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("component %s of app \"%s\" belongs to synced table \"%s\"", path, app, table),
				 errdetail("Every run of the app declares the component from the table's coco.sync_table() registration."),
				 errhint("Change the table with coco.sync_table() or remove it with coco.unsync_table(), "
						 "or declare into another component.")));
}
