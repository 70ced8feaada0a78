/*
 * init.c — the module's _PG_init: wires the layers together.
 *
 * Nothing below calls up into this file; what a lower layer needs from a
 * higher one (a provider written in SQL, the worker) is handed down here
 * as a callback.
 */
#include "postgres.h"

#include "fmgr.h"
#include "utils/guc.h"

#include "coco_internal.h"
#include "connectors/localfs/localfs.h"
#include "connectors/postgres/pg_connector.h"
#include "connectors/sql/sql_provider.h"

PG_MODULE_MAGIC;

void		_PG_init(void);

void
_PG_init(void)
{
	coco_run_guard_init();
	coco_sync_run_init();
	coco_child_tally_init();
	coco_settings_define();
	/* the worker's shared memory and launcher (when preloaded) */
	coco_worker_init();
	MarkGUCPrefixReserved("coco_target");
	coco_register_cache_callbacks();
	coco_declare_init();
	coco_progress_init();

	/* the built-in connectors, as an outside connector would register */
	if (coco_lookup_c_provider(COCO_TABLE_PROVIDER) == NULL)
	{
		coco_pg_table_register();
		coco_localfs_register();
	}
	coco_set_provider_resolver(coco_lookup_sql_provider);
	coco_set_declared_hook(coco_note_declared);
	coco_set_completion_hook(coco_queue_completion_run);
	coco_set_persistent_hook(coco_expand_synced_tables);
	coco_set_failed_run_hook(coco_sched_report_failed_run);
	coco_set_run_start_hook(coco_refresh_at_run);
	coco_set_persistent_changed_hook(coco_sched_persistent_changed);
	coco_refresh_init();
}
