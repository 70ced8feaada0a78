/*
 * provider.c — the registry of root providers.
 *
 * Connectors register their provider (handler, sink, optional children
 * sync) by name in their own _PG_init; the engine finds them here.  The
 * built-in connectors register themselves the same way (init.c).
 * Providers that are not registered in C (those written in SQL) are found
 * through a resolver that their connector sets.
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/memutils.h"

#include "coco_internal.h"

#define COCO_MAX_PROVIDERS 64

static const CocoProvider *providers[COCO_MAX_PROVIDERS];
static int	nproviders = 0;

void
coco_register_provider_v(const CocoProvider *provider, int api_version, Size provider_size)
{
	if (api_version != COCO_TARGET_API_VERSION || provider_size != sizeof(CocoProvider))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("a connector built for coco_target API version %d cannot register with version %d",
						api_version, COCO_TARGET_API_VERSION),
				 errhint("Rebuild the connector against this coco_target's coco_target.h.")));
	if (provider == NULL || provider->name == NULL || provider->reconcile == NULL ||
		provider->apply == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("a provider needs a name, a reconcile function and an apply function")));
	if (coco_lookup_c_provider(provider->name) != NULL)
		ereport(ERROR,
				(errcode(ERRCODE_DUPLICATE_OBJECT),
				 errmsg("provider \"%s\" is already registered", provider->name)));
	if (provider->parent != NULL && provider->container_name == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("attachment provider \"%s\" needs a container_name function",
						provider->name)));
	if (provider->plan_children != NULL && provider->sync_children == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("provider \"%s\" plans children it does not sync", provider->name)));
	if (nproviders >= COCO_MAX_PROVIDERS)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("too many providers registered (at most %d)", COCO_MAX_PROVIDERS)));
	providers[nproviders++] = provider;
}

const CocoProvider *
coco_lookup_c_provider(const char *name)
{
	for (int i = 0; i < nproviders; i++)
		if (strcmp(providers[i]->name, name) == 0)
			return providers[i];
	return NULL;
}

/* The providers registered from C, in the order they were registered. */
int
coco_registered_providers(const CocoProvider *const **list)
{
	*list = providers;
	return nproviders;
}

static CocoProviderResolver resolver = NULL;

/* Where the providers not registered in C are found (one resolver). */
void
coco_set_provider_resolver(CocoProviderResolver r)
{
	resolver = r;
}

/* A provider written in C, else one the resolver knows. */
const CocoProvider *
coco_lookup_provider(const char *name)
{
	const CocoProvider *p = coco_lookup_c_provider(name);

	return p ? p : (resolver ? resolver(name) : NULL);
}

/* The names of the registered providers: containers and other root
 * providers (those in C and those registered in SQL), or attachments (those
 * with a parent).  Needs SPI. */
ArrayType *
coco_provider_names(bool attachments)
{
	List	   *names = NIL;
	Datum	   *elems;
	int			n = 0;
	ListCell   *lc;

	for (int i = 0; i < nproviders; i++)
		if ((providers[i]->parent != NULL) == attachments)
			names = lappend(names, (void *) providers[i]->name);
	if (!attachments)
	{
		coco_spi_exec("SELECT name FROM coco.provider", 0, NULL, NULL, NULL, SPI_OK_SELECT);
		for (uint64 r = 0; r < SPI_processed; r++)
			names = lappend(names, SPI_getvalue(SPI_tuptable->vals[r], SPI_tuptable->tupdesc, 1));
	}
	elems = palloc(sizeof(Datum) * Max(list_length(names), 1));
	foreach(lc, names)
		elems[n++] = CStringGetTextDatum((char *) lfirst(lc));
	return construct_array(elems, n, TEXTOID, -1, false, TYPALIGN_INT);
}
