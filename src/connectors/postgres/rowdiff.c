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
 * ROWDIFF_PARTITIONS partitions.  While they exceed coco_target.work_mem,
 * the highest partition still in memory moves to a temporary file.  A
 * declared row whose partition is on disk leaves a 40-byte entry in that
 * partition's file instead; after the read, each such partition is diffed
 * from its two files, and the declarations are read a second time for the
 * values of the rows that change there.  Memory stays near the budget
 * however many rows the table has.
 *
 * Keys are compared by their 128-bit hash, as values are compared by
 * their 128-bit fingerprint: two different keys with one hash are as
 * unlikely as two different rows with one fingerprint.
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

#include "pg_connector.h"

#define ROWDIFF_PARTITIONS 16
#define PARTITION_SHIFT 60		/* the top four bits of a key hash */
#define CHUNK_ENTRIES 16384
#define PREFETCH_ROWS 32		/* tracked rows indexed together */
#define BULK_BATCH 1000			/* rows multi-inserted together */

typedef struct KeyHash
{
	uint64		a;				/* places the key in an index */
	uint64		b;				/* places the key in a partition */
} KeyHash;

typedef struct TrackedEntry
{
	KeyHash		key;
	CocoFingerprint fp;
	int32		comp;
	ItemPointerData tid;
	bool		marked;			/* coco.verify found it drifted: write it */
	bool		matched;		/* declared again */
} TrackedEntry;

/* a declared row of a partition on disk */
typedef struct DeclaredEntry
{
	KeyHash		key;
	CocoFingerprint fp;
	int32		comp;
} DeclaredEntry;

/* A key written by this run: new rows, and changes read a second time. */
typedef struct ChangeEntry
{
	KeyHash		key;
	ItemPointerData tid;		/* invalid for a new row */
	int16		op;
	bool		to_read;		/* its values come from the second read */
	bool		seen;			/* ... and have */
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
	int		   *rewrite;		/* components written even when unchanged */
	int			nrewrite;
	/* the declarations: the statement and its parameters */
	char	   *sql;
	ParamListInfo params;
	/* the tracked rows, per partition: in memory or on disk */
	int64		budget;			/* tracked entries held in memory at most */
	int64		resident;		/* tracked entries in memory now */
	EntryTable	tracked[ROWDIFF_PARTITIONS];
	bool		on_disk[ROWDIFF_PARTITIONS];
	BufFile    *tracked_file[ROWDIFF_PARTITIONS];
	BufFile    *declared_file[ROWDIFF_PARTITIONS];
	/* the counts and digests the read tallied */
	CocoChildTally *tally;		/* what each component declares, as read */
	/* what the diff found */
	TupleDesc	changes_desc;
	Tuplestorestate *changes;
	EntryTable	changed;		/* ChangeEntry */
	int64		to_read;
	ItemPointerData *deleted;
	int64		ndeleted;
	int64		maxdeleted;
	/* a key declared twice, found from a file: its bytes are not at hand */
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
				 errmsg("too many rows in one partition of a table's diff: %lld", (long long) n)));
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

/* Index every entry (all keys distinct), asking for slots ahead of time. */
static void
table_index_all(EntryTable *t)
{
	table_reserve(t, t->n);
	for (int64 i = 0; i < t->n; i++)
	{
		if (i + PREFETCH_ROWS < t->n)
			table_prefetch_slot(t, table_entry(t, i + PREFETCH_ROWS));
		(void) table_index(t, i);
	}
}

/* ---- temporary files ---------------------------------------------------- */

static void
file_write(MemoryContext cxt, BufFile **file, void *entry, Size size)
{
	if (*file == NULL)
	{
		/*
		 * The files belong to the diff and to the (sub)transaction, not to
		 * the row or the statement at hand: a diff kept after the summary
		 * pass outlives both.
		 */
		ResourceOwner owner = CurrentResourceOwner;
		MemoryContext old = MemoryContextSwitchTo(cxt);

		CurrentResourceOwner = CurTransactionResourceOwner;
		*file = BufFileCreateTemp(false);
		CurrentResourceOwner = owner;
		MemoryContextSwitchTo(old);
	}
	BufFileWrite(*file, entry, size);
}

static void
file_load(BufFile *file, EntryTable *t)
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
		size_t		got = BufFileRead(file, buf, t->entry_size);

		if (got == 0)
			break;
		if (got != t->entry_size)
			ereport(ERROR,
					(errcode_for_file_access(),
					 errmsg("could not read a temporary file of the row diff")));
		memcpy(table_append(t), buf, t->entry_size);
	}
}

