/*
 * rowdiff.c — the diff of a table's declared rows against its tracked rows.
 *
 * The declared rows are read once in full (the summary pass): each row
 * becomes a fixed 40-byte entry — a 128-bit hash of its key, its
 * fingerprint and its component — and is tallied into its component's
 * count and digest.  When a component's digest differs from its row set,
 * the tracked rows are streamed once against an open-addressing index of
 * those entries, which sorts every key into unchanged, changed, new, moved
 * or no longer declared.  Only then are the declarations read a second
 * time, and only the rows that change keep their values: they go to a
 * tuplestore the caller applies in batches.
 *
 * A FULL JOIN in SQL did the same with the executor's hash table, holding
 * each tracked row's bytea key and fingerprint (about 80 bytes a row) and
 * fingerprinting every declared row a second time.  The entries here are
 * half that, hash and compare as two machine words, and the second read
 * of the declarations only computes keys.
 *
 * Memory: the entries stay in memory up to coco_target.work_mem.  Past
 * that they, and the tracked rows, are split by key hash into
 * ROWDIFF_PARTITIONS temporary files and diffed one partition at a time.
 *
 * Keys are compared by their 128-bit hash, as values are compared by
 * their 128-bit fingerprint: two different keys with one hash are as
 * unlikely as two different rows with one fingerprint.
 */
#include "postgres.h"

#include <xxhash.h>

#include "access/htup_details.h"
#include "access/tupdesc.h"
#include "catalog/pg_type.h"
#include "executor/tuptable.h"
#include "nodes/params.h"
#include "storage/buffile.h"
#include "storage/itemptr.h"
#include "access/xact.h"
#include "tcop/dest.h"
#include "utils/builtins.h"
#include "utils/datum.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/resowner.h"
#include "utils/tuplestore.h"

#include "coco_internal.h"

#define ROWDIFF_PARTITIONS 16
#define PARTITION_SHIFT 60		/* the top four bits of a key hash */
#define CHUNK_ENTRIES 65536
#define PREFETCH_ROWS 32		/* tracked rows looked up together */

typedef struct KeyHash
{
	uint64		a;				/* places the key in the index */
	uint64		b;				/* places the key in a partition */
} KeyHash;

typedef struct DeclaredEntry
{
	KeyHash		key;
	CocoFingerprint fp;
	int32		comp;
	int32		matched;		/* a tracked row has this key */
} DeclaredEntry;

typedef struct TrackedEntry
{
	KeyHash		key;
	CocoFingerprint fp;
	int32		comp;
	ItemPointerData tid;
	bool		marked;			/* coco.verify found it drifted: write it */
} TrackedEntry;

/* A key whose row is written: its operation and where it is tracked. */
typedef struct ChangeEntry
{
	KeyHash		key;
	ItemPointerData tid;		/* invalid for a new row */
	int16		op;
	bool		seen;			/* read again with its values */
} ChangeEntry;

/*
 * Fixed-size entries that begin with their KeyHash, stored in chunks (no
 * copy when they grow) and found through an array of slots, each the
 * entry's number plus one.
 */
typedef struct EntryTable
{
	MemoryContext cxt;
	Size		entry_size;
	char	  **chunks;
	int			nchunks;
	int			maxchunks;
	int64		n;
	uint32	   *slots;
	uint64		nslots;			/* a power of two; 0: not indexed */
} EntryTable;

struct CocoRowDiff
{
	MemoryContext cxt;
	char	   *table;			/* for messages */
	int			nkeys;
	int		   *key_index;		/* declared columns of the primary key */
	/* the declarations: the statement and its parameters */
	char	   *sql;
	ParamListInfo params;
	TupleDesc	changes_desc;
	/* what the summary pass read */
	int64		budget;			/* entries held in memory before spilling */
	EntryTable	declared;
	BufFile    *declared_parts[ROWDIFF_PARTITIONS];
	bool		spilled;
	int			ntally;
	int		   *tally_comp;
	int64	   *tally_rows;
	CocoDigest *tally_digest;
	/* what the diff found, for these components */
	int		   *comps;
	int			ncomps;
	EntryTable	changes;
	int64		nwanted;		/* changes that need the row's values */
	ItemPointerData *deleted;
	int64		ndeleted;
	int64		maxdeleted;
	bool		duplicate;
	KeyHash		duplicate_key;
};

/* ---- entry tables ------------------------------------------------------- */

static void
table_init(EntryTable *t, Size entry_size, MemoryContext cxt)
{
	memset(t, 0, sizeof(*t));
	t->entry_size = entry_size;
	t->cxt = cxt;
}

