/*
 * target_stats.c — the per-target breakdown of a run's statistics: one
 * entry per root target state the run decided (its own action), and one
 * per container whose children it synced (their counts, under the child
 * provider's name), each with the time spent on it.  The totals per
 * provider mix tables, indexes and rows of every table; this separates
 * them.  Recorded as the "targets" array of coco.run.stats, expanded by the
 * view coco.run_targets.
 */
#include "postgres.h"

#include "utils/json.h"
#include "utils/memutils.h"

#include "run.h"

/*
 * The entry of (provider, target), made on first use.  Entries live in the
 * context the run's statistics were started in (targets_cxt), so that they
 * outlive SPI calls and, for a batched worker run, are carried across its
 * transactions.  A run has one entry per table, index, ...: a linear look
 * from the end finds the one just used first.
 */
TargetStats *
coco_run_target_stats(RunStats *rs, const char *provider, const char *target)
{
	TargetStats *ts;

	for (int i = rs->ntargets - 1; i >= 0; i--)
		if (strcmp(rs->targets[i].target, target) == 0 &&
			strcmp(rs->targets[i].provider, provider) == 0)
			return &rs->targets[i];
	if (rs->targets_cxt == NULL)
		rs->targets_cxt = CurrentMemoryContext;
	if (rs->ntargets >= rs->maxtargets)
	{
		int			n = Max(16, rs->maxtargets * 2);

		if (rs->targets == NULL)
			rs->targets = MemoryContextAlloc(rs->targets_cxt, sizeof(TargetStats) * n);
		else
			rs->targets = repalloc(rs->targets, sizeof(TargetStats) * n);
		rs->maxtargets = n;
	}
	ts = &rs->targets[rs->ntargets++];
	memset(ts, 0, sizeof(TargetStats));
	ts->provider = MemoryContextStrdup(rs->targets_cxt, provider);
	ts->target = MemoryContextStrdup(rs->targets_cxt, target);
	return ts;
}

/* Copy the breakdown into `cxt`, to be carried to the run's next transaction. */
void
coco_run_targets_carry(RunStats *rs, MemoryContext cxt)
{
	TargetStats *copy;

	if (rs->ntargets == 0)
	{
		rs->targets = NULL;
		rs->maxtargets = 0;
		rs->targets_cxt = cxt;
		return;
	}
	copy = MemoryContextAlloc(cxt, sizeof(TargetStats) * rs->ntargets);
	for (int i = 0; i < rs->ntargets; i++)
	{
		copy[i] = rs->targets[i];
		copy[i].provider = MemoryContextStrdup(cxt, rs->targets[i].provider);
		copy[i].target = MemoryContextStrdup(cxt, rs->targets[i].target);
	}
	rs->targets = copy;
	rs->maxtargets = rs->ntargets;
	rs->targets_cxt = cxt;
}

/*
 * A further transaction of a batched run: what earlier ones wrote is found
 * unchanged now, and is not counted so (as for the providers' totals).
 */
void
coco_run_targets_restart(RunStats *rs)
{
	for (int i = 0; i < rs->ntargets; i++)
	{
		TargetStats *ts = &rs->targets[i];

		ts->earlier_writes = ts->inserted + ts->updated;
		ts->unchanged = 0;
	}
}

/* ", \"targets\": [...]" */
void
coco_run_targets_json(RunStats *rs, StringInfo out)
{
	appendStringInfoString(out, ", \"targets\": [");
	for (int i = 0; i < rs->ntargets; i++)
	{
		TargetStats *ts = &rs->targets[i];

		if (i > 0)
			appendStringInfoString(out, ", ");
		appendStringInfoString(out, "{\"provider\": ");
		escape_json(out, ts->provider);
		appendStringInfoString(out, ", \"target\": ");
		escape_json(out, ts->target);
		appendStringInfo(out, ", \"inserted\": " INT64_FORMAT ", \"updated\": " INT64_FORMAT
						 ", \"deleted\": " INT64_FORMAT ", \"unchanged\": " INT64_FORMAT
						 ", \"ms\": %.3f}",
						 ts->inserted, ts->updated, ts->deleted,
						 Max(ts->unchanged - ts->earlier_writes, 0), ts->ms);
	}
	appendStringInfoChar(out, ']');
}

/* Milliseconds since `start` (INSTR_TIME_SET_CURRENT). */
double
coco_run_ms_since(instr_time start)
{
	instr_time	now;

	INSTR_TIME_SET_CURRENT(now);
	INSTR_TIME_SUBTRACT(now, start);
	return INSTR_TIME_GET_MILLISEC(now);
}
