/*
 * pg_tracking.c — the tracking heap, coco.tracked_row: where it is, and a
 * batch's changes to its rows written straight into it at the ctid the
 * diff read each row at.  Only the runs of a table's app write its tracked
 * rows, one run at a time (the app's lock); a statement per batch added a
 * plan, a join and a TID scan per row to the same heap writes.
 *
 * What the statements did, these do: a row is written only if this run
 * still sees it at that ctid (a row rewritten by an earlier batch is not
 * there any more), and an update skips a row this pass has stamped
 * already; the caller compares the counts with what the batch holds.
 */
#include "postgres.h"

#include "access/table.h"
#include "access/tableam.h"
#include "access/xact.h"
#include "catalog/namespace.h"
#include "executor/executor.h"
#include "executor/tuptable.h"
#include "miscadmin.h"
#include "nodes/bitmapset.h"
#include "nodes/makefuncs.h"
#include "nodes/parsenodes.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"
#include "utils/tuplestore.h"

#include "pg_rows.h"
#include "rowdiff.h"

Oid
coco_tracked_row_relid(void)
{
	return RangeVarGetRelid(makeRangeVar("coco", "tracked_row", -1), NoLock, false);
}

AttrNumber
coco_tracked_row_attnum(Relation rel, const char *name)
{
	AttrNumber	attnum = get_attnum(RelationGetRelid(rel), name);

	if (attnum == InvalidAttrNumber)
		elog(ERROR, "coco_target: coco.tracked_row has no column \"%s\"", name);
	return attnum;
}

typedef struct TrackingWriter
{
	MemoryContext cxt;			/* the writer's, gone when it closes */
	MemoryContext rowcxt;		/* one row's, reset after each */
	Relation	rel;
	EState	   *estate;
	ResultRelInfo *rri;
	TupleTableSlot *old;		/* the version read at the ctid */
	TupleTableSlot *new;		/* the version written */
	CommandId	cid;
	Snapshot	snapshot;
	AttrNumber	comp_att;
	AttrNumber	fp_att;
	AttrNumber	pass_att;
	const CocoTableSpec *spec;	/* the table whose rows these track */
	TupleTableSlot *change;		/* the batch's row being written */
} TrackingWriter;

static void
writer_open(TrackingWriter *w)
{
	MemoryContext cxt = AllocSetContextCreate(CurrentMemoryContext, "coco_target tracking writes",
											  ALLOCSET_DEFAULT_SIZES);
	MemoryContext old = MemoryContextSwitchTo(cxt);
	Bitmapset  *updated = NULL;

	w->cxt = cxt;
	w->rowcxt = AllocSetContextCreate(cxt, "coco_target tracking row", ALLOCSET_SMALL_SIZES);
	w->rel = table_open(coco_tracked_row_relid(), RowExclusiveLock);
	w->comp_att = coco_tracked_row_attnum(w->rel, "comp_id");
	w->fp_att = coco_tracked_row_attnum(w->rel, "fp");
	w->pass_att = coco_tracked_row_attnum(w->rel, "pass_id");

	/* an UPDATE of those columns */
	updated = bms_add_member(updated, w->comp_att - FirstLowInvalidHeapAttributeNumber);
	updated = bms_add_member(updated, w->fp_att - FirstLowInvalidHeapAttributeNumber);
	updated = bms_add_member(updated, w->pass_att - FirstLowInvalidHeapAttributeNumber);
	result_relation_open(w->rel, ACL_UPDATE, updated, true, &w->estate, &w->rri);
	w->old = table_slot_create(w->rel, NULL);
	w->new = MakeSingleTupleTableSlot(RelationGetDescr(w->rel), &TTSOpsVirtual);
	/* as a statement would: after what the run wrote so far */
	CommandCounterIncrement();
	w->cid = GetCurrentCommandId(true);
	PushActiveSnapshot(GetTransactionSnapshot());
	w->snapshot = GetActiveSnapshot();
	MemoryContextSwitchTo(old);
}

static void
writer_close(TrackingWriter *w)
{
	PopActiveSnapshot();
	ExecDropSingleTupleTableSlot(w->old);
	ExecDropSingleTupleTableSlot(w->new);
	ExecCloseIndices(w->rri);
	FreeExecutorState(w->estate);
	/* the lock stays until the end of the transaction, as a statement's would */
	table_close(w->rel, NoLock);
	MemoryContextDelete(w->cxt);
	/* the statements after these see what they wrote */
	CommandCounterIncrement();
}

/*
 * Another transaction wrote a tracked row: only the app's runs may, one at
 * a time.  The row is named by the key of the batch's row being written.
 */
static void
written_concurrently(TrackingWriter *w)
{
	bool		isnull;
	Datum		datum = slot_getattr(w->change, COCO_CH_KEY + 1, &isnull);
	bytea	   *key = isnull ? NULL : DatumGetByteaPP(datum);

	ereport(ERROR,
			(errcode(ERRCODE_T_R_SERIALIZATION_FAILURE),
			 key != NULL ?
			 errmsg("the tracked row with key %s of table \"%s\" was changed by another transaction during a run",
					coco_describe_row_key(w->spec, VARDATA_ANY(key), VARSIZE_ANY_EXHDR(key)),
					w->spec->tn.qualified) :
			 errmsg("a tracked row of table \"%s\" was changed by another transaction during a run",
					w->spec->tn.qualified),
			 errdetail("The row is in coco.tracked_row."),
			 errhint("Only the runs of an app write its tracked rows; retry the run.")));
}