static inline void *
table_entry(EntryTable *t, int64 i)
{
	return t->chunks[i / CHUNK_ENTRIES] + (i % CHUNK_ENTRIES) * t->entry_size;
}

static void *
table_append(EntryTable *t)
{
	if (t->n == (int64) t->nchunks * CHUNK_ENTRIES)
	{
		if (t->nchunks == t->maxchunks)
		{
			t->maxchunks = t->maxchunks ? t->maxchunks * 2 : 16;
			t->chunks = t->chunks ? repalloc(t->chunks, sizeof(char *) * t->maxchunks) :
				MemoryContextAlloc(t->cxt, sizeof(char *) * t->maxchunks);
		}
		t->chunks[t->nchunks++] = MemoryContextAllocHuge(t->cxt, t->entry_size * CHUNK_ENTRIES);
	}
	return table_entry(t, t->n++);
}

static void
table_free(EntryTable *t)
{
	for (int i = 0; i < t->nchunks; i++)
		pfree(t->chunks[i]);
	if (t->chunks)
		pfree(t->chunks);
	if (t->slots)
		pfree(t->slots);
	table_init(t, t->entry_size, t->cxt);
}

static inline bool
key_equal(const KeyHash *x, const KeyHash *y)
{
	return x->a == y->a && x->b == y->b;
}

/* Index entry i; if its key is indexed already, return that entry instead. */
static void *
table_index(EntryTable *t, int64 i)
{
	const KeyHash *key = table_entry(t, i);
	uint64		mask = t->nslots - 1;

	for (uint64 s = key->a & mask;; s = (s + 1) & mask)
	{
		if (t->slots[s] == 0)
		{
			t->slots[s] = (uint32) (i + 1);
			return NULL;
		}
		if (key_equal(table_entry(t, t->slots[s] - 1), key))
			return table_entry(t, t->slots[s] - 1);
	}
}

/* Room in the index for n entries, at most half full. */
static void
table_reserve(EntryTable *t, int64 n)
{
	uint64		want = 1024;

	if (n > (int64) PG_UINT32_MAX - 1)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("too many rows in one table's diff: %lld", (long long) n)));
	while (want < (uint64) n * 2)
		want *= 2;
	if (want <= t->nslots)
		return;
	if (t->slots)
		pfree(t->slots);
	t->slots = MemoryContextAllocHuge(t->cxt, sizeof(uint32) * want);
	memset(t->slots, 0, sizeof(uint32) * want);
	/* a grown index takes its entries along; a new one starts empty */
	if (t->nslots > 0)
	{
		t->nslots = want;
		for (int64 i = 0; i < t->n; i++)
			(void) table_index(t, i);
	}
	t->nslots = want;
}

static void *
table_lookup(EntryTable *t, const KeyHash *key)
{
	uint64		mask = t->nslots - 1;

	if (t->nslots == 0)
		return NULL;
	for (uint64 s = key->a & mask; t->slots[s] != 0; s = (s + 1) & mask)
	{
		void	   *e = table_entry(t, t->slots[s] - 1);

		if (key_equal(e, key))
			return e;
	}
	return NULL;
}

/*
 * Lookups in a big index miss the cache twice: at the slot and at the
 * entry.  Callers with many keys at hand ask for both ahead of time.
 */
static inline void
table_prefetch_slot(EntryTable *t, const KeyHash *key)
{
	if (t->nslots > 0)
		__builtin_prefetch(&t->slots[key->a & (t->nslots - 1)]);
}

static inline void
table_prefetch_entry(EntryTable *t, const KeyHash *key)
{
	uint32		s;

	if (t->nslots == 0)
		return;
	s = t->slots[key->a & (t->nslots - 1)];
	if (s != 0)
		__builtin_prefetch(table_entry(t, s - 1));
}

/* ---- receiving rows ---------------------------------------------------- */

typedef enum ReadMode
{
	READ_SUMMARY,				/* every declared row: entry and tally */
	READ_CHANGED,				/* declared rows that change, with values */
	READ_FIND_KEY,				/* the key bytes of one key hash */
	READ_TRACKED				/* tracked rows against the entries */
} ReadMode;

