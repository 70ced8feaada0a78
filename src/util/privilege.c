/*
 * privilege.c — whose rights each piece of work runs with.
 *
 * Two identities matter.  The extension's bookkeeping (staging, tracking,
 * runs) is written as the extension's owner, with the search_path pinned.
 * Everything done to targets and every piece of user-supplied SQL runs as
 * the app's owner in a restricted security context — the pattern core uses
 * for REFRESH MATERIALIZED VIEW — so nobody can make the reconciler do what
 * the app's owner could not do.  Leaving restores the caller's identity and
 * GUCs; an error unwinds both with the transaction.
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "catalog/namespace.h"
#include "catalog/pg_extension.h"
#include "commands/extension.h"
#include "miscadmin.h"
#include "storage/proc.h"
#include "utils/guc.h"
#include "utils/syscache.h"
#include "access/table.h"
#include "access/genam.h"
#include "utils/fmgroids.h"
#include "utils/rel.h"

#include "coco_internal.h"

Oid
coco_extension_owner_id(void)
{
	Oid			ext = get_extension_oid("coco_target", false);
	Relation	rel;
	SysScanDesc scan;
	ScanKeyData key;
	HeapTuple	tup;
	Oid			owner;

	rel = table_open(ExtensionRelationId, AccessShareLock);
	ScanKeyInit(&key, Anum_pg_extension_oid, BTEqualStrategyNumber, F_OIDEQ,
				ObjectIdGetDatum(ext));
	scan = systable_beginscan(rel, ExtensionOidIndexId, true, NULL, 1, &key);
	tup = systable_getnext(scan);
	if (!HeapTupleIsValid(tup))
		elog(ERROR, "extension coco_target not found");
	owner = ((Form_pg_extension) GETSTRUCT(tup))->extowner;
	systable_endscan(scan);
	table_close(rel, AccessShareLock);
	return owner;
}

static void
enter(Oid userid, int sec_flags, const char *search_path, CocoUserContext *ctx)
{
	GetUserIdAndSecContext(&ctx->save_userid, &ctx->save_sec_context);
	SetUserIdAndSecContext(userid, ctx->save_sec_context | sec_flags);
	ctx->save_nestlevel = NewGUCNestLevel();
	(void) set_config_option("search_path", search_path,
							 PGC_USERSET, PGC_S_SESSION, GUC_ACTION_SAVE, true, 0, false);
}

/* Cached per transaction: the extension owner does not change mid-run. */
static Oid	cached_owner = InvalidOid;
static LocalTransactionId cached_owner_lxid = InvalidLocalTransactionId;

void
coco_enter_extension_owner(CocoUserContext *ctx)
{
	if (cached_owner_lxid != MyProc->lxid || !OidIsValid(cached_owner))
	{
		cached_owner = coco_extension_owner_id();
		cached_owner_lxid = MyProc->lxid;
	}
	enter(cached_owner, SECURITY_LOCAL_USERID_CHANGE, COCO_SAFE_SEARCH_PATH, ctx);
}

/*
 * The app's work: its targets' DDL and DML, its queries and functions.  It
 * waits for a lock at most coco_target.lock_timeout, so a run does not
 * queue behind a long transaction (and everyone queued behind the run's
 * own lock request) forever; the worker retries a run that timed out.
 */
void
coco_enter_app_owner(Oid owner, const char *search_path, CocoUserContext *ctx)
{
	enter(owner, SECURITY_LOCAL_USERID_CHANGE | SECURITY_RESTRICTED_OPERATION,
		  search_path ? search_path : COCO_SAFE_SEARCH_PATH, ctx);
	if (coco_lock_timeout > 0)
	{
		char		value[32];

		snprintf(value, sizeof(value), "%d", coco_lock_timeout);
		(void) set_config_option("lock_timeout", value, PGC_USERSET, PGC_S_SESSION,
								 GUC_ACTION_SAVE, true, 0, false);
	}
}

void
coco_leave(CocoUserContext *ctx)
{
	AtEOXact_GUC(false, ctx->save_nestlevel);
	SetUserIdAndSecContext(ctx->save_userid, ctx->save_sec_context);
}

char *
coco_current_search_path(void)
{
	return pstrdup(namespace_search_path);
}

/* For connectors: bookkeeping of their own, as the extension owner. */
void
coco_as_extension_owner(void (*fn) (void *arg), void *arg)
{
	CocoUserContext ctx;

	coco_enter_extension_owner(&ctx);
	fn(arg);
	coco_leave(&ctx);
}
