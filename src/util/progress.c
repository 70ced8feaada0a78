/*
 * progress.c — what running reconciles are doing, for coco.progress.
 *
 * Each backend has a slot in shared memory (when the library is preloaded)
 * where a run writes its app, run, phase and done/total counts; readers
 * take a consistent copy of every slot under a spinlock.  Without the
 * library preloaded, runs report nothing and the view is empty.
 */
#include "postgres.h"

#include "access/xact.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "storage/ipc.h"
#include "storage/proc.h"
#include "storage/shmem.h"
#include "storage/spin.h"
#include "catalog/pg_authid.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/timestamp.h"

#include "coco_internal.h"

typedef struct ProgressSlot
{
	slock_t		mutex;
	int			pid;			/* 0: no run */
	int			app_id;
	Oid			owner;			/* the app's: who may see the slot */
	int64		run_id;
	char		phase[32];
	char		target[NAMEDATALEN * 2];
	int64		done;
	int64		total;
	TimestampTz started;
	TimestampTz updated;
} ProgressSlot;

static ProgressSlot *slots = NULL;
static int	nslots = 0;
static shmem_request_hook_type prev_request = NULL;
static shmem_startup_hook_type prev_startup = NULL;

static Size
progress_size(void)
{
	return mul_size(MaxBackends + 1, sizeof(ProgressSlot));
}

static void
progress_request(void)
{
	if (prev_request)
		prev_request();
	RequestAddinShmemSpace(MAXALIGN(progress_size()));
}

static void
progress_startup(void)
{
	bool		found;

	if (prev_startup)
		prev_startup();
	LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
	slots = ShmemInitStruct("coco_target progress", progress_size(), &found);
	nslots = MaxBackends + 1;
	if (!found)
	{
		memset(slots, 0, progress_size());
		for (int i = 0; i < nslots; i++)
			SpinLockInit(&slots[i].mutex);
	}
	LWLockRelease(AddinShmemInitLock);
}

/* an aborted run leaves no slot behind */
static void
progress_on_abort(XactEvent event, void *arg)
{
	if (event == XACT_EVENT_ABORT || event == XACT_EVENT_PARALLEL_ABORT)
		coco_progress_end();
}

void
coco_progress_init(void)
{
	if (!process_shared_preload_libraries_in_progress)
		return;
	RegisterXactCallback(progress_on_abort, NULL);
	prev_request = shmem_request_hook;
	shmem_request_hook = progress_request;
	prev_startup = shmem_startup_hook;
	shmem_startup_hook = progress_startup;
}

static ProgressSlot *
my_slot(void)
{
	if (slots == NULL || MyProc == NULL)
		return NULL;
	return &slots[MyProc->pgprocno % nslots];
}

/* A run starts, moves to a phase, advances, ends. */
void
coco_progress_begin(int app_id, Oid owner)
{
	ProgressSlot *s = my_slot();

	if (s == NULL)
		return;
	SpinLockAcquire(&s->mutex);
	s->pid = MyProcPid;
	s->app_id = app_id;
	s->owner = owner;
	s->run_id = 0;
	strlcpy(s->phase, "starting", sizeof(s->phase));
	s->target[0] = '\0';
	s->done = s->total = 0;
	s->started = s->updated = GetCurrentTimestamp();
	SpinLockRelease(&s->mutex);
}

void
coco_progress_phase(const char *phase, const char *target, int64 total)
{
	ProgressSlot *s = my_slot();

	if (s == NULL || s->pid != MyProcPid)
		return;
	SpinLockAcquire(&s->mutex);
	strlcpy(s->phase, phase, sizeof(s->phase));
	strlcpy(s->target, target ? target : "", sizeof(s->target));
	s->done = 0;
	s->total = total;
	s->updated = GetCurrentTimestamp();
	SpinLockRelease(&s->mutex);
}

void
coco_progress_advance(int64 done)
{
	ProgressSlot *s = my_slot();

	if (s == NULL || s->pid != MyProcPid)
		return;
	SpinLockAcquire(&s->mutex);
	s->done += done;
	s->updated = GetCurrentTimestamp();
	SpinLockRelease(&s->mutex);
}

void
coco_progress_end(void)
{
	ProgressSlot *s = my_slot();

	if (s == NULL || s->pid != MyProcPid)
		return;
	SpinLockAcquire(&s->mutex);
	s->pid = 0;
	SpinLockRelease(&s->mutex);
}

/* coco.progress_slots(): one row per running reconcile (see the view). */
PG_FUNCTION_INFO_V1(coco_progress_slots);
Datum
coco_progress_slots(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;

	InitMaterializedSRF(fcinfo, 0);
	for (int i = 0; slots != NULL && i < nslots; i++)
	{
		ProgressSlot copy;
		Datum		values[8];
		bool		nulls[8] = {false, false, false, false, false, false, false, false};

		SpinLockAcquire(&slots[i].mutex);
		memcpy(&copy, &slots[i], sizeof(copy));
		SpinLockRelease(&slots[i].mutex);
		/* as pg_stat_activity: members of the app owner's role, and readers of all stats */
		if (copy.pid == 0 ||
			!(has_privs_of_role(GetUserId(), copy.owner) ||
			  has_privs_of_role(GetUserId(), ROLE_PG_READ_ALL_STATS)))
			continue;
		values[0] = Int32GetDatum(copy.pid);
		values[1] = Int32GetDatum(copy.app_id);
		values[2] = CStringGetTextDatum(copy.phase);
		values[3] = CStringGetTextDatum(copy.target);
		nulls[3] = copy.target[0] == '\0';
		values[4] = Int64GetDatum(copy.done);
		values[5] = Int64GetDatum(copy.total);
		nulls[5] = copy.total <= 0;
		values[6] = TimestampTzGetDatum(copy.started);
		values[7] = TimestampTzGetDatum(copy.updated);
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	return (Datum) 0;
}
