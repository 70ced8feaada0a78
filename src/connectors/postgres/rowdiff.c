/*
 * rowdiff.c — the diff of a table's declared rows against its tracked rows.
 *
 * One read of the declarations does the work.  The tracked rows of the
 * replaced components are loaded first, as fixed 48-byte entries (a
 * 128-bit hash of the key, the fingerprint, the component, where the row
 * is tracked) behind an open-addressing index.  Then the declarations
 * stream: each row's key and fingerprint are computed, tallied into its
 * component's count and digest, and looked up (in groups, with their
 * memory fetched ahead).  An unchanged row is only marked: nothing of it is
 * kept or written.  A new, changed or moved row goes with its values into
 * a tuplestore of changes; tracked rows left unmarked are the deletions.
 *
 * Memory: the tracked entries are split by key hash into
 * ROWDIFF_PARTITIONS partitions.  While they exceed seven eighths of
 * coco_target.work_mem (the changes keep the last eighth),
 * the highest partition still in memory moves to a temporary file.  A
 * declared row whose partition is on disk leaves a 48-byte entry in that
 * partition's file instead; after the read, each such partition is diffed
 * from its two files, and the declarations are read a second time for the
 * values of the rows that change there.  Memory stays near the budget
 * however many rows the table has.
 *
 * Deferred: the summary pass over declarations cheap to read again reads
 * them before any tracked row, every declared row leaving its entry: in
 * memory while the budget lasts, else in its partition's file.  When every
 * component is clean nothing more happens (and no file was written if the
 * entries fit).  Otherwise the sync reads the tracked rows: while every
 * declared entry is in memory, each tracked row is looked up among them
 * as it is read (the probe; nothing of it is kept), and the entries no
 * tracked row found are the new rows; past the budget, the entries go to
 * their files, the tracked rows are loaded, and each partition is diffed
 * from its file.  The second read takes the changed rows by the ctids of
 * their source rows, which the first read returned where the query gives
 * them, or by their places (ordinals) in the first read.
 *
 * Keys are compared by their 128-bit hash, as values are compared by
 * their 128-bit fingerprint: two different keys with one hash are as
 * unlikely as two different rows with one fingerprint.
 */
#include "postgres.h"

#include <xxhash.h>

#include "access/genam.h"
#include "access/heapam.h"
#include "access/htup_details.h"
#include "access/stratnum.h"
#include "access/tableam.h"
#include "access/tupdesc.h"
#include "access/xact.h"
#include "catalog/namespace.h"
#include "catalog/pg_type.h"
#include "executor/executor.h"
#include "executor/tuptable.h"
#include "miscadmin.h"
#include "nodes/makefuncs.h"
#include "nodes/nodeFuncs.h"
#include "nodes/params.h"
#include "nodes/parsenodes.h"
#include "nodes/tidbitmap.h"
#include "storage/buffile.h"
#include "storage/bufmgr.h"
#include "storage/itemptr.h"
#include "tcop/dest.h"
#include "utils/builtins.h"
#include "utils/datum.h"
#include "utils/fmgroids.h"
#include "utils/guc.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/plancache.h"
#include "utils/rel.h"
#include "utils/relcache.h"
#include "utils/resowner.h"
#include "utils/snapmgr.h"
#include "utils/tuplestore.h"

#include "pg_rows.h"
#include "rowdiff.h"


/* ---- the steps ------------------------------------------------------------ */

/*
 * A diff of one table's rows.  It lives until coco_rowdiff_free() or the
 * end of the transaction, so that the summary pass can leave its work to
 * the sync after it.
 */
CocoRowDiff *
coco_rowdiff_create(const CocoTableSpec *spec, const char *declared_sql,
					int nparams, const Oid *types, const Datum *values,
					const int *rewrite, int nrewrite)
{
	MemoryContext cxt = AllocSetContextCreate(TopTransactionContext, "coco_target row diff",
											  ALLOCSET_DEFAULT_SIZES);
	MemoryContext old = MemoryContextSwitchTo(cxt);
	CocoRowDiff *d = palloc0(sizeof(CocoRowDiff));

	d->cxt = cxt;
	d->owner = CurTransactionResourceOwner;
	d->table = pstrdup(spec->tn.qualified);
	d->spec = spec;
	d->nkeys = spec->nkeys;
	d->key_index = palloc(sizeof(int) * Max(spec->nkeys, 1));
	memcpy(d->key_index, spec->key_index, sizeof(int) * spec->nkeys);
	d->rewrite = palloc(sizeof(int) * Max(nrewrite, 1));
	if (nrewrite > 0)
		memcpy(d->rewrite, rewrite, sizeof(int) * nrewrite);
	d->nrewrite = nrewrite;
	d->sql = pstrdup(declared_sql);
	d->params = rowdiff_make_params(nparams, types, values);
	d->tally = coco_child_tally_create();
	/*
	 * The entries and, at half fill, their slots, in seven eighths of the
	 * setting; the changes keep the other eighth, so the two together stay
	 * within it.
	 */
	d->budget = Max((int64) coco_work_mem * 1024 / 8 * 7 /
					(int64) (sizeof(TrackedEntry) + 2 * sizeof(uint32)),
					1024);
	for (int p = 0; p < ROWDIFF_PARTITIONS; p++)
		table_init(&d->tracked[p], sizeof(TrackedEntry), cxt);
	table_init(&d->declared, sizeof(DeclaredEntry), cxt);
	table_init(&d->changed, sizeof(ChangeEntry), cxt);
	d->chunks.cxt = cxt;
	d->chunks.next_id = 1;
	/* the changes take an eighth of the budget before they go to disk */
	d->changes = tuplestore_begin_heap(false, false, Max(coco_work_mem / 8, 64));
	MemoryContextSwitchTo(old);
	return d;
}

/* Free a diff; on abort its temporary files are the resource owner's to close. */
void
coco_rowdiff_free(CocoRowDiff *d, bool close_files)
{
	for (int p = 0; p < ROWDIFF_PARTITIONS && close_files; p++)
	{
		file_close(&d->tracked_file[p]);
		file_close(&d->declared_file[p]);
	}
	if (close_files)
		tuplestore_end(d->changes);
	MemoryContextDelete(d->cxt);
}