typedef struct RowReceiver
{
	DestReceiver pub;
	CocoRowDiff *diff;
	ReadMode	mode;
	MemoryContext rowcxt;
	StringInfoData keybuf;
	StringInfoData fpbuf;
	int			natts;
	Oid		   *typid;
	int16	   *typlen;
	bool	   *typbyval;
	/* READ_CHANGED */
	Tuplestorestate *out;
	Datum	   *values;
	bool	   *nulls;
	int64		nseen;
	/* READ_FIND_KEY */
	KeyHash		want;
	bytea	   *found;
	/* READ_TRACKED */
	TrackedEntry pending[PREFETCH_ROWS];	/* read, not yet diffed */
	int			npending;
	int		   *rewrite;
	int			nrewrite;
	BufFile    *tracked_parts[ROWDIFF_PARTITIONS];
} RowReceiver;

static void
key_hash(const char *data, int len, KeyHash *out)
{
	XXH128_hash_t h = XXH3_128bits(data, len);

	out->a = h.low64;
	out->b = h.high64;
}

static inline int
partition_of(const KeyHash *key)
{
	return (int) (key->b >> PARTITION_SHIFT);
}

static void
receiver_startup(DestReceiver *self, int operation, TupleDesc desc)
{
	RowReceiver *r = (RowReceiver *) self;
	MemoryContext old = MemoryContextSwitchTo(r->diff->cxt);

	r->natts = desc->natts;
	r->typid = palloc(sizeof(Oid) * desc->natts);
	r->typlen = palloc(sizeof(int16) * desc->natts);
	r->typbyval = palloc(sizeof(bool) * desc->natts);
	for (int i = 0; i < desc->natts; i++)
	{
		r->typid[i] = TupleDescAttr(desc, i)->atttypid;
		get_typlenbyval(r->typid[i], &r->typlen[i], &r->typbyval[i]);
	}
	if (r->mode == READ_SUMMARY && r->diff->changes_desc == NULL)
	{
		/* the changes: (op, key, fp, component, tracked at, columns…) */
		TupleDesc	cd = CreateTemplateTupleDesc(COCO_CH_NFIXED + desc->natts - 1);

		TupleDescInitEntry(cd, COCO_CH_OP + 1, "coco#op", INT4OID, -1, 0);
		TupleDescInitEntry(cd, COCO_CH_KEY + 1, "coco#k", BYTEAOID, -1, 0);
		TupleDescInitEntry(cd, COCO_CH_FP + 1, "coco#f", BYTEAOID, -1, 0);
		TupleDescInitEntry(cd, COCO_CH_COMP + 1, "coco#c", INT4OID, -1, 0);
		TupleDescInitEntry(cd, COCO_CH_TID + 1, "coco#tid", TIDOID, -1, 0);
		for (int i = 1; i < desc->natts; i++)
		{
			Form_pg_attribute a = TupleDescAttr(desc, i);

			TupleDescInitEntry(cd, COCO_CH_NFIXED + i, NameStr(a->attname), a->atttypid, a->atttypmod, 0);
		}
		r->diff->changes_desc = cd;
	}
	MemoryContextSwitchTo(old);
}

static void diff_pending(RowReceiver *r);

static void
receiver_shutdown(DestReceiver *self)
{
	RowReceiver *r = (RowReceiver *) self;

	if (r->mode == READ_TRACKED)
		diff_pending(r);
}

static void
receiver_destroy(DestReceiver *self)
{
}

/* The stable key of a declared row: its primary-key values, as coco.row_key. */
static void
declared_key(RowReceiver *r, TupleTableSlot *slot)
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
					 errmsg("primary key value %d of a declared row is null", i + 1),
					 errhint("Every primary key column must have a value.")));
		coco_key_put_datum(&r->keybuf, slot->tts_values[att], r->typid[att]);
	}
	coco_key_end_tuple(&r->keybuf);
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

static void
spill(BufFile **parts, const KeyHash *key, void *entry, Size size)
{
	int			p = partition_of(key);

	if (parts[p] == NULL)
	{
		/*
		 * The files belong to the (sub)transaction, not to the statement
		 * that happens to be running: a diff kept after the summary pass
		 * outlives it.
		 */
		ResourceOwner owner = CurrentResourceOwner;

		CurrentResourceOwner = CurTransactionResourceOwner;
		parts[p] = BufFileCreateTemp(false);
		CurrentResourceOwner = owner;
	}
	BufFileWrite(parts[p], entry, size);
}

/* Past the memory budget: move the entries held so far to partition files. */
static void
spill_declared(CocoRowDiff *d)
{
	MemoryContext old = MemoryContextSwitchTo(d->cxt);

	for (int64 i = 0; i < d->declared.n; i++)
	{
		DeclaredEntry *e = table_entry(&d->declared, i);

		spill(d->declared_parts, &e->key, e, sizeof(*e));
	}
	table_free(&d->declared);
	d->spilled = true;
	MemoryContextSwitchTo(old);
}

