/*
 * pg_tracking.c — a batch of changes written into the tracking
 * (coco.tracked_chunk): the chunks its deleted, changed and moved rows are
 * in, each rewritten once, straight in the heap at the ctid the diff read
 * it at (or an earlier batch left it at); and its new rows, and the rows
 * moved to another component, in new chunks.  Only the runs of a table's
 * app write its tracking, one run at a time (the app's lock); a statement
 * per batch would add a plan, a join and a TID scan per chunk to the same
 * heap writes.
 *
 * A row is found in its chunk by key; a row not there any more was
 * written by an earlier batch of this run, so its key came twice: the
 * caller compares the rows written with what the batch holds.  New rows
 * top up a chunk of their component that has room first, so that runs
 * that each add a few rows do not leave a chunk apiece.
 */
#include "postgres.h"

#include "access/table.h"
#include "access/tableam.h"
#include "access/xact.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "executor/executor.h"
#include "executor/tuptable.h"
#include "miscadmin.h"
#include "nodes/bitmapset.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"
#include "utils/tuplestore.h"

#include "pg_rows.h"
#include "rowdiff.h"

/*
 * A tracked row of the batch, in the chunk it is in: deleted, or given a
 * new fingerprint; or a new row added to the chunk.
 */
typedef struct ChunkEdit
{
	int64		chunk;			/* its number among the chunks read */
	bool		append;			/* a new row: after the chunk's rows */
	KeyHash		key;
	bool		delete;
	bool		done;
	uint8		fp[COCO_FINGERPRINT_LEN];
	bytea	   *keybytes;		/* the row's key; names it in an error */
} ChunkEdit;

typedef struct TrackingWriter
{
	MemoryContext cxt;			/* the writer's, gone when it closes */
	MemoryContext chunkcxt;		/* one chunk's, reset after each */
	CocoTrackedChunks *chunks;
	Relation	rel;
	EState	   *estate;
	ResultRelInfo *rri;
	TupleTableSlot *old;		/* the version read at the ctid */
	TupleTableSlot *new;		/* the version written */
	CommandId	cid;
	Snapshot	snapshot;
	const CocoTableSpec *spec;	/* the table whose rows these track */
} TrackingWriter;