static int
cmp_int(const void *a, const void *b)
{
	int			x = *(const int *) a;
	int			y = *(const int *) b;

	return (x > y) - (x < y);
}

/* A declared row that changes: its values to come from the second read. */
static void
note_declared_change(CocoRowDiff *d, DeclaredEntry *e, const ItemPointerData *tid, int op)
{
	ChangeEntry *c = rowdiff_add_change(d, &e->key, tid, op, true, NULL);

	if (c != NULL)
	{
		c->place = e->place;
		c->fp = e->fp;
		c->comp = e->comp;
	}
}

/* Delete rows need their primary-key values back from the stable key. */
static void
decode_key_into(CocoRowDiff *d, bytea *k, TupleDesc desc, Datum *values, bool *nulls)
{
	const char *data = VARDATA_ANY(k);
	int			len = VARSIZE_ANY_EXHDR(k);
	int			pos = 0;
	CocoKeyItem item;

	coco_key_read(data, len, &pos, &item);	/* the tuple */
	for (int i = 0; i < d->nkeys; i++)
	{
		int			col = COCO_CH_NFIXED + d->key_index[i];

		coco_key_read(data, len, &pos, &item);
		values[col] = coco_key_item_datum(&item, TupleDescAttr(desc, col)->atttypid);
		nulls[col] = false;
	}
}

/* A tracked row no longer declared, as a change. */
static void
store_deletion(CocoRowDiff *d, ItemPointer tid, bytea *key, int32 comp, Datum *values, bool *nulls)
{
	TupleDesc	desc = d->changes_desc;

	memset(nulls, true, sizeof(bool) * desc->natts);
	values[COCO_CH_OP] = Int32GetDatum(COCO_OP_DELETE);
	values[COCO_CH_TID] = PointerGetDatum(tid);
	values[COCO_CH_KEY] = PointerGetDatum(key);
	values[COCO_CH_COMP] = Int32GetDatum(comp);
	nulls[COCO_CH_OP] = nulls[COCO_CH_TID] = nulls[COCO_CH_KEY] = nulls[COCO_CH_COMP] = false;
	decode_key_into(d, key, desc, values, nulls);
	rowdiff_store_change(d, values, nulls);
}

/*
 * Tracked rows on their way to the probe.  Those written by one read lie
 * in the heap in the order of that read, which is the order the
 * declarations are read in until they change: the entry after the last
 * one found is tried first, with no lookup.  The others wait in a group so
 * that their index slots and entries are fetched from memory together,
 * with their keys' bytes (at MAXALIGNed offsets in `keys`) for the
 * deletions.
 */
typedef struct ProbeGroup
{
	int64		next;			/* the entry after the last one found */
	TrackedEntry rows[PREFETCH_ROWS];
	int			keyoff[PREFETCH_ROWS];
	int			n;
	StringInfoData keys;
	Datum	   *values;			/* a deletion being stored */
	bool	   *nulls;
} ProbeGroup;

/*
 * Index the declared entries, for the probe: a key in two of them is
 * declared twice (named by reading the declarations again, as when found
 * from a file).
 */
static void
index_declared(CocoRowDiff *d)
{
	DeclaredEntry *twice = table_index_all(&d->declared);

	if (twice != NULL && !d->duplicate)
	{
		d->duplicate = true;
		d->duplicate_key = twice->key;
	}
}

/*
 * A key the table's tracking holds twice: no index stops it, every write
 * path checks it, so the tracking was changed by hand.  Diffing on would
 * delete the declared row for the copy no declaration matches.
 */
static void
tracked_twice(CocoRowDiff *d)
{
	ereport(ERROR,
			(errcode(ERRCODE_DATA_CORRUPTED),
			 errmsg("the tracking of table \"%s\" holds a key twice", d->table),
			 errdetail("coco.tracked_chunk was written outside the extension."),
			 errhint("Drop the table's app, or clear the components that declare the table, and declare them again.")));
}

/* One tracked row against the declared entry with its key (NULL: none). */
static void
probe_one(CocoRowDiff *d, ProbeGroup *g, TrackedEntry *te, DeclaredEntry *e, bytea *key)
{
	int			op;

	if (e == NULL)
	{
		store_deletion(d, &te->tid, key, te->comp, g->values, g->nulls);
		return;
	}
	/* a declared row met by a tracked row already */
	if (e->matched)
		tracked_twice(d);
	op = rowdiff_classify(d, te, e->comp, &e->fp, NULL);
	e->matched = true;
	if (op != 0)
		note_declared_change(d, e, &te->tid, op);
}

static void
probe_group(CocoRowDiff *d, ProbeGroup *g)
{
	EntryTable *t = &d->declared;

	for (int i = 0; i < g->n; i++)
		table_prefetch_entry(t, &g->rows[i].key);
	for (int i = 0; i < g->n; i++)
	{
		int64		found = table_find(t, &g->rows[i].key);

		if (found >= 0)
			g->next = found + 1;
		probe_one(d, g, &g->rows[i], found < 0 ? NULL : table_entry(t, found),
				  (bytea *) (g->keys.data + g->keyoff[i]));
	}
	g->n = 0;
	resetStringInfo(&g->keys);
}

/* A tracked row for the probe; its key's bytes are copied only if it waits. */
static void
probe_add(CocoRowDiff *d, ProbeGroup *g, TrackedEntry *te, const char *key, int keylen)
{
	EntryTable *t = &d->declared;
	Size		len = VARHDRSZ + keylen;
	int			off;

	/* found where expected: not a deletion, so its key is not needed */
	if (g->next < t->n && key_equal(table_entry(t, g->next), &te->key))
	{
		probe_one(d, g, te, table_entry(t, g->next++), NULL);
		return;
	}
	off = MAXALIGN(g->keys.len);
	enlargeStringInfo(&g->keys, off - g->keys.len + len);
	SET_VARSIZE(g->keys.data + off, len);
	memcpy(g->keys.data + off + VARHDRSZ, key, keylen);
	g->keys.len = off + len;
	g->keyoff[g->n] = off;
	g->rows[g->n++] = *te;
	table_prefetch_slot(t, &te->key);
	if (g->n == PREFETCH_ROWS)
		probe_group(d, g);
}