static void
file_close(BufFile **file)
{
	if (*file)
		BufFileClose(*file);
	*file = NULL;
}

/* ---- receiving rows ---------------------------------------------------- */

typedef enum ReadMode
{
	READ_TRACKED,				/* load the tracked rows */
	READ_DECLARED,				/* every declared row: tally, diff */
	READ_CHANGED,				/* declared rows of partitions on disk that change */
	READ_FIND_KEY,				/* nothing: stop at one key */
	READ_LOAD					/* a created table's rows: write them, and their tracking */
} ReadMode;

/* a declared row waiting for its lookup */
typedef struct PendingRow
{
	KeyHash		hash;
	CocoFingerprint fp;
	int			comp;
	StringInfoData key;
	MinimalTuple row;
} PendingRow;

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
	Oid		   *basetypid;		/* of domains: the type a key encodes */
	int16	   *typlen;
	bool	   *typbyval;
	Datum	   *values;			/* a change being written */
	bool	   *nulls;
	int64		nseen;			/* READ_CHANGED */
	PendingRow	pending[PREFETCH_ROWS]; /* READ_DECLARED */
	int			npending;
	MemoryContext pendingcxt;
	TupleTableSlot *copy;
	StringInfoData found;		/* READ_FIND_KEY */
	struct BulkWriter *target;	/* READ_LOAD: NULL when the table is filled */
	struct BulkWriter *tracking;
	int32		app_id;
	int64		target_id;
	int64		pass_id;
	int64		loaded;
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

static bool
in_list(int value, const int *list, int n)
{
	for (int i = 0; i < n; i++)
		if (list[i] == value)
			return true;
	return false;
}

static void
receiver_startup(DestReceiver *self, int operation, TupleDesc desc)
{
	RowReceiver *r = (RowReceiver *) self;
	CocoRowDiff *d = r->diff;
	MemoryContext old = MemoryContextSwitchTo(d->cxt);

	r->natts = desc->natts;
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
					 errmsg("primary key value %d of a declared row is null", i + 1),
					 errhint("Every primary key column must have a value.")));
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

/*
 * A key declared twice.  With its bytes at hand, that is the error; from a
 * file, the diff notes it and coco_rowdiff_duplicate_error() names it.
 */
static void
declared_twice(CocoRowDiff *d, StringInfo key, const KeyHash *hash)
{
	if (key != NULL)
		ereport(ERROR,
				(errcode(ERRCODE_UNIQUE_VIOLATION),
				 errmsg("row with key %s is declared twice for table \"%s\"",
						coco_key_describe(key->data, key->len), d->table),
				 errdetail("Each row may be declared once between two reconciles.")));
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
static ChangeEntry *
add_change(CocoRowDiff *d, const KeyHash *hash, const ItemPointerData *tid, int op,
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
static void
store_change(CocoRowDiff *d, Datum *values, bool *nulls)
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
	store_change(d, r->values, r->nulls);
}

/* What a declared row does to the tracked row with its key (or to none). */
static int
classify(CocoRowDiff *d, TrackedEntry *t, int comp, const CocoFingerprint *fp, StringInfo key)
{
	if (t == NULL)
		return COCO_OP_INSERT;
	if (t->matched)
	{
		declared_twice(d, key, &t->key);
		return 0;
	}
	t->matched = true;
	if (t->marked || in_list(comp, d->rewrite, d->nrewrite) || !coco_fingerprint_equal(fp, &t->fp))
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
		int			op = classify(d, t, pr->comp, &pr->fp, &pr->key);

		if (op == 0)
			continue;
		if (op == COCO_OP_INSERT)
			(void) add_change(d, &pr->hash, NULL, op, false, &pr->key);
		ExecStoreMinimalTuple(pr->row, r->copy, false);
		slot_getallattrs(r->copy);
		put_change(r, r->copy, &pr->key, op, &pr->fp, t ? &t->tid : NULL);
		ExecClearTuple(r->copy);
	}
	r->npending = 0;
	MemoryContextReset(r->pendingcxt);
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

	if (d->on_disk[p])
	{
		DeclaredEntry e;

		memset(&e, 0, sizeof(e));
		e.key = hash;
		e.fp = fp;
		e.comp = comp;
		file_write(d->cxt, &d->declared_file[p], &e, sizeof(e));
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
static void
declarations_changed(CocoRowDiff *d)
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
	if (!d->on_disk[partition_of(&hash)])
		return;
	c = table_lookup(&d->changed, &hash);
	if (c == NULL || !c->to_read)
		return;
	if (c->seen)
		declarations_changed(d);
	c->seen = true;
	r->nseen++;
	declared_fingerprint(r, slot, &fp);
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
			file_write(d->cxt, &d->tracked_file[p], table_entry(t, i), sizeof(TrackedEntry));
		d->resident -= t->n;
		table_free(t);
		d->on_disk[p] = true;
		return;
	}
}