static void
read_summary_row(RowReceiver *r, TupleTableSlot *slot)
{
	CocoRowDiff *d = r->diff;
	DeclaredEntry entry;
	int			comp;

	declared_key(r, slot);
	comp = DatumGetInt32(slot->tts_values[0]);
	memset(&entry, 0, sizeof(entry));
	declared_fingerprint(r, slot, &entry.fp);
	coco_diff_tally_add(comp, r->keybuf.data, r->keybuf.len, &entry.fp);
	key_hash(r->keybuf.data, r->keybuf.len, &entry.key);
	entry.comp = comp;
	if (!d->spilled && d->declared.n >= d->budget)
		spill_declared(d);
	if (d->spilled)
	{
		MemoryContext old = MemoryContextSwitchTo(d->cxt);

		spill(d->declared_parts, &entry.key, &entry, sizeof(entry));
		MemoryContextSwitchTo(old);
	}
	else
		*(DeclaredEntry *) table_append(&d->declared) = entry;
}

static bool
in_list(int value, const int *list, int n)
{
	for (int i = 0; i < n; i++)
		if (list[i] == value)
			return true;
	return false;
}

static void
changes_mismatch(CocoRowDiff *d)
{
	ereport(ERROR,
			(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
			 errmsg("the rows declared for table \"%s\" differ between two reads in one run",
					d->table),
			 errdetail("A run reads the declarations twice: once to diff them, once more for the values of the rows that change."),
			 errhint("A declare_rows query must return the same rows each time it runs in one snapshot: avoid volatile functions and LIMIT without ORDER BY.")));
}

static void
read_changed_row(RowReceiver *r, TupleTableSlot *slot)
{
	CocoRowDiff *d = r->diff;
	KeyHash		key;
	ChangeEntry *c;
	CocoFingerprint fp;
	int			ncols = r->natts - 1;

	if (!in_list(DatumGetInt32(slot->tts_values[0]), d->comps, d->ncomps))
		return;					/* a component not diffed */
	declared_key(r, slot);
	key_hash(r->keybuf.data, r->keybuf.len, &key);
	c = table_lookup(&d->changes, &key);
	if (c == NULL || c->op == COCO_OP_DELETE)
		return;
	if (c->seen)
		changes_mismatch(d);
	c->seen = true;
	r->nseen++;
	declared_fingerprint(r, slot, &fp);
	r->values[COCO_CH_OP] = Int32GetDatum(c->op);
	r->nulls[COCO_CH_OP] = false;
	r->values[COCO_CH_KEY] = PointerGetDatum(coco_key_buf_to_bytea(&r->keybuf));
	r->nulls[COCO_CH_KEY] = false;
	r->values[COCO_CH_FP] = PointerGetDatum(coco_fingerprint_to_bytea(&fp));
	r->nulls[COCO_CH_FP] = false;
	r->values[COCO_CH_COMP] = slot->tts_values[0];
	r->nulls[COCO_CH_COMP] = false;
	r->values[COCO_CH_TID] = PointerGetDatum(&c->tid);
	r->nulls[COCO_CH_TID] = !ItemPointerIsValid(&c->tid);
	memcpy(r->values + COCO_CH_NFIXED, slot->tts_values + 1, sizeof(Datum) * ncols);
	memcpy(r->nulls + COCO_CH_NFIXED, slot->tts_isnull + 1, sizeof(bool) * ncols);
	tuplestore_putvalues(r->out, d->changes_desc, r->values, r->nulls);
}

static void
add_change(CocoRowDiff *d, const KeyHash *key, const ItemPointerData *tid, int op)
{
	ChangeEntry *c;

	table_reserve(&d->changes, d->changes.n + 1);
	c = table_append(&d->changes);
	memset(c, 0, sizeof(*c));
	c->key = *key;
	if (tid)
		c->tid = *tid;
	else
		ItemPointerSetInvalid(&c->tid);
	c->op = op;
	(void) table_index(&d->changes, d->changes.n - 1);
	if (op != COCO_OP_DELETE)
		d->nwanted++;
}

