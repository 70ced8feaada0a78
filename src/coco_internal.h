/*
 * coco_internal.h — what the extension's own files share; not installed.
 */
#ifndef COCO_INTERNAL_H
#define COCO_INTERNAL_H

#include "postgres.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "storage/lockdefs.h"
#include "utils/array.h"
#include "utils/jsonb.h"
#include "utils/snapshot.h"
#include "utils/tuplestore.h"

#include "coco_target.h"

#define COCO_ROW_PROVIDER	"postgres.row"
#define COCO_TABLE_PROVIDER "postgres.table"
/* search_path for every statement the extension builds itself */
#define COCO_SAFE_SEARCH_PATH "pg_catalog, pg_temp"
/* the extension version whose schema this library works with */
#define COCO_SCHEMA_VERSION "0.3"

/* stable_key.c */
extern bytea *coco_key_to_bytea(const char *data, int len);
extern bytea *coco_key_buf_to_bytea(StringInfo buf);
extern void coco_key_put_base_datum(StringInfo buf, Datum value, Oid basetypid, Oid typid);

/* provider.c */
typedef const CocoProvider *(*CocoProviderResolver) (const char *name);
extern ArrayType *coco_provider_names(bool attachments);
extern const CocoProvider *coco_lookup_c_provider(const char *name);
extern void coco_set_provider_resolver(CocoProviderResolver resolver);

/* sql_provider.c */
extern const CocoProvider *coco_lookup_sql_provider(const char *name);
/* progress.c */
extern void coco_progress_init(void);
extern void coco_progress_begin(int app_id, Oid owner);
extern void coco_progress_phase(const char *phase, const char *target, int64 total);
extern void coco_progress_advance(int64 done);
extern void coco_progress_end(void);

/* settings.c: the settings, and the crash tests' fault points */
extern void coco_settings_define(void);
extern char *coco_fault_point;
extern void coco_fault(const char *point);
extern int	coco_work_mem;
extern int	coco_batch_size;
extern int	coco_lock_timeout;
extern int	coco_commit_every;
extern int	coco_naptime;
extern int	coco_max_workers;
extern int	coco_retry_base;
extern int	coco_max_attempts;
extern int	coco_run_retention;
/* backoff never waits longer than this between attempts */
#define COCO_RETRY_MAX_MS	60000

/* fingerprint.c */
extern bytea *coco_fingerprint_to_bytea(const CocoFingerprint *fp);
extern void coco_fingerprint_args(FunctionCallInfo fcinfo, int first, CocoFingerprint *fp);

/* digest.c: order-independent digests of row sets */
typedef struct CocoDigest
{
	uint64		lo;
	uint64		hi;
} CocoDigest;

extern void coco_digest_add_row(CocoDigest *d, const char *key, int keylen,
								const CocoFingerprint *fp);
extern bytea *coco_digest_to_bytea(const CocoDigest *d);
extern void coco_digest_from_bytea(bytea *b, CocoDigest *d);
extern void coco_diff_tally_reset(void);
extern void coco_diff_tally_add(int comp_id, const char *key, int keylen, const CocoFingerprint *fp);
extern void coco_diff_tally_set(int comp_id, int64 nrows, const CocoDigest *digest);
extern int	coco_diff_tally_count(void);
extern void coco_diff_tally_nth(int i, int *comp_id, int64 *nrows, CocoDigest *digest);
extern bool coco_diff_tally_get(int comp_id, int64 *nrows, CocoDigest *digest);
extern int64 coco_diff_tally_total(void);

/* identifiers.c */
typedef struct CocoTableName
{
	char	   *schema;
	char	   *name;
	char	   *qualified;		/* schema.name, unquoted: the tracking name */
} CocoTableName;

