/*
 * rowdiff_read.c — the row diff's receiver: each row of a statement, as it
 * streams, diffed as a declared row (or kept as its entry), kept as a
 * change, or written by the bulk load (READ_* modes; rowdiff.c has the
 * steps that run the statements); and the entries of tracked rows as
 * rowdiff.c's scan of tracking finds them.
 */
#include "postgres.h"

#include <xxhash.h>

#include "access/heapam.h"
#include "access/htup_details.h"
#include "access/tableam.h"
#include "access/tupdesc.h"
#include "access/xact.h"
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
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/resowner.h"
#include "utils/tuplestore.h"

#include "pg_rows.h"
#include "rowdiff.h"


static void
receiver_startup(DestReceiver *self, int operation, TupleDesc desc)
{
	RowReceiver *r = (RowReceiver *) self;
	CocoRowDiff *d = r->diff;
	MemoryContext old = MemoryContextSwitchTo(d->cxt);

	/* a ctid column comes last, and is neither declared nor fingerprinted */
	r->natts = desc->natts - (d->with_ctid ? 1 : 0);
	r->typid = palloc(sizeof(Oid) * desc->natts);
	r->basetypid = palloc(sizeof(Oid) * desc->natts);
	r->typlen = palloc(sizeof(int16) * desc->natts);
	r->typbyval = palloc(sizeof(bool) * desc->natts);
	for (int i = 0; i < desc->natts; i++)
	{
		r->typid[i] = TupleDescAttr(desc, i)->atttypid;
		r->basetypid[i] = getBaseType(r->typid[i]);
		get_typlenbyval(r->typid[i], &r->typlen[i], &r->typbyval[i]);
	}
	if (r->mode == READ_DECLARED && d->changes_desc == NULL)
	{
		/* the changes: (op, key, fp, component, tracked at, columns…) */
		TupleDesc	cd = CreateTemplateTupleDesc(COCO_CH_NFIXED + r->natts - 1);

		TupleDescInitEntry(cd, COCO_CH_OP + 1, "coco#op", INT4OID, -1, 0);
		TupleDescInitEntry(cd, COCO_CH_KEY + 1, "coco#k", BYTEAOID, -1, 0);
		TupleDescInitEntry(cd, COCO_CH_FP + 1, "coco#f", BYTEAOID, -1, 0);
		TupleDescInitEntry(cd, COCO_CH_COMP + 1, "coco#c", INT4OID, -1, 0);
		TupleDescInitEntry(cd, COCO_CH_TID + 1, "coco#tid", TIDOID, -1, 0);
		for (int i = 1; i < r->natts; i++)
		{
			Form_pg_attribute a = TupleDescAttr(desc, i);

			TupleDescInitEntry(cd, COCO_CH_NFIXED + i, NameStr(a->attname), a->atttypid, a->atttypmod, 0);
		}
		d->changes_desc = cd;
	}
	if (d->changes_desc != NULL)
	{
		r->values = palloc(sizeof(Datum) * d->changes_desc->natts);
		r->nulls = palloc(sizeof(bool) * d->changes_desc->natts);
	}
	if (r->mode == READ_DECLARED)
		r->copy = MakeSingleTupleTableSlot(CreateTupleDescCopy(desc), &TTSOpsMinimalTuple);
	MemoryContextSwitchTo(old);
}

static void diff_pending(RowReceiver *r);

static void
receiver_shutdown(DestReceiver *self)
{
	RowReceiver *r = (RowReceiver *) self;

	if (r->mode == READ_DECLARED)
		diff_pending(r);
}

static void
receiver_destroy(DestReceiver *self)
{
}

/* The stable key of a declared row: its primary-key values, as coco.row_key. */
static void
declared_key(RowReceiver *r, TupleTableSlot *slot, KeyHash *hash)
{
	CocoRowDiff *d = r->diff;

	resetStringInfo(&r->keybuf);
	coco_key_begin_tuple(&r->keybuf);
	for (int i = 0; i < d->nkeys; i++)
	{
		int			att = 1 + d->key_index[i];

		if (slot->tts_isnull[att])
			ereport(ERROR,
					(errcode(ERRCODE_NOT_NULL_VIOLATION),
					 errmsg("primary key column \"%s\" of a row declared for table \"%s\" is null",
							d->spec->columns[d->key_index[i]].name, d->table),
					 errhint("Every primary key column must have a value. A staged declare_rows query stays "
							 "until a run takes it: fix its rows, or remove it with coco.clear_component() "
							 "or coco.discard_staged().")));
		coco_key_put_base_datum(&r->keybuf, slot->tts_values[att], r->basetypid[att], r->typid[att]);
	}
	coco_key_end_tuple(&r->keybuf);
	key_hash(r->keybuf.data, r->keybuf.len, hash);
}

