/*
 * tracked_chunk.c — tracked rows packed into chunks (coco.tracked_chunk).
 *
 * A row per tracked row cost a heap row of about 84 bytes and an entry in
 * a primary key for each: loading a million rows wrote a million B-tree
 * entries one at a time, which took as long as the rest of the load.  A
 * chunk packs about sixty of a component's rows (key and fingerprint, 18
 * bytes and the key) into one heap row with one index entry.  The run
 * reads every chunk of a table (pg_tracking.c), and rewrites those its
 * changes touch; rows are found in a chunk by key, never by position.
 *
 * Keys are unique per table: no index says so any more, the diff does
 * (it reads the rows of every component of the table, and a declared key
 * that another component's row holds fails the run), as does the load
 * (the created table's primary key, or a check after a user's table is
 * read back).
 */
#include "postgres.h"

#include "access/genam.h"
#include "access/htup_details.h"
#include "access/stratnum.h"
#include "access/tableam.h"
#include "access/xact.h"
#include "access/table.h"
#include "catalog/namespace.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "funcapi.h"
#include "nodes/makefuncs.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"
#include "utils/memutils.h"

#include "rowdiff.h"
#include "tracked_chunk.h"

Oid
coco_tracked_chunk_relid(void)
{
	return RangeVarGetRelid(makeRangeVar("coco", "tracked_chunk", -1), NoLock, false);
}

/* ---- the packing ------------------------------------------------------ */

/*
 * Read from coco.tracked_chunk, a packing that is not valid is corruption;
 * given to coco.chunk_rows, it is bad input.
 */
static void
corrupted(ChunkReader *r)
{
	ereport(ERROR,
			(errcode(r->sqlerrcode),
			 errmsg("the bytes are not a valid packing of tracked rows (a chunk of coco.tracked_chunk)")));
}

void
chunk_reader_init(ChunkReader *r, bytea *rows)
{
	r->pos = VARDATA_ANY(rows);
	r->end = r->pos + VARSIZE_ANY_EXHDR(rows);
	r->sqlerrcode = ERRCODE_DATA_CORRUPTED;
}

/* The next row, or false after the last. */
bool
chunk_read(ChunkReader *r, ChunkRow *row)
{
	uint32		len = 0;
	int			shift = 0;

	if (r->pos == r->end)
		return false;
	if (r->end - r->pos < 1 + COCO_FINGERPRINT_LEN + 1)
		corrupted(r);
	row->flags = (uint8) *r->pos++;
	row->fp = (const uint8 *) r->pos;
	r->pos += COCO_FINGERPRINT_LEN;
	/* the key's length: seven bits a byte, low bits first */
	for (;;)
	{
		uint8		b;

		if (r->pos == r->end || shift > 28)
			corrupted(r);
		b = (uint8) *r->pos++;
		len |= (uint32) (b & 0x7F) << shift;
		if ((b & 0x80) == 0)
			break;
		shift += 7;
	}
	if (len > (uint32) (r->end - r->pos))
		corrupted(r);
	row->key = r->pos;
	row->keylen = (int) len;
	r->pos += len;
	return true;
}

int
chunk_row_bytes(int keylen)
{
	int			n = 1 + COCO_FINGERPRINT_LEN + 1;

	for (uint32 l = (uint32) keylen; l >= 0x80; l >>= 7)
		n++;
	return n + keylen;
}

void
chunk_put(StringInfo buf, uint8 flags, const uint8 *fp, const char *key, int keylen)
{
	uint32		l = (uint32) keylen;

	appendStringInfoCharMacro(buf, (char) flags);
	appendBinaryStringInfo(buf, (const char *) fp, COCO_FINGERPRINT_LEN);
	while (l >= 0x80)
	{
		appendStringInfoCharMacro(buf, (char) ((l & 0x7F) | 0x80));
		l >>= 7;
	}
	appendStringInfoCharMacro(buf, (char) l);
	appendBinaryStringInfo(buf, key, keylen);
}

void
chunk_slot_deform(TupleTableSlot *slot, int32 *comp, int64 *chunk_id, bytea **rows)
{
	Datum	   *values = slot->tts_values;
	bool	   *nulls = slot->tts_isnull;

	if (slot->tts_tupleDescriptor->natts != CHUNK_NATTS)
		elog(ERROR, "coco_target: coco.tracked_chunk has %d columns, not %d",
			 slot->tts_tupleDescriptor->natts, CHUNK_NATTS);
	slot_getallattrs(slot);
	if (nulls[CHUNK_COMP] || nulls[CHUNK_ID] || nulls[CHUNK_ROWS])
		ereport(ERROR,
				(errcode(ERRCODE_DATA_CORRUPTED),
				 errmsg("a chunk of coco.tracked_chunk has a NULL column")));
	*comp = DatumGetInt32(values[CHUNK_COMP]);
	*chunk_id = DatumGetInt64(values[CHUNK_ID]);
	*rows = DatumGetByteaPP(values[CHUNK_ROWS]);
}

