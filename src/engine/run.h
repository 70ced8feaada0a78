/*
 * run.h — what the files of one reconcile run share: its statistics, its
 * root states, and helpers over the run's snapshot.  Not installed.
 */
#ifndef COCO_RUN_H
#define COCO_RUN_H

#include "lib/stringinfo.h"
#include "portability/instr_time.h"

#include "coco_internal.h"

/* What a full pass that would remove every target of its app does. */
typedef enum CocoDropGuard
{
	COCO_DROP_ALLOWED,			/* go on: drop_app, or allow_drop_all */
	COCO_DROP_REFUSED,			/* refuse with 55000 (a run) */
	COCO_DROP_NOTICED			/* say so in a NOTICE (coco.plan) */
} CocoDropGuard;

typedef struct ProviderStats
{
	const char *name;
	int64		inserted;
	int64		updated;
	int64		deleted;
	int64		unchanged;
	int64		earlier_writes; /* by earlier transactions of a batched run:
								 * unchanged now, not counted so */
} ProviderStats;

/*
 * What one target (a root state, or a container's children) saw in a run:
 * the per-target breakdown of the run's statistics ("targets").
 */
typedef struct TargetStats
{
	const char *provider;
	const char *target;			/* its readable name: the table's, ... */
	int64		inserted;
	int64		updated;
	int64		deleted;
	int64		unchanged;
	int64		earlier_writes; /* as ProviderStats' */
	double		ms;				/* time spent applying or syncing it */
} TargetStats;

typedef struct RunStats
{
	ProviderStats by_provider[128];	/* every provider, and child, of a run */
	int			nproviders;
	int64		stale;
	int64		drift;			/* targets found changed behind our back */
	int64		deferred;		/* intents recorded for sinks outside the
								 * transaction */
	int64		completion_run_id;	/* the worker run queued to complete them */
	bool		batched;		/* a worker run that commits in batches */
	int64		change_budget;	/* rows this pass may change (0: no limit) */
	bool		more;			/* the pass stopped early: another follows */
	int			transactions;	/* of a worker run committed in batches */
	int			passes;
	int64		run_id;			/* the run being recorded (0: none, as in
								 * drop_app's pass) */
	int64		kept;			/* no longer declared, kept: protected */
	CocoDropGuard drop_guard;	/* a full pass that would remove everything */
	TargetStats *targets;		/* in targets_cxt, in order of appearance */
	int			ntargets;
	int			maxtargets;
	MemoryContext targets_cxt;
} RunStats;

typedef struct RootState
{
	CocoTargetState st;
	const CocoProvider *provider;
	int64		ts_id;			/* 0: not tracked yet */
	int			comp_id;		/* declaring component, or the tracked one */
	int			generation;		/* a container's, after the run's changes */
	int			schema_version;
	CocoDecision decision;
	/* attachments */
	int64		parent_id;		/* the container's tracking id */
	int			parent_generation;	/* the container's generation it was made in */
	bool		bystander;		/* neither declared now nor in a replaced component */
	bool		skip;			/* nothing to decide or record this run */
	bool		forget;			/* its container was dropped: forget it */
	/* protection (protect.c) */
	int			protect_declared;	/* the declaration's "protect": -1 absent,
									 * 0 false, 1 true */
	bool		protected;		/* tracked as protected */
	bool		retained;		/* tracked as kept though no longer declared */
	bool		retain;			/* this run keeps it: protected, not declared */
	double		ms;				/* its share of its provider's batches */
} RootState;

/*
 * One pass of a run: the snapshot its reads of staging and tracking use
 * (registered when the pass decides, released when it ends) and its id,
 * from coco.pass_seq, which names it to the connectors (the rows' sync
 * finds the summary pass's diff by it).
 */
typedef struct CocoPass
{
	Snapshot	snapshot;
	int64		pass_id;
} CocoPass;

/* what the deciding half of a pass found */
typedef struct RunDecisions
{
	CocoPass	pass;
	int		   *replaced;
	int			nreplaced;
	int		   *all;			/* every component of the app */
	int			nall;
	RootState  *tables;			/* root states (containers and other roots) */
	int			ntables;
	RootState  *atts;			/* attachments */
	int			natts;
} RunDecisions;

extern const CocoProvider *coco_run_provider(const char *name);
extern void coco_run_set_prev(CocoTargetState *st, Jsonb *records);
extern char *coco_run_container_name(const RootState *a);
extern void coco_run_forget_state(int64 ts_id);
extern void coco_run_declare_fn(CocoApp *app);
/* decide.c */
extern void coco_run_decide(CocoApp *app, bool full, RunDecisions *rd, RunStats *rs);
extern void coco_run_end(RunDecisions *rd);
extern ProviderStats *coco_run_provider_stats(RunStats *rs, const char *name);
extern void coco_run_snap_exec(const CocoPass *pass, const char *sql, int nargs, Oid *types,
							   Datum *values, bool read_only, int expected);
extern int *coco_run_int_column(int *n);
extern void coco_run_init_sync(CocoChildSync *sync, CocoApp *app, const CocoPass *pass,
							   int64 ts_id, Jsonb *record, int *replaced, int nreplaced);
extern void coco_run_count_children(RunStats *rs, const CocoProvider *p, CocoChildSync *sync,
									TargetStats *ts);

/* target_stats.c: the per-target breakdown of a run */
extern TargetStats *coco_run_target_stats(RunStats *rs, const char *provider, const char *target);
extern void coco_run_targets_carry(RunStats *rs, MemoryContext cxt);
extern void coco_run_targets_restart(RunStats *rs);
extern void coco_run_targets_json(RunStats *rs, StringInfo out);
extern double coco_run_ms_since(instr_time start);

/* protect.c */
extern void coco_protect_take_option(RootState *s);
extern void coco_protect_decide(RootState *states, int n, RunStats *rs);
extern void coco_protect_guard(CocoApp *app, bool full, RunDecisions *rd, RunStats *rs);
extern void coco_protect_record(CocoApp *app, RootState *s);
extern void coco_protect_notice_left(CocoApp *app);

/* intents.c */
extern void coco_record_intent(CocoApp *app, RootState *s, RunStats *rs);

/* children.c */
extern void coco_sync_children(CocoApp *app, const CocoPass *pass, int *replaced, int nreplaced,
							   RootState *states, int nstates, RunStats *rs);

#endif							/* COCO_RUN_H */