static void
read_tracked_row(RowReceiver *r, TupleTableSlot *slot)
{
	CocoRowDiff *d = r->diff;
	TrackedEntry t;
	bytea	   *key = DatumGetByteaPP(slot->tts_values[1]);
	bytea	   *fp = DatumGetByteaPP(slot->tts_values[2]);
	int			p;

	memset(&t, 0, sizeof(t));
	t.tid = *(ItemPointer) DatumGetPointer(slot->tts_values[0]);
	/* an empty fingerprint is coco.verify's mark: the row is written again */
	if (VARSIZE_ANY_EXHDR(fp) == 0)
		t.marked = true;
	else if (VARSIZE_ANY_EXHDR(fp) != COCO_FINGERPRINT_LEN)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_CORRUPTED),
				 errmsg("a tracked row of table \"%s\" has a fingerprint of %d bytes",
						d->table, (int) VARSIZE_ANY_EXHDR(fp))));
	else
		memcpy(t.fp.bytes, VARDATA_ANY(fp), COCO_FINGERPRINT_LEN);
	key_hash(VARDATA_ANY(key), VARSIZE_ANY_EXHDR(key), &t.key);
	t.comp = DatumGetInt32(slot->tts_values[3]);
	p = partition_of(&t.key);
	if (d->on_disk[p])
		file_write(d->cxt, &d->tracked_file[p], &t, sizeof(t));
	else
	{
		*(TrackedEntry *) table_append(&d->tracked[p]) = t;
		if (++d->resident > d->budget)
			evict_partition(d);
	}
}

/*
 * Rows written straight into a table, as COPY does: a batch of slots goes
 * in with one multi-insert (a page of rows per WAL record), then into the
 * table's indexes.  Used only where no user code can be attached: the
 * extension's tracking table, and a table this run has just created.
 */
typedef struct BulkWriter
{
	Relation	rel;
	ResultRelInfo *rri;
	EState	   *estate;
	BulkInsertState bistate;
	CommandId	cid;
	TupleTableSlot *slots[BULK_BATCH];
	int			nslots;
	bool		check_constraints;	/* NOT NULL of a created table */
	MemoryContext cxt;			/* values made for a batch */
} BulkWriter;

static BulkWriter *
bulk_open(Oid relid, MemoryContext cxt)
{
	MemoryContext old = MemoryContextSwitchTo(cxt);
	BulkWriter *w = palloc0(sizeof(BulkWriter));

	RangeTblEntry *rte = makeNode(RangeTblEntry);

	w->rel = table_open(relid, RowExclusiveLock);

	/*
	 * The executor state of an INSERT into the relation, range table
	 * included: a constraint's or a unique index's error builds its detail
	 * from the range table entry of the result relation.
	 */
	rte->rtekind = RTE_RELATION;
	rte->relid = relid;
	rte->relkind = RelationGetForm(w->rel)->relkind;
	rte->rellockmode = RowExclusiveLock;
	rte->requiredPerms = ACL_INSERT;
	w->estate = CreateExecutorState();
	ExecInitRangeTable(w->estate, list_make1(rte));
	w->rri = makeNode(ResultRelInfo);
	InitResultRelInfo(w->rri, w->rel, 1, NULL, 0);
	ExecOpenIndices(w->rri, false);
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
static TupleTableSlot *
bulk_slot(BulkWriter *w)
{
	if (w->nslots == BULK_BATCH)
		bulk_flush(w);
	ExecClearTuple(w->slots[w->nslots]);
	return w->slots[w->nslots];
}

static void
bulk_stored(BulkWriter *w)
{
	TupleTableSlot *slot = w->slots[w->nslots];

	if (w->check_constraints)
		ExecConstraints(w->rri, slot, w->estate);
	w->nslots++;
}

static void
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
 * A row of a table loaded by this run: into the table itself (when the
 * run writes it here too), and its tracking row.
 */
static void
load_row(RowReceiver *r, TupleTableSlot *slot)
{
	CocoFingerprint fp;
	KeyHash		hash;
	int			comp = count_declared_row(r, slot, &hash, &fp);
	TupleTableSlot *ts;
	MemoryContext old;

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
		r->loaded++;
	}
	ts = bulk_slot(r->tracking);
	old = MemoryContextSwitchTo(r->tracking->cxt);
	ts->tts_values[0] = Int32GetDatum(r->app_id);
	ts->tts_values[1] = Int64GetDatum(r->target_id);
	ts->tts_values[2] = Int32GetDatum(comp);
	ts->tts_values[3] = PointerGetDatum(coco_key_buf_to_bytea(&r->keybuf));
	ts->tts_values[4] = PointerGetDatum(coco_fingerprint_to_bytea(&fp));
	ts->tts_values[5] = Int64GetDatum(r->pass_id);
	MemoryContextSwitchTo(old);
	memset(ts->tts_isnull, false, sizeof(bool) * 6);
	ExecStoreVirtualTuple(ts);
	bulk_stored(r->tracking);
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
		case READ_TRACKED:
			read_tracked_row(r, slot);
			break;
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
				if (key_equal(&hash, &r->diff->duplicate_key))
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
	r->pendingcxt = AllocSetContextCreate(d->cxt, "coco_target pending rows", ALLOCSET_DEFAULT_SIZES);
	initStringInfo(&r->keybuf);
	initStringInfo(&r->fpbuf);
	initStringInfo(&r->found);
	MemoryContextSwitchTo(old);
	return r;
}

