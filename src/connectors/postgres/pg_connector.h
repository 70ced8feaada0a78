/*
 * pg_connector.h — what the postgres connector's files share: table names
 * and types, table specs, the declared rows' diff and load.  Not installed.
 *
 * The connector serves postgres.table (a container) with its children
 * postgres.row, and the table's attachments (pg_attach.h).  Like any
 * connector it reaches the engine through coco_target.h alone.
 */
#ifndef COCO_PG_CONNECTOR_H
#define COCO_PG_CONNECTOR_H

#include "coco_target.h"

#include "nodes/pg_list.h"
#include "storage/lockdefs.h"
#include "utils/tuplestore.h"

#define COCO_ROW_PROVIDER	"postgres.row"
#define COCO_TABLE_PROVIDER "postgres.table"

/* pg_names.c: table names and column types as users give them */
typedef struct CocoTableName
{
	char	   *schema;
	char	   *name;
	char	   *qualified;		/* schema.name, unquoted: the tracking name */
} CocoTableName;

extern void coco_parse_table_name(const char *text, CocoTableName *out);
extern void coco_table_key(const CocoTableName *tn, StringInfo buf);
extern char *coco_canonical_type(const char *type_text, const char *column);
extern char *coco_canonical_type_of(Oid typid, int32 typmod);
extern void coco_resolve_type(const char *canonical, Oid *typid, int32 *typmod);
extern char *coco_qualified_type(const char *canonical);

/* table_spec.c */
typedef struct CocoColumn
{
	char	   *name;
	char	   *type;			/* canonical type name */
	bool		nullable;
	bool		is_key;
} CocoColumn;

/* the "distribution" option of a declared table (pg_citus.c) */
typedef enum CocoDistKind
{
	COCO_DIST_NONE, COCO_DIST_HASH, COCO_DIST_REFERENCE
} CocoDistKind;

typedef struct CocoDistribution
{
	CocoDistKind kind;
	char	   *column;			/* hash: the distribution column */
	char	   *colocate_with;	/* hash: "default", "none", schema.table; NULL: default */
	int			shard_count;	/* hash: 0 is Citus's default */
} CocoDistribution;

typedef struct CocoTableSpec
{
	CocoTableName tn;
	char	   *managed_by;		/* "system" or "user" */
	CocoDistribution dist;
	int			ncolumns;
	CocoColumn *columns;
	int			nkeys;
	int		   *key_index;		/* positions of primary key columns */
} CocoTableSpec;

extern Jsonb *coco_table_spec_build(const CocoTableName *tn, Jsonb *columns,
									ArrayType *primary_key, const char *managed_by);
extern Jsonb *coco_table_spec_with_options(const CocoTableName *tn, Jsonb *spec, Jsonb *options);
extern CocoTableSpec *coco_table_spec_parse(Jsonb *spec);
extern int	coco_table_spec_column(const CocoTableSpec *spec, const char *name);
extern bool coco_table_spec_same_distribution(const CocoDistribution *a, const CocoDistribution *b);

/* pg_citus.c: Citus tables, and the distribution a declared table asks for */
typedef enum CocoCitusKind
{
	COCO_CITUS_NONE, COCO_CITUS_HASH, COCO_CITUS_REFERENCE, COCO_CITUS_OTHER
} CocoCitusKind;

extern bool coco_citus_installed(void);
extern void coco_citus_require(const CocoTableName *tn);
extern CocoCitusKind coco_citus_table_kind(Oid relid, char **column);
extern Oid	coco_citus_relid(const CocoTableName *tn);
typedef struct CocoDistributionStep CocoDistributionStep;
extern CocoDistributionStep *coco_citus_distribution_step(const CocoTableSpec *spec, bool rebuild);
extern void coco_citus_distribute(List *steps);
extern pg_attribute_noreturn() void coco_citus_rethrow(MemoryContext cxt, const CocoTableName *tn,
													   const char *what);