/* Note a chunk read; returns its number. */
int64
chunk_info_add(CocoTrackedChunks *c, ItemPointer tid, int32 comp, int32 bytes)
{
	if (c->n == c->max)
	{
		c->max = c->max ? c->max * 2 : 1024;
		c->chunk = c->chunk ? repalloc_huge(c->chunk, sizeof(ChunkInfo) * c->max) :
			MemoryContextAllocHuge(c->cxt, sizeof(ChunkInfo) * c->max);
	}
	if (c->n >= (int64) MaxBlockNumber)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("too many chunks of tracked rows in one table: %lld", (long long) c->n)));
	c->chunk[c->n].tid = *tid;
	c->chunk[c->n].comp = comp;
	c->chunk[c->n].bytes = bytes;
	c->chunk[c->n].emptied = false;
	return c->n++;
}

/* ---- new chunks --------------------------------------------------------- */

typedef struct OpenChunk
{
	int32		comp;
	int32		nrows;
	StringInfoData rows;
} OpenChunk;

struct ChunkAppender
{
	MemoryContext cxt;
	BulkWriter *writer;
	int32		app_id;
	int64		target_id;
	int64		next_id;
	OpenChunk  *open;			/* one per component seen */
	int			nopen;
	int			maxopen;
};

/*
 * The number after the highest of a table's chunks, from the last entry of
 * the primary key under the table's number (read past row level security:
 * the appender may run as the app owner, whose session may have turned it
 * off).  What this transaction wrote so far counts.
 */
static int64
next_chunk_id(Relation rel, int64 target_id)
{
	Relation	pkey = index_open(RelationGetPrimaryKeyIndex(rel), AccessShareLock);
	ScanKeyData skey;
	IndexScanDesc scan;
	TupleTableSlot *slot = table_slot_create(rel, NULL);
	int64		next = 1;

	CommandCounterIncrement();
	PushActiveSnapshot(GetTransactionSnapshot());
	ScanKeyInit(&skey, 1, BTEqualStrategyNumber, F_INT8EQ, Int64GetDatum(target_id));
	scan = index_beginscan(rel, pkey, GetActiveSnapshot(), 1, 0);
	index_rescan(scan, &skey, 1, NULL, 0);
	if (index_getnext_slot(scan, BackwardScanDirection, slot))
	{
		bool		isnull;

		next = DatumGetInt64(slot_getattr(slot, CHUNK_ID + 1, &isnull)) + 1;
	}
	index_endscan(scan);
	PopActiveSnapshot();
	ExecDropSingleTupleTableSlot(slot);
	index_close(pkey, NoLock);
	return next;
}

/*
 * New chunks for a target, numbered from first_chunk_id on (0: after the
 * target's highest, looked up).  As the extension owner, or the app owner
 * of a load.
 */
ChunkAppender *
chunk_appender_open(int32 app_id, int64 target_id, int64 first_chunk_id, MemoryContext cxt)
{
	MemoryContext acxt = AllocSetContextCreate(cxt, "coco_target new chunks", ALLOCSET_DEFAULT_SIZES);
	ChunkAppender *a = MemoryContextAllocZero(acxt, sizeof(ChunkAppender));

	a->cxt = acxt;
	a->app_id = app_id;
	a->target_id = target_id;
	a->writer = bulk_open(coco_tracked_chunk_relid(), acxt, false);
	a->next_id = first_chunk_id > 0 ? first_chunk_id : next_chunk_id(a->writer->rel, target_id);
	/* its rows are made here, never with a NULL */
	a->writer->check_constraints = false;
	return a;
}

static void
write_chunk(ChunkAppender *a, OpenChunk *c)
{
	TupleTableSlot *ts;
	MemoryContext old;

	if (c->nrows == 0)
		return;
	ts = bulk_slot(a->writer);
	old = MemoryContextSwitchTo(a->writer->cxt);
	ts->tts_values[CHUNK_APP] = Int32GetDatum(a->app_id);
	ts->tts_values[CHUNK_TARGET] = Int64GetDatum(a->target_id);
	ts->tts_values[CHUNK_COMP] = Int32GetDatum(c->comp);
	ts->tts_values[CHUNK_ID] = Int64GetDatum(a->next_id++);
	ts->tts_values[CHUNK_NROWS] = Int32GetDatum(c->nrows);
	ts->tts_values[CHUNK_ROWS] = PointerGetDatum(cstring_to_text_with_len(c->rows.data, c->rows.len));
	MemoryContextSwitchTo(old);
	memset(ts->tts_isnull, false, sizeof(bool) * CHUNK_NATTS);
	ExecStoreVirtualTuple(ts);
	bulk_stored(a->writer);
	c->nrows = 0;
	resetStringInfo(&c->rows);
}