/* One tracked row against the indexed entries of its partition. */
static void
diff_tracked(RowReceiver *r, const TrackedEntry *t)
{
	CocoRowDiff *d = r->diff;
	DeclaredEntry *e = table_lookup(&d->declared, &t->key);

	if (e == NULL)
	{
		/* tracked, no longer declared */
		if (d->ndeleted == d->maxdeleted)
		{
			d->maxdeleted = d->maxdeleted ? d->maxdeleted * 2 : 1024;
			d->deleted = d->deleted ?
				repalloc_huge(d->deleted, sizeof(ItemPointerData) * d->maxdeleted) :
				MemoryContextAllocHuge(d->cxt, sizeof(ItemPointerData) * d->maxdeleted);
		}
		d->deleted[d->ndeleted++] = t->tid;
		return;
	}
	e->matched = true;
	if (t->marked || in_list(e->comp, r->rewrite, r->nrewrite) ||
		!coco_fingerprint_equal(&e->fp, &t->fp))
		add_change(d, &e->key, &t->tid, COCO_OP_UPDATE);
	else if (e->comp != t->comp)
		add_change(d, &e->key, &t->tid, COCO_OP_TRACK_ONLY);
}

/* Diff the tracked rows read so far, their entries fetched together. */
static void
diff_pending(RowReceiver *r)
{
	for (int i = 0; i < r->npending; i++)
		table_prefetch_entry(&r->diff->declared, &r->pending[i].key);
	for (int i = 0; i < r->npending; i++)
		diff_tracked(r, &r->pending[i]);
	r->npending = 0;
}

static void
read_tracked_row(RowReceiver *r, TupleTableSlot *slot)
{
	TrackedEntry t;
	bytea	   *key;
	bytea	   *fp;

	memset(&t, 0, sizeof(t));
	t.tid = *(ItemPointer) DatumGetPointer(slot->tts_values[0]);
	key = DatumGetByteaPP(slot->tts_values[1]);
	fp = DatumGetByteaPP(slot->tts_values[2]);
	/* an empty fingerprint is coco.verify's mark: the row is written again */
	if (VARSIZE_ANY_EXHDR(fp) == 0)
		t.marked = true;
	else if (VARSIZE_ANY_EXHDR(fp) != COCO_FINGERPRINT_LEN)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_CORRUPTED),
				 errmsg("a tracked row of table \"%s\" has a fingerprint of %d bytes",
						r->diff->table, (int) VARSIZE_ANY_EXHDR(fp))));
	else
		memcpy(t.fp.bytes, VARDATA_ANY(fp), COCO_FINGERPRINT_LEN);
	key_hash(VARDATA_ANY(key), VARSIZE_ANY_EXHDR(key), &t.key);
	t.comp = DatumGetInt32(slot->tts_values[3]);
	if (r->diff->spilled)
	{
		MemoryContext old = MemoryContextSwitchTo(r->diff->cxt);

		spill(r->tracked_parts, &t.key, &t, sizeof(t));
		MemoryContextSwitchTo(old);
	}
	else
	{
		table_prefetch_slot(&r->diff->declared, &t.key);
		r->pending[r->npending++] = t;
		if (r->npending == PREFETCH_ROWS)
			diff_pending(r);
	}
}

static bool
receiver_receive(TupleTableSlot *slot, DestReceiver *self)
{
	RowReceiver *r = (RowReceiver *) self;
	MemoryContext old = MemoryContextSwitchTo(r->rowcxt);
	bool		go_on = true;

	slot_getallattrs(slot);
	switch (r->mode)
	{
		case READ_SUMMARY:
			read_summary_row(r, slot);
			break;
		case READ_CHANGED:
			read_changed_row(r, slot);
			break;
		case READ_FIND_KEY:
			{
				KeyHash		key;

				declared_key(r, slot);
				key_hash(r->keybuf.data, r->keybuf.len, &key);
				if (key_equal(&key, &r->want))
				{
					MemoryContextSwitchTo(r->diff->cxt);
					r->found = coco_key_buf_to_bytea(&r->keybuf);
					go_on = false;
				}
				break;
			}
		case READ_TRACKED:
			read_tracked_row(r, slot);
			break;
	}
	MemoryContextSwitchTo(old);
	MemoryContextReset(r->rowcxt);
	return go_on;
}

static RowReceiver *
receiver_create(CocoRowDiff *d, ReadMode mode)
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
	initStringInfo(&r->keybuf);
	initStringInfo(&r->fpbuf);
	MemoryContextSwitchTo(old);
	return r;
}

static void
receiver_free(RowReceiver *r)
{
	MemoryContextDelete(r->rowcxt);
	pfree(r->keybuf.data);
	pfree(r->fpbuf.data);
	pfree(r);
}

