/*
 * app.c — apps and components: lookup, ownership checks, creation.
 *
 * Every API call starts here: the app is looked up as the extension owner
 * (the bookkeeping tables are not open to ordinary roles) and the caller must
 * have the privileges of the app's owner.
 */
#include "postgres.h"

#include "access/xact.h"
#include "catalog/pg_proc.h"
#include "catalog/pg_type.h"
#include "miscadmin.h"
#include "storage/proc.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/regproc.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/syscache.h"
#include "access/htup_details.h"

#include "coco_internal.h"

/* ---- SPI helpers -------------------------------------------------------- */

void
coco_spi_exec(const char *sql, int nargs, Oid *types, Datum *values,
			  const char *nulls, int expected)
{
	int			rc = SPI_execute_with_args(sql, nargs, types, values, nulls, false, 0);

	if (rc != expected)
		elog(ERROR, "coco_target: unexpected SPI result %s for: %s",
			 SPI_result_code_string(rc), sql);
}

/* Run a query returning one int8-compatible value; *isnull when no row. */
int64
coco_spi_int8(const char *sql, int nargs, Oid *types, Datum *values, bool *isnull)
{
	bool		null = true;
	Datum		d = (Datum) 0;

	int			rc = SPI_execute_with_args(sql, nargs, types, values, NULL, false, 0);

	if (rc != SPI_OK_SELECT && rc != SPI_OK_INSERT_RETURNING &&
		rc != SPI_OK_UPDATE_RETURNING && rc != SPI_OK_DELETE_RETURNING)
		elog(ERROR, "coco_target: unexpected SPI result %s for: %s",
			 SPI_result_code_string(rc), sql);
	if (SPI_processed > 0)
		d = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &null);
	if (isnull)
		*isnull = null;
	if (null)
		return 0;
	switch (SPI_tuptable->tupdesc->attrs[0].atttypid)
	{
		case INT4OID:
			return DatumGetInt32(d);
		case INT8OID:
			return DatumGetInt64(d);
		case OIDOID:
		case REGROLEOID:
			return DatumGetObjectId(d);
		case BOOLOID:
			return DatumGetBool(d);
		default:
			elog(ERROR, "coco_target: unexpected result type");
	}
	return 0;
}

char *
coco_quote_qualified(const char *schema, const char *name)
{
	return psprintf("%s.%s", quote_identifier(schema), quote_identifier(name));
}

/* ---- apps ------------------------------------------------------------- */

/* One-entry cache, valid within one transaction: repeated declarations in a
 * loop or a set-returning query do not look the app up every time. */
static MemoryContext cache_cxt = NULL;
static CocoApp *cached_app = NULL;
static LocalTransactionId cached_app_lxid = InvalidLocalTransactionId;

static void
check_app_name(const char *name)
{
	if (name[0] == '\0' || strlen(name) >= NAMEDATALEN)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_NAME),
				 errmsg("invalid app name \"%s\"", name),
				 errdetail("App names have 1 to %d bytes.", NAMEDATALEN - 1)));
}

static void
check_app_privilege(const CocoApp *app)
{
	if (!has_privs_of_role(GetUserId(), app->owner))
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("permission denied for app \"%s\"", app->name),
				 errdetail("Only members of the app's owner role may act on it.")));
}

/*
 * The library serves the schema of its own version.  After the library was
 * replaced by a newer one and before ALTER EXTENSION ... UPDATE, say so
 * instead of failing on a missing column.  Once per transaction (with the
 * app lookup), so declare_row's hot path does not pay for it.
 */
static void
check_schema_version(void)
{
	char	   *installed;

	coco_spi_exec("SELECT extversion FROM pg_catalog.pg_extension WHERE extname OPERATOR(pg_catalog.=) 'coco_target'",
				  0, NULL, NULL, NULL, SPI_OK_SELECT);
	installed = SPI_processed > 0 ? SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1) : NULL;
	if (installed == NULL || strcmp(installed, COCO_SCHEMA_VERSION) != 0)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("coco_target is at version %s in this database, its library at %s",
						installed ? installed : "(none)", COCO_SCHEMA_VERSION),
				 errhint("Run ALTER EXTENSION coco_target UPDATE.")));
}

/* A copy in the caller's memory: the cache may change while it is in use. */
static CocoApp *
copy_app(const CocoApp *src, MemoryContext cxt)
{
	CocoApp    *app = MemoryContextAlloc(cxt, sizeof(CocoApp));

	*app = *src;
	app->name = MemoryContextStrdup(cxt, src->name);
	app->search_path = MemoryContextStrdup(cxt, src->search_path);
	return app;
}

/*
 * The app `name`, if the caller has the privileges of its owner.  Each
 * caller gets its own copy: user code that runs while a caller holds it (a
 * run's queries, a domain's check) may look up other apps and replace the
 * cache's entry.
 */
