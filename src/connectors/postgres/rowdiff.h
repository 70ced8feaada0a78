/*
 * rowdiff.h — what the row diff's files share (rowdiff.c: the steps,
 * rowdiff_read.c: the rows as they stream in, pg_bulk.c: bulk writes): the
 * fixed-size entries and their tables, the diff's state, and the receiver.
 * The entry tables are inline: they are the per-row hot path.  Not
 * installed.
 */
#ifndef COCO_ROWDIFF_H
#define COCO_ROWDIFF_H

#include <xxhash.h>

#include "access/heapam.h"
#include "executor/executor.h"
#include "executor/spi.h"
#include "executor/tuptable.h"
#include "nodes/params.h"
#include "storage/buffile.h"
#include "storage/itemptr.h"
#include "tcop/dest.h"
#include "utils/memutils.h"
#include "utils/tuplestore.h"

#include "pg_connector.h"
#include "tracked_chunk.h"

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
	ItemPointerData tid;		/* its chunk and place in it (tracked_chunk.h) */
	bool		marked;			/* coco.verify found it drifted: write it */
	bool		matched;		/* declared again */
	bool		foreign;		/* of a component the diff does not replace */
} TrackedEntry;

StaticAssertDecl(sizeof(TrackedEntry) == 48, "a tracked entry is 48 bytes");

/* a declared row, for a partition on disk or a deferred diff */
typedef struct DeclaredEntry
{
	KeyHash		key;
	CocoFingerprint fp;
	int32		comp;
	bool		matched;		/* a tracked row has its key */
	int64		place;			/* where the second read finds it (row_place) */
} DeclaredEntry;

StaticAssertDecl(sizeof(DeclaredEntry) == 48, "a declared entry is 48 bytes");

/* A key written by this run: new rows, and changes read a second time. */
typedef struct ChangeEntry
{
	KeyHash		key;
	ItemPointerData tid;		/* invalid for a new row */
	int16		op;
	int64		place;			/* of a change to read: where it is (row_place) */
	CocoFingerprint fp;			/* ... and the fingerprint the read found */
	bool		to_read;		/* its values come from the second read */
	uint8		seen;			/* ... and have: the read's seen_mark */
	int32		comp;			/* ... and its component */
} ChangeEntry;

StaticAssertDecl(sizeof(ChangeEntry) == 56, "a change entry is 56 bytes");

/*
 * A declared row's place, for the second read: its ordinal in the first
 * read, or, marked PLACE_CTID, the ctid of the row of its query's table it
 * came from (pg_rows_ctid.c).
 */
#define PLACE_CTID (INT64CONST(1) << 62)

static inline int64
place_of_ctid(ItemPointer tid)
{
	return PLACE_CTID | ((int64) ItemPointerGetBlockNumberNoCheck(tid) << 16) |
		ItemPointerGetOffsetNumberNoCheck(tid);
}

