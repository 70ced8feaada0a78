/*
 * sched_shmem.h — the scheduler's shared memory, shared with the background
 * workers (bgworker/worker.c) that serve what it queues.  Not installed.
 */
#ifndef COCO_SCHED_SHMEM_H
#define COCO_SCHED_SHMEM_H

#include "storage/condition_variable.h"
#include "storage/latch.h"
#include "storage/spin.h"
#include "utils/timestamp.h"

/* databases with a worker slot at the same time */
#define COCO_MAX_DB_SLOTS	128

typedef struct CocoDbSlot
{
	Oid			dbid;			/* InvalidOid: slot is free */
	Latch	   *latch;			/* the serving worker's, NULL when none */
	bool		wake;			/* work submitted since the worker last looked */
} CocoDbSlot;

/* when a database's old runs were last deleted, and under which setting */
typedef struct CocoPurge
{
	Oid			dbid;			/* InvalidOid: entry is free */
	int			retention;
	TimestampTz last;
} CocoPurge;

typedef struct CocoShared
{
	slock_t		mutex;
	Latch	   *launcher_latch;
	bool		wake_all;		/* a submit found no free slot */
	ConditionVariable run_done; /* broadcast after every finished run */
	CocoDbSlot	slots[COCO_MAX_DB_SLOTS];
	/* per database, not per worker: workers come and go every few seconds */
	CocoPurge	purges[COCO_MAX_DB_SLOTS];
} CocoShared;

/* the shared struct (NULL where the library was not preloaded) */
extern CocoShared *coco_sched_shared(void);
/* the slot of `dbid`, made when `create` and there is room; hold the mutex */
extern CocoDbSlot *coco_sched_find_slot(Oid dbid, bool create);
extern void coco_sched_shmem_init(void);

#endif							/* COCO_SCHED_SHMEM_H */