static void
writer_open(TrackingWriter *w, CocoTrackedChunks *chunks)
{
	MemoryContext cxt = AllocSetContextCreate(CurrentMemoryContext, "coco_target tracking writes",
											  ALLOCSET_DEFAULT_SIZES);
	MemoryContext old = MemoryContextSwitchTo(cxt);
	Bitmapset  *updated = NULL;

	w->cxt = cxt;
	w->chunkcxt = AllocSetContextCreate(cxt, "coco_target tracking chunk", ALLOCSET_DEFAULT_SIZES);
	w->chunks = chunks;
	w->rel = table_open(coco_tracked_chunk_relid(), RowExclusiveLock);
	if (RelationGetDescr(w->rel)->natts != CHUNK_NATTS)
		elog(ERROR, "coco_target: coco.tracked_chunk is not as this version of the extension made it");

	/* an UPDATE of the count and the rows */
	updated = bms_add_member(updated, CHUNK_NROWS + 1 - FirstLowInvalidHeapAttributeNumber);
	updated = bms_add_member(updated, CHUNK_ROWS + 1 - FirstLowInvalidHeapAttributeNumber);
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
 * Another transaction wrote a chunk of a table's tracked rows: only the
 * app's runs may, one at a time.  The chunk is named by the key of a row
 * in it, where one is at hand (NULL: none).
 */
void
coco_tracking_written_concurrently(const CocoTableSpec *spec, bytea *key)
{
	ereport(ERROR,
			(errcode(ERRCODE_T_R_SERIALIZATION_FAILURE),
			 errmsg("the tracked rows of table \"%s\" were changed by another transaction during a run",
					spec->tn.qualified),
			 key != NULL ?
			 errdetail("The chunk of coco.tracked_chunk that holds the tracked row with key %s was written by another transaction.",
					   coco_describe_row_key(spec, VARDATA_ANY(key), VARSIZE_ANY_EXHDR(key))) : 0,
			 errhint("Only the runs of an app write its tracked rows; retry the run.")));
}

static int
cmp_key_hash(const void *a, const void *b)
{
	const KeyHash *x = a;
	const KeyHash *y = b;

	if (x->a != y->a)
		return x->a < y->a ? -1 : 1;
	if (x->b != y->b)
		return x->b < y->b ? -1 : 1;
	return 0;
}

/* By chunk, a chunk's rows before its new rows, then by key */
static int
cmp_edit(const void *a, const void *b)
{
	const ChunkEdit *x = a;
	const ChunkEdit *y = b;

	if (x->chunk != y->chunk)
		return x->chunk < y->chunk ? -1 : 1;
	if (x->append != y->append)
		return x->append ? 1 : -1;
	return cmp_key_hash(&x->key, &y->key);
}

/*
 * The edits of one chunk (those of its rows sorted by key, then the new
 * rows) applied to it: its rows rewritten without the deleted ones, with
 * the new fingerprints and the new rows, or the chunk deleted when none is
 * left.  Returns how many of the edits of its rows found their row.
 */
static int64
rewrite_chunk(TrackingWriter *w, ChunkEdit *edits, int n)
{
	int			nmatch = 0;

	ChunkInfo  *info = &w->chunks->chunk[edits[0].chunk];
	TupleDesc	desc = RelationGetDescr(w->rel);
	MemoryContext old = MemoryContextSwitchTo(w->chunkcxt);
	TM_FailureData tmfd;
	TM_Result	result;
	int32		comp;
	int64		chunk_id;
	bytea	   *rows;
	ChunkReader reader;
	ChunkRow	row;
	StringInfoData kept;
	int32		nkept = 0;
	int64		found = 0;

	/*
	 * Gone: an earlier batch deleted all its rows, these among them (a key
	 * that came twice), or another transaction deleted it.
	 */
	if (!table_tuple_fetch_row_version(w->rel, &info->tid, w->snapshot, w->old))
	{
		if (!info->emptied)
			coco_tracking_written_concurrently(w->spec, edits[0].keybytes);
		MemoryContextSwitchTo(old);
		MemoryContextReset(w->chunkcxt);
		return 0;
	}
	/* deformed whole in the slot: the new version copies the other columns */
	chunk_slot_deform(w->old, &comp, &chunk_id, &rows);
	while (nmatch < n && !edits[nmatch].append)
		nmatch++;
	initStringInfo(&kept);
	chunk_reader_init(&reader, rows);
	while (chunk_read(&reader, &row))
	{
		ChunkEdit	probe;
		ChunkEdit  *e;

		probe.chunk = edits[0].chunk;
		probe.append = false;
		key_hash(row.key, row.keylen, &probe.key);
		e = bsearch(&probe, edits, nmatch, sizeof(ChunkEdit), cmp_edit);
		if (e == NULL || e->done)
		{
			chunk_put(&kept, row.flags, row.fp, row.key, row.keylen);
			nkept++;
			continue;
		}
		e->done = true;
		found++;
		if (!e->delete)
		{
			chunk_put(&kept, 0, e->fp, row.key, row.keylen);
			nkept++;
		}
	}
	for (int i = nmatch; i < n; i++)
	{
		chunk_put(&kept, 0, edits[i].fp, VARDATA_ANY(edits[i].keybytes),
				  VARSIZE_ANY_EXHDR(edits[i].keybytes));
		nkept++;
	}
	if (found == 0 && nmatch == n)
	{
		ExecClearTuple(w->old);
		MemoryContextSwitchTo(old);
		MemoryContextReset(w->chunkcxt);
		return 0;
	}
	info->bytes = kept.len;

	if (nkept == 0)
	{
		result = table_tuple_delete(w->rel, &info->tid, w->cid, w->snapshot, InvalidSnapshot, true,
									&tmfd, false);
		info->emptied = result == TM_Ok;
	}
	else
	{
		LockTupleMode lockmode;
		bool		update_indexes;

		ExecClearTuple(w->new);
		memcpy(w->new->tts_values, w->old->tts_values, sizeof(Datum) * desc->natts);
		memcpy(w->new->tts_isnull, w->old->tts_isnull, sizeof(bool) * desc->natts);
		w->new->tts_values[CHUNK_NROWS] = Int32GetDatum(nkept);
		w->new->tts_values[CHUNK_ROWS] = PointerGetDatum(cstring_to_text_with_len(kept.data, kept.len));
		ExecStoreVirtualTuple(w->new);
		/* the new version is formed while the old one's page is still pinned */
		result = table_tuple_update(w->rel, &info->tid, w->new, w->cid, w->snapshot, InvalidSnapshot,
									true, &tmfd, &lockmode, &update_indexes);
		if (result == TM_Ok)
		{
			info->tid = w->new->tts_tid;
			if (update_indexes)
				(void) ExecInsertIndexTuples(w->rri, w->new, w->estate, true, false, NULL, NIL);
			ResetPerTupleExprContext(w->estate);
		}
	}
	ExecClearTuple(w->old);
	switch (result)
	{
		case TM_Ok:
			break;
		case TM_SelfModified:
			found = 0;
			break;
		default:
			coco_tracking_written_concurrently(w->spec, edits[0].keybytes);
	}
	MemoryContextSwitchTo(old);
	MemoryContextReset(w->chunkcxt);
	return found;
}

static ChunkEdit *
new_edit(ChunkEdit **edits, int64 *n, int64 *max)
{
	if (*n == *max)
	{
		*max *= 2;
		*edits = repalloc_huge(*edits, sizeof(ChunkEdit) * *max);
	}
	return &(*edits)[(*n)++];
}

/* The chunk new rows of a component went into last, while it has room. */
typedef struct ChunkRoom
{
	int32		comp;
	int64		chunk;
} ChunkRoom;

/*
 * A chunk of component `comp`, read by the diff and not emptied, with room
 * for `bytes` more (reserved for them), or -1.  The last one found is
 * tried first; otherwise the last 64 chunks read are searched (the newest
 * lie at the heap's end), once: when the one found is full, or none had
 * room, the component's next rows go to new chunks.
 */
static int64
chunk_with_room(CocoTrackedChunks *chunks, int32 comp, int bytes, ChunkRoom *hint)
{
	int64		found = -1;

	/* none had room: the rest go to new chunks */
	if (hint->chunk == -2 && hint->comp == comp)
		return -1;
	if (hint->chunk >= 0 && hint->comp == comp)
		found = hint->chunk;
	else
		for (int64 i = chunks->n - 1; i >= 0 && i >= chunks->n - 64; i--)
			if (chunks->chunk[i].comp == comp && !chunks->chunk[i].emptied &&
				chunks->chunk[i].bytes + bytes <= CHUNK_MAX_BYTES)
			{
				found = i;
				break;
			}
	if (found < 0 || chunks->chunk[found].emptied ||
		chunks->chunk[found].bytes + bytes > CHUNK_MAX_BYTES)
	{
		hint->comp = comp;
		hint->chunk = -2;
		return -1;
	}
	chunks->chunk[found].bytes += bytes;
	hint->comp = comp;
	hint->chunk = found;
	return found;
}

/*
 * Write a batch's changes into the tracking of table `target_id` (as the
 * extension owner): delete the tracked rows of its deletions, give those
 * of its changed rows their new fingerprint, and pack its new rows, and
 * the rows that moved to another component, into new chunks.  `chunks`:
 * the chunks the diff read, which the batch's rows name.  Returns in
 * `written` how many of the batch's tracked rows were deleted or updated:
 * fewer than the batch holds means a key came twice.  `spec`: the table
 * the batch writes, named with the row's key should another transaction
 * have written a chunk.
 */
void
coco_tracking_write(Tuplestorestate *batch, TupleDesc desc, CocoTrackedChunks *chunks,
					int32 app_id, int64 target_id, const CocoTableSpec *spec, int64 *written)
{
	TrackingWriter w;
	TupleTableSlot *slot;
	ChunkAppender *appender = NULL;
	ChunkEdit  *edits;
	int64		nedits = 0;
	int64		maxedits = 1024;
	ChunkRoom	hint = {-1, -1};
	MemoryContext old;

	writer_open(&w, chunks);
	w.spec = spec;
	old = MemoryContextSwitchTo(w.cxt);
	edits = palloc(sizeof(ChunkEdit) * maxedits);
	slot = MakeSingleTupleTableSlot(desc, &TTSOpsMinimalTuple);
	*written = 0;
	/* the batch's own read pointer: its statements use others */
	tuplestore_select_read_pointer(batch, 0);
	tuplestore_rescan(batch);
	while (tuplestore_gettupleslot(batch, true, false, slot))
	{
		bool		isnull;
		bool		tid_null;
		bool		comp_null;
		bool		fp_null;
		int			op = DatumGetInt32(slot_getattr(slot, COCO_CH_OP + 1, &isnull));
		Datum		tid = slot_getattr(slot, COCO_CH_TID + 1, &tid_null);
		bytea	   *key = DatumGetByteaPCopy(slot_getattr(slot, COCO_CH_KEY + 1, &isnull));
		Datum		comp = slot_getattr(slot, COCO_CH_COMP + 1, &comp_null);
		Datum		fp = slot_getattr(slot, COCO_CH_FP + 1, &fp_null);
		ChunkEdit  *e;

		CHECK_FOR_INTERRUPTS();
		/* a new row, or one moved here from another component */
		if (op == COCO_OP_INSERT ||
			(op != COCO_OP_DELETE && !tid_null && !comp_null &&
			 DatumGetInt32(comp) != chunks->chunk[ItemPointerGetBlockNumber((ItemPointer) DatumGetPointer(tid))].comp))
		{
			const uint8 *fpbytes;
			int64		room;

			if (comp_null || fp_null)
				elog(ERROR, "coco_target: a new row of table \"%s\" has no component or fingerprint",
					 spec->tn.qualified);
			fpbytes = (const uint8 *) VARDATA_ANY(DatumGetByteaPP(fp));
			room = chunk_with_room(chunks, DatumGetInt32(comp),
								   chunk_row_bytes(VARSIZE_ANY_EXHDR(key)), &hint);
			if (room >= 0)
			{
				e = new_edit(&edits, &nedits, &maxedits);
				e->chunk = room;
				e->append = true;
				e->delete = false;
				e->done = false;
				memset(&e->key, 0, sizeof(KeyHash));
				memcpy(e->fp, fpbytes, COCO_FINGERPRINT_LEN);
				e->keybytes = key;
			}
			else
			{
				if (appender == NULL)
					appender = chunk_appender_open(app_id, target_id, chunks->next_id, w.cxt);
				chunk_appender_add(appender, DatumGetInt32(comp), 0, fpbytes,
								   VARDATA_ANY(key), VARSIZE_ANY_EXHDR(key));
			}
			if (op == COCO_OP_INSERT)
				continue;
		}
		/* never without a tid; a row that were would be left out, and counted so */
		if (tid_null || (op != COCO_OP_DELETE && (comp_null || fp_null)))
			continue;
		e = new_edit(&edits, &nedits, &maxedits);
		e->chunk = ItemPointerGetBlockNumber((ItemPointer) DatumGetPointer(tid));
		e->append = false;
		key_hash(VARDATA_ANY(key), VARSIZE_ANY_EXHDR(key), &e->key);
		e->keybytes = key;
		e->done = false;
		/* moved away: deleted from its old component's chunk */
		e->delete = op == COCO_OP_DELETE || DatumGetInt32(comp) != chunks->chunk[e->chunk].comp;
		if (!e->delete)
			memcpy(e->fp, VARDATA_ANY(DatumGetByteaPP(fp)), COCO_FINGERPRINT_LEN);
	}
	ExecDropSingleTupleTableSlot(slot);

	qsort(edits, nedits, sizeof(ChunkEdit), cmp_edit);
	for (int64 i = 0; i < nedits;)
	{
		int64		j = i;

		while (j < nedits && edits[j].chunk == edits[i].chunk)
			j++;
		*written += rewrite_chunk(&w, edits + i, (int) (j - i));
		i = j;
	}
	if (appender != NULL)
		chunks->next_id = chunk_appender_close(appender);
	MemoryContextSwitchTo(old);
	writer_close(&w);
}

/*
 * coco.verify's repair: mark the tracked rows of table `target_id` with
 * these keys (a bytea[]) so that the next diff writes them again.  As the
 * extension owner.  Returns the rows marked; `comps` gets the components
 * they belong to (an int4[]), whose row sets must be diffed again.
 */
int64
coco_tracking_mark(int64 target_id, Datum keys, Datum *comps)
{
	Oid			types[2] = {INT8OID, BYTEAARRAYOID};
	Datum		values[2] = {Int64GetDatum(target_id), keys};
	Oid			utypes[2] = {TIDOID, BYTEAOID};
	ArrayType  *arr = DatumGetArrayTypeP(keys);
	Datum	   *kd;
	bool	   *kn;
	int			nk;
	KeyHash    *hashes;
	SPITupleTable *chunks;
	uint64		nchunks;
	int64		marked = 0;
	ArrayBuildState *marked_comps = initArrayResult(INT4OID, CurrentMemoryContext, false);

	deconstruct_array(arr, BYTEAOID, -1, false, TYPALIGN_INT, &kd, &kn, &nk);
	hashes = palloc(sizeof(KeyHash) * Max(nk, 1));
	for (int i = 0; i < nk; i++)
		key_hash(VARDATA_ANY(DatumGetByteaPP(kd[i])), VARSIZE_ANY_EXHDR(DatumGetByteaPP(kd[i])), &hashes[i]);
	qsort(hashes, nk, sizeof(KeyHash), cmp_key_hash);

	coco_spi_exec("SELECT ctid, comp_id, rows FROM coco.tracked_chunk WHERE target_id OPERATOR(pg_catalog.=) $1",
				  1, types, values, NULL, SPI_OK_SELECT);
	chunks = SPI_tuptable;
	nchunks = SPI_processed;
	for (uint64 c = 0; c < nchunks; c++)
	{
		HeapTuple	tup = chunks->vals[c];
		bool		isnull;
		ItemPointer tid = (ItemPointer) DatumGetPointer(SPI_getbinval(tup, chunks->tupdesc, 1, &isnull));
		int32		comp = DatumGetInt32(SPI_getbinval(tup, chunks->tupdesc, 2, &isnull));
		bytea	   *rows = DatumGetByteaPP(SPI_getbinval(tup, chunks->tupdesc, 3, &isnull));
		StringInfoData out;
		ChunkReader reader;
		ChunkRow	row;
		int			n = 0;
		bool		changed = false;

		CHECK_FOR_INTERRUPTS();
		initStringInfo(&out);
		chunk_reader_init(&reader, rows);
		while (chunk_read(&reader, &row))
		{
			uint8		flags = row.flags;
			KeyHash		h;

			key_hash(row.key, row.keylen, &h);
			if (bsearch(&h, hashes, nk, sizeof(KeyHash), cmp_key_hash) != NULL)
			{
				changed |= !(flags & CHUNK_ROW_MARKED);
				flags |= CHUNK_ROW_MARKED;
				n++;
			}
			chunk_put(&out, flags, row.fp, row.key, row.keylen);
		}
		if (changed)
		{
			Datum		uvalues[2] = {PointerGetDatum(tid),
			PointerGetDatum(cstring_to_text_with_len(out.data, out.len))};

			coco_spi_exec("UPDATE coco.tracked_chunk SET rows = $2 WHERE ctid OPERATOR(pg_catalog.=) $1",
						  2, utypes, uvalues, NULL, SPI_OK_UPDATE);
		}
		if (n > 0)
		{
			marked += n;
			accumArrayResult(marked_comps, Int32GetDatum(comp), false, INT4OID, CurrentMemoryContext);
		}
		pfree(out.data);
	}
	SPI_freetuptable(chunks);
	*comps = makeArrayResult(marked_comps, CurrentMemoryContext);
	return marked;
}
