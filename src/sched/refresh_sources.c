/*
 * refresh_sources.c — source-driven refresh, the watching side: which tables
 * an app's persistent queries (coco.synced_table) read, and the extension's
 * statement trigger on each of them (refresh.c is what the trigger does).
 *
 * The sources are found the way the planner would see them: each query is
 * analyzed and rewritten as the app's owner with its stored search_path, so
 * views are expanded, and the trees are walked through subqueries, CTEs and
 * sublinks.  A table with inheritance children or partitions brings them
 * too: a write straight into a partition fires only the partition's
 * statement triggers.  Materialized views, foreign tables and functions in
 * FROM cannot be watched; they are named in a NOTICE.
 *
 * The trigger set follows the queries (coco_refresh_follow_sources): when
 * the option is switched, at every run of the app, and when a persistent
 * declaration changes.  Triggers are created as the app's owner, which
 * needs the TRIGGER privilege on every source it lacks a trigger on (42501,
 * checked for all before any is created).  They are removed by OID, after
 * checking they are the extension's (name and function), without SQL text
 * or user code: the owner may have TRIGGER without owning the table.  Each
 * trigger depends (AUTO) on the extension, so DROP EXTENSION takes them; a
 * restored dump loses that dependency, and the next run records it again.
 * coco.refresh_source registers them, one row per (app, table).
 */
#include "postgres.h"

#include "access/transam.h"
#include "access/xact.h"
#include "catalog/catalog.h"
#include "catalog/dependency.h"
#include "catalog/namespace.h"
#include "catalog/objectaddress.h"
#include "catalog/pg_extension.h"
#include "catalog/pg_inherits.h"
#include "catalog/pg_trigger.h"
#include "catalog/pg_type.h"
#include "commands/extension.h"
#include "commands/trigger.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "nodes/makefuncs.h"
#include "nodes/nodeFuncs.h"
#include "parser/parse_func.h"
#include "parser/parser.h"
#include "storage/lmgr.h"
#include "tcop/tcopprot.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/lsyscache.h"
#include "utils/regproc.h"

#include "coco_internal.h"

/* What the queries read: tables to watch, and what cannot be watched. */
typedef struct SourceWalk
{
	List	   *tables;			/* OIDs, unique */
	List	   *unwatchable;	/* String nodes describing each, unique */
	Oid			coco_schema;
} SourceWalk;

static void
note_unwatchable(SourceWalk *w, char *what)
{
	String	   *s = makeString(what);

	if (!list_member(w->unwatchable, s))
		w->unwatchable = lappend(w->unwatchable, s);
}

static char *
qualified_name(Oid relid)
{
	char	   *nsp = get_namespace_name(get_rel_namespace(relid));
	char	   *rel = get_rel_name(relid);

	return quote_qualified_identifier(nsp, rel ? rel : "?");
}

static void
add_relation(SourceWalk *w, Oid relid, bool with_children)
{
	char		relkind = get_rel_relkind(relid);

	switch (relkind)
	{
		case RELKIND_RELATION:
		case RELKIND_PARTITIONED_TABLE:
			if (IsCatalogRelationOid(relid) || get_rel_namespace(relid) == w->coco_schema)
			{
				note_unwatchable(w, psprintf("system table %s", qualified_name(relid)));
				return;
			}
			w->tables = list_append_unique_oid(w->tables, relid);
			if (with_children || relkind == RELKIND_PARTITIONED_TABLE)
			{
				List	   *all = find_all_inheritors(relid, AccessShareLock, NULL);
				ListCell   *lc;

				foreach(lc, all)
					if (lfirst_oid(lc) != relid)
						add_relation(w, lfirst_oid(lc), false);
			}
			break;
		case RELKIND_MATVIEW:
			note_unwatchable(w, psprintf("materialized view %s", qualified_name(relid)));
			break;
		case RELKIND_FOREIGN_TABLE:
			note_unwatchable(w, psprintf("foreign table %s", qualified_name(relid)));
			break;
		default:
			/* a view's own entry left by the rewriter, a sequence: no data */
			break;
	}
}

/* Built-in functions that run a query they are given as text (ts_stat,
 * query_to_xml, table_to_xml, …): the tables it reads cannot be found. */