/* false: this run no longer sees the row there (it deleted or rewrote it) */
static bool
delete_tracked(TrackingWriter *w, ItemPointer tid)
{
	TM_FailureData tmfd;

	if (!table_tuple_fetch_row_version(w->rel, tid, w->snapshot, w->old))
		return false;
	ExecClearTuple(w->old);
	switch (table_tuple_delete(w->rel, tid, w->cid, w->snapshot, InvalidSnapshot, true, &tmfd, false))
	{
		case TM_Ok:
			return true;
		case TM_SelfModified:
			return false;
		default:
			written_concurrently(w);
	}
	return false;
}

/* false: not there any more, as above, or stamped by this pass already */
static bool
update_tracked(TrackingWriter *w, ItemPointer tid, Datum comp, Datum fp, int64 pass_id)
{
	TupleDesc	desc = RelationGetDescr(w->rel);
	TM_FailureData tmfd;
	LockTupleMode lockmode;
	bool		update_indexes;
	TM_Result	result;

	if (!table_tuple_fetch_row_version(w->rel, tid, w->snapshot, w->old))
		return false;
	slot_getallattrs(w->old);
	if (DatumGetInt64(w->old->tts_values[w->pass_att - 1]) == pass_id)
	{
		ExecClearTuple(w->old);
		return false;
	}
	ExecClearTuple(w->new);
	memcpy(w->new->tts_values, w->old->tts_values, sizeof(Datum) * desc->natts);
	memcpy(w->new->tts_isnull, w->old->tts_isnull, sizeof(bool) * desc->natts);
	w->new->tts_values[w->comp_att - 1] = comp;
	w->new->tts_values[w->fp_att - 1] = fp;
	w->new->tts_values[w->pass_att - 1] = Int64GetDatum(pass_id);
	ExecStoreVirtualTuple(w->new);
	/* the new version is formed while the old one's page is still pinned */
	result = table_tuple_update(w->rel, tid, w->new, w->cid, w->snapshot, InvalidSnapshot, true,
								&tmfd, &lockmode, &update_indexes);
	ExecClearTuple(w->old);
	switch (result)
	{
		case TM_Ok:
			break;
		case TM_SelfModified:
			return false;
		default:
			written_concurrently(w);
	}
	if (update_indexes)
		(void) ExecInsertIndexTuples(w->rri, w->new, w->estate, true, false, NULL, NIL);
	ResetPerTupleExprContext(w->estate);
	return true;
}

/*
 * Delete the tracked rows of the batch's deletions, and update those of
 * its changed and moved rows to their component and fingerprint, stamped
 * with the pass.  Returns in `written` how many of the batch's rows were
 * deleted or updated: fewer than the batch holds means a key came twice.
 * `spec`: the table the batch writes, named with the row's key should
 * another transaction have written a tracked row.
 */
void
coco_tracking_write(Tuplestorestate *batch, TupleDesc desc, int64 pass_id,
					const CocoTableSpec *spec, int64 *written)
{
	TrackingWriter w;
	TupleTableSlot *slot;

	writer_open(&w);
	slot = MakeSingleTupleTableSlot(desc, &TTSOpsMinimalTuple);
	w.spec = spec;
	w.change = slot;
	*written = 0;
	/* the batch's own read pointer: its statements use others */
	tuplestore_select_read_pointer(batch, 0);
	tuplestore_rescan(batch);
	while (tuplestore_gettupleslot(batch, true, false, slot))
	{
		bool		isnull;
		int			op = DatumGetInt32(slot_getattr(slot, COCO_CH_OP + 1, &isnull));
		Datum		tid = slot_getattr(slot, COCO_CH_TID + 1, &isnull);
		MemoryContext old;

		if (op == COCO_OP_INSERT || isnull)
			continue;
		CHECK_FOR_INTERRUPTS();
		old = MemoryContextSwitchTo(w.rowcxt);
		if (op == COCO_OP_DELETE)
			*written += delete_tracked(&w, (ItemPointer) DatumGetPointer(tid));
		else
		{
			bool		comp_null;
			bool		fp_null;
			Datum		comp = slot_getattr(slot, COCO_CH_COMP + 1, &comp_null);
			Datum		fp = slot_getattr(slot, COCO_CH_FP + 1, &fp_null);

			/* never null; a row that were would be left out, and counted so */
			if (!comp_null && !fp_null)
				*written += update_tracked(&w, (ItemPointer) DatumGetPointer(tid), comp, fp, pass_id);
		}
		MemoryContextSwitchTo(old);
		MemoryContextReset(w.rowcxt);
	}
	ExecDropSingleTupleTableSlot(slot);
	writer_close(&w);
}
