/*
 * sched_shmem.h — the scheduler's shared memory, shared with the background
 * workers (bgworker/worker.c) that serve what it queues.  Not installed.
 */
#ifndef COCO_SCHED_SHMEM_H
#define COCO_SCHED_SHMEM_H

#include <signal.h>

#include "storage/condition_variable.h"
#include "storage/latch.h"
#include "storage/spin.h"
#include "utils/timestamp.h"

/* databases with pending work or workers at the same time */
#define COCO_MAX_DB_SLOTS	128
/* worker processes at the same time, all databases (coco_target.max_workers) */
#define COCO_MAX_WORKER_SLOTS	64

typedef struct CocoDbSlot
{
	Oid			dbid;			/* InvalidOid: slot is free */
	bool		wake;			/* work submitted since a worker last looked */
} CocoDbSlot;

/*
 * A worker process.  run_id is set before the run is marked 'running' and
 * cleared after its outcome is committed, so a run seen 'running' whose
 * worker holds no slot for it was left by a worker that died.
 */
typedef struct CocoWorkerSlot
{
	Oid			dbid;			/* InvalidOid: slot is free */
	int			pid;
	Latch	   *latch;
	bool		idle;			/* sleeping: a submit may wake it */
	int64		run_id;			/* the run it executes, 0: none */
	int			app_id;
	TimestampTz since;			/* when it went idle or started the run */
	/* the postmaster told it to quit: it did not crash the server itself */
	volatile sig_atomic_t quit_received;
} CocoWorkerSlot;

/* a run whose worker died on its own while the server crashed */
typedef struct CocoCrashedRun
{
	Oid			dbid;
	int64		run_id;
} CocoCrashedRun;

/*
 * A run coco.cancel() asked to stop, and who asked: whichever worker starts
 * it, finds it interrupted or is interrupted in it records it canceled.
 * The oldest request gives way to a new one (it has long been seen).
 */
#define COCO_MAX_CANCELS	64
typedef struct CocoCancel
{
	Oid			dbid;
	int64		run_id;
	Oid			by;
} CocoCancel;

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
	CocoWorkerSlot workers[COCO_MAX_WORKER_SLOTS];
	/* the runs the last crash-restart was blamed on (see shmem.c) */
	int			ncrashed;
	CocoCrashedRun crashed[COCO_MAX_WORKER_SLOTS];
	int			next_cancel;
	CocoCancel	cancels[COCO_MAX_CANCELS];
	/* per database, not per worker: workers come and go every few seconds */
	CocoPurge	purges[COCO_MAX_DB_SLOTS];
} CocoShared;

/* the shared struct (NULL where the library was not preloaded) */
extern CocoShared *coco_sched_shared(void);
/* the slot of `dbid`, made when `create` and there is room; hold the mutex */
extern CocoDbSlot *coco_sched_find_slot(Oid dbid, bool create);
/* workers serving `dbid`; hold the mutex */
extern int	coco_sched_count_workers(Oid dbid);
/* was run_id of this database running in a worker that crashed the server? */
extern bool coco_sched_run_crashed(int64 run_id);
/* note that the caller asked to cancel run_id of this database */
extern void coco_sched_note_cancel(int64 run_id);
/* the role that asked to cancel run_id of this database, InvalidOid: none */
extern Oid	coco_sched_cancel_requested(int64 run_id);
extern void coco_sched_shmem_init(void);

#endif							/* COCO_SCHED_SHMEM_H */
