/*
 * provider.c — the registry of root providers, and the module's _PG_init.
 *
 * Connectors register their provider (handler, sink, optional children
 * sync) by name in their own _PG_init; the engine finds them here.  The
 * built-in postgres.table connector registers itself the same way.
 */
#include "postgres.h"

#include <signal.h>

#include "catalog/pg_type.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/memutils.h"

#include "coco_internal.h"

PG_MODULE_MAGIC;

#define COCO_MAX_PROVIDERS 64

static const CocoProvider *providers[COCO_MAX_PROVIDERS];
static int	nproviders = 0;

void
coco_register_root_provider(const CocoProvider *provider)
{
	if (provider == NULL || provider->name == NULL || provider->reconcile == NULL ||
		provider->apply == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("a provider needs a name, a reconcile function and an apply function")));
	if (coco_lookup_c_provider(provider->name) != NULL)
		ereport(ERROR,
				(errcode(ERRCODE_DUPLICATE_OBJECT),
				 errmsg("provider \"%s\" is already registered", provider->name)));
	if (nproviders >= COCO_MAX_PROVIDERS)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("too many providers registered (at most %d)", COCO_MAX_PROVIDERS)));
	providers[nproviders++] = provider;
}

const CocoProvider *
coco_lookup_c_provider(const char *name)
{
	for (int i = 0; i < nproviders; i++)
		if (strcmp(providers[i]->name, name) == 0)
			return providers[i];
	return NULL;
}

/* A provider written in C, else one registered in SQL (coco.provider). */
const CocoProvider *
coco_lookup_provider(const char *name)
{
	const CocoProvider *p = coco_lookup_c_provider(name);

	return p ? p : coco_lookup_sql_provider(name);
}

int			coco_work_mem = 65536;
char	   *coco_fault_point = NULL;
int			coco_batch_size = 50000;
int			coco_lock_timeout = 30000;
int			coco_commit_every = 1000000;

void		_PG_init(void);

void
_PG_init(void)
{
	coco_run_guard_init();
	DefineCustomIntVariable("coco_target.work_mem",
							"Memory for the diff of a table's rows against tracking.",
							"Bounds the tracked rows held in memory (about 56 bytes each); "
							"past it, partitions of them go to temporary files.",
							&coco_work_mem, 65536, 64, MAX_KILOBYTES,
							PGC_USERSET, GUC_UNIT_KB, NULL, NULL, NULL);
	DefineCustomIntVariable("coco_target.batch_size",
							"Changed rows applied to a target per set-wise statement.",
							NULL, &coco_batch_size, 50000, 1, 10000000,
							PGC_USERSET, 0, NULL, NULL, NULL);
	DefineCustomIntVariable("coco_target.lock_timeout",
							"Longest wait for a lock by a run's work on its targets.",
							"A run waiting longer fails with lock_not_available (55P03) and the "
							"worker retries it later; 0 waits as the session's lock_timeout says.",
							&coco_lock_timeout, 30000, 0, INT_MAX,
							PGC_USERSET, GUC_UNIT_MS, NULL, NULL, NULL);
	DefineCustomIntVariable("coco_target.commit_every",
							"Rows a worker run changes per transaction.",
							"A run of the background worker commits after about this many "
							"changed rows and goes on in a new transaction; a crash keeps the "
							"committed batches. 0: one transaction per run.",
							&coco_commit_every, 1000000, 0, INT_MAX,
							PGC_USERSET, 0, NULL, NULL, NULL);
	DefineCustomStringVariable("coco_target.fault_point",
							   "Testing only: stop the backend hard at this point of a run.",
							   "A named point (after_staging_read, after_decisions, after_table_ddl, "
							   "after_row_batch, before_attachments, before_consume, after_outside_write, "
							   "after_batch_commit); the backend "
							   "kills itself with SIGKILL there, as a crash would.",
							   &coco_fault_point, "", PGC_SUSET, GUC_NOT_IN_SAMPLE, NULL, NULL, NULL);
	/* the worker's settings, shared memory and launcher (when preloaded) */
	coco_worker_init();
	MarkGUCPrefixReserved("coco_target");
	coco_register_cache_callbacks();
	coco_progress_init();

	if (coco_lookup_c_provider(COCO_TABLE_PROVIDER) == NULL)
	{
		coco_pg_table_register();
		coco_localfs_register();
	}
}

/* The names of the registered providers: containers and other root
 * providers (those in C and those registered in SQL), or attachments (those
 * with a parent).  Needs SPI. */
ArrayType *
coco_provider_names(bool attachments)
{
	List	   *names = NIL;
	Datum	   *elems;
	int			n = 0;
	ListCell   *lc;

	for (int i = 0; i < nproviders; i++)
		if ((providers[i]->parent != NULL) == attachments)
			names = lappend(names, (void *) providers[i]->name);
	if (!attachments)
	{
		coco_spi_exec("SELECT name FROM coco.provider", 0, NULL, NULL, NULL, SPI_OK_SELECT);
		for (uint64 r = 0; r < SPI_processed; r++)
			names = lappend(names, SPI_getvalue(SPI_tuptable->vals[r], SPI_tuptable->tupdesc, 1));
	}
	elems = palloc(sizeof(Datum) * Max(list_length(names), 1));
	foreach(lc, names)
		elems[n++] = CStringGetTextDatum((char *) lfirst(lc));
	return construct_array(elems, n, TEXTOID, -1, false, TYPALIGN_INT);
}

/*
 * Crash tests: at the named point, stop this backend as a crash would — no
 * error handling, no abort processing — so tests can show that a run
 * interrupted anywhere leaves a state the next run converges from.
 */
void
coco_fault(const char *point)
{
	if (coco_fault_point == NULL || strcmp(coco_fault_point, point) != 0)
		return;
	ereport(LOG,
			(errmsg("coco_target: fault point \"%s\" reached, killing the backend", point)));
	(void) kill(MyProcPid, SIGKILL);
	pg_usleep(10 * 1000 * 1000L);	/* not reached */
}