/* The fingerprint of a declared row: every declared column, as coco.tracked_fingerprint. */
static void
declared_fingerprint(RowReceiver *r, TupleTableSlot *slot, CocoFingerprint *fp)
{
	resetStringInfo(&r->fpbuf);
	for (int att = 1; att < r->natts; att++)
		coco_fingerprint_add_datum(&r->fpbuf, slot->tts_values[att], slot->tts_isnull[att],
								   r->typlen[att], r->typbyval[att]);
	coco_fingerprint_bytes(r->fpbuf.data, r->fpbuf.len, fp);
}

/*
 * What every read of declared rows does first: the row's key (left in
 * r->keybuf) and fingerprint, tallied into its component's count and
 * digest.  Returns the component.
 */
static int
count_declared_row(RowReceiver *r, TupleTableSlot *slot, KeyHash *hash, CocoFingerprint *fp)
{
	int			comp = DatumGetInt32(slot->tts_values[0]);

	declared_key(r, slot, hash);
	declared_fingerprint(r, slot, fp);
	coco_child_tally_add(r->diff->tally, comp, r->keybuf.data, r->keybuf.len, fp);
	return comp;
}

/* The error of a key declared twice: named when its bytes are known (len > 0). */
void
rowdiff_key_declared_twice(CocoRowDiff *d, const char *key, int len)
{
	ereport(ERROR,
			(errcode(ERRCODE_UNIQUE_VIOLATION),
			 len > 0 ?
			 errmsg("row with key %s is declared twice for table \"%s\"",
					coco_describe_row_key(d->spec, key, len), d->table) :
			 errmsg("a row key is declared twice for table \"%s\"", d->table),
			 errdetail("A declare_rows query may yield a key once, and one component at a time may declare it.")));
}

/*
 * A key declared twice.  With its bytes at hand, that is the error; from a
 * file, the diff notes it and coco_rowdiff_duplicate_error() names it.
 */
static void
declared_twice(CocoRowDiff *d, StringInfo key, const KeyHash *hash)
{
	if (key != NULL)
		rowdiff_key_declared_twice(d, key->data, key->len);
	if (!d->duplicate)
	{
		d->duplicate = true;
		d->duplicate_key = *hash;
	}
}

/*
 * Remember a key this run writes; a new key seen before is declared twice.
 * `key` (the key's bytes, when at hand) names it in that error.
 */
ChangeEntry *
rowdiff_add_change(CocoRowDiff *d, const KeyHash *hash, const ItemPointerData *tid, int op,
		   bool to_read, StringInfo key)
{
	ChangeEntry *c;

	table_reserve(&d->changed, d->changed.n + 1);
	c = table_append(&d->changed);
	memset(c, 0, sizeof(*c));
	c->key = *hash;
	if (tid)
		c->tid = *tid;
	else
		ItemPointerSetInvalid(&c->tid);
	c->op = op;
	c->to_read = to_read;
	if (table_index(&d->changed, d->changed.n - 1) != NULL)
	{
		d->changed.n--;
		declared_twice(d, key, hash);
		return NULL;
	}
	if (to_read)
		d->to_read++;
	return c;
}

/*
 * Changes go to disk past their share of the budget; like the partition
 * files, those files belong to the (sub)transaction.
 */
void
rowdiff_store_change(CocoRowDiff *d, Datum *values, bool *nulls)
{
	ResourceOwner owner = CurrentResourceOwner;

	CurrentResourceOwner = CurTransactionResourceOwner;
	tuplestore_putvalues(d->changes, d->changes_desc, values, nulls);
	CurrentResourceOwner = owner;
}

