/*
 * infer.c — the columns of a derived table, inferred from its query.
 *
 * The query is analyzed, not executed: SPI_prepare gives its result
 * descriptor (names, types with their typmods) and its rewritten query
 * tree, which says where each output column comes from.  A column is NOT
 * NULL only when that is provable: a plain reference to a NOT NULL column
 * of a table, through no outer join that could null it, no set operation
 * and no grouping set; every other column is nullable.  Key columns are
 * made NOT NULL by the table's spec.
 *
 * The caller runs this as the app's owner with the search_path the query
 * is evaluated with.
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "catalog/pg_attribute.h"
#include "catalog/pg_class.h"
#include "nodes/parsenodes.h"
#include "nodes/primnodes.h"
#include "parser/parse_relation.h"
#include "parser/parsetree.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/plancache.h"
#include "utils/syscache.h"

#include "pg_connector.h"

/*
 * Where range table entry `rti` sits in the join tree `node`: 1 on the
 * nullable side of an outer join, 0 not, -1 not found here.
 */
static int
on_nullable_side(Node *node, Index rti, bool nullable)
{
	if (node == NULL)
		return -1;
	if (IsA(node, RangeTblRef))
		return ((RangeTblRef *) node)->rtindex == (int) rti ? (nullable ? 1 : 0) : -1;
	if (IsA(node, FromExpr))
	{
		ListCell   *lc;

		foreach(lc, ((FromExpr *) node)->fromlist)
		{
			int			r = on_nullable_side(lfirst(lc), rti, nullable);

			if (r >= 0)
				return r;
		}
		return -1;
	}
	if (IsA(node, JoinExpr))
	{
		JoinExpr   *j = (JoinExpr *) node;
		int			r;

		if (j->rtindex == (int) rti)
			return nullable ? 1 : 0;
		r = on_nullable_side(j->larg, rti,
							 nullable || j->jointype == JOIN_RIGHT || j->jointype == JOIN_FULL);
		if (r >= 0)
			return r;
		return on_nullable_side(j->rarg, rti,
								nullable || j->jointype == JOIN_LEFT || j->jointype == JOIN_FULL);
	}
	return -1;
}

/* Is `expr`, an output of `query`, provably never NULL? */
static bool
provably_not_null(Query *query, Expr *expr, int depth)
{
	Var		   *var;
	RangeTblEntry *rte;

	/* views nest queries; a deep nesting is not worth proving anything */
	if (depth > 32 || expr == NULL || !IsA(expr, Var))
		return false;
	if (query->setOperations != NULL || query->groupingSets != NIL)
		return false;
	var = (Var *) expr;
	if (var->varlevelsup != 0 || var->varattno <= 0 ||
		var->varno < 1 || var->varno > list_length(query->rtable))
		return false;
	if (on_nullable_side((Node *) query->jointree, var->varno, false) != 0)
		return false;
	rte = rt_fetch(var->varno, query->rtable);
	switch (rte->rtekind)
	{
		case RTE_RELATION:
			{
				HeapTuple	tup;
				bool		notnull = false;
				char		relkind = get_rel_relkind(rte->relid);

				if (relkind != RELKIND_RELATION && relkind != RELKIND_PARTITIONED_TABLE)
					return false;
				tup = SearchSysCache2(ATTNUM, ObjectIdGetDatum(rte->relid),
									  Int16GetDatum(var->varattno));
				if (HeapTupleIsValid(tup))
				{
					Form_pg_attribute att = (Form_pg_attribute) GETSTRUCT(tup);

					notnull = att->attnotnull && !att->attisdropped;
					ReleaseSysCache(tup);
				}
				return notnull;
			}
		case RTE_JOIN:
			/* a merged (USING) column of a full join is a COALESCE: not a Var */
			if (var->varattno > list_length(rte->joinaliasvars))
				return false;
			return provably_not_null(query, list_nth(rte->joinaliasvars, var->varattno - 1),
									 depth + 1);
		case RTE_SUBQUERY:
			{
				/* a view, or a subquery in FROM: its output column, within it */
				TargetEntry *tle = get_tle_by_resno(rte->subquery->targetList, var->varattno);

				return tle != NULL && !tle->resjunk &&
					provably_not_null(rte->subquery, tle->expr, depth + 1);
			}
		default:
			return false;
	}
}

/*
 * The columns of the query's result, in order: name, canonical type (that
 * resolves back to the same type and typmod with the search_path pinned)
 * and nullability.  A query that does not analyze fails with its own
 * error; a query that is not a single read-only SELECT, and a column
 * without a usable name or type, are refused naming `tn`.
 */
List *
coco_infer_columns(const char *query, const CocoTableName *tn)
{
	SPIPlanPtr	plan;
	CachedPlanSource *src;
	Query	   *tree;
	TupleDesc	desc;
	List	   *columns = NIL;
	ListCell   *lc;
	int			pos = 0;

	plan = SPI_prepare(query, 0, NULL);	/* lint-spi: a synced table's query, SQL by design: prepared alone, refused unless one read-only SELECT, as the app owner */
	if (plan == NULL)
		elog(ERROR, "coco_target: SPI_prepare failed: %s", SPI_result_code_string(SPI_result));
	if (!SPI_is_cursor_plan(plan) || !coco_query_only_reads(plan))
		ereport(ERROR,
				(errcode(ERRCODE_WRONG_OBJECT_TYPE),
				 errmsg("the query of synced table \"%s\" must be a single SELECT (or VALUES) that only reads",
						tn->qualified),
				 errdetail("Statements that write, data-modifying WITH clauses and FOR UPDATE/SHARE are refused.")));
	src = linitial(SPI_plan_get_plan_sources(plan));
	desc = src->resultDesc;
	tree = linitial_node(Query, src->query_list);
	if (desc == NULL || desc->natts == 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_TABLE_DEFINITION),
				 errmsg("the query of synced table \"%s\" returns no columns", tn->qualified)));

	foreach(lc, tree->targetList)
	{
		TargetEntry *tle = lfirst_node(TargetEntry, lc);
		Form_pg_attribute att;
		CocoColumn *col;
		char		typtype;

		if (tle->resjunk)
			continue;
		if (pos >= desc->natts)
			break;
		att = TupleDescAttr(desc, pos);
		pos++;
		col = palloc0(sizeof(CocoColumn));
		col->name = pstrdup(NameStr(att->attname));
		if (strcmp(col->name, "?column?") == 0)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_COLUMN_REFERENCE),
					 errmsg("column %d of the query of synced table \"%s\" has no name", pos, tn->qualified),
					 errhint("Name every output column of the query, with AS.")));
		typtype = get_typtype(att->atttypid);
		if (typtype == TYPTYPE_PSEUDO || att->atttypid == UNKNOWNOID)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_TABLE_DEFINITION),
					 errmsg("column \"%s\" of the query of synced table \"%s\" is of pseudo-type %s",
							col->name, tn->qualified, format_type_be(att->atttypid)),
					 errhint("Cast the column to the type the table should have.")));
		col->type = coco_canonical_type_of(att->atttypid, att->atttypmod);
		col->nullable = !provably_not_null(tree, tle->expr, 0);
		columns = lappend(columns, col);
	}
	return columns;
}
