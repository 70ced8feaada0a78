/*
 * subxact.c — a piece of work in an internal subtransaction.
 *
 * Several places must survive or undo what a piece of work does: a
 * statement whose failure is reported instead of raised, a preview that is
 * rolled back, an update kept only when it found its row.  The work runs
 * in a subtransaction its caller began and must end, whatever happens; the
 * rollback restores the user, the settings and the active snapshot the
 * work changed.  Afterwards the caller is back in its own memory context
 * and resource owner, and any error the work raised is handed back as a
 * copy for the caller to report, replace or raise again (ReThrowError
 * keeps its SQLSTATE, message, detail and context).
 */
#include "postgres.h"

#include "access/xact.h"
#include "utils/memutils.h"
#include "utils/resowner.h"

#include "coco_target.h"

ErrorData *
coco_subxact_try(CocoSubxactBody body, void *arg)
{
	MemoryContext cxt = CurrentMemoryContext;
	ResourceOwner owner = CurrentResourceOwner;
	ErrorData  *volatile err = NULL;

	BeginInternalSubTransaction(NULL);
	/* the work allocates in the caller's context, as if run in place */
	MemoryContextSwitchTo(cxt);
	PG_TRY();
	{
		if (body(arg))
			ReleaseCurrentSubTransaction();
		else
			RollbackAndReleaseCurrentSubTransaction();
	}
	PG_CATCH();
	{
		/* copied out of ErrorContext, which the flush resets */
		MemoryContextSwitchTo(cxt);
		err = CopyErrorData();
		FlushErrorState();
		RollbackAndReleaseCurrentSubTransaction();
	}
	PG_END_TRY();
	MemoryContextSwitchTo(cxt);
	CurrentResourceOwner = owner;
	return err;
}

typedef struct KeptCall
{
	void		(*fn) (void *arg);
	void	   *arg;
} KeptCall;

static bool
call_and_keep(void *arg)
{
	KeptCall   *call = arg;

	call->fn(call->arg);
	return true;
}

ErrorData *
coco_subxact_call(void (*fn) (void *arg), void *arg)
{
	KeptCall	call = {fn, arg};

	return coco_subxact_try(call_and_keep, &call);
}