extern void coco_validate_identifier(const char *ident, const char *what);
extern void coco_parse_table_name(const char *text, CocoTableName *out);
extern char *coco_canonical_type(const char *type_text, const char *column);
extern void coco_resolve_type(const char *canonical, Oid *typid, int32 *typmod);
extern char *coco_qualified_type(const char *canonical);
extern void coco_table_key(const CocoTableName *tn, StringInfo buf);
extern void coco_require_arg(FunctionCallInfo fcinfo, int n, const char *what);
extern text *coco_text_arg(FunctionCallInfo fcinfo, int n, const char *what);
extern ArrayType *coco_component_arg(FunctionCallInfo fcinfo, int n);
extern char *coco_function_call_name(Oid fn, const char *what);
extern void coco_check_lasting_function(Oid fn, const char *what);

/* privilege.c */
typedef struct CocoUserContext
{
	Oid			save_userid;
	int			save_sec_context;
	int			save_nestlevel;
} CocoUserContext;

extern Oid	coco_extension_owner_id(void);
extern void coco_enter_extension_owner(CocoUserContext *ctx);
extern void coco_enter_app_owner(Oid owner, const char *search_path, CocoUserContext *ctx);
extern void coco_leave(CocoUserContext *ctx);
extern char *coco_current_search_path(void);

/* app.c */
typedef struct CocoApp
{
	int			app_id;
	char	   *name;
	Oid			owner;
	Oid			declare_fn;
	char	   *search_path;	/* for declare_fn: the creating session's */
	bool		auto_submit;	/* declaring commits submit a run (submit.c) */
} CocoApp;

extern CocoApp *coco_app_lookup(const char *name);
extern void coco_invalidate_caches(void);
extern void coco_forget_cached_app(void);
extern void coco_register_cache_callbacks(void);
extern int	coco_component_id(int app_id, ArrayType *path);
extern void coco_spi_exec(const char *sql, int nargs, Oid *types, Datum *values,
						  const char *nulls, int expected);
extern int64 coco_spi_int8(const char *sql, int nargs, Oid *types, Datum *values, bool *isnull);

/* staging.c */
extern bool coco_stage_state(const CocoApp *app, ArrayType *component, const char *provider,
							 const char *sibling, StringInfo key, const char *name, Jsonb *spec);

/* table_spec.c */
typedef struct CocoColumn
{
	char	   *name;
	char	   *type;			/* canonical type name */
	bool		nullable;
	bool		is_key;
} CocoColumn;

typedef struct CocoTableSpec
{
	CocoTableName tn;
	char	   *managed_by;		/* "system" or "user" */
	int			ncolumns;
	CocoColumn *columns;
	int			nkeys;
	int		   *key_index;		/* positions of primary key columns */
} CocoTableSpec;

extern Jsonb *coco_table_spec_build(const CocoTableName *tn, Jsonb *columns,
									ArrayType *primary_key, const char *managed_by);
extern CocoTableSpec *coco_table_spec_parse(Jsonb *spec);
extern int	coco_table_spec_column(const CocoTableSpec *spec, const char *name);

/* declare.c */
extern CocoTableSpec *coco_declared_table_spec(const CocoApp *app, const CocoTableName *tn);
extern void coco_declare_init(void);

/* pg_table.c */
extern void coco_pg_table_register(void);


/* localfs.c */
extern void coco_localfs_register(void);

/* pg_rows.c */
extern void coco_rows_sync(CocoChildSync *sync);
extern void coco_rows_summarize(CocoChildSync *sync);
extern void coco_rows_plan(CocoChildSync *sync);
extern char *coco_rows_select_list(const CocoTableSpec *spec, List *query_columns);
extern char *coco_rows_key_expr(const CocoTableSpec *spec);

/*
 * rowdiff.c: the diff of a table's declared rows against tracking.  Its
 * changes come out as rows of (op, key, fp, component, tracked tid,
 * declared columns…).
 */
enum
{
	COCO_CH_OP, COCO_CH_KEY, COCO_CH_FP, COCO_CH_COMP, COCO_CH_TID, COCO_CH_NFIXED
};
#define COCO_OP_INSERT 1		/* declared, not tracked */
#define COCO_OP_UPDATE 2		/* tracked, changed (or to re-write) */
#define COCO_OP_DELETE 3		/* tracked, no longer declared */
#define COCO_OP_TRACK_ONLY 4	/* unchanged, moved to another component */

