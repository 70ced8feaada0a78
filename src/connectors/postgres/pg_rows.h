/*
 * pg_rows.h — what the rows' files share: the statements over a table's
 * declared rows (pg_rows_sql.c) that its sync and plan (pg_rows.c) run.
 * Not installed.
 */
#ifndef COCO_PG_ROWS_H
#define COCO_PG_ROWS_H

#include "pg_connector.h"

#include "utils/relcache.h"

/* the ephemeral named relation a batch of changes is applied from */
#define BATCH_ENR "coco_batch"

typedef struct StagedQuery
{
	int			comp_id;
	char	   *query;
	List	   *columns;		/* output column names */
	char	   *search_path;
	int64		row_count;		/* counted by declare_rows; -1: not known */
	int64		seq;			/* staging order (coco.staging_seq) */
	bool		comp_has_rows;	/* its component staged declare_row rows too */
	bool		shared;			/* its component has another row source for
								 * the table: each key takes its latest */
} StagedQuery;

typedef struct RowStatements
{
	bool		from_arrays;	/* the target's read array parameters */
	char	   *delete_target;
	char	   *insert_target;	/* new rows */
	char	   *upsert_target;	/* changed rows */
} RowStatements;

extern char *build_declared_sql(const CocoTableSpec *spec, List *queries, bool ignore_declarations);
extern char *build_declared_ctid_sql(const CocoTableSpec *spec, List *queries, char **ctid_queries);
extern char *build_ctid_read_sql(const CocoTableSpec *spec, List *queries, char **at);
extern char *build_diff_sql(const CocoTableSpec *spec, List *queries, bool ignore_declarations);
extern void build_statements(const CocoTableSpec *spec, bool fresh_table, bool from_arrays,
							 RowStatements *st);
extern bool coco_rows_column_as_text(const CocoTableSpec *spec, int i);
extern List *replaced_queries(CocoChildSync *sync, const CocoTableSpec *spec, char **search_path);
extern bool coco_rows_cheap_to_reread(const char *sql, int nparams, Oid *types);
extern int64 coco_rows_declared_count(const CocoChildSync *sync, List *queries, int nparams,
									  Oid *types, Datum *values);

/* pg_rows_ctid.c: the last column of declarations read with their ctids */
#define COCO_CTID_COLUMN "coco#t"
#define COCO_CTID_COLUMN_SQL "\"coco#t\""
extern bool coco_rows_query_with_ctid(const char *query, int paramno, char **with_ctid,
									  char **at_ctids);

/* pg_tracking.c */
extern void coco_tracking_write(Tuplestorestate *batch, TupleDesc desc, CocoTrackedChunks *chunks,
								int32 app_id, int64 target_id, const CocoTableSpec *spec,
								int64 *written);
extern int64 coco_tracking_mark(int64 target_id, Datum keys, Datum *comps);
extern void coco_tracking_written_concurrently(const CocoTableSpec *spec, bytea *key)
			pg_attribute_noreturn();

/* pg_value_error.c */
extern void coco_rows_guard(const CocoTableSpec *spec, List *queries, const char *sql,
							int nparams, Oid *types, Datum *values,
							void (*step) (void *), void *arg);
extern char *coco_describe_row_key(const CocoTableSpec *spec, const char *key, int len);
extern int	coco_bad_json_column(const CocoTableSpec *spec, Jsonb *row);

#endif							/* COCO_PG_ROWS_H */
