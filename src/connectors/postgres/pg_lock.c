/*
 * pg_lock.c — a run's locks on its target tables, and what a lock timeout
 * says.
 *
 * Before the statements of a step on a target table (its DDL, a batch of
 * row writes, an index build) the run takes the lock the step needs on the
 * table itself, so the statements then find it held.  The wait is bounded
 * by coco_target.lock_timeout (PostgreSQL's lock_timeout, set when the run
 * enters the app owner).  PostgreSQL's own error for a timeout names
 * neither the relation nor who holds it; here the timeout is caught as it
 * is raised and raised again (55P03 still) naming the table, the lock the
 * run waited for, how long, and the processes that hold (or wait ahead for)
 * a lock in conflict with it — as pg_blocking_pids would name them.
 */
#include "postgres.h"

#include "catalog/namespace.h"
#include "miscadmin.h"
#include "nodes/makefuncs.h"
#include "storage/lmgr.h"
#include "storage/lock.h"
#include "utils/acl.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"

#include "pg_connector.h"

/* Does any mode of `mask` conflict with `mode`? */
static bool
mask_conflicts(LOCKMASK mask, LOCKMODE mode, LOCKMODE *which)
{
	for (LOCKMODE m = 1; m <= MaxLockMode; m++)
		if ((mask & LOCKBIT_ON(m)) && DoLockModesConflict(m, mode))
		{
			*which = m;
			return true;
		}
	return false;
}

/*
 * The processes in the way of `mode` on `relid`: those holding a lock in
 * conflict with it, or else those waiting ahead for one.  "process 12
 * (AccessExclusiveLock), process 34 (ShareLock)", or NULL if none is left.
 */
static char *
blockers(Oid relid, LOCKMODE mode)
{
	LockData   *data = GetLockStatusData();
	StringInfoData holders;
	StringInfoData waiters;

	initStringInfo(&holders);
	initStringInfo(&waiters);
	for (int i = 0; i < data->nelements; i++)
	{
		LockInstanceData *l = &data->locks[i];
		LOCKMODE	m;

		if (l->locktag.locktag_type != LOCKTAG_RELATION ||
			l->locktag.locktag_field1 != MyDatabaseId ||
			l->locktag.locktag_field2 != relid ||
			l->pid == MyProcPid || l->pid == 0)
			continue;
		if (mask_conflicts(l->holdMask, mode, &m))
			appendStringInfo(&holders, "%sprocess %d (%s)", holders.len > 0 ? ", " : "",
							 l->pid, GetLockmodeName(DEFAULT_LOCKMETHOD, m));
		else if (l->waitLockMode != NoLock && DoLockModesConflict(l->waitLockMode, mode))
			appendStringInfo(&waiters, "%sprocess %d (waiting for %s)", waiters.len > 0 ? ", " : "",
							 l->pid, GetLockmodeName(DEFAULT_LOCKMETHOD, l->waitLockMode));
	}
	if (holders.len > 0)
		return holders.data;
	return waiters.len > 0 ? waiters.data : NULL;
}

/*
 * Take `mode` on the table named `tn` for a step of the run, as the app
 * owner whose work it is.  A table that is not there, or that the app
 * owner may not act on in that mode, is left to the step's own statement
 * and its own error.
 */
void
coco_lock_target_table(const CocoTableName *tn, LOCKMODE mode)
{
	Oid			nsp = get_namespace_oid(tn->schema, true);
	Oid			relid = OidIsValid(nsp) ? get_relname_relid(tn->name, nsp) : InvalidOid;
	MemoryContext cxt = CurrentMemoryContext;
	TimestampTz start;

	if (!OidIsValid(relid))
		return;
	/* as the statement would: only its owner alters it, only a writer writes */
	if (mode >= ShareUpdateExclusiveLock ?
		!pg_class_ownercheck(relid, GetUserId()) :
		pg_class_aclmask(relid, GetUserId(), ACL_INSERT | ACL_UPDATE | ACL_DELETE, ACLMASK_ANY) == 0)
		return;

	start = GetCurrentTimestamp();
	PG_TRY();
	{
		LockRelationOid(relid, mode);
	}
	PG_CATCH();
	{
		ErrorData  *edata;
		long		secs;
		int			usecs;
		char	   *who;

		MemoryContextSwitchTo(cxt);
		edata = CopyErrorData();
		if (edata->sqlerrcode != ERRCODE_LOCK_NOT_AVAILABLE)
			PG_RE_THROW();
		FlushErrorState();
		TimestampDifference(start, GetCurrentTimestamp(), &secs, &usecs);
		who = blockers(relid, mode);
		ereport(ERROR,
				(errcode(ERRCODE_LOCK_NOT_AVAILABLE),
				 errmsg("lock timeout on table \"%s\"", tn->qualified),
				 who ?
				 errdetail("The run waited %ld ms for %s on the table, held by %s.",
						   secs * 1000 + usecs / 1000, GetLockmodeName(DEFAULT_LOCKMETHOD, mode), who) :
				 errdetail("The run waited %ld ms for %s on the table; the processes that held it "
						   "have released it since.",
						   secs * 1000 + usecs / 1000, GetLockmodeName(DEFAULT_LOCKMETHOD, mode)),
				 errhint("A worker run is retried later.  End the blocking transaction, "
						 "or raise coco_target.lock_timeout.")));
	}
	PG_END_TRY();
}