/* A row that changes, with its values, into the changes. */
static void
put_change(RowReceiver *r, TupleTableSlot *slot, StringInfo key, int op,
		   const CocoFingerprint *fp, const ItemPointerData *tid)
{
	CocoRowDiff *d = r->diff;
	int			ncols = r->natts - 1;

	r->values[COCO_CH_OP] = Int32GetDatum(op);
	r->values[COCO_CH_KEY] = PointerGetDatum(coco_key_buf_to_bytea(key));
	r->values[COCO_CH_FP] = PointerGetDatum(coco_fingerprint_to_bytea(fp));
	r->values[COCO_CH_COMP] = slot->tts_values[0];
	r->values[COCO_CH_TID] = PointerGetDatum(tid);
	memset(r->nulls, false, COCO_CH_NFIXED);
	r->nulls[COCO_CH_TID] = (tid == NULL || !ItemPointerIsValid(tid));
	memcpy(r->values + COCO_CH_NFIXED, slot->tts_values + 1, sizeof(Datum) * ncols);
	memcpy(r->nulls + COCO_CH_NFIXED, slot->tts_isnull + 1, sizeof(bool) * ncols);
	rowdiff_store_change(d, r->values, r->nulls);
}

/* What a declared row does to the tracked row with its key (or to none). */
int
rowdiff_classify(CocoRowDiff *d, TrackedEntry *t, int comp, const CocoFingerprint *fp, StringInfo key)
{
	if (t == NULL)
		return COCO_OP_INSERT;
	if (t->matched)
	{
		declared_twice(d, key, &t->key);
		return 0;
	}
	t->matched = true;
	if (t->foreign)
	{
		rowdiff_note_held(d, t->comp, comp, &t->key, key ? key->data : NULL, key ? key->len : 0);
		return 0;
	}
	/* a component re-written in full holds rows that may be outdated (a
	 * lossy change): such a row is written, also when it moves away */
	if (t->marked || in_list(comp, d->rewrite, d->nrewrite) ||
		(comp != t->comp && in_list(t->comp, d->rewrite, d->nrewrite)) ||
		!coco_fingerprint_equal(fp, &t->fp))
		return COCO_OP_UPDATE;
	if (comp != t->comp)
		return COCO_OP_TRACK_ONLY;
	return 0;					/* unchanged */
}

/*
 * Declared rows whose partition is in memory wait in small groups, copied,
 * so that their index slots and entries are fetched from memory together
 * rather than one cache miss at a time.
 */
static void
diff_pending(RowReceiver *r)
{
	CocoRowDiff *d = r->diff;

	for (int i = 0; i < r->npending; i++)
	{
		PendingRow *pr = &r->pending[i];

		table_prefetch_entry(&d->tracked[partition_of(&pr->hash)], &pr->hash);
	}
	for (int i = 0; i < r->npending; i++)
	{
		PendingRow *pr = &r->pending[i];
		TrackedEntry *t = table_lookup(&d->tracked[partition_of(&pr->hash)], &pr->hash);
		int			op = rowdiff_classify(d, t, pr->comp, &pr->fp, &pr->key);

		if (op == 0)
			continue;
		if (op == COCO_OP_INSERT)
			(void) rowdiff_add_change(d, &pr->hash, NULL, op, false, &pr->key);
		ExecStoreMinimalTuple(pr->row, r->copy, false);
		slot_getallattrs(r->copy);
		put_change(r, r->copy, &pr->key, op, &pr->fp, t ? &t->tid : NULL);
		ExecClearTuple(r->copy);
	}
	r->npending = 0;
	MemoryContextReset(r->pendingcxt);
}

/* Where the second read finds the row just read: by its ctid, or by its ordinal. */
static int64
row_place(RowReceiver *r, TupleTableSlot *slot)
{
	if (r->diff->with_ctid && !slot->tts_isnull[r->natts])
		return place_of_ctid((ItemPointer) DatumGetPointer(slot->tts_values[r->natts]));
	return r->ordinal - 1;
}

