/*
 * bgworker.h — what the background workers' files share (worker.c,
 * bookkeeping.c, settle.c, retention.c).  Not installed.
 */
#ifndef COCO_BGWORKER_H
#define COCO_BGWORKER_H

/* bookkeeping.c */
extern void coco_bg_hold_cancels(bool hold);
extern void coco_bg_start_xact(const char *activity);
extern void coco_bg_end_xact(void);
/* coco_bg_start_xact, or false (and no transaction) without the extension */
extern bool coco_bg_start_xact_if_installed(const char *activity);
extern long coco_bg_backoff_ms(int attempts);
extern const char *coco_bg_role_name(Oid role);
extern char *coco_bg_describe_limit(int ms, bool app_limit);
extern bool coco_bg_lock_run(int64 run_id);

/* settle.c: runs whose worker is gone, and notes left about runs */
typedef enum CocoSettledKind
{
	COCO_NOT_SETTLED,
	COCO_SETTLED_QUEUED,		/* queued again */
	COCO_SETTLED_FINAL			/* over: failed or canceled */
} CocoSettledKind;
typedef struct CocoSettled
{
	int64		run_id;
	CocoSettledKind kind;
} CocoSettled;
extern int	coco_bg_settle_orphans(CocoSettled *settled, int max);
extern void coco_bg_forget_settled(const CocoSettled *settled, int n);
extern void coco_bg_sweep_notes(void);

/* record_failed.c: failed synchronous runs left in shared memory */
extern void coco_bg_record_failed_runs(MemoryContext cxt);

/* retention.c: errors are logged; `cxt` outlives the transaction */
extern void coco_bg_purge_old_runs(MemoryContext cxt);

#endif							/* COCO_BGWORKER_H */