CocoApp *
coco_app_lookup(const char *name)
{
	CocoUserContext uc;
	Oid			types[1] = {TEXTOID};
	Datum		values[1];
	CocoApp		found;
	bool		isnull;

	if (cached_app && cached_app_lxid == MyProc->lxid && strcmp(cached_app->name, name) == 0)
	{
		/* the cache saves the lookup, never the check: the role may differ */
		check_app_privilege(cached_app);
		return copy_app(cached_app, CurrentMemoryContext);
	}

	check_app_name(name);
	check_schema_version();
	values[0] = CStringGetTextDatum(name);
	coco_enter_extension_owner(&uc);
	coco_spi_exec("SELECT app_id, owner, declare_fn, search_path, auto_submit FROM coco.app WHERE name OPERATOR(pg_catalog.=) $1",
				  1, types, values, NULL, SPI_OK_SELECT);
	coco_leave(&uc);
	if (SPI_processed == 0)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("app \"%s\" does not exist", name),
				 errhint("Create it with coco.create_app().")));

	memset(&found, 0, sizeof(found));
	found.name = pstrdup(name);
	found.app_id = DatumGetInt32(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
	found.owner = DatumGetObjectId(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2, &isnull));
	found.declare_fn = DatumGetObjectId(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 3, &isnull));
	if (isnull)
		found.declare_fn = InvalidOid;
	found.search_path = TextDatumGetCString(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 4, &isnull));
	found.auto_submit = DatumGetBool(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 5, &isnull));
	check_app_privilege(&found);

	if (cache_cxt == NULL)
		cache_cxt = AllocSetContextCreate(TopMemoryContext, "coco_target app cache",
										  ALLOCSET_SMALL_SIZES);
	cached_app = NULL;
	MemoryContextReset(cache_cxt);
	cached_app = copy_app(&found, cache_cxt);
	cached_app_lxid = MyProc->lxid;
	return copy_app(&found, CurrentMemoryContext);
}

/* After a change to an app: the next lookup reads it again. */
void
coco_forget_cached_app(void)
{
	cached_app = NULL;
}

/* ---- components -------------------------------------------------------- */

/*
 * The components synced tables own.  A synced table (coco.sync_table) is
 * re-declared into a component of its own by every run of its app;
 * anything else staged there would be replaced, or would replace it,
 * behind the user's back.  So staging into such a component is refused,
 * except while the persistent declarations themselves are expanded into it
 * (a run's expansion, and the validation of coco.sync_table).
 */
static int	expansion_depth = 0;

/*
 * Moves on at every begin and end: a component looked up (unchecked)
 * during an expansion must be checked again after it, so the component
 * cache keeps an entry only while this stays the same.
 */
static uint64 expansion_epoch = 0;

void
coco_persistent_expansion_begin(void)
{
	expansion_depth++;
	expansion_epoch++;
}

void
coco_persistent_expansion_end(void)
{
	if (expansion_depth > 0)
		expansion_depth--;
	expansion_epoch++;
}

/*
 * Refuse staging into component `comp_id` of app `app_id` when a synced
 * table owns it (outside the expansion of persistent declarations).
 */
static void
check_component_owner(int app_id, int comp_id)
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

static int	cached_comp_app = 0;
static int	cached_comp_id = 0;
static ArrayType *cached_comp_path = NULL;
static LocalTransactionId cached_comp_lxid = InvalidLocalTransactionId;
static uint64 cached_comp_epoch = 0;	/* of persistent expansions */


int
coco_component_id(int app_id, ArrayType *path)
{
	CocoUserContext uc;
	Oid			types[2] = {INT4OID, TEXTARRAYOID};
	Datum		values[2];
	Datum	   *elems;
	int			nelems;
	bool		isnull;
	int64		id;

	if (ARR_NDIM(path) > 1)
		ereport(ERROR,
				(errcode(ERRCODE_ARRAY_SUBSCRIPT_ERROR),
				 errmsg("a component path must be a one-dimensional text array")));
	if (array_contains_nulls(path))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("a component path may not contain nulls")));

	/* canonical form (1-D, lower bound 1): equal paths have equal bytes */
	deconstruct_array(path, TEXTOID, -1, false, TYPALIGN_INT, &elems, NULL, &nelems);
	path = construct_array(elems, nelems, TEXTOID, -1, false, TYPALIGN_INT);
	if (cached_comp_lxid == MyProc->lxid && cached_comp_app == app_id && cached_comp_path &&
		VARSIZE(cached_comp_path) == VARSIZE(path) &&
		memcmp(cached_comp_path, path, VARSIZE(path)) == 0 &&
		cached_comp_epoch == expansion_epoch)
		return cached_comp_id;

	values[0] = Int32GetDatum(app_id);
	values[1] = PointerGetDatum(path);
	coco_enter_extension_owner(&uc);
	id = coco_spi_int8("SELECT comp_id FROM coco.component WHERE app_id OPERATOR(pg_catalog.=) $1 "
					   "AND path OPERATOR(pg_catalog.=) $2", 2, types, values, &isnull);
	if (isnull)
		id = coco_spi_int8("INSERT INTO coco.component (app_id, path) VALUES ($1, $2) "
						   "ON CONFLICT (app_id, path) DO UPDATE SET path = EXCLUDED.path "
						   "RETURNING comp_id", 2, types, values, &isnull);
	coco_leave(&uc);
	check_component_owner(app_id, (int) id);

	if (cached_comp_path)
		pfree(cached_comp_path);
	cached_comp_path = MemoryContextAlloc(TopMemoryContext, VARSIZE(path));
	memcpy(cached_comp_path, path, VARSIZE(path));
	cached_comp_app = app_id;
	cached_comp_id = (int) id;
	cached_comp_lxid = MyProc->lxid;
	cached_comp_epoch = expansion_epoch;
	return (int) id;
}

