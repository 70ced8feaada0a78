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

#include "coco_internal.h"

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
	Oid			owner;			/* the run's app's owner: who may see it */
	int			limit_ms;		/* the run's time limit */
	bool		app_limit;		/* ... the app's option, not the setting */
	/* the run ignored its time limit: the worker is ending itself */
	volatile sig_atomic_t overdue;
	/* the postmaster told it to quit: it did not crash the server itself */
	volatile sig_atomic_t quit_received;
} CocoWorkerSlot;

/*
 * A note about a run, for the worker that next settles it: its worker died
 * on its own while the server crashed (from the postmaster, across the
 * restart), or was ended because the run ignored its time limit; or
 * coco.cancel() asked to stop it.  A note is dropped when it has been acted
 * on; when all are taken, the oldest gives way.
 */
typedef enum CocoNoteKind
{
	COCO_NOTE_FREE = 0,
	COCO_NOTE_CRASHED,
	COCO_NOTE_OVERDUE,
	COCO_NOTE_CANCEL
} CocoNoteKind;

#define COCO_MAX_NOTES	256
typedef struct CocoRunNote
{
	Oid			dbid;
	int64		run_id;
	CocoNoteKind kind;
	Oid			by;				/* CANCEL: who asked */
	int			limit_ms;		/* OVERDUE: the limit it ran past */
	bool		app_limit;		/* ... the app's option, not the setting */
	TimestampTz noted_at;
} CocoRunNote;

/* when a database's old runs were last deleted, and under which setting */
typedef struct CocoPurge
{
	Oid			dbid;			/* InvalidOid: entry is free */
	int			retention;
	TimestampTz last;
} CocoPurge;

/*
 * Records of failed synchronous runs (sync_run.c), waiting for a worker of
 * their database to insert them into coco.run (their own transaction rolled
 * back).  When all are taken, the oldest gives way, with a WARNING from the
 * backend that reports.  Each holds a message of COCO_FAILED_MESSAGE_MAX
 * bytes at most: 128 of them take about 140 kB.
 */
#define COCO_MAX_FAILED_RUNS	128
typedef struct CocoFailedSlot
{
	Oid			dbid;			/* InvalidOid: slot is free */
	uint64		seq;			/* order of arrival: the lowest is the oldest */
	CocoFailedRun report;
} CocoFailedSlot;

typedef struct CocoShared
{
	slock_t		mutex;
	Latch	   *launcher_latch;
	bool		wake_all;		/* a submit found no free slot */
	ConditionVariable run_done; /* broadcast after every finished run */
	CocoDbSlot	slots[COCO_MAX_DB_SLOTS];
	CocoWorkerSlot workers[COCO_MAX_WORKER_SLOTS];
	int			next_note;		/* where a note goes when none is free */
	CocoRunNote notes[COCO_MAX_NOTES];
	/* per database, not per worker: workers come and go every few seconds */
	CocoPurge	purges[COCO_MAX_DB_SLOTS];
	uint64		next_failed_seq;
	CocoFailedSlot failed[COCO_MAX_FAILED_RUNS];
} CocoShared;

/* the shared struct (NULL where the library was not preloaded) */
extern CocoShared *coco_sched_shared(void);
/* the slot of `dbid`, made when `create` and there is room; hold the mutex */
extern CocoDbSlot *coco_sched_find_slot(Oid dbid, bool create);
/* workers serving `dbid` (all databases' with `all`); hold the mutex */
extern int	coco_sched_count_workers(Oid dbid, bool all);
/* Notes about runs of this database (MyDatabaseId): add one (replacing
 * the run's note of that kind), look one up (false: none), drop one or all
 * of a run's (COCO_NOTE_FREE), or copy those of a kind, or all
 * (COCO_NOTE_FREE); returns how many. */
extern void coco_sched_note(int64 run_id, CocoNoteKind kind, Oid by, int limit_ms, bool app_limit);
extern bool coco_sched_find_note(int64 run_id, CocoNoteKind kind, CocoRunNote *note);
extern void coco_sched_drop_notes(int64 run_id, CocoNoteKind kind);
extern int	coco_sched_notes_of_kind(CocoNoteKind kind, CocoRunNote *notes);
extern void coco_sched_shmem_init(void);
/* failed_runs.c: take out up to `max` reports of this database, oldest
 * first; whether `dbid` has any (hold the mutex) */
extern int	coco_sched_take_failed_runs(CocoFailedRun *reports, int max);
extern bool coco_sched_failed_runs_pending(Oid dbid);

#endif							/* COCO_SCHED_SHMEM_H */