static bool
runs_query_text(Oid funcid)
{
	static const char *const names[] = {"ts_stat", "query_to_xml", "query_to_xmlschema",
		"query_to_xml_and_xmlschema", "table_to_xml", "table_to_xmlschema",
		"table_to_xml_and_xmlschema", "cursor_to_xml", "cursor_to_xmlschema",
		"schema_to_xml", "schema_to_xmlschema", "schema_to_xml_and_xmlschema",
	"database_to_xml", "database_to_xmlschema", "database_to_xml_and_xmlschema"};
	char	   *name = get_func_name(funcid);

	if (name == NULL || funcid >= FirstNormalObjectId)
		return false;
	for (int i = 0; i < (int) lengthof(names); i++)
		if (strcmp(name, names[i]) == 0)
			return true;
	return false;
}

static bool
sources_walker(Node *node, SourceWalk *w)
{
	if (node == NULL)
		return false;
	if (IsA(node, RangeTblEntry))
	{
		RangeTblEntry *rte = (RangeTblEntry *) node;
		ListCell   *lc;

		if (rte->rtekind == RTE_RELATION)
			add_relation(w, rte->relid, rte->inh);
		else if (rte->rtekind == RTE_FUNCTION)
			foreach(lc, rte->functions)
			{
				RangeTblFunction *f = lfirst(lc);

				/* a built-in function reads no table of the user's, unless
				 * it runs a query given as text */
				if (IsA(f->funcexpr, FuncExpr) &&
					(((FuncExpr *) f->funcexpr)->funcid >= FirstNormalObjectId ||
					 runs_query_text(((FuncExpr *) f->funcexpr)->funcid)))
					note_unwatchable(w, psprintf("function %s",
												 format_procedure(((FuncExpr *) f->funcexpr)->funcid)));
			}
		/* its subquery, function arguments, …: walked next */
		return false;
	}
	if (IsA(node, Query))
		return query_tree_walker((Query *) node, sources_walker, w, QTW_EXAMINE_RTES_BEFORE);
	return expression_tree_walker(node, sources_walker, w);
}

typedef struct QueryContextArg
{
	const char *app;
	const char *table;
} QueryContextArg;

static void
query_error_context(void *arg)
{
	QueryContextArg *a = arg;

	errcontext("finding the source tables of the query of %s, a persistent declaration of app \"%s\"",
			   a->table, a->app);
}

/* Add the sources of one query, analyzed and rewritten as the owner. */
static void
walk_query(const CocoApp *app, const char *table, const char *query, const char *search_path,
		   SourceWalk *w)
{
	CocoUserContext uc;
	ErrorContextCallback errcb;
	QueryContextArg arg = {app->name, table};
	List	   *raw;
	ListCell   *lc;

	errcb.callback = query_error_context;
	errcb.arg = &arg;
	errcb.previous = error_context_stack;
	error_context_stack = &errcb;
	coco_enter_app_owner(app->owner, search_path, &uc);
	raw = raw_parser(query, RAW_PARSE_DEFAULT);
	foreach(lc, raw)
	{
		List	   *rewritten = pg_analyze_and_rewrite_fixedparams(lfirst_node(RawStmt, lc), query,
																   NULL, 0, NULL);
		ListCell   *lq;

		foreach(lq, rewritten)
			(void) sources_walker((Node *) lfirst(lq), w);
	}
	coco_leave(&uc);
	error_context_stack = errcb.previous;
}

/* The app's persistent queries' sources. */
static SourceWalk
find_sources(const CocoApp *app)
{
	SourceWalk	w = {NIL, NIL, get_namespace_oid("coco", false)};
	CocoUserContext uc;
	Oid			types[1] = {INT4OID};
	Datum		values[1] = {Int32GetDatum(app->app_id)};
	SPITupleTable *queries;
	uint64		n;

	coco_enter_extension_owner(&uc);
	coco_spi_exec("SELECT tbl, query, search_path FROM coco.synced_table "
				  "WHERE app_id OPERATOR(pg_catalog.=) $1 ORDER BY tbl",
				  1, types, values, NULL, SPI_OK_SELECT);
	coco_leave(&uc);
	queries = SPI_tuptable;
	n = SPI_processed;
	for (uint64 i = 0; i < n; i++)
		walk_query(app, SPI_getvalue(queries->vals[i], queries->tupdesc, 1),
				   SPI_getvalue(queries->vals[i], queries->tupdesc, 2),
				   SPI_getvalue(queries->vals[i], queries->tupdesc, 3), &w);
	SPI_freetuptable(queries);
	return w;
}

static Oid
refresh_trigger_function(void)
{
	return LookupFuncName(list_make2(makeString("coco"), makeString("refresh_trigger")), 0, NULL, false);
}

/*
 * The extension's refresh trigger of the app on `relid` (InvalidOid: none):
 * the trigger of that name, provided it calls coco.refresh_trigger() — not
 * a user's trigger that took the name, which is not ours to drop.
 */
