/* kv_connector.c — example coco_target connector "example.kv", walked through
 * in docs/connectors/writing-a-connector.md.  A target state is a row of
 * example_kv.kv_store: coco.declare_target_state(app, 'example.kv', '"a"',
 * '{"value": <any JSON>}') → key 'a', value <any JSON>.  The handler decides,
 * the sink writes; the tracking record is the spec. */
#include "postgres.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"
#include "coco_target.h"		/* the public connector API */

PG_MODULE_MAGIC;

#define KV_PROVIDER "example.kv"

/* The kv key of a state: its stable key must be a single string item. */
static char *
kv_key(const CocoTargetState *st)
{
	CocoKeyItem item;
	int			pos = 0;

	coco_key_read(st->key, st->keylen, &pos, &item);
	if (item.kind != COCO_KEY_STR || pos != st->keylen || memchr(item.data, '\0', item.len))
		ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						errmsg("example.kv: key %s is not a string", st->name)));
	return pnstrdup(item.data, item.len);
}

/* jsonb prints canonically: equal specs give equal text and fingerprints */
static void
spec_fingerprint(Jsonb *spec, CocoFingerprint *fp)
{
	char	   *text = JsonbToCString(NULL, &spec->root, VARSIZE(spec));

	coco_fingerprint_bytes(text, strlen(text), fp);
}

/*
 * The handler.  Pure (no I/O): from the desired spec (NULL: no longer
 * declared) and every previous record that may be true, coco_diff decides:
 * new → INSERT; gone → DELETE (if ever made); NO_ACTION only when every
 * previous record equals the spec and the row is known to exist; else UPSERT.
 */
static void
kv_reconcile(const CocoTargetState *st, CocoDecision *d)
{
	CocoFingerprint want;
	CocoFingerprint *prev = palloc(sizeof(CocoFingerprint) * Max(st->nprev, 1));

	memset(d, 0, sizeof(*d));	/* no detail, COCO_INVALIDATE_NONE: no children */
	(void) kv_key(st);			/* bad input fails the run here, before any write */
	if (st->desired)
	{
		/* generic_specs: any JSON can be declared, so validate it here */
		if (!JB_ROOT_IS_OBJECT(st->desired) || JB_ROOT_COUNT(st->desired) != 1 ||
			!getKeyJsonValueFromContainer(&st->desired->root, "value", 5, NULL))
			ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
							errmsg("example.kv: the spec of %s must be {\"value\": <any JSON>}", st->name)));
		spec_fingerprint(st->desired, &want);
	}
	for (int i = 0; i < st->nprev; i++)
		spec_fingerprint(st->prev[i], &prev[i]);
	d->action = coco_diff(st->desired ? &want : NULL, prev, st->nprev, st->prev_may_be_missing);
	/* The record: the spec while the state exists, also on COCO_NO_ACTION
	 * (NULL there would mean "gone"); NULL once it is no longer declared. */
	d->record = st->desired;
}

/*
 * The sink: one batch per run, every state with an action.  It runs as the
 * app owner (restricted security context, search_path pg_catalog, pg_temp)
 * in the run's transaction and SPI connection: schema-qualified names, values
 * as parameters, idempotent statements (upsert even for INSERT).
 */
static void
kv_apply(CocoPlannedAction *actions, int n)
{
	Datum	   *keys = palloc(sizeof(Datum) * n),
			   *specs = palloc(sizeof(Datum) * n),
			   *gone = palloc(sizeof(Datum) * n),
				args[2];
	int			nput = 0,
				ngone = 0;
	Oid			types[2] = {TEXTARRAYOID, JSONBARRAYOID};

	for (int i = 0; i < n; i++)
	{
		const CocoTargetState *st = actions[i].state;
		Datum		key = CStringGetTextDatum(kv_key(st));

		if (actions[i].decision.action == COCO_DELETE)
			gone[ngone++] = key;
		else
		{						/* INSERT, UPSERT (and REPLACE, were it used) */
			keys[nput] = key;
			specs[nput++] = JsonbPGetDatum(st->desired);
		}
	}
	if (ngone > 0)
	{
		args[0] = PointerGetDatum(construct_array(gone, ngone, TEXTOID, -1, false, TYPALIGN_INT));
		if (SPI_execute_with_args("DELETE FROM example_kv.kv_store WHERE key = ANY ($1)",
								  1, types, args, NULL, false, 0) != SPI_OK_DELETE)
			elog(ERROR, "example.kv: DELETE failed");
	}
	if (nput > 0)
	{
		args[0] = PointerGetDatum(construct_array(keys, nput, TEXTOID, -1, false, TYPALIGN_INT));
		args[1] = PointerGetDatum(construct_array(specs, nput, JSONBOID, -1, false, TYPALIGN_INT));
		if (SPI_execute_with_args("INSERT INTO example_kv.kv_store (key, value) "
								  "SELECT k, s -> 'value' FROM unnest($1, $2) AS u(k, s) "
								  "ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value",
								  2, types, args, NULL, false, 0) != SPI_OK_INSERT)
			elog(ERROR, "example.kv: INSERT failed");
	}
}

static const CocoProvider kv_provider = {
	.name = KV_PROVIDER,
	.reconcile = kv_reconcile,
	.apply = kv_apply,
	.generic_specs = true,		/* declared with coco.declare_target_state */
};

void		_PG_init(void);

void
_PG_init(void)
{
	/* the registry is coco_target's: have the server initialise it first */
	load_file("$libdir/coco_target", false);
	coco_register_root_provider(&kv_provider);
}

/* example_kv.registered(): is "example.kv" known to this backend? */
PG_FUNCTION_INFO_V1(kv_connector_registered);
Datum
kv_connector_registered(PG_FUNCTION_ARGS)
{
	bool		found;

	SPI_connect();				/* the look-up may read coco.provider */
	found = coco_lookup_provider(KV_PROVIDER) != NULL;
	SPI_finish();
	PG_RETURN_BOOL(found);
}
