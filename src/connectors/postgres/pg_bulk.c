/*
 * pg_bulk.c — rows written straight into a table, as COPY does: a batch of
 * slots goes in with one multi-insert (a page of rows per WAL record), then
 * into the table's indexes.  Used only where no user code can be attached:
 * the extension's tracking table, and a table this run has just created.
 */
#include "postgres.h"

#include <xxhash.h>

#include "access/heapam.h"
#include "access/htup_details.h"
#include "access/tableam.h"
#include "access/tupdesc.h"
#include "access/xact.h"
#include "catalog/index.h"
#include "catalog/namespace.h"
#include "catalog/pg_type.h"
#include "executor/executor.h"
#include "executor/tuptable.h"
#include "nodes/params.h"
#include "nodes/parsenodes.h"
#include "storage/buffile.h"
#include "storage/itemptr.h"
#include "tcop/dest.h"
#include "utils/builtins.h"
#include "utils/datum.h"
#include "utils/guc.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/resowner.h"
#include "utils/tuplestore.h"

#include "rowdiff.h"



/*
 * The executor state of a write into `rel` (its indexes opened), range
 * table included: a constraint's or a unique index's error builds its
 * detail from the range table entry of the result relation, and a new
 * index entry for an update asks it which columns changed.
 */
void
result_relation_open(Relation rel, AclMode perms, Bitmapset *updated_cols, bool open_indexes,
					 EState **estate, ResultRelInfo **rri)
{
	RangeTblEntry *rte = makeNode(RangeTblEntry);

	rte->rtekind = RTE_RELATION;
	rte->relid = RelationGetRelid(rel);
	rte->relkind = RelationGetForm(rel)->relkind;
	rte->rellockmode = RowExclusiveLock;
	rte->requiredPerms = perms;
	rte->updatedCols = updated_cols;
	*estate = CreateExecutorState();
	ExecInitRangeTable(*estate, list_make1(rte));
	*rri = makeNode(ResultRelInfo);
	InitResultRelInfo(*rri, rel, 1, NULL, 0);
	if (open_indexes)
		ExecOpenIndices(*rri, false);
}

/*
 * With build_indexes, the table's indexes are left alone while rows go in,
 * for bulk_build_indexes() after them — a sorted build instead of a B-tree
 * descent per row.  Only for a table created in this transaction
 * that no one else can read; a repeated key is then found by the build.
 */
BulkWriter *
bulk_open(Oid relid, MemoryContext cxt, bool build_indexes)
{
	MemoryContext old = MemoryContextSwitchTo(cxt);
	BulkWriter *w = palloc0(sizeof(BulkWriter));

	w->rel = table_open(relid, RowExclusiveLock);
	result_relation_open(w->rel, ACL_INSERT, NULL, !build_indexes, &w->estate, &w->rri);
	w->bistate = GetBulkInsertState();
	w->cid = GetCurrentCommandId(true);
	w->check_constraints = RelationGetDescr(w->rel)->constr != NULL;
	for (int i = 0; i < BULK_BATCH; i++)
		w->slots[i] = table_slot_create(w->rel, NULL);
	w->cxt = AllocSetContextCreate(cxt, "coco_target bulk batch", ALLOCSET_DEFAULT_SIZES);
	MemoryContextSwitchTo(old);
	return w;
}

static void
bulk_flush(BulkWriter *w)
{
	if (w->nslots == 0)
		return;
	table_multi_insert(w->rel, w->slots, w->nslots, w->cid, 0, w->bistate);
	for (int i = 0; i < w->nslots; i++)
	{
		/* a unique index refuses a repeated key here, as an INSERT would */
		(void) ExecInsertIndexTuples(w->rri, w->slots[i], w->estate, false, false, NULL, NIL);
		ResetPerTupleExprContext(w->estate);
		ExecClearTuple(w->slots[i]);
	}
	w->nslots = 0;
	MemoryContextReset(w->cxt);
}

/* The next slot to fill; the caller stores a virtual tuple in it. */
TupleTableSlot *
bulk_slot(BulkWriter *w)
{
	if (w->nslots == BULK_BATCH)
		bulk_flush(w);
	ExecClearTuple(w->slots[w->nslots]);
	return w->slots[w->nslots];
}

void
bulk_stored(BulkWriter *w)
{
	TupleTableSlot *slot = w->slots[w->nslots];

	if (w->check_constraints)
		ExecConstraints(w->rri, slot, w->estate);
	w->nslots++;
}

void
bulk_close(BulkWriter *w)
{
	bulk_flush(w);
	for (int i = 0; i < BULK_BATCH; i++)
		ExecDropSingleTupleTableSlot(w->slots[i]);
	FreeBulkInsertState(w->bistate);
	ExecCloseIndices(w->rri);
	FreeExecutorState(w->estate);
	table_close(w->rel, NoLock);
}

/*
 * The indexes of a table written with build_indexes, built from its rows
 * once they are all in.  The build evaluates index expressions as the
 * table's owner, and checks unique indexes.  It sorts in half of
 * coco_target.work_mem, not in the session's maintenance_work_mem: the
 * run's memory stays within its setting.
 */
void
bulk_build_indexes(Oid relid)
{
	ReindexParams params = {0};
	int			nest = NewGUCNestLevel();
	char		mem[32];

	snprintf(mem, sizeof(mem), "%dkB", Max(coco_work_mem / 2, 1024));
	(void) set_config_option("maintenance_work_mem", mem, PGC_USERSET, PGC_S_SESSION,
							 GUC_ACTION_SAVE, true, 0, false);
	CommandCounterIncrement();
	(void) reindex_relation(relid, REINDEX_REL_CHECK_CONSTRAINTS, &params);
	AtEOXact_GUC(true, nest);
}