static void
read_declared_row(RowReceiver *r, TupleTableSlot *slot)
{
	CocoRowDiff *d = r->diff;
	KeyHash		hash;
	CocoFingerprint fp;
	int			comp = count_declared_row(r, slot, &hash, &fp);
	int			p = partition_of(&hash);
	PendingRow *pr;
	MemoryContext old;

	if (d->deferred || d->on_disk[p])
	{
		DeclaredEntry e;

		memset(&e, 0, sizeof(e));
		e.key = hash;
		e.fp = fp;
		e.comp = comp;
		e.place = row_place(r, slot);
		if (d->deferred && !d->declared_overflowed)
		{
			*(DeclaredEntry *) table_append(&d->declared) = e;
			if (++d->resident > d->budget)
			{
				ereport(DEBUG1,
						(errmsg_internal("coco_target: the declared rows of table \"%s\" outgrew their share of coco_target.work_mem; their entries go to temporary files",
										 d->table)));
				rowdiff_spill_declared(d);
				d->declared_overflowed = true;
			}
			return;
		}
		file_write(d->cxt, d->owner, &d->declared_file[p], &e, sizeof(e));
		d->declared_in_file[p] = true;
		return;
	}
	table_prefetch_slot(&d->tracked[p], &hash);
	pr = &r->pending[r->npending++];
	pr->hash = hash;
	pr->fp = fp;
	pr->comp = comp;
	/* the pending keys' buffers last as long as the receiver */
	if (pr->key.data == NULL)
	{
		old = MemoryContextSwitchTo(d->cxt);
		initStringInfo(&pr->key);
		MemoryContextSwitchTo(old);
	}
	resetStringInfo(&pr->key);
	appendBinaryStringInfo(&pr->key, r->keybuf.data, r->keybuf.len);
	old = MemoryContextSwitchTo(r->pendingcxt);
	pr->row = ExecCopySlotMinimalTuple(slot);
	MemoryContextSwitchTo(old);
	if (r->npending == PREFETCH_ROWS)
		diff_pending(r);
}

/* The second read of the declarations did not return what the first found. */
void
rowdiff_declarations_changed(CocoRowDiff *d)
{
	ereport(ERROR,
			(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
			 errmsg("the rows declared for table \"%s\" differ between two reads in one run",
					d->table),
			 errhint("A declare_rows query must return the same rows each time it runs in one snapshot: avoid volatile functions and LIMIT without ORDER BY.")));
}

static void
read_changed_row(RowReceiver *r, TupleTableSlot *slot)
{
	CocoRowDiff *d = r->diff;
	KeyHash		hash;
	ChangeEntry *c;
	CocoFingerprint fp;

	declared_key(r, slot, &hash);
	if (!d->probed && !d->declared_in_file[partition_of(&hash)])
		return;
	c = table_lookup(&d->changed, &hash);
	if (c == NULL || !c->to_read)
		return;
	/* a row the read by place took is not taken again by the read by key;
	 * one seen twice by the same read was returned twice */
	if (c->seen == r->seen_mark)
		rowdiff_declarations_changed(d);
	if (c->seen != 0)
		return;
	c->seen = r->seen_mark;
	r->nseen++;
	declared_fingerprint(r, slot, &fp);
	/* the values written must be those the first read tallied */
	if (!coco_fingerprint_equal(&fp, &c->fp))
		rowdiff_declarations_changed(d);
	put_change(r, slot, &r->keybuf, c->op, &fp, &c->tid);
}

/* Past the budget: move the highest partition in memory to its file. */
static void
evict_partition(CocoRowDiff *d)
{
	for (int p = ROWDIFF_PARTITIONS - 1; p > 0; p--)
	{
		EntryTable *t = &d->tracked[p];

		if (d->on_disk[p])
			continue;
		for (int64 i = 0; i < t->n; i++)
			file_write(d->cxt, d->owner, &d->tracked_file[p], table_entry(t, i), sizeof(TrackedEntry));
		d->resident -= t->n;
		table_free(t);
		d->on_disk[p] = true;
		return;
	}
}

/* The declared entries held in memory go to their partitions' files. */
void
rowdiff_spill_declared(CocoRowDiff *d)
{
	EntryTable *t = &d->declared;

	for (int64 i = 0; i < t->n; i++)
	{
		DeclaredEntry *e = table_entry(t, i);
		int			p = partition_of(&e->key);

		file_write(d->cxt, d->owner, &d->declared_file[p], e, sizeof(*e));
		d->declared_in_file[p] = true;
	}
	d->resident -= t->n;
	table_free(t);
}

/* The entry of one tracked row, as coco_rowdiff_load_tracked() reads it. */
void
rowdiff_tracked_entry(CocoRowDiff *d, ItemPointer tid, const ChunkRow *row, int32 comp,
					  TrackedEntry *t)
{
	memset(t, 0, sizeof(*t));
	t->tid = *tid;
	/* coco.verify's mark: the row is written again */
	if (row->flags & CHUNK_ROW_MARKED)
		t->marked = true;
	else
		memcpy(t->fp.bytes, row->fp, COCO_FINGERPRINT_LEN);
	key_hash(row->key, row->keylen, &t->key);
	t->comp = comp;
}