/* After the probe, the declared entries no tracked row matched are new rows. */
static void
unmatched_are_new(CocoRowDiff *d)
{
	EntryTable *t = &d->declared;

	for (int64 i = 0; i < t->n; i++)
	{
		DeclaredEntry *e = table_entry(t, i);

		if (!e->matched)
			note_declared_change(d, e, NULL, COCO_OP_INSERT);
	}
}

/* Which table's chunks, and which components' rows are wanted. */
typedef struct TrackedScan
{
	CocoRowDiff *d;
	int64		target_id;
	int		   *comps;			/* sorted */
	int			ncomps;
	ProbeGroup *probe;			/* NULL: load into memory */
	MemoryContext rowcxt;
} TrackedScan;

/* A key's bytes as a bytea, for a deletion. */
static bytea *
key_bytea(const ChunkRow *row)
{
	bytea	   *b = palloc(VARHDRSZ + row->keylen);

	SET_VARSIZE(b, VARHDRSZ + row->keylen);
	memcpy(VARDATA(b), row->key, row->keylen);
	return b;
}

/*
 * A tracked row of a component the diff does not replace, found among the
 * declared rows (the probe's): the run fails.  Unfound, it is left alone.
 */
static void
probe_foreign(CocoRowDiff *d, TrackedEntry *te, const ChunkRow *row)
{
	DeclaredEntry *e = table_lookup(&d->declared, &te->key);

	if (e != NULL)
		rowdiff_note_held(d, te->comp, e->comp, &te->key, row->key, row->keylen);
}

/*
 * One chunk of the tracking heap: the scan's table only.  Each of its rows
 * goes to the probe or into memory; a component the diff does not replace
 * has its rows checked against the declared keys, as a key belongs to one
 * component of a table.
 */
static void
take_chunk(TrackedScan *s, TupleTableSlot *slot)
{
	CocoRowDiff *d = s->d;
	bool		isnull;
	int32		comp;
	int64		chunk_id;
	bytea	   *rows;
	int64		chunk;
	bool		foreign;
	ChunkReader reader;
	ChunkRow	row;
	MemoryContext old;

	/* another table's chunk, on a lossy page */
	if (DatumGetInt64(slot_getattr(slot, CHUNK_TARGET + 1, &isnull)) != s->target_id)
		return;
	old = MemoryContextSwitchTo(s->rowcxt);
	chunk_slot_deform(slot, &comp, &chunk_id, &rows);
	d->chunks.next_id = Max(d->chunks.next_id, chunk_id + 1);
	chunk = chunk_info_add(&d->chunks, &slot->tts_tid, comp, (int32) VARSIZE_ANY_EXHDR(rows));
	foreign = bsearch(&comp, s->comps, s->ncomps, sizeof(int), cmp_int) == NULL;
	chunk_reader_init(&reader, rows);
	for (int place = 1; chunk_read(&reader, &row); place++)
	{
		TrackedEntry te;
		ItemPointerData at;

		ItemPointerSet(&at, (BlockNumber) chunk, (OffsetNumber) place);
		rowdiff_tracked_entry(d, &at, &row, comp, &te);
		te.foreign = foreign;
		if (s->probe == NULL)
			rowdiff_add_tracked(d, &te);
		else if (foreign)
			probe_foreign(d, &te, &row);
		else
			probe_add(d, s->probe, &te, row.key, row.keylen);
	}
	MemoryContextSwitchTo(old);
	/* the probe's last group keeps copies of its keys */
	MemoryContextReset(s->rowcxt);
}

/*
 * Read the chunks of this table (as the extension owner): the rows of
 * these components into the probe `g`, or (NULL) into memory, partition by
 * partition while the budget lasts; the rows of its other components are
 * checked against the declared keys.
 *
 * The chunks are read as the planner would read them (a bitmap of the
 * table's entries in the primary key, then the heap in its order: the
 * order they were written in), but without a plan or an executor.  The
 * scan sees what this run has written so far, as a statement would.
 */
static void
scan_tracked(CocoRowDiff *d, int64 target_id, const int *comps, int ncomps, ProbeGroup *g)
{
	Relation	rel = table_open(coco_tracked_chunk_relid(), AccessShareLock);
	Relation	pkey = index_open(RelationGetPrimaryKeyIndex(rel), AccessShareLock);
	TrackedScan s;
	ScanKeyData skey;
	IndexScanDesc iscan;
	TIDBitmap  *bitmap;
	TBMIterator *pages;
	TBMIterateResult *page;
	TableScanDesc scan;
	TupleTableSlot *slot;

	s.d = d;
	s.target_id = target_id;
	s.comps = palloc(sizeof(int) * Max(ncomps, 1));
	memcpy(s.comps, comps, sizeof(int) * ncomps);
	qsort(s.comps, ncomps, sizeof(int), cmp_int);
	s.ncomps = ncomps;
	s.probe = g;
	s.rowcxt = AllocSetContextCreate(d->cxt, "coco_target tracked chunk", ALLOCSET_DEFAULT_SIZES);
	if (RelationGetDescr(rel)->natts != CHUNK_NATTS ||
		pkey->rd_index->indkey.values[0] != CHUNK_TARGET + 1)
		elog(ERROR, "coco_target: coco.tracked_chunk is not as this version of the extension made it");
	CommandCounterIncrement();
	PushActiveSnapshot(GetTransactionSnapshot());

	ScanKeyInit(&skey, 1, BTEqualStrategyNumber, F_INT8EQ, Int64GetDatum(target_id));
	iscan = index_beginscan_bitmap(pkey, GetActiveSnapshot(), 1);
	index_rescan(iscan, &skey, 1, NULL, 0);
	bitmap = tbm_create((long) work_mem * 1024L, NULL);
	(void) index_getbitmap(iscan, bitmap);
	index_endscan(iscan);

	scan = table_beginscan_bm(rel, GetActiveSnapshot(), 0, NULL);
	slot = table_slot_create(rel, NULL);
	pages = tbm_begin_iterate(bitmap);
	while ((page = tbm_iterate(pages)) != NULL)
	{
		CHECK_FOR_INTERRUPTS();
		if (!table_scan_bitmap_next_block(scan, page))
			continue;
		while (table_scan_bitmap_next_tuple(scan, page, slot))
			take_chunk(&s, slot);
	}
	tbm_end_iterate(pages);
	ExecDropSingleTupleTableSlot(slot);
	table_endscan(scan);
	tbm_free(bitmap);

	/* the last rows waiting for the probe */
	if (g != NULL)
	{
		MemoryContext old = MemoryContextSwitchTo(s.rowcxt);

		probe_group(d, g);
		MemoryContextSwitchTo(old);
	}
	PopActiveSnapshot();
	/* the locks stay until the end of the transaction, as a statement's would */
	index_close(pkey, NoLock);
	table_close(rel, NoLock);
	MemoryContextDelete(s.rowcxt);
	pfree(s.comps);
}

