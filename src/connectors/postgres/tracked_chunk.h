/*
 * tracked_chunk.h — the tracking of a table's rows, packed: each row of
 * coco.tracked_chunk holds up to CHUNK_MAX_BYTES of one component's
 * tracked rows (key and fingerprint), in the order they were written.
 * tracked_chunk.c reads and writes the packing and appends new chunks;
 * pg_tracking.c rewrites the chunks a batch of changes touches.  Not
 * installed.
 */
#ifndef COCO_TRACKED_CHUNK_H
#define COCO_TRACKED_CHUNK_H

#include "executor/tuptable.h"
#include "lib/stringinfo.h"
#include "storage/itemptr.h"
#include "utils/relcache.h"

#include "coco_target.h"
#include "pg_connector.h"

/*
 * A chunk's rows stay within its heap row (a row of the table takes about
 * 2 kB before PostgreSQL moves a value out of line), three to a page with
 * room to rewrite one there (fillfactor 75): about sixty rows of a bigint
 * key.  A row with a longer key than this has a chunk of its own.
 */
#define CHUNK_MAX_BYTES 1900

/* a row's flags */
#define CHUNK_ROW_MARKED 0x01	/* coco.verify found it drifted: written again */

/* one packed row: flags (1 byte), fingerprint (16), key length (varint), key */
typedef struct ChunkRow
{
	uint8		flags;
	const uint8 *fp;
	const char *key;
	int			keylen;
} ChunkRow;

typedef struct ChunkReader
{
	const char *pos;
	const char *end;
	int			sqlerrcode;		/* of a packing that is not valid */
} ChunkReader;

extern void chunk_reader_init(ChunkReader *r, bytea *rows);
extern bool chunk_read(ChunkReader *r, ChunkRow *row);
extern int	chunk_row_bytes(int keylen);
extern void chunk_put(StringInfo buf, uint8 flags, const uint8 *fp, const char *key, int keylen);

/* coco.tracked_chunk */
extern Oid	coco_tracked_chunk_relid(void);

/* its columns, in order */
enum
{
	CHUNK_APP, CHUNK_TARGET, CHUNK_COMP, CHUNK_ID, CHUNK_NROWS, CHUNK_ROWS, CHUNK_NATTS
};

/*
 * New chunks of one target, as rows come: each component's open chunk is
 * written when the next row would not fit, and all of them at the end.
 */
typedef struct ChunkAppender ChunkAppender;

extern ChunkAppender *chunk_appender_open(int32 app_id, int64 target_id, int64 first_chunk_id,
										  MemoryContext cxt);
extern void chunk_appender_add(ChunkAppender *a, int32 comp, uint8 flags, const uint8 *fp,
							   const char *key, int keylen);
extern int64 chunk_appender_close(ChunkAppender *a);

/*
 * The chunks of one table that a diff read, numbered in the order read:
 * where each is now (a rewrite moves it), and its component.  A tracked
 * row is named by its chunk's number and its place in it, from 1, as the
 * block and offset of an ItemPointer.
 */
typedef struct ChunkInfo
{
	ItemPointerData tid;
	int32		comp;
	int32		bytes;			/* of its rows, with those a batch adds to it */
	bool		emptied;		/* this run deleted it: its rows are gone */
} ChunkInfo;

struct CocoTrackedChunks
{
	MemoryContext cxt;
	ChunkInfo  *chunk;
	int64		n;
	int64		max;
	int64		next_id;		/* the number a new chunk of the table takes */
};

extern int64 chunk_info_add(CocoTrackedChunks *c, ItemPointer tid, int32 comp, int32 bytes);

/* the columns of a chunk in a slot (deformed in it: no copy) */
extern void chunk_slot_deform(TupleTableSlot *slot, int32 *comp, int64 *chunk_id,
							  bytea **rows);

#endif							/* COCO_TRACKED_CHUNK_H */