/*
 * A declared key that another component holds, which the diff does not
 * replace: the run fails after the read (coco_rowdiff_check_held), the
 * first such key named.  Its bytes are not at hand where the diff met it
 * in a partition's file: coco_rowdiff_find_held_key() reads them.
 */
void
rowdiff_note_held(CocoRowDiff *d, int32 holding, int32 declaring, const KeyHash *hash,
				  const char *key, int len)
{
	if (d->held)
		return;
	d->held = true;
	d->held_by = holding;
	d->held_for = declaring;
	d->held_hash = *hash;
	if (key != NULL)
	{
		MemoryContext old = MemoryContextSwitchTo(d->cxt);

		initStringInfo(&d->held_key);
		appendBinaryStringInfo(&d->held_key, key, len);
		MemoryContextSwitchTo(old);
	}
}

/*
 * A tracked row's entry into its partition's table, or its file once the
 * budget moved the partition there.
 */
void
rowdiff_add_tracked(CocoRowDiff *d, const TrackedEntry *t)
{
	int			p = partition_of(&t->key);

	if (d->on_disk[p])
		file_write(d->cxt, d->owner, &d->tracked_file[p], (void *) t, sizeof(*t));
	else
	{
		*(TrackedEntry *) table_append(&d->tracked[p]) = *t;
		if (++d->resident > d->budget)
			evict_partition(d);
	}
}

/*
 * A row of a table loaded by this run: into the table itself (when the
 * run writes it here too), and into its tracking's open chunk.
 */
static void
load_row(RowReceiver *r, TupleTableSlot *slot)
{
	CocoFingerprint fp;
	KeyHash		hash;
	int			comp = count_declared_row(r, slot, &hash, &fp);
	TupleTableSlot *ts;

	if (r->target)
	{
		int			ncols = r->natts - 1;

		ts = bulk_slot(r->target);
		memcpy(ts->tts_values, slot->tts_values + 1, sizeof(Datum) * ncols);
		memcpy(ts->tts_isnull, slot->tts_isnull + 1, sizeof(bool) * ncols);
		ExecStoreVirtualTuple(ts);
		/* the values point into the row being read: copy them now */
		ExecMaterializeSlot(ts);
		bulk_stored(r->target);
		/* coco.progress: the rows loaded so far, every so many rows */
		if (++r->loaded % COCO_LOAD_PROGRESS_EVERY == 0)
			coco_progress_advance(COCO_LOAD_PROGRESS_EVERY);
	}
	chunk_appender_add(r->chunks, comp, 0, fp.bytes, r->keybuf.data, r->keybuf.len);
}

static bool
receiver_receive(TupleTableSlot *slot, DestReceiver *self)
{
	RowReceiver *r = (RowReceiver *) self;
	MemoryContext old;
	bool		go_on = true;
	int64		ordinal = r->ordinal++;

	/*
	 * Read by place, only the rows at the places of the changes are looked
	 * at; past the last one, the read stops.
	 */
	if (r->wanted != NULL)
	{
		while (r->next_wanted < r->nwanted && r->wanted[r->next_wanted] < ordinal)
			r->next_wanted++;
		if (r->next_wanted == r->nwanted)
			return false;
		if (r->wanted[r->next_wanted] != ordinal)
			return true;
	}
	old = MemoryContextSwitchTo(r->rowcxt);
	slot_getallattrs(slot);
	switch (r->mode)
	{
		case READ_DECLARED:
			read_declared_row(r, slot);
			break;
		case READ_CHANGED:
			read_changed_row(r, slot);
			break;
		case READ_LOAD:
			load_row(r, slot);
			break;
		case READ_FIND_KEY:
			{
				KeyHash		hash;

				declared_key(r, slot, &hash);
				if (key_equal(&hash, &r->find))
				{
					appendBinaryStringInfo(&r->found, r->keybuf.data, r->keybuf.len);
					go_on = false;
				}
				break;
			}
	}
	MemoryContextSwitchTo(old);
	MemoryContextReset(r->rowcxt);
	return go_on;
}