/*
 * The tracked rows of these components against the declared rows (as the
 * extension owner).  A deferred diff whose declared entries all fit looks
 * each tracked row up among them as it is read; otherwise the tracked
 * rows are loaded into the memory the declared entries held, and
 * coco_rowdiff_finish() diffs the partitions on disk.
 */
void
coco_rowdiff_load_tracked(CocoRowDiff *d, int64 target_id, const int *comps, int ncomps)
{
	ProbeGroup	group;

	if (d->deferred)
		ereport(DEBUG1,
				(errmsg_internal("coco_target: the tracked rows of table \"%s\" are %s", d->table,
								 d->declared_overflowed ? "loaded, the declared rows' entries in temporary files" :
								 "looked up among its declared rows as they are read")));
	if (!d->deferred || d->declared_overflowed)
	{
		rowdiff_spill_declared(d);
		scan_tracked(d, target_id, comps, ncomps, NULL);
		for (int p = 0; p < ROWDIFF_PARTITIONS; p++)
			if (!d->on_disk[p] && table_index_all(&d->tracked[p]) != NULL)
				tracked_twice(d);
		return;
	}

	index_declared(d);
	/* a key declared twice fails the run: there is nothing to diff */
	if (!d->duplicate)
	{
		MemoryContext probecxt = AllocSetContextCreate(d->cxt, "coco_target probe",
													   ALLOCSET_DEFAULT_SIZES);
		MemoryContext old = MemoryContextSwitchTo(probecxt);

		memset(&group, 0, sizeof(group));
		initStringInfo(&group.keys);
		group.values = palloc(sizeof(Datum) * d->changes_desc->natts);
		group.nulls = palloc(sizeof(bool) * d->changes_desc->natts);
		MemoryContextSwitchTo(old);
		scan_tracked(d, target_id, comps, ncomps, &group);
		unmatched_are_new(d);
		MemoryContextDelete(probecxt);
	}
	d->resident -= d->declared.n;
	table_free(&d->declared);
	d->probed = true;
}

/* The search_path the declarations are read with, the first time and again. */
void
coco_rowdiff_set_search_path(CocoRowDiff *d, const char *search_path)
{
	d->search_path = search_path ? MemoryContextStrdup(d->cxt, search_path) : NULL;
}

char *
coco_rowdiff_search_path(CocoRowDiff *d)
{
	return d->search_path;
}

/*
 * Read the declarations before the tracked rows of these components,
 * which coco_rowdiff_load_deferred() loads: the summary pass's diff, which
 * needs them only if a component turns out dirty.
 */
void
coco_rowdiff_defer_tracked(CocoRowDiff *d, int64 target_id, const int *comps, int ncomps)
{
	d->deferred = true;
	d->deferred_target = target_id;
	d->deferred_comps = MemoryContextAlloc(d->cxt, sizeof(int) * Max(ncomps, 1));
	memcpy(d->deferred_comps, comps, sizeof(int) * ncomps);
	d->ndeferred_comps = ncomps;
}

/* Whether the diff's tracked rows are still to be loaded. */
bool
coco_rowdiff_deferred(CocoRowDiff *d)
{
	return d->deferred;
}

/*
 * The tracked rows a deferred diff has not loaded yet (as the extension
 * owner); once loaded, the diff is deferred no longer.
 */
void
coco_rowdiff_load_deferred(CocoRowDiff *d)
{
	if (!d->deferred)
		return;
	coco_rowdiff_load_tracked(d, d->deferred_target, d->deferred_comps, d->ndeferred_comps);
	d->deferred = false;
}

/*
 * The read of the declarations (as the app owner, under the run's
 * snapshot): tallies count and digest per component, and diffs each row
 * whose partition is in memory.  The tallies stay with the diff: the sync
 * after the summary pass reports them.  A deferred diff, read before any
 * tracked row is loaded, diffs nothing yet: each row leaves its entry.
 */
void
coco_rowdiff_read_declared(CocoRowDiff *d)
{
	RowReceiver *r = rowdiff_receiver_create(d, READ_DECLARED);

	coco_child_tally_reset(d->tally);
	rowdiff_run_into(d->sql, d->params, r);
	d->rows_read = r->ordinal;
	rowdiff_receiver_free(r);
}

/*
 * The declarations' statement returns the ctid of each row's source row as
 * its last column (NULL where its query cannot); `sql` reads the rows at
 * given ctids, with a tid[] parameter per component of `comps` after the
 * statement's own.  Before the first read.
 */
void
coco_rowdiff_read_by_ctid(CocoRowDiff *d, const char *sql, const int *comps, int ncomps)
{
	d->with_ctid = true;
	d->ctid_sql = MemoryContextStrdup(d->cxt, sql);
	d->ctid_comps = MemoryContextAlloc(d->cxt, sizeof(int) * ncomps);
	memcpy(d->ctid_comps, comps, sizeof(int) * ncomps);
	d->nctid_comps = ncomps;
}

/* Make `into` the tallies of these components (NULL: all), as read. */
void
coco_rowdiff_publish_tally(CocoRowDiff *d, CocoChildTally *into, const int *comps, int ncomps)
{
	coco_child_tally_reset(into);
	for (int i = 0; i < coco_child_tally_count(d->tally); i++)
	{
		int			comp;
		int64		nrows;
		CocoDigest	digest;

		coco_child_tally_nth(d->tally, i, &comp, &nrows, &digest);
		if (comps == NULL || in_list(comp, comps, ncomps))
			coco_child_tally_set(into, comp, nrows, &digest);
	}
}

static void
add_deleted(CocoRowDiff *d, TrackedEntry *t)
{
	if (d->ndeleted == d->maxdeleted)
	{
		d->maxdeleted = d->maxdeleted ? d->maxdeleted * 2 : 1024;
		d->deleted = d->deleted ?
			repalloc_huge(d->deleted, sizeof(ItemPointerData) * d->maxdeleted) :
			MemoryContextAllocHuge(d->cxt, sizeof(ItemPointerData) * d->maxdeleted);
	}
	d->deleted[d->ndeleted++] = t->tid;
}