typedef struct CocoRowDiff CocoRowDiff;

extern CocoRowDiff *coco_rowdiff_create(const CocoTableSpec *spec, const char *declared_sql,
										int nparams, const Oid *types, const Datum *values,
										const int *rewrite, int nrewrite);
extern void coco_rowdiff_free(CocoRowDiff *d, bool close_files);
extern void coco_rowdiff_load_tracked(CocoRowDiff *d, int64 target_id, const int *comps, int ncomps);
extern void coco_rowdiff_read_declared(CocoRowDiff *d);
extern void coco_rowdiff_publish_tally(CocoRowDiff *d, const int *comps, int ncomps);
extern bool coco_rowdiff_finish(CocoRowDiff *d);
extern void coco_rowdiff_duplicate_error(CocoRowDiff *d) pg_attribute_noreturn();
extern TupleDesc coco_rowdiff_changes_desc(CocoRowDiff *d);
extern void coco_rowdiff_deletions(CocoRowDiff *d);
extern void coco_rowdiff_read_changed(CocoRowDiff *d);
extern Tuplestorestate *coco_rowdiff_changes(CocoRowDiff *d);
extern int64 coco_rowdiff_load(const CocoTableSpec *spec, const char *sql, int nparams,
							   const Oid *types, const Datum *values, Oid target_relid,
							   int32 app_id, int64 target_id, int64 pass_id);

/* run_guard.c: one run at a time in a backend */
extern void coco_run_guard_init(void);
extern void coco_run_guard_enter(const CocoApp *app, const char *what);
extern void coco_run_guard_leave(void);
extern void coco_run_guard_declaring(bool declaring);
extern void coco_run_guard_check_staging(const CocoApp *app, const char *what);
extern void coco_run_guard_check_idle(const char *what);
extern Oid	coco_run_owner(void);

/* hooks.c: what the engine needs from the layers above it */
typedef void (*CocoDeclaredHook) (const CocoApp *app);
typedef int64 (*CocoCompletionHook) (const CocoApp *app);
extern void coco_set_declared_hook(CocoDeclaredHook hook);
extern void coco_set_completion_hook(CocoCompletionHook hook);
extern void coco_declaring(const CocoApp *app);
extern int64 coco_queue_completion(const CocoApp *app);

/* engine.c */
extern void coco_push_snapshot(Snapshot snapshot);
extern ArrayType *coco_run_int_array(const int *values, int n);
extern void coco_lock_app(CocoApp *app, bool for_drop);
extern Jsonb *coco_engine_reconcile(CocoApp *app, bool full, bool declare_first, int64 run_id);
extern void coco_engine_drop_app(CocoApp *app, bool keep_targets);

/* intents.c: sinks outside the transaction */
typedef struct CocoTopLevelWork
{
	int64		ts_id;
	char	   *name;			/* the state's, for messages */
	char	   *sql;			/* to run outside any transaction block */
	char	   *intent;			/* the intent it completes, as text */
} CocoTopLevelWork;
extern int64 coco_complete_intents(CocoApp *app, int64 run_id, List **top_level,
								   MemoryContext top_cxt);
extern void coco_prune_intent(CocoApp *app, const CocoTopLevelWork *w, int64 run_id,
							  int64 completed);
extern int64 coco_pending_intents(int app_id);

/* worker.c: the launcher and per-database workers */
extern void coco_worker_init(void);
extern bool coco_worker_available(void);
extern void coco_worker_wake(Oid dbid);
extern int64 coco_queue_run(const CocoApp *app, bool full);
extern int64 coco_queued_run(const CocoApp *app);
/* sleeping until the worker finishes some run (for coco.wait()) */
extern void coco_run_done_prepare(void);
extern void coco_run_done_sleep(long timeout_ms);

/* submit.c: coco.submit(), coco.wait(), auto-submit */
extern void coco_submit_init(void);
extern void coco_note_declared(const CocoApp *app);
extern int64 coco_queue_completion_run(const CocoApp *app);
extern void coco_submit_lock(int app_id, LOCKMODE mode);

#endif							/* COCO_INTERNAL_H */
