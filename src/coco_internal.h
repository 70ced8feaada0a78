/*
 * coco_internal.h — what the extension's own layers below the connectors
 * share beyond the public API (coco_target.h); not installed, and never
 * included by a connector.
 */
#ifndef COCO_INTERNAL_H
#define COCO_INTERNAL_H

#include "postgres.h"
#include "datatype/timestamp.h"
#include "lib/stringinfo.h"
#include "storage/lockdefs.h"
#include "utils/tuplestore.h"

#include "coco_target.h"

/* the extension version whose schema this library works with */
#define COCO_SCHEMA_VERSION "0.7"

/*
 * Writing a known number of bytes into a buffer in place (stable_key.c,
 * fingerprint.c): one check for room instead of one per byte, which the
 * per-row hot path of a diff notices.  coco_buf_reserve gives where n
 * bytes go; coco_buf_advance counts them and keeps the buffer
 * NUL-terminated, as StringInfo requires.
 */
static inline char *
coco_buf_reserve(StringInfo buf, int n)
{
	/* the room is almost always there: the call only to grow (or refuse) */
	if ((int64) buf->len + n >= (int64) buf->maxlen)
		enlargeStringInfo(buf, n);
	return buf->data + buf->len;
}

static inline void
coco_buf_advance(StringInfo buf, int n)
{
	buf->len += n;
	buf->data[buf->len] = '\0';
}

/* provider.c */
typedef const CocoProvider *(*CocoProviderResolver) (const char *name);
extern ArrayType *coco_provider_names(bool attachments);
extern void coco_set_provider_resolver(CocoProviderResolver resolver);
extern int	coco_registered_providers(const CocoProvider *const **list);

/* progress.c */
extern void coco_progress_init(void);
extern void coco_progress_begin(int app_id, Oid owner);
extern void coco_progress_end(void);

/* settings.c: the settings (coco_work_mem and coco_batch_size are public) */
extern void coco_settings_define(void);
extern char *coco_fault_point;
extern int	coco_lock_timeout;
extern int	coco_commit_every;
extern int	coco_naptime;
extern int	coco_max_workers;
extern int	coco_workers_per_database;
extern int	coco_run_timeout;
extern int	coco_submit_delay;
extern int	coco_refresh_delay;
extern int	coco_retry_base;
extern int	coco_max_attempts;
extern int	coco_run_retention;
/* backoff never waits longer than this between attempts */
#define COCO_RETRY_MAX_MS	60000

/* digest.c */
extern void coco_child_tally_init(void);

/* fingerprint.c */
extern void coco_fingerprint_args(FunctionCallInfo fcinfo, int first, CocoFingerprint *fp);

/* privilege.c */
extern Oid	coco_extension_owner_id(void);

/* app.c */
extern void coco_invalidate_caches(void);
extern void coco_forget_cached_app(void);
extern void coco_register_cache_callbacks(void);

/* run_guard.c: one run at a time in a backend */
extern void coco_run_guard_init(void);
extern void coco_run_guard_declaring(bool declaring);
extern void coco_run_guard_check_staging(const CocoApp *app, const char *what);

/* hooks.c: what the engine needs from the layers above it */
typedef void (*CocoDeclaredHook) (const CocoApp *app);
typedef int64 (*CocoCompletionHook) (const CocoApp *app);

/*
 * A synchronous run that failed: its transaction rolls back, so its record
 * is handed to a process that outlives it (the failed-run hook).  Plain
 * data only: it is also filled while the backend exits.
 */
#define COCO_FAILED_MESSAGE_MAX	1024
typedef struct CocoFailedRun
{
	int			app_id;
	Oid			owner;			/* the app's: who may be told about it */
	char		app_name[NAMEDATALEN];	/* for messages; may be cut */
	int64		run_id;			/* 0: it failed before taking one */
	bool		full;
	char		origin[12];		/* 'session' or 'cron' */
	char		sqlstate[6];
	TimestampTz started_at;
	TimestampTz finished_at;
	int			pid;
	char		message[COCO_FAILED_MESSAGE_MAX];	/* truncated, with a marker */
} CocoFailedRun;
typedef void (*CocoFailedRunHook) (const CocoFailedRun *report);
typedef int (*CocoPersistentHook) (const CocoApp *app);
typedef void (*CocoAppHook) (const CocoApp *app);

extern void coco_set_declared_hook(CocoDeclaredHook hook);
extern void coco_set_completion_hook(CocoCompletionHook hook);
extern void coco_set_failed_run_hook(CocoFailedRunHook hook);
extern void coco_set_persistent_hook(CocoPersistentHook hook);
extern void coco_set_run_start_hook(CocoAppHook hook);
extern void coco_set_persistent_changed_hook(CocoAppHook hook);
extern int	coco_declare_persistent(const CocoApp *app);
extern int64 coco_queue_completion(const CocoApp *app);
extern void coco_report_failed_run(const CocoFailedRun *report);
extern void coco_run_starting(const CocoApp *app);

/* sync_run.c: the synchronous run in progress in this backend */
typedef struct CocoSyncRun
{
	bool		active;
	bool		started;		/* past the run guard: a refused call is no run */
	int			app_id;
	Oid			owner;
	char		app_name[NAMEDATALEN];
	int64		run_id;			/* 0 until the engine took one */
	bool		full;
	TimestampTz started_at;
} CocoSyncRun;
extern void coco_sync_run_init(void);
extern const char *coco_session_origin(void);
extern void coco_sync_run_begin(const CocoApp *app, bool full, CocoSyncRun *saved);
extern void coco_sync_run_started(void);
extern void coco_sync_run_took_id(int64 run_id);
extern void coco_sync_run_failed(MemoryContext cxt);
extern void coco_sync_run_end(const CocoSyncRun *saved);

/* engine.c */
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
extern int64 coco_queue_run(const CocoApp *app, bool full, const char *origin);
extern int64 coco_queued_run(const CocoApp *app);
/* sleeping until the worker finishes some run (for coco.wait()) */
extern void coco_run_done_prepare(void);
extern void coco_run_done_sleep(long timeout_ms);
extern void coco_run_done_broadcast(void);

/* submit.c: coco.submit(), coco.wait(), auto-submit */
extern void coco_submit_init(void);
extern void coco_note_declared(const CocoApp *app);
extern int64 coco_queue_completion_run(const CocoApp *app);
extern void coco_submit_lock(int app_id, LOCKMODE mode);
extern bool coco_submit_lock_try(int app_id);
extern void coco_broadcast_runs_done_at_commit(void);
extern bool coco_submitted_here(int64 run_id);
/* failed_runs.c: reports of failed synchronous runs, for the worker */
extern void coco_sched_report_failed_run(const CocoFailedRun *report);
/* refresh.c, refresh_sources.c: source-driven refresh */
extern void coco_refresh_init(void);
extern void coco_refresh_trigger_name(int app_id, char *name);
extern void coco_refresh_follow_sources(const CocoApp *app);
extern void coco_sched_persistent_changed(const CocoApp *app);
extern void coco_note_persistent_changed(const CocoApp *app);
extern void coco_refresh_unwatch_all(const CocoApp *app);
extern void coco_refresh_at_run(const CocoApp *app);
/* NOTIFY coco_target of a run that ended (sent when this transaction commits) */
extern void coco_notify_run_finished(const char *app, int64 run_id, const char *status);

#endif							/* COCO_INTERNAL_H */