static void
unmatched_are_deleted(CocoRowDiff *d, EntryTable *t)
{
	for (int64 i = 0; i < t->n; i++)
	{
		TrackedEntry *e = table_entry(t, i);

		if (!e->matched && !e->foreign)
			add_deleted(d, e);
	}
}

/*
 * The declared rows a partition's file holds, against its tracked rows
 * (indexed): each change is noted, its values to come from the second
 * read.  The file is read a block of entries at a time, not loaded: a
 * deferred diff has a file for every partition it declares rows in.
 */
static void
diff_declared_file(CocoRowDiff *d, int p)
{
	EntryTable *t = &d->tracked[p];
	BufFile    *file = d->declared_file[p];
	DeclaredEntry *block = palloc(sizeof(DeclaredEntry) * CHUNK_ENTRIES);

	if (BufFileSeek(file, 0, 0, SEEK_SET) != 0)
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("could not rewind a temporary file of the row diff")));
	for (;;)
	{
		size_t		got = BufFileRead(file, block, sizeof(DeclaredEntry) * CHUNK_ENTRIES);
		int			n = (int) (got / sizeof(DeclaredEntry));

		if (got % sizeof(DeclaredEntry) != 0)
			ereport(ERROR,
					(errcode_for_file_access(),
					 errmsg("could not read a temporary file of the row diff")));
		for (int i = 0; i < n; i++)
		{
			DeclaredEntry *e = &block[i];
			TrackedEntry *te;
			int			op;

			if (i + PREFETCH_ROWS < n)
				table_prefetch_slot(t, &block[i + PREFETCH_ROWS].key);
			te = table_lookup(t, &e->key);
			op = rowdiff_classify(d, te, e->comp, &e->fp, NULL);
			if (op != 0)
				note_declared_change(d, e, te ? &te->tid : NULL, op);
		}
		if (n < CHUNK_ENTRIES)
			break;
	}
	pfree(block);
	file_close(&d->declared_file[p]);
}

/*
 * After the read: the deletions of the partitions in memory, and the diff
 * of each partition whose declared rows are in a file — a partition on
 * disk from its two files, a deferred diff's partition in memory against
 * its file (a probed diff has neither: its deletions are stored).  False
 * when a key is declared twice: coco_rowdiff_duplicate_error() says which.
 */
bool
coco_rowdiff_finish(CocoRowDiff *d)
{
	rowdiff_spill_declared(d);
	for (int p = 0; p < ROWDIFF_PARTITIONS; p++)
	{
		EntryTable *t = &d->tracked[p];

		if (d->on_disk[p])
		{
			file_load(d->tracked_file[p], t);
			file_close(&d->tracked_file[p]);
			if (table_index_all(t) != NULL)
				tracked_twice(d);
		}
		if (d->declared_in_file[p])
			diff_declared_file(d, p);
		unmatched_are_deleted(d, t);
		table_free(t);
	}
	return !d->duplicate;
}

/*
 * The bytes of a declared key known by its hash, appended to `out`: the
 * declarations read once more, up to the first row with that key (none
 * appended if no row has it).  As their owner, under the run's snapshot.
 */
static void
find_declared_key(CocoRowDiff *d, const KeyHash *hash, StringInfo out)
{
	RowReceiver *r = rowdiff_receiver_create(d, READ_FIND_KEY);

	r->find = *hash;
	rowdiff_run_into(d->sql, d->params, r);
	appendBinaryStringInfo(out, r->found.data, r->found.len);
	rowdiff_receiver_free(r);
}

/* The key declared twice, found by reading the declarations once more. */
void
coco_rowdiff_duplicate_error(CocoRowDiff *d)
{
	StringInfoData key;

	initStringInfo(&key);
	find_declared_key(d, &d->duplicate_key, &key);
	rowdiff_key_declared_twice(d, key.data, key.len);
}

/* Whether a declared key another component holds was met without its bytes. */
bool
coco_rowdiff_held_key_unknown(CocoRowDiff *d)
{
	return d->held && d->held_key.data == NULL;
}

/*
 * ... then its bytes, for coco_rowdiff_check_held's message, from the
 * declarations read once more (as coco_rowdiff_duplicate_error does).
 */
void
coco_rowdiff_find_held_key(CocoRowDiff *d)
{
	StringInfoData key;

	initStringInfo(&key);
	find_declared_key(d, &d->held_hash, &key);
	/* not declared by the second read: the message names no key */
	if (key.len > 0)
	{
		MemoryContext old = MemoryContextSwitchTo(d->cxt);

		initStringInfo(&d->held_key);
		appendBinaryStringInfo(&d->held_key, key.data, key.len);
		MemoryContextSwitchTo(old);
	}
	pfree(key.data);
}

TupleDesc
coco_rowdiff_changes_desc(CocoRowDiff *d)
{
	return d->changes_desc;
}

static int
cmp_tid(const void *a, const void *b)
{
	return ItemPointerCompare((ItemPointer) a, (ItemPointer) b);
}

/*
 * The rows no longer declared, as changes (as the extension owner): their
 * keys and components from their chunks, each chunk read once.
 */