static void
receiver_free(RowReceiver *r)
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
 * Run a query into a receiver.  Declarations are read under the active
 * snapshot (the run's, pushed by the caller); tracking, and a table the
 * run has just loaded, are read as they are now, after what this run has
 * written so far.
 */
static void
run_into(const char *sql, ParamListInfo params, RowReceiver *r)
{
	SPIExecuteOptions opts;
	int			rc;

	memset(&opts, 0, sizeof(opts));
	opts.params = params;
	opts.read_only = !(r->mode == READ_TRACKED || (r->mode == READ_LOAD && r->target == NULL));
	opts.dest = (DestReceiver *) r;
	rc = SPI_execute_extended(sql, &opts);
	if (rc < 0)
		elog(ERROR, "coco_target: reading rows failed (%s)", SPI_result_code_string(rc));
}

static ParamListInfo
make_params(int nparams, const Oid *types, const Datum *values)
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
	d->table = pstrdup(spec->tn.qualified);
	d->nkeys = spec->nkeys;
	d->key_index = palloc(sizeof(int) * Max(spec->nkeys, 1));
	memcpy(d->key_index, spec->key_index, sizeof(int) * spec->nkeys);
	d->rewrite = palloc(sizeof(int) * Max(nrewrite, 1));
	if (nrewrite > 0)
		memcpy(d->rewrite, rewrite, sizeof(int) * nrewrite);
	d->nrewrite = nrewrite;
	d->sql = pstrdup(declared_sql);
	d->params = make_params(nparams, types, values);
	d->tally = coco_child_tally_create();
	/* the entries and, at half fill, their slots */
	d->budget = Max((int64) coco_work_mem * 1024 / (int64) (sizeof(TrackedEntry) + 2 * sizeof(uint32)),
					1024);
	for (int p = 0; p < ROWDIFF_PARTITIONS; p++)
		table_init(&d->tracked[p], sizeof(TrackedEntry), cxt);
	table_init(&d->changed, sizeof(ChangeEntry), cxt);
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

/*
 * Load the tracked rows of these components (as the extension owner):
 * into memory, partition by partition while the budget lasts.
 */
void
coco_rowdiff_load_tracked(CocoRowDiff *d, int64 target_id, const int *comps, int ncomps)
{
	RowReceiver *r = receiver_create(d, READ_TRACKED);
	Oid			types[2] = {INT8OID, INT4ARRAYOID};
	Datum		values[2];

	values[0] = Int64GetDatum(target_id);
	values[1] = PointerGetDatum(coco_run_int_array(comps, ncomps));
	run_into("SELECT ctid, key, fp, comp_id FROM coco.tracked_row "
			 "WHERE target_id OPERATOR(pg_catalog.=) $1 AND comp_id OPERATOR(pg_catalog.=) ANY ($2)",
			 make_params(2, types, values), r);
	receiver_free(r);
	for (int p = 0; p < ROWDIFF_PARTITIONS; p++)
		if (!d->on_disk[p])
			table_index_all(&d->tracked[p]);
}

/*
 * The read of the declarations (as the app owner, under the run's
 * snapshot): tallies count and digest per component, and diffs each row
 * whose partition is in memory.  The tallies stay with the diff: the sync
 * after the summary pass reports them.
 */
void
coco_rowdiff_read_declared(CocoRowDiff *d)
{
	RowReceiver *r = receiver_create(d, READ_DECLARED);

	coco_child_tally_reset(d->tally);
	run_into(d->sql, d->params, r);
	receiver_free(r);
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

		if (!e->matched)
			add_deleted(d, e);
	}
}