RowReceiver *
rowdiff_receiver_create(CocoRowDiff *d, ReadMode mode)
{
	MemoryContext old = MemoryContextSwitchTo(d->cxt);
	RowReceiver *r = palloc0(sizeof(RowReceiver));

	r->pub.receiveSlot = receiver_receive;
	r->pub.rStartup = receiver_startup;
	r->pub.rShutdown = receiver_shutdown;
	r->pub.rDestroy = receiver_destroy;
	r->pub.mydest = DestNone;
	r->diff = d;
	r->mode = mode;
	r->rowcxt = AllocSetContextCreate(d->cxt, "coco_target row", ALLOCSET_SMALL_SIZES);
	r->pendingcxt = AllocSetContextCreate(d->cxt, "coco_target pending rows", ALLOCSET_DEFAULT_SIZES);
	initStringInfo(&r->keybuf);
	initStringInfo(&r->fpbuf);
	initStringInfo(&r->found);
	MemoryContextSwitchTo(old);
	return r;
}

void
rowdiff_receiver_free(RowReceiver *r)
{
	MemoryContextDelete(r->rowcxt);
	MemoryContextDelete(r->pendingcxt);
	if (r->copy)
		ExecDropSingleTupleTableSlot(r->copy);
	for (int i = 0; i < PREFETCH_ROWS; i++)
		if (r->pending[i].key.data)
			pfree(r->pending[i].key.data);
	pfree(r->keybuf.data);
	pfree(r->fpbuf.data);
	pfree(r->found.data);
	pfree(r);
}

/*
 * Prepare the statement of a read into a receiver.  A load writes rows as
 * they arrive, which a parallel plan forbids (no transaction id may be
 * assigned in parallel mode): its statement is planned without one.
 * Other reads may run in parallel.
 */
SPIPlanPtr
rowdiff_prepare(const char *sql, ParamListInfo params, RowReceiver *r)
{
	SPIPrepareOptions popts;
	SPIPlanPtr	plan;

	memset(&popts, 0, sizeof(popts));
	popts.parseMode = RAW_PARSE_DEFAULT;
	if (params)
	{
		/* the parameters' types, as the list has them */
		popts.parserSetup = params->parserSetup;
		popts.parserSetupArg = params->parserSetupArg;
	}
	popts.cursorOptions = r->mode == READ_LOAD ? 0 : CURSOR_OPT_PARALLEL_OK;
	/* planned without its parameters' values: see read_changed_by_ctid */
	if (r->generic_plan)
		popts.cursorOptions |= CURSOR_OPT_GENERIC_PLAN;
	plan = SPI_prepare_extended(sql, &popts);
	if (plan == NULL)
		elog(ERROR, "coco_target: SPI_prepare failed: %s", SPI_result_code_string(SPI_result));
	return plan;
}

/*
 * Run a prepared read into its receiver, and free it.  Declarations are
 * read under the active snapshot (the run's, pushed by the caller); a
 * table the run has just loaded is read as it is now, after what this run
 * has written so far.
 */
void
rowdiff_execute(SPIPlanPtr plan, ParamListInfo params, RowReceiver *r)
{
	SPIExecuteOptions opts;
	int			rc;

	memset(&opts, 0, sizeof(opts));
	opts.params = params;
	opts.read_only = !(r->mode == READ_LOAD && r->target == NULL);
	opts.dest = (DestReceiver *) r;
	rc = SPI_execute_plan_extended(plan, &opts);
	if (rc < 0)
		elog(ERROR, "coco_target: reading rows failed (%s)", SPI_result_code_string(rc));
	SPI_freeplan(plan);
}

/* Run a query into a receiver. */
void
rowdiff_run_into(const char *sql, ParamListInfo params, RowReceiver *r)
{
	rowdiff_execute(rowdiff_prepare(sql, params, r), params, r);
}

ParamListInfo
rowdiff_make_params(int nparams, const Oid *types, const Datum *values)
{
	ParamListInfo params = makeParamList(nparams);

	for (int i = 0; i < nparams; i++)
	{
		ParamExternData *p = &params->params[i];
		int16		len;
		bool		byval;

		get_typlenbyval(types[i], &len, &byval);
		p->value = datumCopy(values[i], byval, len);
		p->isnull = false;
		p->pflags = PARAM_FLAG_CONST;
		p->ptype = types[i];
	}
	return params;
}