void
coco_rowdiff_deletions(CocoRowDiff *d)
{
	TupleDesc	desc = d->changes_desc;
	Datum	   *values;
	bool	   *nulls;
	Relation	rel;
	TupleTableSlot *slot;
	MemoryContext chunkcxt;
	int64		i = 0;

	if (d->ndeleted == 0)
		return;
	values = palloc(sizeof(Datum) * desc->natts);
	nulls = palloc(sizeof(bool) * desc->natts);
	chunkcxt = AllocSetContextCreate(CurrentMemoryContext, "coco_target deleted rows' chunk",
									 ALLOCSET_DEFAULT_SIZES);
	qsort(d->deleted, d->ndeleted, sizeof(ItemPointerData), cmp_tid);
	rel = table_open(coco_tracked_chunk_relid(), AccessShareLock);
	slot = table_slot_create(rel, NULL);
	CommandCounterIncrement();
	PushActiveSnapshot(GetTransactionSnapshot());
	while (i < d->ndeleted)
	{
		BlockNumber chunk = ItemPointerGetBlockNumber(&d->deleted[i]);
		ChunkInfo  *info = &d->chunks.chunk[chunk];
		MemoryContext old = MemoryContextSwitchTo(chunkcxt);
		int32		comp;
		int64		chunk_id;
		bytea	   *rows;
		ChunkReader reader;
		ChunkRow	row;

		CHECK_FOR_INTERRUPTS();
		if (!table_tuple_fetch_row_version(rel, &info->tid, GetActiveSnapshot(), slot))
			coco_tracking_written_concurrently(d->spec, NULL);
		chunk_slot_deform(slot, &comp, &chunk_id, &rows);
		chunk_reader_init(&reader, rows);
		for (int place = 1; i < d->ndeleted && ItemPointerGetBlockNumber(&d->deleted[i]) == chunk &&
			 chunk_read(&reader, &row); place++)
		{
			if (ItemPointerGetOffsetNumber(&d->deleted[i]) != place)
				continue;
			store_deletion(d, &d->deleted[i], key_bytea(&row), comp, values, nulls);
			i++;
		}
		if (i < d->ndeleted && ItemPointerGetBlockNumber(&d->deleted[i]) == chunk)
			elog(ERROR, "coco_target: a chunk of tracked rows of table \"%s\" has fewer rows than read", d->table);
		ExecClearTuple(slot);
		MemoryContextSwitchTo(old);
		MemoryContextReset(chunkcxt);
	}
	PopActiveSnapshot();
	ExecDropSingleTupleTableSlot(slot);
	table_close(rel, NoLock);
	MemoryContextDelete(chunkcxt);
	pfree(values);
	pfree(nulls);
}

/* The chunks the diff read: its changes rewrite them. */
CocoTrackedChunks *
coco_rowdiff_chunks(CocoRowDiff *d)
{
	return &d->chunks;
}

/*
 * A declared key that a component not replaced holds (the diff found it):
 * the error names the key, where at hand, and both components.  As the
 * extension owner.
 */
void
coco_rowdiff_check_held(CocoRowDiff *d)
{
	Oid			types[2] = {INT4OID, INT4OID};
	Datum		values[2];
	char	   *declaring = NULL;
	char	   *holding = NULL;
	char	   *key = NULL;

	if (!d->held)
		return;
	values[0] = Int32GetDatum(d->held_for);
	values[1] = Int32GetDatum(d->held_by);
	if (SPI_execute_with_args("SELECT (SELECT path::pg_catalog.text FROM coco.component WHERE comp_id OPERATOR(pg_catalog.=) $1), "
							  "(SELECT path::pg_catalog.text FROM coco.component WHERE comp_id OPERATOR(pg_catalog.=) $2)",
							  2, types, values, NULL, true, 1) == SPI_OK_SELECT && SPI_processed == 1)
	{
		declaring = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1);
		holding = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2);
	}
	if (d->held_key.data != NULL)
		key = coco_describe_row_key(d->spec, d->held_key.data, d->held_key.len);
	ereport(ERROR,
			(errcode(ERRCODE_UNIQUE_VIOLATION),
			 errmsg("rows declared for table \"%s\" have keys that another component declares", d->table),
			 key && declaring && holding ?
			 errdetail("Component %s declares the row with key %s, which component %s holds. "
					   "A row belongs to one component; to move it, declare both components again in one run.",
					   declaring, key, holding) :
			 errdetail("A row belongs to one component; to move it, declare both components again in one run."),
			 errhint("Re-declare or clear the component that holds the rows in the same run.")));
}

static int
cmp_int64(const void *a, const void *b)
{
	int64		x = *(const int64 *) a;
	int64		y = *(const int64 *) b;

	return (x > y) - (x < y);
}

/*
 * A row fetched by its ctid costs about four times a row of a full read by
 * key (143k rows of a 1M-row source by ctid: 70 ms; the whole source by
 * key: about 135 ms): the ctids are worth fetching while they are at most
 * this share of the rows the first read returned.
 */
#define CTID_READ_SHARE 4

/* the most ctids a plan may compare each row it reads with */
#define CTID_FILTER_MAX 32

/* The index of a component in d->ctid_comps, or -1. */
static int
ctid_comp_index(CocoRowDiff *d, int comp)
{
	for (int i = 0; i < d->nctid_comps; i++)
		if (d->ctid_comps[i] == comp)
			return i;
	return -1;
}

/* An expression with a parameter after the statement's own: a tid[] of ctids. */
static bool
has_ctid_param(Node *node, void *context)
{
	if (node == NULL)
		return false;
	if (IsA(node, Param))
		return ((Param *) node)->paramkind == PARAM_EXTERN &&
			((Param *) node)->paramid > *(int *) context;
	return expression_tree_walker(node, has_ctid_param, context);
}

/*
 * Whether a node of this plan (or below) filters its rows by a tid[]
 * parameter, or is a nested loop: planned for the handful of rows a list
 * of unknown length is taken to hold, it would run its inner side once for
 * each of thousands of ctids.
 */
static bool
node_filters_by_ctids(Plan *plan, int nparams)
{
	ListCell   *lc;
	List	   *children = NIL;

	if (plan == NULL)
		return false;
	if (IsA(plan, NestLoop) || has_ctid_param((Node *) plan->qual, &nparams))
		return true;
	if ((IsA(plan, MergeJoin) || IsA(plan, HashJoin)) &&
		has_ctid_param((Node *) ((Join *) plan)->joinqual, &nparams))
		return true;
	if (IsA(plan, Append))
		children = ((Append *) plan)->appendplans;
	else if (IsA(plan, MergeAppend))
		children = ((MergeAppend *) plan)->mergeplans;
	else if (IsA(plan, SubqueryScan))
		children = list_make1(((SubqueryScan *) plan)->subplan);
	else if (IsA(plan, CustomScan))
		children = ((CustomScan *) plan)->custom_plans;
	foreach(lc, children)
		if (node_filters_by_ctids(lfirst(lc), nparams))
			return true;
	return node_filters_by_ctids(plan->lefttree, nparams) ||
		node_filters_by_ctids(plan->righttree, nparams);
}

