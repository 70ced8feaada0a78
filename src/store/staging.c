/*
 * staging.c — declared target states, staged until a run consumes them.
 * Every connector stages its states here (the postgres connector's rows and
 * queries have tables of their own, written by the connector).
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "utils/builtins.h"

#include "coco_internal.h"

/*
 * Stage one declared target state (as the extension owner).  Returns false
 * when it is declared already in this staging — under `provider`, or under
 * `sibling`, another provider serving the same keys (an index built plainly
 * or concurrently) — and the caller reports that in its own words.
 */
bool
coco_stage_state(const CocoApp *app, ArrayType *component, const char *provider,
				 const char *sibling, StringInfo key, const char *name, Jsonb *spec)
{
	Oid			types[6] = {INT4OID, INT4OID, TEXTOID, BYTEAOID, TEXTOID, JSONBOID};
	Datum		values[6];
	CocoUserContext uc;
	bool		duplicate;

	values[0] = Int32GetDatum(app->app_id);
	values[1] = Int32GetDatum(coco_component_id(app->app_id, component));
	values[2] = CStringGetTextDatum(provider);
	values[3] = PointerGetDatum(coco_key_buf_to_bytea(key));
	values[4] = CStringGetTextDatum(name);
	values[5] = JsonbPGetDatum(spec);
	coco_enter_extension_owner(&uc);
	(void) coco_spi_int8("INSERT INTO coco.staged_state (app_id, comp_id, provider, key, name, spec) "
						 "VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING RETURNING 1",
						 6, types, values, &duplicate);
	if (!duplicate && sibling)
	{
		bool		no_sibling;

		values[2] = CStringGetTextDatum(sibling);
		(void) coco_spi_int8("SELECT 1 FROM coco.staged_state WHERE app_id OPERATOR(pg_catalog.=) $1 "
							 "AND provider OPERATOR(pg_catalog.=) $3 AND key OPERATOR(pg_catalog.=) $4",
							 4, types, values, &no_sibling);
		duplicate = !no_sibling;
	}
	coco_leave(&uc);
	return !duplicate;
}
