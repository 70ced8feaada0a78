/*
 * pg_attach.h — what the attachments of a postgres.table (pg_index.c,
 * pg_sql_command.c) share: their specs, the handler whose record is the
 * spec, running their SQL, staging them.  Not installed.
 */
#ifndef COCO_PG_ATTACH_H
#define COCO_PG_ATTACH_H

#include "pg_connector.h"

#define INDEX_PROVIDER "postgres.index"
/* built with CREATE INDEX CONCURRENTLY, outside the run's transaction */
#define INDEX_CONCURRENTLY_PROVIDER "postgres.index_concurrently"
#define SQL_COMMAND_PROVIDER "postgres.sql_command"

extern char *attach_spec_text(Jsonb *spec, const char *field);
extern char *attach_container_name(Jsonb *spec);
extern bool attach_spec_bool(Jsonb *spec, const char *field);
extern char *attach_spec_identifiers(Jsonb *spec, const char *field);
extern int	attach_spec_array_size(Jsonb *spec, const char *field);
extern void attach_key(const CocoTableName *tn, const char *symbol, const char *name, StringInfo buf);
extern void attach_reconcile(const CocoTargetState *st, CocoDecision *d);
extern void attach_exec_sql(const char *sql, const char *what, const char *name);
extern List *attach_raw_parse(const char *sql, ErrorData **error);
extern void attach_stage(CocoApp *app, const CocoTableName *tn, const char *provider,
						 const char *sibling, const char *symbol, const char *name, Jsonb *spec,
						 ArrayType *component);

/* staging, validated (the declare functions and synced tables) */
extern void coco_stage_index(CocoApp *app, const CocoTableName *tn, const char *name,
							 ArrayType *columns, const char *method, Jsonb *options,
							 ArrayType *component);
extern void coco_stage_sql_command(CocoApp *app, const CocoTableName *tn, const char *name,
								   const char *setup, const char *teardown, ArrayType *component);

/* registered by pg_table.c with the table provider */
extern void coco_pg_index_register(void);
extern void coco_pg_sql_command_register(void);

#endif							/* COCO_PG_ATTACH_H */
