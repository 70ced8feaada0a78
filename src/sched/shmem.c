/*
 * shmem.c — the scheduler's shared memory: a slot per database with work
 * submitted, a slot per worker process (what it runs, and whether its run
 * was asked to stop), the launcher's latch, and the condition variable
 * coco.wait sleeps on until a run finishes.  It exists only when the
 * library is preloaded (coco_worker_available).
 *
 * Notes about runs tell the worker that settles a run what happened to it
 * (sched_shmem.h).  Crash-restarts: a worker that dies by a signal takes
 * the whole server down, and shared memory is made anew.  Before it is,
 * the postmaster notes which runs were running in workers that did not
 * receive its quit signal — the ones that died on their own — and hands
 * those notes (and the others not acted on yet) to the new shared memory,
 * where the next worker of each database finds them (worker.c retries such
 * a run once, then fails it).
 */
#include "postgres.h"

#include "miscadmin.h"
#include "pgstat.h"
#include "storage/ipc.h"
#include "storage/lwlock.h"
#include "storage/shmem.h"

#include "coco_internal.h"
#include "sched_shmem.h"

static CocoShared *shared = NULL;
static bool preloaded = false;
static shmem_request_hook_type prev_shmem_request_hook = NULL;
static shmem_startup_hook_type prev_shmem_startup_hook = NULL;

/* in the postmaster: the notes to keep across the reset */
static CocoRunNote pm_notes[COCO_MAX_NOTES];

static void
coco_shmem_request(void)
{
	if (prev_shmem_request_hook)
		prev_shmem_request_hook();
	RequestAddinShmemSpace(MAXALIGN(sizeof(CocoShared)));
}

/*
 * In the postmaster, as the old shared memory goes (a crash-restart, or
 * the postmaster's exit): a worker slot still holding a run belongs to a
 * worker that neither finished nor exited cleanly nor quit when told to.
 */
static void
remember_crashed_runs(int code, Datum arg)
{
	int			n = 0;

	memset(pm_notes, 0, sizeof(pm_notes));
	if (shared == NULL)
		return;
	/* the notes of runs that are not settled yet stay, the crashes first */
	for (int i = 0; i < COCO_MAX_WORKER_SLOTS; i++)
	{
		CocoWorkerSlot *w = &shared->workers[i];

		if (w->dbid == InvalidOid || w->run_id == 0 || w->quit_received)
			continue;
		pm_notes[n].dbid = w->dbid;
		pm_notes[n].run_id = w->run_id;
		pm_notes[n].kind = COCO_NOTE_CRASHED;
		pm_notes[n].noted_at = GetCurrentTimestamp();
		n++;
	}
	for (int i = 0; i < COCO_MAX_NOTES && n < COCO_MAX_NOTES; i++)
		if (shared->notes[i].kind != COCO_NOTE_FREE)
			pm_notes[n++] = shared->notes[i];
	shared = NULL;
}

static void
coco_shmem_startup(void)
{
	bool		found;

	if (prev_shmem_startup_hook)
		prev_shmem_startup_hook();
	LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
	shared = ShmemInitStruct("coco_target worker", sizeof(CocoShared), &found);
	if (!found)
	{
		memset(shared, 0, sizeof(CocoShared));
		SpinLockInit(&shared->mutex);
		ConditionVariableInit(&shared->run_done);
		memcpy(shared->notes, pm_notes, sizeof(pm_notes));
	}
	LWLockRelease(AddinShmemInitLock);
	if (!IsUnderPostmaster)
		on_shmem_exit(remember_crashed_runs, (Datum) 0);
}

/* From _PG_init, while shared_preload_libraries is being processed. */
void
coco_sched_shmem_init(void)
{
	preloaded = true;
	prev_shmem_request_hook = shmem_request_hook;
	shmem_request_hook = coco_shmem_request;
	prev_shmem_startup_hook = shmem_startup_hook;
	shmem_startup_hook = coco_shmem_startup;
}

CocoShared *
coco_sched_shared(void)
{
	return shared;
}

CocoDbSlot *
coco_sched_find_slot(Oid dbid, bool create)
{
	CocoDbSlot *free_slot = NULL;

	for (int i = 0; i < COCO_MAX_DB_SLOTS; i++)
	{
		if (shared->slots[i].dbid == dbid)
			return &shared->slots[i];
		if (free_slot == NULL && shared->slots[i].dbid == InvalidOid)
			free_slot = &shared->slots[i];
	}
	if (create && free_slot)
	{
		free_slot->dbid = dbid;
		free_slot->wake = false;
		return free_slot;
	}
	return NULL;
}