static Oid
our_trigger(Oid relid, const char *name, Oid fn)
{
	CocoUserContext uc;
	Oid			types[3] = {OIDOID, TEXTOID, OIDOID};
	Datum		values[3] = {ObjectIdGetDatum(relid), CStringGetTextDatum(name), ObjectIdGetDatum(fn)};
	bool		isnull;
	int64		trigger;

	coco_enter_extension_owner(&uc);
	trigger = coco_spi_int8("SELECT oid::pg_catalog.int8 FROM pg_catalog.pg_trigger "
							"WHERE tgrelid OPERATOR(pg_catalog.=) $1 AND tgname OPERATOR(pg_catalog.=) $2::pg_catalog.name "
							"AND tgfoid OPERATOR(pg_catalog.=) $3",
							3, types, values, &isnull);
	coco_leave(&uc);
	return isnull ? InvalidOid : (Oid) trigger;
}

/* The registered sources of the app whose table still exists; the others' rows go. */
static List *
registered_sources(int app_id)
{
	CocoUserContext uc;
	Oid			types[1] = {INT4OID};
	Datum		values[1] = {Int32GetDatum(app_id)};
	List	   *sources = NIL;

	coco_enter_extension_owner(&uc);
	coco_spi_exec("DELETE FROM coco.refresh_source s WHERE app_id OPERATOR(pg_catalog.=) $1 "
				  "AND NOT EXISTS (SELECT FROM pg_catalog.pg_class c "
				  "                WHERE c.oid OPERATOR(pg_catalog.=) s.source::pg_catalog.oid)",
				  1, types, values, NULL, SPI_OK_DELETE);
	coco_spi_exec("SELECT source::pg_catalog.oid FROM coco.refresh_source "
				  "WHERE app_id OPERATOR(pg_catalog.=) $1",
				  1, types, values, NULL, SPI_OK_SELECT);
	for (uint64 i = 0; i < SPI_processed; i++)
	{
		bool		isnull;

		sources = lappend_oid(sources, DatumGetObjectId(SPI_getbinval(SPI_tuptable->vals[i],
																	  SPI_tuptable->tupdesc, 1, &isnull)));
	}
	coco_leave(&uc);
	return sources;
}

static void
set_registered(int app_id, Oid source, bool registered)
{
	CocoUserContext uc;
	Oid			types[2] = {INT4OID, OIDOID};
	Datum		values[2] = {Int32GetDatum(app_id), ObjectIdGetDatum(source)};

	coco_enter_extension_owner(&uc);
	if (registered)
		coco_spi_exec("INSERT INTO coco.refresh_source (app_id, source) VALUES ($1, $2::pg_catalog.regclass) "
					  "ON CONFLICT DO NOTHING",
					  2, types, values, NULL, SPI_OK_INSERT);
	else
		coco_spi_exec("DELETE FROM coco.refresh_source WHERE app_id OPERATOR(pg_catalog.=) $1 "
					  "AND source::pg_catalog.oid OPERATOR(pg_catalog.=) $2",
					  2, types, values, NULL, SPI_OK_DELETE);
	coco_leave(&uc);
}

/*
 * The trigger goes with the extension (DROP EXTENSION without CASCADE):
 * an AUTO dependency on it, recorded when the trigger is created and again
 * when it is missing — a restored dump has the trigger, not the dependency.
 */
static void
depend_on_extension(Oid trigger)
{
	CocoUserContext uc;
	Oid			extension = get_extension_oid("coco_target", false);
	Oid			types[2] = {OIDOID, OIDOID};
	Datum		values[2] = {ObjectIdGetDatum(trigger), ObjectIdGetDatum(extension)};
	bool		isnull;
	ObjectAddress trigger_addr;
	ObjectAddress extension_addr;

	coco_enter_extension_owner(&uc);
	(void) coco_spi_int8("SELECT 1 FROM pg_catalog.pg_depend "
						 "WHERE classid OPERATOR(pg_catalog.=) 'pg_catalog.pg_trigger'::pg_catalog.regclass "
						 "AND objid OPERATOR(pg_catalog.=) $1 "
						 "AND refclassid OPERATOR(pg_catalog.=) 'pg_catalog.pg_extension'::pg_catalog.regclass "
						 "AND refobjid OPERATOR(pg_catalog.=) $2 AND deptype OPERATOR(pg_catalog.=) 'a'",
						 2, types, values, &isnull);
	coco_leave(&uc);
	if (!isnull)
		return;
	ObjectAddressSet(trigger_addr, TriggerRelationId, trigger);
	ObjectAddressSet(extension_addr, ExtensionRelationId, extension);
	recordDependencyOn(&trigger_addr, &extension_addr, DEPENDENCY_AUTO);
	CommandCounterIncrement();
}

