/*
 * sql_provider.h — providers defined with SQL functions: the resolver
 * init.c hands the provider registry for names no C connector registered.
 */
#ifndef COCO_SQL_PROVIDER_H
#define COCO_SQL_PROVIDER_H

#include "coco_target.h"

extern const CocoProvider *coco_lookup_sql_provider(const char *name);

#endif							/* COCO_SQL_PROVIDER_H */
