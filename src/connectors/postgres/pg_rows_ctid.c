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
 * The query is parsed and analyzed as the app owner under the search_path
 * it is read with, and written back as SQL by PostgreSQL's own deparser
 * (as a view's definition is), with the ctid added to its output and, for
 * the second read, "ctid = ANY ($n)" added to its WHERE.  It is written
 * with the output settings pg_dump uses, so that its constants read back
 * exactly whatever the session's styles (a float in full, a timestamp
 * with a numeric offset rather than a zone's abbreviation), and it is
 * used only if reading it back gives the very same query: a name its
 * aliases give another meaning (a column aliased "ctid") keeps the query
 * as it is.  It is still the user's query, run as the app owner: the
 * second read returns some of the rows of the first, each found again by
 * its key and checked against its fingerprint (rowdiff.c).  A ctid that
 * also names a row elsewhere (in an inheritance child) costs a lookup,
 * never a wrong value; a row not found at its ctid is read by key.
 */
#include "postgres.h"

#include "access/sysattr.h"
#include "catalog/pg_class.h"
#include "catalog/pg_operator_d.h"
#include "catalog/pg_type.h"
#include "nodes/makefuncs.h"
#include "nodes/nodeFuncs.h"
#include "nodes/parsenodes.h"
#include "parser/analyze.h"
#include "parser/parsetree.h"
#include "tcop/tcopprot.h"
#include "miscadmin.h"
#include "utils/acl.h"
#include "utils/fmgroids.h"
#include "utils/guc.h"
#include "utils/ruleutils.h"

#include "pg_connector.h"
#include "pg_rows.h"

/* The one table a query reads, if it returns at most a row per row of it (0 otherwise). */
static Index
row_per_row_table(Query *q)
{
	RangeTblRef *ref;
	RangeTblEntry *rte;
	ListCell   *lc;

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
	/* the column's name is free (a SELECT * may return a column of any name) */
	foreach(lc, q->targetList)
	{
		TargetEntry *te = lfirst(lc);

		if (te->resname != NULL && strcmp(te->resname, COCO_CTID_COLUMN) == 0)
			return 0;
	}
	return ref->rtindex;
}

/*
 * The query written back as SQL, if reading that back as the run will
 * read it gives the very same query (parameters: `nparams` of `types`);
 * NULL otherwise.  It is written with the output settings pg_dump uses
 * (ISO dates with numeric zone offsets, floats in full) so that
 * constants read back exactly; what still reads back otherwise (a name
 * the query's aliases give another meaning, as a column aliased "ctid")
 * is found by the comparison.
 */
static char *
deparse_exactly(Query *q, int nparams, Oid *types)
{
	int			nest = NewGUCNestLevel();
	char	   *sql;
	List	   *raw;
	Query	   *again;

	(void) set_config_option("datestyle", "ISO", PGC_USERSET, PGC_S_SESSION,
							 GUC_ACTION_SAVE, true, 0, false);
	(void) set_config_option("intervalstyle", "postgres", PGC_USERSET, PGC_S_SESSION,
							 GUC_ACTION_SAVE, true, 0, false);
	(void) set_config_option("extra_float_digits", "3", PGC_USERSET, PGC_S_SESSION,
							 GUC_ACTION_SAVE, true, 0, false);
	sql = pg_get_querydef(q, false);
	AtEOXact_GUC(true, nest);

	raw = pg_parse_query(sql);
	if (list_length(raw) != 1)
		return NULL;
	again = parse_analyze_fixedparams(linitial_node(RawStmt, raw), sql, types, nparams, NULL);
	/* where the statement lies in its text, and its hash, are no part of it */
	again->stmt_location = q->stmt_location;
	again->stmt_len = q->stmt_len;
	again->queryId = q->queryId;
	return equal(q, again) ? sql : NULL;
}

typedef struct CtidQuery
{
	const char *query;
	int			paramno;
	char	   *with_ctid;		/* the results */
	char	   *at_ctids;
} CtidQuery;

static void
rewrite_query(void *arg)
{
	CtidQuery  *c = arg;
	List	   *raw = pg_parse_query(c->query);
	Query	   *q;
	Index		rti;
	RangeTblEntry *rte;
	Var		   *ctid;
	TargetEntry *te;
	ListCell   *lc;
	int			shown = 0;
	Param	   *p;
	ScalarArrayOpExpr *any;
	Oid		   *types;

	if (list_length(raw) != 1)
		return;
	q = parse_analyze_fixedparams(linitial_node(RawStmt, raw), c->query, NULL, 0, NULL);
	rti = row_per_row_table(q);
	if (rti == 0)
		return;
	/* the column as the parser would have made it, for deparse_exactly's comparison */
	rte = rt_fetch(rti, q->rtable);
	rte->selectedCols = bms_add_member(rte->selectedCols,
									   SelfItemPointerAttributeNumber - FirstLowInvalidHeapAttributeNumber);
	ctid = makeVar(rti, SelfItemPointerAttributeNumber, TIDOID, -1, InvalidOid, 0);
	/* the last column shown, before what only ORDER BY uses */
	foreach(lc, q->targetList)
		if (!((TargetEntry *) lfirst(lc))->resjunk)
			shown++;
	te = makeTargetEntry((Expr *) ctid, shown + 1, pstrdup(COCO_CTID_COLUMN), false);
	te->resorigtbl = rte->relid;
	te->resorigcol = SelfItemPointerAttributeNumber;
	q->targetList = list_insert_nth(q->targetList, shown, te);
	foreach(lc, q->targetList)
		((TargetEntry *) lfirst(lc))->resno = foreach_current_index(lc) + 1;
	c->with_ctid = deparse_exactly(q, 0, NULL);
	if (c->with_ctid == NULL)
		return;

	/* then only the rows at the ctids of the parameter */
	p = makeNode(Param);
	p->paramkind = PARAM_EXTERN;
	p->paramid = c->paramno;
	p->paramtype = TIDARRAYOID;
	p->paramtypmod = -1;
	p->paramcollid = InvalidOid;
	p->location = -1;
	any = makeNode(ScalarArrayOpExpr);
	any->opno = TIDEqualOperator;
	any->opfuncid = F_TIDEQ;
	any->useOr = true;
	any->inputcollid = InvalidOid;
	any->args = list_make2(copyObject(ctid), p);
	any->location = -1;
	/* one more argument of a top-level AND, as the parser reads "a AND b AND c" */
	if (q->jointree->quals == NULL)
		q->jointree->quals = (Node *) any;
	else if (is_andclause(q->jointree->quals))
		((BoolExpr *) q->jointree->quals)->args =
			lappend(((BoolExpr *) q->jointree->quals)->args, any);
	else
		q->jointree->quals = (Node *) makeBoolExpr(AND_EXPR, list_make2(q->jointree->quals, any), -1);
	/* the parameters before ours are the statement's: any type will do */
	types = palloc(sizeof(Oid) * c->paramno);
	for (int i = 0; i < c->paramno; i++)
		types[i] = i == c->paramno - 1 ? TIDARRAYOID : INT4OID;
	c->at_ctids = deparse_exactly(q, c->paramno, types);
}

/*
 * The query, returning the ctid of its row as one more column (named
 * COCO_CTID_COLUMN), into *with_ctid, and the same returning only the
 * rows at the ctids of tid[] parameter $paramno, into *at_ctids; false
 * (both NULL) when it cannot.  One parse and analysis makes both.  Run as
 * the app owner under the search_path the query is read with; a query
 * that does not parse here is left as it is, for its read to raise the
 * error.
 */
bool
coco_rows_query_with_ctid(const char *query, int paramno, char **with_ctid, char **at_ctids)
{
	CtidQuery	c = {query, paramno, NULL, NULL};
	ErrorData  *edata = coco_subxact_call(rewrite_query, &c);

	*with_ctid = *at_ctids = NULL;
	if (edata != NULL)
	{
		FreeErrorData(edata);
		return false;
	}
	if (c.with_ctid == NULL || c.at_ctids == NULL)
		return false;
	*with_ctid = c.with_ctid;
	*at_ctids = c.at_ctids;
	return true;
}