/*
 * CREATE TRIGGER coco_refresh_<app_id> AFTER INSERT OR UPDATE OR DELETE OR
 * TRUNCATE ON source FOR EACH STATEMENT EXECUTE FUNCTION
 * coco.refresh_trigger('<app_id>'), as the app's owner, through the catalog
 * API (no event trigger, no SQL text), depending on the extension.
 */
static void
create_trigger(const CocoApp *app, Oid source, const char *name, Oid fn)
{
	CreateTrigStmt *stmt = makeNode(CreateTrigStmt);
	CocoUserContext uc;
	ObjectAddress trigger;

	stmt->trigname = pstrdup(name);
	stmt->relation = makeRangeVar(get_namespace_name(get_rel_namespace(source)),
								  get_rel_name(source), -1);
	stmt->funcname = list_make2(makeString("coco"), makeString("refresh_trigger"));
	stmt->args = list_make1(makeString(psprintf("%d", app->app_id)));
	stmt->row = false;
	stmt->timing = TRIGGER_TYPE_AFTER;
	stmt->events = TRIGGER_TYPE_INSERT | TRIGGER_TYPE_UPDATE | TRIGGER_TYPE_DELETE | TRIGGER_TYPE_TRUNCATE;

	coco_enter_app_owner(app->owner, NULL, &uc);
	trigger = CreateTrigger(stmt, "coco_target: source-driven refresh", source, InvalidOid,
							InvalidOid, InvalidOid, fn, InvalidOid, NULL, false, false);
	coco_leave(&uc);
	CommandCounterIncrement();
	depend_on_extension(trigger.objectId);
}

static void
dropping_trigger_context(void *arg)
{
	errcontext("removing the refresh trigger on table %s", (const char *) arg);
}

/*
 * Dropping a trigger locks its table exclusively, which waits for every
 * transaction that wrote the table — a prepared one for as long as it
 * stays prepared: the wait is bounded by coco_target.lock_timeout, as a
 * run's waits are (55P03).
 */
static void
drop_trigger(Oid source, const char *name, Oid fn)
{
	Oid			trigger = our_trigger(source, name, fn);
	ObjectAddress addr;
	ErrorContextCallback context;
	int			nest;

	if (!OidIsValid(trigger))
		return;
	context.callback = dropping_trigger_context;
	context.arg = qualified_name(source);
	context.previous = error_context_stack;
	error_context_stack = &context;
	nest = NewGUCNestLevel();
	if (coco_lock_timeout > 0)
		(void) set_config_option("lock_timeout", psprintf("%d", coco_lock_timeout), PGC_USERSET,
								 PGC_S_SESSION, GUC_ACTION_SAVE, true, 0, false);
	LockRelationOid(source, AccessExclusiveLock);
	AtEOXact_GUC(true, nest);
	ObjectAddressSet(addr, TriggerRelationId, trigger);
	performDeletion(&addr, DROP_RESTRICT, PERFORM_DELETION_INTERNAL);
	CommandCounterIncrement();
	error_context_stack = context.previous;
}

static void pg_attribute_noreturn()
lacks_trigger_privilege(const CocoApp *app, Oid source)
{
	char	   *owner = GetUserNameFromId(app->owner, true);
	char	   *table = qualified_name(source);

	ereport(ERROR,
			(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
			 errmsg("owner of app \"%s\" lacks the TRIGGER privilege on table %s, a source of its persistent queries",
					app->name, table),
			 errdetail("Source-driven refresh keeps a statement trigger on each source table, created as the app's owner."),
			 errhint("GRANT TRIGGER ON %s TO %s, or switch refresh off with coco.set_app_option(app, refresh => false).",
					 table, owner ? quote_identifier(owner) : "the owner")));
}

static bool
refresh_wanted(int app_id, bool *any_registered)
{
	CocoUserContext uc;
	Oid			types[1] = {INT4OID};
	Datum		values[1] = {Int32GetDatum(app_id)};
	bool		isnull;
	int64		state;

	coco_enter_extension_owner(&uc);
	state = coco_spi_int8("SELECT (CASE WHEN a.refresh THEN 1 ELSE 0 END) OPERATOR(pg_catalog.+) "
						  "(CASE WHEN EXISTS (SELECT FROM coco.refresh_source s "
						  "  WHERE s.app_id OPERATOR(pg_catalog.=) a.app_id) THEN 2 ELSE 0 END) "
						  "FROM coco.app a WHERE a.app_id OPERATOR(pg_catalog.=) $1",
						  1, types, values, &isnull);
	coco_leave(&uc);
	*any_registered = !isnull && (state & 2) != 0;
	return !isnull && (state & 1) != 0;
}