/*
 * The caches are valid within one transaction only while nothing was rolled
 * back: an aborted subtransaction may have taken the rows they describe.
 */
static void
invalidate_on_abort(SubXactEvent event, SubTransactionId mySubid,
					SubTransactionId parentSubid, void *arg)
{
	if (event == SUBXACT_EVENT_ABORT_SUB)
		coco_invalidate_caches();
}

static void
invalidate_on_xact_abort(XactEvent event, void *arg)
{
	if (event == XACT_EVENT_ABORT || event == XACT_EVENT_PARALLEL_ABORT)
	{
		coco_invalidate_caches();
		/* an expansion cut short by an error no caller caught */
		expansion_depth = 0;
	}
}

void
coco_invalidate_caches(void)
{
	cached_app_lxid = InvalidLocalTransactionId;
	cached_comp_lxid = InvalidLocalTransactionId;
}

void
coco_register_cache_callbacks(void)
{
	RegisterSubXactCallback(invalidate_on_abort, NULL);
	RegisterXactCallback(invalidate_on_xact_abort, NULL);
}

/* ---- SQL-callable ------------------------------------------------------ */

static void
check_declare_fn(Oid fn)
{
	HeapTuple	tup = SearchSysCache1(PROCOID, ObjectIdGetDatum(fn));
	Form_pg_proc proc;

	if (!HeapTupleIsValid(tup))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_FUNCTION),
				 errmsg("function with OID %u does not exist", fn)));
	proc = (Form_pg_proc) GETSTRUCT(tup);
	if (proc->pronargs != 1 || proc->proargtypes.values[0] != TEXTOID ||
		proc->prorettype != VOIDOID || proc->proretset)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_FUNCTION_DEFINITION),
				 errmsg("declaration function %s must take (app text) and return void",
						format_procedure(fn))));
	ReleaseSysCache(tup);
	if (pg_proc_aclcheck(fn, GetUserId(), ACL_EXECUTE) != ACLCHECK_OK)
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("permission denied for function %s", format_procedure(fn))));
	coco_check_lasting_function(fn, "an app's declaration function");
}

PG_FUNCTION_INFO_V1(coco_create_app);
Datum
coco_create_app(PG_FUNCTION_ARGS)
{
	char	   *name;
	Oid			types[4] = {TEXTOID, REGROLEOID, REGPROCEDUREOID, TEXTOID};
	Datum		values[4];
	char		nulls[4] = {' ', ' ', ' ', ' '};
	CocoUserContext uc;
	bool		isnull;

	coco_require_arg(fcinfo, 0, "app name");
	name = text_to_cstring(PG_GETARG_TEXT_PP(0));
	check_app_name(name);
	if (PG_ARGISNULL(1))
		nulls[2] = 'n';
	else
		check_declare_fn(PG_GETARG_OID(1));

	values[0] = CStringGetTextDatum(name);
	values[1] = ObjectIdGetDatum(GetUserId());
	values[2] = PG_ARGISNULL(1) ? (Datum) 0 : PG_GETARG_DATUM(1);
	values[3] = CStringGetTextDatum(coco_current_search_path());

	SPI_connect();
	check_schema_version();
	coco_enter_extension_owner(&uc);
	(void) coco_spi_int8("SELECT 1 FROM coco.app WHERE name OPERATOR(pg_catalog.=) $1",
						 1, types, values, &isnull);
	if (!isnull)
		ereport(ERROR,
				(errcode(ERRCODE_DUPLICATE_OBJECT),
				 errmsg("app \"%s\" already exists", name)));
	coco_spi_exec("INSERT INTO coco.app (name, owner, declare_fn, search_path) VALUES ($1, $2, $3, $4)",
				  4, types, values, nulls, SPI_OK_INSERT);
	coco_leave(&uc);
	SPI_finish();
	PG_RETURN_VOID();
}
