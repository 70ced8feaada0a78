/*
 * pg_rows_ctid.c — a declare_rows query that also says which row of its
 * table each of its rows came from.
 *
 * The second read of a changed table's declarations wants a few rows out
 * of many.  A query that reads one table and returns at most one row per
 * row of it (no join, aggregate, window function, DISTINCT, set operation,
 * set-returning function, LIMIT, CTE or locking clause) can give the ctid
 * of that row as one more column, "coco#t".  The first read keeps it as
 * the row's place, and the second read asks the same query for the rows at
 * the ctids of the changes only: a TID scan of a few pages instead of a
 * scan of the whole table.
 *
 * Declared column names have no '#', so the column's name is the query's
 * own.  The query is parsed and analyzed as the app owner under the
 * search_path it is read with, and written back as SQL by PostgreSQL's own deparser
 * (as a view's definition is), with the ctid added to its output and, for
 * the second read, "ctid = ANY ($n)" added to its WHERE.  It is still the
 * user's query, run as the app owner: the second read returns some of the
 * rows of the first, each found again by its key and checked against its
 * fingerprint (rowdiff.c).  A ctid that also names a row elsewhere (in an
 * inheritance child) costs a lookup, never a wrong value; a row not found
 * at its ctid is read by key.
 */
#include "postgres.h"

#include "catalog/pg_class.h"
#include "catalog/pg_operator_d.h"
#include "catalog/pg_type.h"
#include "nodes/makefuncs.h"
#include "nodes/parsenodes.h"
#include "parser/analyze.h"
#include "parser/parsetree.h"
#include "tcop/tcopprot.h"
#include "miscadmin.h"
#include "utils/acl.h"
#include "utils/fmgroids.h"
#include "utils/ruleutils.h"

#include "pg_connector.h"
#include "pg_rows.h"

/* The one table a query reads, if it returns at most a row per row of it (0 otherwise). */
static Index
row_per_row_table(Query *q)
{
	RangeTblRef *ref;
	RangeTblEntry *rte;

	if (q->commandType != CMD_SELECT || q->utilityStmt != NULL || q->setOperations != NULL ||
		q->hasAggs || q->hasWindowFuncs || q->hasTargetSRFs || q->hasForUpdate ||
		q->rowMarks != NIL || q->cteList != NIL || q->groupClause != NIL ||
		q->groupingSets != NIL || q->havingQual != NULL || q->distinctClause != NIL ||
		q->limitCount != NULL || q->limitOffset != NULL ||
		q->jointree == NULL || list_length(q->jointree->fromlist) != 1)
		return 0;
	ref = linitial(q->jointree->fromlist);
	if (!IsA(ref, RangeTblRef))
		return 0;
	rte = rt_fetch(ref->rtindex, q->rtable);
	if (rte->rtekind != RTE_RELATION || rte->tablesample != NULL ||
		(rte->relkind != RELKIND_RELATION && rte->relkind != RELKIND_MATVIEW))
		return 0;
	/* a Citus table's rows are in shards elsewhere: their ctids say nothing here */
	if (coco_citus_table_kind(rte->relid, NULL) != COCO_CITUS_NONE)
		return 0;
	/* a system column takes SELECT on the table: SELECT on some columns is not enough */
	if (pg_class_aclcheck(rte->relid, GetUserId(), ACL_SELECT) != ACLCHECK_OK)
		return 0;
	return ref->rtindex;
}

typedef struct CtidQuery
{
	const char *query;
	int			paramno;
	char	   *deparsed;		/* the result */
} CtidQuery;

static void
rewrite_query(void *arg)
{
	CtidQuery  *c = arg;
	List	   *raw = pg_parse_query(c->query);
	Query	   *q;
	Index		rti;
	Var		   *ctid;

	if (list_length(raw) != 1)
		return;
	q = parse_analyze_fixedparams(linitial_node(RawStmt, raw), c->query, NULL, 0, NULL);
	rti = row_per_row_table(q);
	if (rti == 0)
		return;
	ctid = makeVar(rti, SelfItemPointerAttributeNumber, TIDOID, -1, InvalidOid, 0);
	q->targetList = lappend(q->targetList,
							makeTargetEntry((Expr *) ctid, list_length(q->targetList) + 1,
											pstrdup(COCO_CTID_COLUMN), false));
	if (c->paramno > 0)
	{
		ScalarArrayOpExpr *any = makeNode(ScalarArrayOpExpr);
		Param	   *p = makeNode(Param);

		p->paramkind = PARAM_EXTERN;
		p->paramid = c->paramno;
		p->paramtype = TIDARRAYOID;
		p->paramtypmod = -1;
		p->paramcollid = InvalidOid;
		p->location = -1;
		any->opno = TIDEqualOperator;
		any->opfuncid = F_TIDEQ;
		any->useOr = true;
		any->inputcollid = InvalidOid;
		any->args = list_make2(copyObject(ctid), p);
		any->location = -1;
		q->jointree->quals = q->jointree->quals == NULL ? (Node *) any :
			(Node *) makeBoolExpr(AND_EXPR, list_make2(q->jointree->quals, any), -1);
	}
	c->deparsed = pg_get_querydef(q, false);
}

/*
 * The query, returning the ctid of its row as its last column (named
 * COCO_CTID_COLUMN) and, with paramno > 0, only the rows at the ctids of
 * that tid[] parameter; NULL when it cannot.  Run as the app owner under
 * the search_path the query is read with; a query that does not parse
 * here is left as it is, for its read to raise the error.
 */
char *
coco_rows_query_with_ctid(const char *query, int paramno)
{
	CtidQuery	c = {query, paramno, NULL};
	ErrorData  *edata = coco_subxact_call(rewrite_query, &c);

	if (edata != NULL)
	{
		FreeErrorData(edata);
		return NULL;
	}
	return c.deparsed;
}