/* declare.c */
extern CocoTableSpec *coco_declared_table_spec(const CocoApp *app, const CocoTableName *tn);
extern void coco_declare_init(void);
extern void coco_stage_table(const CocoApp *app, const CocoTableName *tn, Jsonb *columns,
							 ArrayType *primary_key, const char *managed_by, ArrayType *component,
							 Jsonb *options);
extern void coco_stage_query(const CocoApp *app, int comp_id, const CocoTableName *tn,
							 const char *query, ArrayType *columns, const char *search_path,
							 int64 row_count);
extern char *coco_clean_query(const char *query, const char *what);
extern bool coco_query_only_reads(SPIPlanPtr plan);

/* infer.c: a derived table's columns from its query */
extern List *coco_infer_columns(const char *query, const CocoTableName *tn);

/* sync_table.c: persistent declarations of derived tables */
extern int	coco_expand_synced_tables(const CocoApp *app);

/* pg_lock.c: the lock a step of the run needs on a target table */
extern void coco_lock_target_table(const CocoTableName *tn, LOCKMODE mode);

/* pg_table.c */
extern void coco_pg_table_register(void);

/* pg_rows.c */
extern void coco_rows_sync(CocoChildSync *sync);
extern void coco_rows_summarize(CocoChildSync *sync);
extern void coco_rows_plan(CocoChildSync *sync, StringInfo detail);
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
typedef struct CocoTrackedChunks CocoTrackedChunks;

extern CocoRowDiff *coco_rowdiff_create(const CocoTableSpec *spec, const char *declared_sql,
										int nparams, const Oid *types, const Datum *values,
										const int *rewrite, int nrewrite);
extern void coco_rowdiff_free(CocoRowDiff *d, bool close_files);
extern void coco_rowdiff_load_tracked(CocoRowDiff *d, int64 target_id, const int *comps, int ncomps);
extern void coco_rowdiff_set_search_path(CocoRowDiff *d, const char *search_path);
extern char *coco_rowdiff_search_path(CocoRowDiff *d);
extern void coco_rowdiff_defer_tracked(CocoRowDiff *d, int64 target_id, const int *comps, int ncomps);
extern bool coco_rowdiff_deferred(CocoRowDiff *d);
extern void coco_rowdiff_load_deferred(CocoRowDiff *d);
extern void coco_rowdiff_read_by_ctid(CocoRowDiff *d, const char *sql, const int *comps, int ncomps);
extern void coco_rowdiff_read_declared(CocoRowDiff *d);
extern void coco_rowdiff_publish_tally(CocoRowDiff *d, CocoChildTally *into,
									   const int *comps, int ncomps);
extern bool coco_rowdiff_finish(CocoRowDiff *d);
extern void coco_rowdiff_duplicate_error(CocoRowDiff *d) pg_attribute_noreturn();
extern TupleDesc coco_rowdiff_changes_desc(CocoRowDiff *d);
extern void coco_rowdiff_deletions(CocoRowDiff *d);
extern void coco_rowdiff_read_changed(CocoRowDiff *d);
extern Tuplestorestate *coco_rowdiff_changes(CocoRowDiff *d);
extern void coco_rowdiff_release_entries(CocoRowDiff *d);
extern CocoTrackedChunks *coco_rowdiff_chunks(CocoRowDiff *d);
extern bool coco_rowdiff_held_key_unknown(CocoRowDiff *d);
extern void coco_rowdiff_find_held_key(CocoRowDiff *d);
extern void coco_rowdiff_check_held(CocoRowDiff *d);
extern int64 coco_rowdiff_load(const CocoTableSpec *spec, CocoChildTally *tally,
							   const char *sql, int nparams,
							   const Oid *types, const Datum *values, Oid target_relid,
							   int32 app_id, int64 target_id);

/* pg_value_error.c: in the PG_CATCH of one of our statements, its error
 * re-thrown without it (its SPI context line replaced by `context`, or
 * dropped when NULL) */
extern pg_attribute_noreturn() void coco_rethrow_without_statement(MemoryContext cxt, const char *sql,
																	const char *context);

#endif							/* COCO_PG_CONNECTOR_H */