/*
 * After the read: the deletions of the partitions in memory, and the diff
 * of each partition on disk, from its two files.  False when a key is
 * declared twice: coco_rowdiff_duplicate_error() says which.
 */
bool
coco_rowdiff_finish(CocoRowDiff *d)
{
	for (int p = 0; p < ROWDIFF_PARTITIONS; p++)
	{
		EntryTable *t = &d->tracked[p];
		EntryTable	declared;

		if (!d->on_disk[p])
		{
			unmatched_are_deleted(d, t);
			table_free(t);
			continue;
		}
		file_load(d->tracked_file[p], t);
		file_close(&d->tracked_file[p]);
		table_index_all(t);
		table_init(&declared, sizeof(DeclaredEntry), d->cxt);
		file_load(d->declared_file[p], &declared);
		file_close(&d->declared_file[p]);
		for (int64 i = 0; i < declared.n; i++)
		{
			DeclaredEntry *e = table_entry(&declared, i);
			TrackedEntry *te = table_lookup(t, &e->key);
			int			op = classify(d, te, e->comp, &e->fp, NULL);

			if (op != 0)
				(void) add_change(d, &e->key, te ? &te->tid : NULL, op, true, NULL);
		}
		table_free(&declared);
		unmatched_are_deleted(d, t);
		table_free(t);
	}
	return !d->duplicate;
}

/* The key declared twice, found by reading the declarations once more. */
void
coco_rowdiff_duplicate_error(CocoRowDiff *d)
{
	RowReceiver *r = receiver_create(d, READ_FIND_KEY);

	run_into(d->sql, d->params, r);
	ereport(ERROR,
			(errcode(ERRCODE_UNIQUE_VIOLATION),
			 r->found.len > 0 ?
			 errmsg("row with key %s is declared twice for table \"%s\"",
					coco_key_describe(r->found.data, r->found.len), d->table) :
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
coco_rowdiff_deletions(CocoRowDiff *d)
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
			store_change(d, values, nulls);
		}
		SPI_freetuptable(SPI_tuptable);
		pfree(tids);
		done += n;
	}
}

/*
 * The second read of the declarations (as the app owner, under the run's
 * snapshot), only when partitions went to disk: the values of the rows
 * that change there.
 */
void
coco_rowdiff_read_changed(CocoRowDiff *d)
{
	RowReceiver *r;

	if (d->to_read == 0)
		return;
	r = receiver_create(d, READ_CHANGED);
	run_into(d->sql, d->params, r);
	if (r->nseen != d->to_read)
		declarations_changed(d);
	receiver_free(r);
}

/* Every change: rows written or moved, and rows deleted. */
Tuplestorestate *
coco_rowdiff_changes(CocoRowDiff *d)
{
	return d->changes;
}

/*
 * A table this run created, loaded by one component (as the extension
 * owner, with the caller's snapshot for `sql`).  `sql` gives its rows as
 * (component, declared columns…): the declarations, or the table itself
 * when a statement has already filled it.  Each row's key and fingerprint
 * are tallied and its tracking row written; with `target_relid`, the row
 * itself is written into the table first.  Both go in through the heap's
 * multi-insert path; the table's NOT NULL and primary key are checked as
 * an INSERT would.  Returns the rows written into the table.
 */
int64
coco_rowdiff_load(const CocoTableSpec *spec, CocoChildTally *tally, const char *sql,
				  int nparams, const Oid *types, const Datum *values, Oid target_relid,
				  int32 app_id, int64 target_id, int64 pass_id)
{
	CocoRowDiff *d = coco_rowdiff_create(spec, sql, nparams, types, values, NULL, 0);
	RowReceiver *r = receiver_create(d, READ_LOAD);
	int64		loaded;

	if (OidIsValid(target_relid))
		r->target = bulk_open(target_relid, d->cxt);
	r->tracking = bulk_open(get_relname_relid("tracked_row", get_namespace_oid("coco", false)),
							d->cxt);
	/* its rows are made here, never with a NULL: no NOT NULL to check */
	r->tracking->check_constraints = false;
	r->app_id = app_id;
	r->target_id = target_id;
	r->pass_id = pass_id;

	run_into(d->sql, d->params, r);
	if (r->target)
		bulk_close(r->target);
	bulk_close(r->tracking);
	loaded = r->loaded;
	receiver_free(r);
	coco_rowdiff_publish_tally(d, tally, NULL, 0);
	coco_rowdiff_free(d, true);
	/* the statements after this one see the rows */
	CommandCounterIncrement();
	return loaded;
}