int
coco_sched_count_workers(Oid dbid, bool all)
{
	int			n = 0;

	for (int i = 0; i < COCO_MAX_WORKER_SLOTS; i++)
		if (all ? shared->workers[i].dbid != InvalidOid : shared->workers[i].dbid == dbid)
			n++;
	return n;
}

/* The note of run_id of that kind; hold the mutex. */
static CocoRunNote *
find_note_locked(int64 run_id, CocoNoteKind kind)
{
	for (int i = 0; i < COCO_MAX_NOTES; i++)
	{
		CocoRunNote *n = &shared->notes[i];

		if (n->kind == kind && n->dbid == MyDatabaseId && n->run_id == run_id)
			return n;
	}
	return NULL;
}

void
coco_sched_note(int64 run_id, CocoNoteKind kind, Oid by, int limit_ms, bool app_limit)
{
	CocoRunNote *n;

	SpinLockAcquire(&shared->mutex);
	n = find_note_locked(run_id, kind);
	for (int i = 0; n == NULL && i < COCO_MAX_NOTES; i++)
		if (shared->notes[i].kind == COCO_NOTE_FREE)
			n = &shared->notes[i];
	if (n == NULL)
	{
		n = &shared->notes[shared->next_note];
		shared->next_note = (shared->next_note + 1) % COCO_MAX_NOTES;
	}
	n->dbid = MyDatabaseId;
	n->run_id = run_id;
	n->kind = kind;
	n->by = by;
	n->limit_ms = limit_ms;
	n->app_limit = app_limit;
	n->noted_at = GetCurrentTimestamp();
	SpinLockRelease(&shared->mutex);
}

bool
coco_sched_find_note(int64 run_id, CocoNoteKind kind, CocoRunNote *note)
{
	CocoRunNote *n;

	SpinLockAcquire(&shared->mutex);
	n = find_note_locked(run_id, kind);
	if (n && note)
		*note = *n;
	SpinLockRelease(&shared->mutex);
	return n != NULL;
}

void
coco_sched_drop_notes(int64 run_id, CocoNoteKind kind)
{
	SpinLockAcquire(&shared->mutex);
	for (int i = 0; i < COCO_MAX_NOTES; i++)
	{
		CocoRunNote *n = &shared->notes[i];

		if (n->dbid == MyDatabaseId && n->run_id == run_id &&
			(kind == COCO_NOTE_FREE || n->kind == kind))
			memset(n, 0, sizeof(CocoRunNote));
	}
	SpinLockRelease(&shared->mutex);
}

int
coco_sched_notes_of_kind(CocoNoteKind kind, CocoRunNote *notes)
{
	int			count = 0;

	SpinLockAcquire(&shared->mutex);
	for (int i = 0; i < COCO_MAX_NOTES; i++)
		if (shared->notes[i].dbid == MyDatabaseId && shared->notes[i].kind != COCO_NOTE_FREE &&
			(kind == COCO_NOTE_FREE || shared->notes[i].kind == kind))
			notes[count++] = shared->notes[i];
	SpinLockRelease(&shared->mutex);
	return count;
}

/*
 * Wake whoever serves `dbid`: an idle worker of it, or else the launcher,
 * which starts another one while the database has fewer than
 * coco_target.workers_per_database.  The busy ones look at the queue again
 * when their run ends.
 */
void
coco_worker_wake(Oid dbid)
{
	CocoDbSlot *slot;
	Latch	   *worker = NULL;
	Latch	   *launcher;

	SpinLockAcquire(&shared->mutex);
	slot = coco_sched_find_slot(dbid, true);
	if (slot)
		slot->wake = true;
	else
		shared->wake_all = true;
	for (int i = 0; i < COCO_MAX_WORKER_SLOTS && worker == NULL; i++)
		if (shared->workers[i].dbid == dbid && shared->workers[i].idle)
			worker = shared->workers[i].latch;
	launcher = shared->launcher_latch;
	SpinLockRelease(&shared->mutex);

	if (worker)
		SetLatch(worker);
	else if (launcher)
		SetLatch(launcher);
}

/* Shared memory exists only when the library was preloaded. */
bool
coco_worker_available(void)
{
	return preloaded && shared != NULL;
}

/*
 * Waiting for finished runs: prepare first (then no broadcast after it can
 * be missed), look at the run, sleep, look again; ConditionVariableCancelSleep
 * (also done at transaction abort) ends it.
 */
void
coco_run_done_prepare(void)
{
	ConditionVariablePrepareToSleep(&shared->run_done);
}

void
coco_run_done_sleep(long timeout_ms)
{
	(void) ConditionVariableTimedSleep(&shared->run_done, timeout_ms, PG_WAIT_EXTENSION);
}

void
coco_run_done_broadcast(void)
{
	ConditionVariableBroadcast(&shared->run_done);
}