void
chunk_appender_add(ChunkAppender *a, int32 comp, uint8 flags, const uint8 *fp, const char *key,
				   int keylen)
{
	OpenChunk  *c = NULL;

	for (int i = 0; i < a->nopen; i++)
		if (a->open[i].comp == comp)
			c = &a->open[i];
	if (c == NULL)
	{
		MemoryContext old = MemoryContextSwitchTo(a->cxt);

		if (a->nopen == a->maxopen)
		{
			a->maxopen = a->maxopen ? a->maxopen * 2 : 4;
			a->open = a->open ? repalloc(a->open, sizeof(OpenChunk) * a->maxopen) :
				palloc(sizeof(OpenChunk) * a->maxopen);
		}
		c = &a->open[a->nopen++];
		c->comp = comp;
		c->nrows = 0;
		initStringInfo(&c->rows);
		MemoryContextSwitchTo(old);
	}
	if (c->nrows > 0 && c->rows.len + chunk_row_bytes(keylen) > CHUNK_MAX_BYTES)
		write_chunk(a, c);
	chunk_put(&c->rows, flags, fp, key, keylen);
	c->nrows++;
}

/* Write what is still open; returns the number the next chunk would take. */
int64
chunk_appender_close(ChunkAppender *a)
{
	int64		next;

	for (int i = 0; i < a->nopen; i++)
		write_chunk(a, &a->open[i]);
	bulk_close(a->writer);
	next = a->next_id;
	MemoryContextDelete(a->cxt);
	return next;
}

/* ---- from SQL ----------------------------------------------------------- */

/*
 * coco.chunk_rows(rows bytea): the rows of a chunk as (key, fp), fp empty
 * for a row coco.verify marked — what the coco.tracked_row view shows.
 */
PG_FUNCTION_INFO_V1(coco_chunk_rows);
Datum
coco_chunk_rows(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	bytea	   *rows = PG_GETARG_BYTEA_PP(0);
	ChunkReader r;
	ChunkRow	row;

	InitMaterializedSRF(fcinfo, 0);
	chunk_reader_init(&r, rows);
	r.sqlerrcode = ERRCODE_INVALID_BINARY_REPRESENTATION;
	while (chunk_read(&r, &row))
	{
		Datum		values[2];
		bool		nulls[2] = {false, false};
		bool		marked = (row.flags & CHUNK_ROW_MARKED) != 0;

		values[0] = PointerGetDatum(cstring_to_text_with_len(row.key, row.keylen));
		values[1] = PointerGetDatum(cstring_to_text_with_len((const char *) row.fp,
															 marked ? 0 : COCO_FINGERPRINT_LEN));
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	PG_RETURN_NULL();
}

/*
 * coco.pack_tracked_rows(): the upgrade from one row per tracked row.  The
 * rows of the table the upgrade renamed to coco.tracked_row_unpacked go
 * into chunks, per table and component in the order they lie in its heap
 * (the order they were written in).
 */
PG_FUNCTION_INFO_V1(coco_pack_tracked_rows);
Datum
coco_pack_tracked_rows(PG_FUNCTION_ARGS)
{
	MemoryContext cxt = AllocSetContextCreate(CurrentMemoryContext, "coco_target packing",
											  ALLOCSET_DEFAULT_SIZES);
	Portal		portal;
	ChunkAppender *a = NULL;
	int64		target = -1;
	int64		packed = 0;

	SPI_connect();
	portal = SPI_cursor_open_with_args(NULL,
									   "SELECT app_id, target_id, comp_id, key, fp FROM coco.tracked_row_unpacked "
									   "ORDER BY target_id, comp_id, ctid",
									   0, NULL, NULL, NULL, true, 0);
	for (;;)
	{
		SPI_cursor_fetch(portal, true, 10000);
		if (SPI_processed == 0)
			break;
		for (uint64 i = 0; i < SPI_processed; i++)
		{
			HeapTuple	tup = SPI_tuptable->vals[i];
			TupleDesc	desc = SPI_tuptable->tupdesc;
			bool		isnull;
			int32		app = DatumGetInt32(SPI_getbinval(tup, desc, 1, &isnull));
			int64		tgt = DatumGetInt64(SPI_getbinval(tup, desc, 2, &isnull));
			int32		comp = DatumGetInt32(SPI_getbinval(tup, desc, 3, &isnull));
			bytea	   *key = DatumGetByteaPP(SPI_getbinval(tup, desc, 4, &isnull));
			bytea	   *fp = DatumGetByteaPP(SPI_getbinval(tup, desc, 5, &isnull));
			uint8		zero[COCO_FINGERPRINT_LEN] = {0};
			bool		marked = VARSIZE_ANY_EXHDR(fp) != COCO_FINGERPRINT_LEN;

			if (tgt != target)
			{
				if (a != NULL)
					(void) chunk_appender_close(a);
				a = chunk_appender_open(app, tgt, 1, cxt);
				target = tgt;
			}
			chunk_appender_add(a, comp, marked ? CHUNK_ROW_MARKED : 0,
							   marked ? zero : (const uint8 *) VARDATA_ANY(fp),
							   VARDATA_ANY(key), VARSIZE_ANY_EXHDR(key));
			packed++;
		}
		SPI_freetuptable(SPI_tuptable);
	}
	if (a != NULL)
		(void) chunk_appender_close(a);
	SPI_cursor_close(portal);
	SPI_finish();
	MemoryContextDelete(cxt);
	PG_RETURN_INT64(packed);
}