static inline void
ctid_of_place(int64 place, ItemPointer tid)
{
	ItemPointerSet(tid, (BlockNumber) ((place & ~PLACE_CTID) >> 16), (OffsetNumber) (place & 0xFFFF));
}

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
	ResourceOwner owner;		/* its temporary files' */
	char	   *table;			/* for messages */
	const CocoTableSpec *spec;	/* for messages: keys by column name */
	int			nkeys;
	int		   *key_index;		/* declared columns of the primary key */
	int		   *rewrite;		/* components written even when unchanged */
	int			nrewrite;
	/* the declarations: the statement and its parameters */
	char	   *sql;
	ParamListInfo params;
	int64		rows_read;		/* by the first read */
	/*
	 * With ctids: the statement's last column is the ctid of each row's
	 * source row, where its query gives one; ctid_sql reads the rows at
	 * given ctids, one tid[] parameter per component of ctid_comps after
	 * the statement's own.
	 */
	bool		with_ctid;
	char	   *ctid_sql;
	int		   *ctid_comps;
	int			nctid_comps;
	char	   *search_path;	/* the one it is read with (NULL: the session's) */
	/* the tracked rows, per partition: in memory or on disk */
	int64		budget;			/* entries held in memory at most */
	int64		resident;		/* tracked and declared entries in memory now */
	EntryTable	tracked[ROWDIFF_PARTITIONS];
	bool		on_disk[ROWDIFF_PARTITIONS];
	/*
	 * A deferred diff (the summary pass's) reads the declarations before
	 * any tracked row: every declared row leaves its entry for its
	 * partition, and the tracked rows are loaded only if a component
	 * turns out dirty.
	 */
	bool		deferred;
	int64		deferred_target;
	int		   *deferred_comps;
	int			ndeferred_comps;
	bool		declared_in_file[ROWDIFF_PARTITIONS];
	/*
	 * ... in memory first, all partitions' together, while the budget
	 * lasts: a clean diff (a no-op) then writes no file at all.  Past the
	 * budget, and before the tracked rows are loaded, they go to their
	 * partitions' files.
	 */
	EntryTable	declared;		/* DeclaredEntry */
	bool		declared_overflowed;	/* past the budget: the rest go to files */
	/*
	 * ... and when they all fit, the tracked rows are diffed against them
	 * as they are read, none of them kept: no file, no second table.  The
	 * second read then takes the changed rows of every partition.
	 */
	bool		probed;
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
	/* the chunks of tracked rows read */
	CocoTrackedChunks chunks;
	/*
	 * A declared key that a component the diff does not replace holds:
	 * the component, the declaring one, the key's hash, and its bytes
	 * (NULL until found where the diff met it in a file).
	 */
	bool		held;
	int32		held_by;
	int32		held_for;
	KeyHash		held_hash;
	StringInfoData held_key;
};

/* ---- entry tables ------------------------------------------------------- */

static inline void
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

static inline void *
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

static inline void
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
static inline void *
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
static inline void
table_reserve(EntryTable *t, int64 n)
{
	uint64		want = 1024;

	if (n > (int64) PG_UINT32_MAX - 1)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("too many rows in one table of a row diff: %lld", (long long) n)));
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

/* The number of the entry with this key, or -1. */
static inline int64
table_find(EntryTable *t, const KeyHash *key)
{
	uint64		mask = t->nslots - 1;

	if (t->nslots == 0)
		return -1;
	for (uint64 s = key->a & mask; t->slots[s] != 0; s = (s + 1) & mask)
	{
		if (key_equal(table_entry(t, t->slots[s] - 1), key))
			return (int64) t->slots[s] - 1;
	}
	return -1;
}