/* Whether the generic plan of a read by ctid filters rows by the ctids, or loops over them. */
static bool
plan_filters_by_ctids(SPIPlanPtr plan, int nparams)
{
	CachedPlan *cplan = SPI_plan_get_cached_plan(plan);
	bool		filters = false;
	ListCell   *lc;

	if (cplan == NULL)
		return true;
	foreach(lc, cplan->stmt_list)
	{
		PlannedStmt *stmt = lfirst_node(PlannedStmt, lc);
		ListCell   *sp;

		filters |= node_filters_by_ctids(stmt->planTree, nparams);
		foreach(sp, stmt->subplans)
			filters |= node_filters_by_ctids(lfirst(sp), nparams);
	}
	/* an unsaved plan's cached plan belongs to no resource owner */
	ReleaseCachedPlan(cplan, NULL);
	return filters;
}

/*
 * The rows to read, by the ctids of their source rows, when each has one
 * and they are few enough: d->ctid_sql with a tid[] of each component's
 * ctids.  Returns the rows found, or -1 when they are not read so.
 */
static int64
read_changed_by_ctid(CocoRowDiff *d)
{
	int			n = d->nctid_comps;
	int64	   *count;
	Datum	  **tids;
	ItemPointerData *all;
	int64		next = 0;
	ParamListInfo params;
	RowReceiver *r;
	SPIPlanPtr	plan;
	int64		nseen;

	if (!d->with_ctid || d->to_read * CTID_READ_SHARE > d->rows_read ||
		d->to_read > (int64) (MaxAllocSize / sizeof(ItemPointerData)))
		return -1;
	count = palloc0(sizeof(int64) * n);
	for (int64 i = 0; i < d->changed.n; i++)
	{
		ChangeEntry *c = table_entry(&d->changed, i);
		int			k;

		if (!c->to_read)
			continue;
		k = (c->place & PLACE_CTID) ? ctid_comp_index(d, c->comp) : -1;
		if (k < 0)
		{
			pfree(count);
			return -1;
		}
		count[k]++;
	}

	/* each component's ctids, as a tid[] after the statement's parameters */
	all = MemoryContextAllocHuge(d->cxt, sizeof(ItemPointerData) * d->to_read);
	tids = palloc(sizeof(Datum *) * n);
	for (int k = 0; k < n; k++)
		tids[k] = MemoryContextAllocHuge(d->cxt, sizeof(Datum) * Max(count[k], 1));
	memset(count, 0, sizeof(int64) * n);
	for (int64 i = 0; i < d->changed.n; i++)
	{
		ChangeEntry *c = table_entry(&d->changed, i);
		int			k;

		if (!c->to_read)
			continue;
		k = ctid_comp_index(d, c->comp);
		ctid_of_place(c->place, &all[next]);
		tids[k][count[k]++] = PointerGetDatum(&all[next++]);
	}
	params = makeParamList(d->params->numParams + n);
	for (int i = 0; i < d->params->numParams; i++)
		params->params[i] = d->params->params[i];
	for (int k = 0; k < n; k++)
	{
		ParamExternData *p = &params->params[d->params->numParams + k];

		p->value = PointerGetDatum(construct_array(tids[k], (int) count[k], TIDOID,
												   sizeof(ItemPointerData), false, TYPALIGN_SHORT));
		p->isnull = false;
		p->pflags = PARAM_FLAG_CONST;
		p->ptype = TIDARRAYOID;
		pfree(tids[k]);
	}
	pfree(all);
	pfree(tids);
	pfree(count);

	/*
	 * Planned without the ctids, as a TID scan: with thousands of them the
	 * planner would rather scan the table.  But where it finds a cheaper
	 * way to the query's rows (a small table; an index, by statistics that
	 * say few rows match), the ctids become a filter that searches the
	 * list for every row it reads, or the outer side of a nested loop
	 * planned for a handful of them: past a few ctids, the rows are read
	 * by key instead.
	 */
	r = rowdiff_receiver_create(d, READ_CHANGED);
	r->seen_mark = 1;
	r->generic_plan = true;
	plan = rowdiff_prepare(d->ctid_sql, params, r);
	if (d->to_read > CTID_FILTER_MAX && plan_filters_by_ctids(plan, d->params->numParams))
	{
		SPI_freeplan(plan);
		nseen = -1;
	}
	else
	{
		ereport(DEBUG1,
				(errmsg_internal("coco_target: the %lld changed rows of table \"%s\" are read by the ctids of their rows",
								 (long long) d->to_read, d->table)));
		rowdiff_execute(plan, params, r);
		nseen = r->nseen;
	}
	rowdiff_receiver_free(r);
	for (int k = 0; k < n; k++)
		pfree(DatumGetPointer(params->params[d->params->numParams + k].value));
	pfree(params);
	return nseen;
}

/*
 * The rows to read, by their places in the first read (their ordinals),
 * so that the others are neither decoded nor hashed; the read stops after
 * the last one.  Returns the rows found, or -1 when some have a ctid
 * instead (read_changed_by_ctid found them too many).
 */
static int64
read_changed_by_place(CocoRowDiff *d)
{
	int64	   *wanted = MemoryContextAllocHuge(d->cxt, sizeof(int64) * d->to_read);
	int64		n = 0;
	RowReceiver *r;
	int64		nseen;

	for (int64 i = 0; i < d->changed.n; i++)
	{
		ChangeEntry *c = table_entry(&d->changed, i);

		if (!c->to_read)
			continue;
		if (c->place & PLACE_CTID)
		{
			pfree(wanted);
			return -1;
		}
		wanted[n++] = c->place;
	}
	qsort(wanted, n, sizeof(int64), cmp_int64);
	r = rowdiff_receiver_create(d, READ_CHANGED);
	r->seen_mark = 1;
	r->wanted = wanted;
	r->nwanted = n;
	rowdiff_run_into(d->sql, d->params, r);
	nseen = r->nseen;
	rowdiff_receiver_free(r);
	pfree(wanted);
	return nseen;
}

/*
 * The second read of the declarations (as the app owner, under the run's
 * snapshot), when declared rows were diffed by their entries (a deferred
 * diff, or partitions on disk): the values of the rows that change, by
 * the ctids of their source rows or by their places in the first read.
 * What that misses (a query that returns its rows in another order this
 * time, as a parallel or synchronized scan does; a row not at its ctid)
 * is read by key, as is everything when neither way applies.
 */
