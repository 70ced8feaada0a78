/*
 * digest.c — order-independent digests of row sets.
 *
 * The digest of a set of rows is the sum, modulo 2^128, of the XXH3-128 hash
 * of each row's key and fingerprint.  Sums do not care about order, so a
 * digest can be computed while a query streams, added up across several
 * declarations of one component, and compared with the digest remembered for
 * the rows the component has in a table.  Equal digests and counts mean the
 * component declares exactly the rows it has: it is clean, and nothing of
 * it is written.
 *
 * A container's diff tallies the digest and count per component as it
 * reads the declared rows, into the CocoChildTally the engine hands it; a
 * statement can do the same through coco.tracked_fingerprint().  After a
 * diff the engine remembers those exact values.
 */
#include "postgres.h"

#include <xxhash.h>

#include "access/xact.h"
#include "fmgr.h"
#include "utils/builtins.h"
#include "utils/memutils.h"

#include "coco_internal.h"

void
coco_digest_add_row(CocoDigest *d, const char *key, int keylen, const CocoFingerprint *fp)
{
	char		local[256];
	char	   *buf = (keylen + COCO_FINGERPRINT_LEN <= (int) sizeof(local)) ?
		local : palloc(keylen + COCO_FINGERPRINT_LEN);
	XXH128_hash_t h;
	uint64		lo;

	memcpy(buf, key, keylen);
	memcpy(buf + keylen, fp->bytes, COCO_FINGERPRINT_LEN);
	h = XXH3_128bits(buf, keylen + COCO_FINGERPRINT_LEN);
	if (buf != local)
		pfree(buf);
	lo = d->lo + h.low64;
	d->hi += h.high64 + (lo < d->lo ? 1 : 0);
	d->lo = lo;
}

static void
digest_add(CocoDigest *d, const CocoDigest *other)
{
	uint64		lo = d->lo + other->lo;

	d->hi += other->hi + (lo < d->lo ? 1 : 0);
	d->lo = lo;
}

bytea *
coco_digest_to_bytea(const CocoDigest *d)
{
	bytea	   *b = palloc(VARHDRSZ + 16);

	SET_VARSIZE(b, VARHDRSZ + 16);
	memcpy(VARDATA(b), &d->hi, 8);
	memcpy(VARDATA(b) + 8, &d->lo, 8);
	return b;
}

void
coco_digest_from_bytea(bytea *b, CocoDigest *d)
{
	if (VARSIZE_ANY_EXHDR(b) != 16)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("a row set digest has 16 bytes, not %d", (int) VARSIZE_ANY_EXHDR(b))));
	memcpy(&d->hi, VARDATA_ANY(b), 8);
	memcpy(&d->lo, VARDATA_ANY(b) + 8, 8);
}

/* ---- child tallies: count and digest per component --------------------- */

typedef struct TallyEntry
{
	int			comp_id;
	int64		nrows;
	CocoDigest	digest;
} TallyEntry;

struct CocoChildTally
{
	MemoryContext cxt;			/* where entries grow */
	TallyEntry *entries;
	int			n;
	int			cap;
};

/* The tally coco.tracked_fingerprint() adds to while a statement runs. */
static CocoChildTally *collecting = NULL;

CocoChildTally *
coco_child_tally_create(void)
{
	CocoChildTally *t = palloc0(sizeof(CocoChildTally));

	t->cxt = CurrentMemoryContext;
	return t;
}

void
coco_child_tally_reset(CocoChildTally *t)
{
	t->n = 0;
}

static TallyEntry *
tally_entry(CocoChildTally *t, int comp_id)
{
	for (int i = 0; i < t->n; i++)
		if (t->entries[i].comp_id == comp_id)
			return &t->entries[i];
	if (t->n == t->cap)
	{
		t->cap = t->cap ? t->cap * 2 : 16;
		t->entries = t->entries ? repalloc(t->entries, sizeof(TallyEntry) * t->cap) :
			MemoryContextAlloc(t->cxt, sizeof(TallyEntry) * t->cap);
	}
	memset(&t->entries[t->n], 0, sizeof(TallyEntry));
	t->entries[t->n].comp_id = comp_id;
	return &t->entries[t->n++];
}

void
coco_child_tally_add(CocoChildTally *t, int comp_id, const char *key, int keylen,
					 const CocoFingerprint *fp)
{
	TallyEntry *e = tally_entry(t, comp_id);

	e->nrows++;
	coco_digest_add_row(&e->digest, key, keylen, fp);
}

void
coco_child_tally_set(CocoChildTally *t, int comp_id, int64 nrows, const CocoDigest *digest)
{
	TallyEntry *e = tally_entry(t, comp_id);

	e->nrows = nrows;
	e->digest = *digest;
}

int
coco_child_tally_count(const CocoChildTally *t)
{
	return t->n;
}

void
coco_child_tally_nth(const CocoChildTally *t, int i, int *comp_id, int64 *nrows,
					 CocoDigest *digest)
{
	*comp_id = t->entries[i].comp_id;
	*nrows = t->entries[i].nrows;
	*digest = t->entries[i].digest;
}