/*
 * Run a query into a receiver.  Declarations are read under the active
 * snapshot (the run's, pushed by the caller); tracking is read as it is
 * now, after what this run has written so far.
 */
static void
run_into(const char *sql, ParamListInfo params, RowReceiver *r)
{
	SPIExecuteOptions opts;
	int			rc;

	memset(&opts, 0, sizeof(opts));
	opts.params = params;
	opts.read_only = (r->mode != READ_TRACKED);
	opts.dest = (DestReceiver *) r;
	rc = SPI_execute_extended(sql, &opts);
	if (rc < 0)
		elog(ERROR, "coco_target: reading rows failed (%s)", SPI_result_code_string(rc));
}

/* ---- the steps ------------------------------------------------------------ */

/*
 * A diff of one table's rows.  It lives until coco_rowdiff_free() or the
 * end of the transaction, so one summary pass can serve the diff after it.
 */
CocoRowDiff *
coco_rowdiff_create(const CocoTableSpec *spec, const char *declared_sql,
					int nparams, const Oid *types, const Datum *values)
{
	MemoryContext cxt = AllocSetContextCreate(TopTransactionContext, "coco_target row diff",
											  ALLOCSET_DEFAULT_SIZES);
	MemoryContext old = MemoryContextSwitchTo(cxt);
	CocoRowDiff *d = palloc0(sizeof(CocoRowDiff));

	d->cxt = cxt;
	d->table = pstrdup(spec->tn.qualified);
	d->nkeys = spec->nkeys;
	d->key_index = palloc(sizeof(int) * Max(spec->nkeys, 1));
	memcpy(d->key_index, spec->key_index, sizeof(int) * spec->nkeys);
	d->sql = pstrdup(declared_sql);
	d->params = makeParamList(nparams);
	for (int i = 0; i < nparams; i++)
	{
		ParamExternData *p = &d->params->params[i];
		int16		len;
		bool		byval;

		get_typlenbyval(types[i], &len, &byval);
		p->value = datumCopy(values[i], byval, len);
		p->isnull = false;
		p->pflags = PARAM_FLAG_CONST;
		p->ptype = types[i];
	}
	d->budget = Max((int64) coco_work_mem * 1024 / (int64) (sizeof(DeclaredEntry) + 2 * sizeof(uint32)),
					1024);
	table_init(&d->declared, sizeof(DeclaredEntry), cxt);
	table_init(&d->changes, sizeof(ChangeEntry), cxt);
	MemoryContextSwitchTo(old);
	return d;
}

/* Free a diff; on abort its temporary files are the resource owner's to close. */
void
coco_rowdiff_free(CocoRowDiff *d, bool close_files)
{
	for (int p = 0; p < ROWDIFF_PARTITIONS && close_files; p++)
		if (d->declared_parts[p])
			BufFileClose(d->declared_parts[p]);
	MemoryContextDelete(d->cxt);
}

/*
 * The summary pass: read every declared row once, as the caller (the app
 * owner, under the run's snapshot).  Tallies count and digest per
 * component (coco_diff_tally) and keeps each row's entry for a diff.
 */
void
coco_rowdiff_read_declared(CocoRowDiff *d)
{
	RowReceiver *r;
	MemoryContext old;

	coco_diff_tally_reset();
	r = receiver_create(d, READ_SUMMARY);
	run_into(d->sql, d->params, r);
	receiver_free(r);

	/* keep the tallies: a later diff of some of the components reports theirs */
	d->ntally = coco_diff_tally_count();
	old = MemoryContextSwitchTo(d->cxt);
	d->tally_comp = palloc(sizeof(int) * Max(d->ntally, 1));
	d->tally_rows = palloc(sizeof(int64) * Max(d->ntally, 1));
	d->tally_digest = palloc(sizeof(CocoDigest) * Max(d->ntally, 1));
	MemoryContextSwitchTo(old);
	for (int i = 0; i < d->ntally; i++)
		coco_diff_tally_nth(i, &d->tally_comp[i], &d->tally_rows[i], &d->tally_digest[i]);
}

/* Make the tallies those of these components only, as read. */
void
coco_rowdiff_publish_tally(CocoRowDiff *d, const int *comps, int ncomps)
{
	coco_diff_tally_reset();
	for (int i = 0; i < d->ntally; i++)
		if (in_list(d->tally_comp[i], comps, ncomps))
			coco_diff_tally_set(d->tally_comp[i], d->tally_rows[i], &d->tally_digest[i]);
}