static inline void *
table_lookup(EntryTable *t, const KeyHash *key)
{
	int64		i = table_find(t, key);

	return i < 0 ? NULL : table_entry(t, i);
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

/*
 * Index every entry, asking for slots ahead of time.  Returns the first
 * entry whose key another entry has (that one left out of the index), or
 * NULL.
 */
static inline void *
table_index_all(EntryTable *t)
{
	void	   *twice = NULL;

	table_reserve(t, t->n);
	for (int64 i = 0; i < t->n; i++)
	{
		void	   *e;

		if (i + PREFETCH_ROWS < t->n)
			table_prefetch_slot(t, table_entry(t, i + PREFETCH_ROWS));
		e = table_index(t, i);
		if (twice == NULL)
			twice = e;
	}
	return twice;
}

/* ---- temporary files ---------------------------------------------------- */

static inline void
file_write(MemoryContext cxt, ResourceOwner file_owner, BufFile **file, void *entry, Size size)
{
	if (*file == NULL)
	{
		/*
		 * The files belong to the diff and to the (sub)transaction it was
		 * made in, not to the row or the statement at hand: a diff kept
		 * after the summary pass outlives both.
		 */
		ResourceOwner owner = CurrentResourceOwner;
		MemoryContext old = MemoryContextSwitchTo(cxt);

		CurrentResourceOwner = file_owner;
		*file = BufFileCreateTemp(false);
		CurrentResourceOwner = owner;
		MemoryContextSwitchTo(old);
	}
	BufFileWrite(*file, entry, size);
}

static inline void
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

static inline void
file_close(BufFile **file)
{
	if (*file)
		BufFileClose(*file);
	*file = NULL;
}

/* ---- receiving rows ---------------------------------------------------- */

typedef enum ReadMode
{
	READ_DECLARED,				/* every declared row: tally, diff */
	READ_CHANGED,				/* declared rows, diffed by entry, that change */
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
	int64		ordinal;		/* rows received so far */
	uint8		seen_mark;		/* READ_CHANGED: 1 by place or ctid, 2 by key */
	bool		generic_plan;	/* planned without its parameters' values */
	int64	   *wanted;			/* READ_CHANGED by place: the places, ascending */
	int64		nwanted;
	int64		next_wanted;
	PendingRow	pending[PREFETCH_ROWS]; /* READ_DECLARED */
	int			npending;
	MemoryContext pendingcxt;
	TupleTableSlot *copy;
	KeyHash		find;			/* READ_FIND_KEY: the key sought ... */
	StringInfoData found;		/* ... and its bytes, once found */
	struct BulkWriter *target;	/* READ_LOAD: NULL when the table is filled */
	struct ChunkAppender *chunks;	/* READ_LOAD: their tracking */
	int64		loaded;
} RowReceiver;

/* a load reports its progress every this many rows */
#define COCO_LOAD_PROGRESS_EVERY 1000

static inline void
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

static inline bool
in_list(int value, const int *list, int n)
{
	for (int i = 0; i < n; i++)
		if (list[i] == value)
			return true;
	return false;
}


/* rowdiff_read.c */
extern RowReceiver *rowdiff_receiver_create(CocoRowDiff *d, ReadMode mode);
extern void rowdiff_receiver_free(RowReceiver *r);
extern SPIPlanPtr rowdiff_prepare(const char *sql, ParamListInfo params, RowReceiver *r);
extern void rowdiff_execute(SPIPlanPtr plan, ParamListInfo params, RowReceiver *r);
extern void rowdiff_run_into(const char *sql, ParamListInfo params, RowReceiver *r);
extern ParamListInfo rowdiff_make_params(int nparams, const Oid *types, const Datum *values);
extern void rowdiff_tracked_entry(CocoRowDiff *d, ItemPointer tid, const ChunkRow *row,
								  int32 comp, TrackedEntry *t);
extern void rowdiff_note_held(CocoRowDiff *d, int32 holding, int32 declaring,
							  const KeyHash *hash, const char *key, int len);
extern void rowdiff_add_tracked(CocoRowDiff *d, const TrackedEntry *t);
extern void rowdiff_spill_declared(CocoRowDiff *d);
extern void rowdiff_key_declared_twice(CocoRowDiff *d, const char *key, int len) pg_attribute_noreturn();
extern int	rowdiff_classify(CocoRowDiff *d, TrackedEntry *t, int comp, const CocoFingerprint *fp,
							 StringInfo key);
extern ChangeEntry *rowdiff_add_change(CocoRowDiff *d, const KeyHash *hash,
									   const ItemPointerData *tid, int op,
									   bool to_read, StringInfo key);
extern void rowdiff_store_change(CocoRowDiff *d, Datum *values, bool *nulls);
extern void rowdiff_declarations_changed(CocoRowDiff *d);

/* pg_bulk.c: rows written straight into a table (the tracking table, or
 * one this run created), a batch per multi-insert */
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

extern void result_relation_open(Relation rel, AclMode perms, Bitmapset *updated_cols,
								 bool open_indexes, EState **estate, ResultRelInfo **rri);
extern BulkWriter *bulk_open(Oid relid, MemoryContext cxt, bool build_indexes);
extern TupleTableSlot *bulk_slot(BulkWriter *w);
extern void bulk_stored(BulkWriter *w);
extern void bulk_close(BulkWriter *w);
extern void bulk_build_indexes(Oid relid);

#endif							/* COCO_ROWDIFF_H */