bool
coco_child_tally_get(const CocoChildTally *t, int comp_id, int64 *nrows, CocoDigest *digest)
{
	for (int i = 0; i < t->n; i++)
	{
		if (t->entries[i].comp_id == comp_id)
		{
			*nrows = t->entries[i].nrows;
			*digest = t->entries[i].digest;
			return true;
		}
	}
	return false;
}

int64
coco_child_tally_total(const CocoChildTally *t)
{
	int64		n = 0;

	for (int i = 0; i < t->n; i++)
		n += t->entries[i].nrows;
	return n;
}

CocoChildTally *
coco_child_tally_collect(CocoChildTally *t)
{
	CocoChildTally *prev = collecting;

	collecting = t;
	return prev;
}

/* A tally being collected lives in the aborted (sub)transaction's memory:
 * forget it, whoever set it. */
static void
collect_on_xact_abort(XactEvent event, void *arg)
{
	if (event == XACT_EVENT_ABORT || event == XACT_EVENT_PARALLEL_ABORT)
		collecting = NULL;
}

static void
collect_on_subxact_abort(SubXactEvent event, SubTransactionId mySubid,
						 SubTransactionId parentSubid, void *arg)
{
	if (event == SUBXACT_EVENT_ABORT_SUB)
		collecting = NULL;
}

void
coco_child_tally_init(void)
{
	RegisterXactCallback(collect_on_xact_abort, NULL);
	RegisterSubXactCallback(collect_on_subxact_abort, NULL);
}

/*
 * coco.tracked_fingerprint(comp integer, key bytea, VARIADIC "any") — the
 * fingerprint of a declared row (its values from the third argument on),
 * tallied for the row's component in the tally being collected, if any.
 * Used by coco.plan's statement; PARALLEL RESTRICTED so that every call is
 * tallied in this backend.
 */
PG_FUNCTION_INFO_V1(coco_tracked_fingerprint);
Datum
coco_tracked_fingerprint(PG_FUNCTION_ARGS)
{
	CocoFingerprint fp;
	bytea	   *key;

	if (PG_ARGISNULL(0) || PG_ARGISNULL(1))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("component and key of a tracked fingerprint must not be null")));
	key = PG_GETARG_BYTEA_PP(1);
	coco_fingerprint_args(fcinfo, 2, &fp);
	if (collecting != NULL)
		coco_child_tally_add(collecting, PG_GETARG_INT32(0), VARDATA_ANY(key),
							 VARSIZE_ANY_EXHDR(key), &fp);
	PG_RETURN_BYTEA_P(coco_fingerprint_to_bytea(&fp));
}

/* ---- aggregates --------------------------------------------------------- */

static CocoDigest *
agg_state(FunctionCallInfo fcinfo)
{
	MemoryContext aggcxt;
	CocoDigest *d;

	if (!AggCheckCallContext(fcinfo, &aggcxt))
		elog(ERROR, "coco_target: digest aggregate called outside an aggregate");
	if (!PG_ARGISNULL(0))
		return (CocoDigest *) PG_GETARG_POINTER(0);
	d = MemoryContextAllocZero(aggcxt, sizeof(CocoDigest));
	return d;
}

/* coco.row_digest(key bytea, fp bytea): the digest of a set of rows */
PG_FUNCTION_INFO_V1(coco_row_digest_step);
Datum
coco_row_digest_step(PG_FUNCTION_ARGS)
{
	CocoDigest *d = agg_state(fcinfo);

	if (!PG_ARGISNULL(1) && !PG_ARGISNULL(2))
	{
		bytea	   *key = PG_GETARG_BYTEA_PP(1);
		bytea	   *fpb = PG_GETARG_BYTEA_PP(2);
		CocoFingerprint fp;

		if (VARSIZE_ANY_EXHDR(fpb) != COCO_FINGERPRINT_LEN)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("a fingerprint has %d bytes", COCO_FINGERPRINT_LEN)));
		memcpy(fp.bytes, VARDATA_ANY(fpb), COCO_FINGERPRINT_LEN);
		coco_digest_add_row(d, VARDATA_ANY(key), VARSIZE_ANY_EXHDR(key), &fp);
	}
	PG_RETURN_POINTER(d);
}

/* coco.digest_sum(digest bytea): digests of disjoint sets add up */
PG_FUNCTION_INFO_V1(coco_digest_sum_step);
Datum
coco_digest_sum_step(PG_FUNCTION_ARGS)
{
	CocoDigest *d = agg_state(fcinfo);

	if (!PG_ARGISNULL(1))
	{
		CocoDigest	other;

		coco_digest_from_bytea(PG_GETARG_BYTEA_PP(1), &other);
		digest_add(d, &other);
	}
	PG_RETURN_POINTER(d);
}

PG_FUNCTION_INFO_V1(coco_digest_final);
Datum
coco_digest_final(PG_FUNCTION_ARGS)
{
	CocoDigest	zero = {0, 0};
	CocoDigest *d = PG_ARGISNULL(0) ? &zero : (CocoDigest *) PG_GETARG_POINTER(0);

	PG_RETURN_BYTEA_P(coco_digest_to_bytea(d));
}