static void
load_partition(BufFile *file, EntryTable *t, Size size)
{
	char		buf[sizeof(TrackedEntry)];

	if (file == NULL)
		return;
	if (BufFileSeek(file, 0, 0, SEEK_SET) != 0)
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("could not rewind a temporary file of the row diff")));
	for (;;)
	{
		size_t		got = BufFileRead(file, buf, size);

		if (got == 0)
			break;
		if (got != size)
			ereport(ERROR,
					(errcode_for_file_access(),
					 errmsg("could not read a temporary file of the row diff")));
		memcpy(table_append(t), buf, size);
	}
}

/* Index the declared entries of one partition; false on a repeated key. */
static bool
index_declared(CocoRowDiff *d, const int *comps, int ncomps)
{
	EntryTable *t = &d->declared;
	int64		keep = 0;

	/* only the diffed components' rows take part */
	for (int64 i = 0; i < t->n; i++)
	{
		DeclaredEntry *e = table_entry(t, i);

		if (!in_list(e->comp, comps, ncomps))
			continue;
		e->matched = false;
		if (keep != i)
			memcpy(table_entry(t, keep), e, sizeof(DeclaredEntry));
		keep++;
	}
	t->n = keep;
	table_reserve(t, t->n);
	for (int64 i = 0; i < t->n; i++)
	{
		DeclaredEntry *dup;

		if (i + PREFETCH_ROWS < t->n)
			table_prefetch_slot(t, table_entry(t, i + PREFETCH_ROWS));
		dup = table_index(t, i);

		if (dup != NULL)
		{
			d->duplicate = true;
			d->duplicate_key = dup->key;
			return false;
		}
	}
	return true;
}

static void
declared_not_tracked(CocoRowDiff *d)
{
	for (int64 i = 0; i < d->declared.n; i++)
	{
		DeclaredEntry *e = table_entry(&d->declared, i);

		if (!e->matched)
			add_change(d, &e->key, NULL, COCO_OP_INSERT);
	}
}

/*
 * The diff: stream the tracked rows of these components (as the extension
 * owner) against the declared entries.  Rows of the components in
 * `rewrite` are written even when unchanged.  False when a key is
 * declared twice: coco_rowdiff_duplicate_error() says which.
 */
bool
coco_rowdiff_against_tracked(CocoRowDiff *d, int64 target_id, const int *comps, int ncomps,
							 const int *rewrite, int nrewrite)
{
	RowReceiver *r = receiver_create(d, READ_TRACKED);
	Oid			types[2] = {INT8OID, INT4ARRAYOID};
	Datum		values[2];
	Datum	   *cd = palloc(sizeof(Datum) * Max(ncomps, 1));
	ParamListInfo params = makeParamList(2);
	const char *sql = "SELECT ctid, key, fp, comp_id FROM coco.tracked_row "
		"WHERE target_id OPERATOR(pg_catalog.=) $1 AND comp_id OPERATOR(pg_catalog.=) ANY ($2)";

	for (int i = 0; i < ncomps; i++)
		cd[i] = Int32GetDatum(comps[i]);
	values[0] = Int64GetDatum(target_id);
	values[1] = PointerGetDatum(construct_array(cd, ncomps, INT4OID, 4, true, TYPALIGN_INT));
	for (int i = 0; i < 2; i++)
	{
		params->params[i].value = values[i];
		params->params[i].isnull = false;
		params->params[i].pflags = PARAM_FLAG_CONST;
		params->params[i].ptype = types[i];
	}
	r->rewrite = (int *) rewrite;
	r->nrewrite = nrewrite;
	d->comps = MemoryContextAlloc(d->cxt, sizeof(int) * Max(ncomps, 1));
	memcpy(d->comps, comps, sizeof(int) * ncomps);
	d->ncomps = ncomps;

	if (!d->spilled)
	{
		/* everything in memory: each tracked row is diffed as it streams */
		if (!index_declared(d, comps, ncomps))
			return false;
		run_into(sql, params, r);
		declared_not_tracked(d);
		table_free(&d->declared);
	}
	else
	{
		/* partitioned: split the tracked rows too, then diff each partition */
		run_into(sql, params, r);
		for (int p = 0; p < ROWDIFF_PARTITIONS; p++)
		{
			EntryTable	tracked;

			load_partition(d->declared_parts[p], &d->declared, sizeof(DeclaredEntry));
			if (!index_declared(d, comps, ncomps))
				return false;
			table_init(&tracked, sizeof(TrackedEntry), d->cxt);
			load_partition(r->tracked_parts[p], &tracked, sizeof(TrackedEntry));
			for (int64 i = 0; i < tracked.n; i++)
				diff_tracked(r, table_entry(&tracked, i));
			table_free(&tracked);
			declared_not_tracked(d);
			table_free(&d->declared);
			if (r->tracked_parts[p])
				BufFileClose(r->tracked_parts[p]);
		}
	}
	receiver_free(r);
	return true;
}