/*
 * Make the app's triggers match its persistent queries' sources (none when
 * the option is off, or `unwatch`): create the missing ones (also one a
 * user dropped), remove those of tables no longer read.  With `verbose`,
 * what cannot be watched is named in a NOTICE.  Returns the number of
 * tables watched.
 */
static int
follow(const CocoApp *app, bool unwatch, bool verbose)
{
	bool		any_registered;
	bool		wanted = refresh_wanted(app->app_id, &any_registered) && !unwatch;
	SourceWalk	w = {NIL, NIL, InvalidOid};
	List	   *registered;
	List	   *missing = NIL;
	char		name[NAMEDATALEN];
	Oid			fn;
	ListCell   *lc;

	/* most apps: nothing to find, nothing to remove */
	if (!wanted && !any_registered)
		return 0;
	if (wanted)
		w = find_sources(app);
	registered = registered_sources(app->app_id);
	coco_refresh_trigger_name(app->app_id, name);
	fn = refresh_trigger_function();

	foreach(lc, w.tables)
	{
		Oid			source = lfirst_oid(lc);
		Oid			trigger = list_member_oid(registered, source) ?
			our_trigger(source, name, fn) : InvalidOid;

		if (OidIsValid(trigger))
			depend_on_extension(trigger);
		else
			missing = lappend_oid(missing, source);
	}
	/* all or nothing: no trigger is created unless every one can be */
	foreach(lc, missing)
		if (pg_class_aclcheck(lfirst_oid(lc), app->owner, ACL_TRIGGER) != ACLCHECK_OK)
			lacks_trigger_privilege(app, lfirst_oid(lc));
	foreach(lc, missing)
	{
		Oid			source = lfirst_oid(lc);

		Oid			trigger = our_trigger(source, name, fn);

		if (OidIsValid(trigger))
			depend_on_extension(trigger);
		else
			create_trigger(app, source, name, fn);
		set_registered(app->app_id, source, true);
	}
	foreach(lc, registered)
	{
		Oid			source = lfirst_oid(lc);

		if (list_member_oid(w.tables, source))
			continue;
		drop_trigger(source, name, fn);
		set_registered(app->app_id, source, false);
	}
	if (verbose && wanted && w.tables == NIL && w.unwatchable == NIL)
		ereport(NOTICE,
				(errmsg("app \"%s\" has no persistent query to watch yet", app->name),
				 errdetail("Its sources are watched as coco.sync_table() declares queries that read them.")));
	if (verbose)
		foreach(lc, w.unwatchable)
			ereport(NOTICE,
					(errmsg("app \"%s\" reads %s, which source-driven refresh cannot watch",
							app->name, strVal(lfirst(lc))),
					 errdetail("Only writes to tables queue a refresh run; a change to it reaches the app's tables "
							   "at the next run for another reason."),
					 errhint("Read the tables behind it in the query instead, or schedule coco.update().")));
	return list_length(w.tables);
}

/*
 * After the option or a persistent declaration of the app changed (inside
 * SPI, in the caller's transaction, with the app locked): its triggers
 * follow its queries now, and a source the owner may not put a trigger on
 * is refused (42501).  Also the engine's persistent-changed hook.
 */
void
coco_refresh_follow_sources(const CocoApp *app)
{
	(void) follow(app, false, true);
}

/*
 * The engine's persistent-changed hook: coco.sync_table() or
 * coco.unsync_table() changed the app's queries.  The triggers follow them
 * now, and with auto_submit on the commit submits the app.
 */
void
coco_sched_persistent_changed(const CocoApp *app)
{
	coco_note_persistent_changed(app);
	coco_refresh_follow_sources(app);
}

/* Before the app is dropped: every trigger of it goes. */
void
coco_refresh_unwatch_all(const CocoApp *app)
{
	(void) follow(app, true, false);
}

/*
 * At every run of the app (the engine's run hook), with the app locked:
 * cheap when in step — one look at the app's row for an app without
 * refresh; the queries analyzed and the triggers looked up otherwise.
 */
void
coco_refresh_at_run(const CocoApp *app)
{
	(void) follow(app, false, false);
}