void
coco_rowdiff_read_changed(CocoRowDiff *d)
{
	RowReceiver *r;
	int64		nseen;

	if (d->to_read == 0)
		return;
	nseen = read_changed_by_ctid(d);
	if (nseen < 0)
		nseen = read_changed_by_place(d);
	if (nseen == d->to_read)
		return;
	if (nseen >= 0)
		ereport(DEBUG1,
				(errmsg_internal("coco_target: %lld of %lld changed rows of table \"%s\" were not where the first read had them; reading by key",
								 (long long) (d->to_read - nseen), (long long) d->to_read, d->table)));
	else
		ereport(DEBUG1,
				(errmsg_internal("coco_target: the %lld changed rows of table \"%s\" are read by key",
								 (long long) d->to_read, d->table)));

	r = rowdiff_receiver_create(d, READ_CHANGED);
	r->seen_mark = 2;
	r->nseen = Max(nseen, 0);
	rowdiff_run_into(d->sql, d->params, r);
	if (r->nseen != d->to_read)
		rowdiff_declarations_changed(d);
	rowdiff_receiver_free(r);
}

/*
 * Once the changes are all in their store, the entries that found them
 * are done with: their memory (seven eighths of the setting) and their
 * partitions' files go before the changes are written, which may sort
 * them in that memory.  The chunks read stay: the writes name them.
 */
void
coco_rowdiff_release_entries(CocoRowDiff *d)
{
	for (int p = 0; p < ROWDIFF_PARTITIONS; p++)
	{
		table_free(&d->tracked[p]);
		file_close(&d->tracked_file[p]);
		file_close(&d->declared_file[p]);
	}
	table_free(&d->declared);
	table_free(&d->changed);
	if (d->deleted != NULL)
		pfree(d->deleted);
	d->deleted = NULL;
	d->ndeleted = d->maxdeleted = 0;
	d->resident = 0;
}

/* Every change: rows written or moved, and rows deleted. */
Tuplestorestate *
coco_rowdiff_changes(CocoRowDiff *d)
{
	return d->changes;
}

/*
 * A key the load wrote twice, named (as the app owner): a table's own rows
 * grouped by their stable key.  Only after a load found one (the created
 * table's primary key), or where nothing else would (a user's table read
 * back): the tracking has no index on its keys.
 */
static void
find_repeated_key(CocoRowDiff *d)
{
	char	   *sql = psprintf("SELECT %s FROM ONLY %s x GROUP BY 1 HAVING pg_catalog.count(*) OPERATOR(pg_catalog.>) 1 LIMIT 1",
							   coco_rows_key_expr(d->spec),
							   coco_quote_qualified(d->spec->tn.schema, d->spec->tn.name));

	/* the rows this transaction has just written: a snapshot after them */
	CommandCounterIncrement();
	if (SPI_execute(sql, false, 1) != SPI_OK_SELECT)
		elog(ERROR, "coco_target: could not look for a repeated key of table \"%s\"", d->table);
	if (SPI_processed > 0)
	{
		bool		isnull;
		bytea	   *key = DatumGetByteaPP(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));

		rowdiff_key_declared_twice(d, VARDATA_ANY(key), VARSIZE_ANY_EXHDR(key));
	}
	SPI_freetuptable(SPI_tuptable);
}

/*
 * The created table's indexes, built from its rows.  A key written twice
 * fails the primary key's build; the build is undone (a subtransaction,
 * which any error ends before it goes on) and the key named.
 */
static void
close_loaded_table(CocoRowDiff *d, BulkWriter *target)
{
	MemoryContext cxt = CurrentMemoryContext;
	ResourceOwner owner = CurrentResourceOwner;
	Oid			relid = RelationGetRelid(target->rel);

	bulk_close(target);
	BeginInternalSubTransaction(NULL);
	MemoryContextSwitchTo(cxt);
	PG_TRY();
	{
		bulk_build_indexes(relid);
		ReleaseCurrentSubTransaction();
	}
	PG_CATCH();
	{
		ErrorData  *edata;

		MemoryContextSwitchTo(cxt);
		edata = CopyErrorData();
		FlushErrorState();
		RollbackAndReleaseCurrentSubTransaction();
		MemoryContextSwitchTo(cxt);
		CurrentResourceOwner = owner;
		if (edata->sqlerrcode == ERRCODE_UNIQUE_VIOLATION)
			find_repeated_key(d);
		ReThrowError(edata);
	}
	PG_END_TRY();
	MemoryContextSwitchTo(cxt);
	CurrentResourceOwner = owner;
}

/*
 * A table this run created, loaded by one component (as the app owner,
 * with the caller's snapshot for `sql`).  `sql` gives its rows as
 * (component, declared columns…): the declarations, or the table itself
 * when a statement has already filled it.  Each row's key and fingerprint
 * are tallied and packed into the table's tracking; with `target_relid`,
 * the row itself is written into the table first, through the heap's
 * multi-insert path, its NOT NULL checked as an INSERT would, its indexes
 * built after the rows.  A key written twice fails the load, named.
 * Returns the rows written into the table.
 */
int64
coco_rowdiff_load(const CocoTableSpec *spec, CocoChildTally *tally, const char *sql,
				  int nparams, const Oid *types, const Datum *values, Oid target_relid,
				  int32 app_id, int64 target_id)
{
	CocoRowDiff *d = coco_rowdiff_create(spec, sql, nparams, types, values, NULL, 0);
	RowReceiver *r = rowdiff_receiver_create(d, READ_LOAD);
	int64		loaded;

	if (OidIsValid(target_relid))
		r->target = bulk_open(target_relid, d->cxt, true);
	r->chunks = chunk_appender_open(app_id, target_id, 0, d->cxt);

	rowdiff_run_into(d->sql, d->params, r);
	(void) chunk_appender_close(r->chunks);
	if (r->target)
		close_loaded_table(d, r->target);
	else
		find_repeated_key(d);
	loaded = r->loaded;
	if (r->target)
		coco_progress_advance(loaded % COCO_LOAD_PROGRESS_EVERY);
	rowdiff_receiver_free(r);
	coco_rowdiff_publish_tally(d, tally, NULL, 0);
	coco_rowdiff_free(d, true);
	/* the statements after this one see the rows */
	CommandCounterIncrement();
	return loaded;
}