/* The key declared twice, found by reading the declarations once more. */
void
coco_rowdiff_duplicate_error(CocoRowDiff *d)
{
	RowReceiver *r = receiver_create(d, READ_FIND_KEY);

	r->want = d->duplicate_key;
	run_into(d->sql, d->params, r);
	ereport(ERROR,
			(errcode(ERRCODE_UNIQUE_VIOLATION),
			 r->found ?
			 errmsg("row with key %s is declared twice for table \"%s\"",
					coco_key_describe(VARDATA_ANY(r->found), VARSIZE_ANY_EXHDR(r->found)),
					d->table) :
			 errmsg("a row key is declared twice for table \"%s\"", d->table),
			 errdetail("Each row may be declared once between two reconciles.")));
}

TupleDesc
coco_rowdiff_changes_desc(CocoRowDiff *d)
{
	return d->changes_desc;
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

/*
 * The rows no longer declared, as changes (as the extension owner): their
 * keys and components from tracking, by the tids the diff found.
 */
void
coco_rowdiff_deletions(CocoRowDiff *d, Tuplestorestate *out)
{
	TupleDesc	desc = d->changes_desc;
	Datum	   *values = palloc(sizeof(Datum) * desc->natts);
	bool	   *nulls = palloc(sizeof(bool) * desc->natts);
	Oid			types[1] = {TIDARRAYOID};
	int64		done = 0;

	while (done < d->ndeleted)
	{
		int			n = (int) Min(d->ndeleted - done, (int64) coco_batch_size);
		Datum	   *tids = palloc(sizeof(Datum) * n);
		Datum		arg[1];

		for (int i = 0; i < n; i++)
			tids[i] = PointerGetDatum(&d->deleted[done + i]);
		arg[0] = PointerGetDatum(construct_array(tids, n, TIDOID, sizeof(ItemPointerData), false, TYPALIGN_SHORT));
		coco_spi_exec("SELECT ctid, key, comp_id FROM coco.tracked_row WHERE ctid OPERATOR(pg_catalog.=) ANY ($1)",
					  1, types, arg, NULL, SPI_OK_SELECT);
		if ((int64) SPI_processed != n)
			elog(ERROR, "coco_target: %d tracked rows to delete, %llu found", n,
				 (unsigned long long) SPI_processed);
		for (uint64 i = 0; i < SPI_processed; i++)
		{
			HeapTuple	tup = SPI_tuptable->vals[i];
			bool		isnull;

			memset(nulls, true, sizeof(bool) * desc->natts);
			values[COCO_CH_OP] = Int32GetDatum(COCO_OP_DELETE);
			values[COCO_CH_TID] = SPI_getbinval(tup, SPI_tuptable->tupdesc, 1, &isnull);
			values[COCO_CH_KEY] = SPI_getbinval(tup, SPI_tuptable->tupdesc, 2, &isnull);
			values[COCO_CH_COMP] = SPI_getbinval(tup, SPI_tuptable->tupdesc, 3, &isnull);
			nulls[COCO_CH_OP] = nulls[COCO_CH_TID] = nulls[COCO_CH_KEY] = nulls[COCO_CH_COMP] = false;
			decode_key_into(d, DatumGetByteaPP(values[COCO_CH_KEY]), desc, values, nulls);
			tuplestore_putvalues(out, desc, values, nulls);
		}
		SPI_freetuptable(SPI_tuptable);
		pfree(tids);
		done += n;
	}
}

/*
 * The second read of the declarations (as the app owner, under the run's
 * snapshot): the rows that change, with their values, into `out`.
 */
void
coco_rowdiff_read_changed(CocoRowDiff *d, Tuplestorestate *out)
{
	RowReceiver *r;

	if (d->nwanted == 0)
		return;
	r = receiver_create(d, READ_CHANGED);
	r->out = out;
	r->values = MemoryContextAlloc(d->cxt, sizeof(Datum) * d->changes_desc->natts);
	r->nulls = MemoryContextAlloc(d->cxt, sizeof(bool) * d->changes_desc->natts);
	run_into(d->sql, d->params, r);
	if (r->nseen != d->nwanted)
		changes_mismatch(d);
	receiver_free(r);
}
