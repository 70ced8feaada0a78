/*
 * shmem.c — the scheduler's shared memory: a slot per database whose
 * worker a submit wakes, the launcher's latch, and the condition variable
 * coco.wait sleeps on until a run finishes.  It exists only when the
 * library is preloaded (coco_worker_available).
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

static void
coco_shmem_request(void)
{
	if (prev_shmem_request_hook)
		prev_shmem_request_hook();
	RequestAddinShmemSpace(MAXALIGN(sizeof(CocoShared)));
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
	}
	LWLockRelease(AddinShmemInitLock);
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
		free_slot->latch = NULL;
		free_slot->wake = false;
		return free_slot;
	}
	return NULL;
}

/* Wake whoever serves `dbid`: its worker, or the launcher to start one. */
void
coco_worker_wake(Oid dbid)
{
	CocoDbSlot *slot;
	Latch	   *worker = NULL;
	Latch	   *launcher;

	SpinLockAcquire(&shared->mutex);
	slot = coco_sched_find_slot(dbid, true);
	if (slot)
	{
		slot->wake = true;
		worker = slot->latch;
	}
	else
		shared->wake_all = true;
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
