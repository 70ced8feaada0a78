/*
 * fingerprint.c — 128-bit XXH3 fingerprints of canonical byte strings.
 *
 * A row's fingerprint covers its declared columns in order: for each, a
 * null marker, and for a value its type's internal bytes (length-prefixed
 * for variable-length types, detoasted).  Both ways of declaring rows
 * (jsonb rows and queries) produce datums of the declared column types, so
 * equal values give equal fingerprints without any text round trip.
 */
#include "postgres.h"

#include <xxhash.h>

#include "fmgr.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"

#include "coco_target.h"
#include "coco_internal.h"

void
coco_fingerprint_bytes(const void *data, size_t len, CocoFingerprint *out)
{
	XXH128_hash_t h = XXH3_128bits(data, len);
	XXH128_canonical_t canon;

	XXH128_canonicalFromHash(&canon, h);
	memcpy(out->bytes, canon.digest, COCO_FINGERPRINT_LEN);
}

bool
coco_fingerprint_equal(const CocoFingerprint *a, const CocoFingerprint *b)
{
	return memcmp(a->bytes, b->bytes, COCO_FINGERPRINT_LEN) == 0;
}

void
coco_fingerprint_add_datum(StringInfo buf, Datum value, bool isnull,
						   int16 typlen, bool typbyval)
{
	char	   *p;

	if (isnull)
	{
		appendStringInfoCharMacro(buf, '\0');
		return;
	}
	if (typbyval)
	{
		/*
		 * The value's own bytes, as wide as the type (stored aligned).  A
		 * whole Datum is copied, a constant size the compiler makes one
		 * move of instead of a call; only typlen bytes are counted.
		 */
		union
		{
			Datum		d;
			char		c[sizeof(Datum)];
		}			tmp;

		tmp.d = 0;
		store_att_byval(tmp.c, value, typlen);
		p = coco_buf_reserve(buf, 1 + sizeof(Datum));
		p[0] = '\1';
		memcpy(p + 1, tmp.c, sizeof(Datum));
		coco_buf_advance(buf, 1 + typlen);
	}
	else if (typlen > 0)
	{
		p = coco_buf_reserve(buf, 1 + typlen);
		p[0] = '\1';
		memcpy(p + 1, DatumGetPointer(value), typlen);
		coco_buf_advance(buf, 1 + typlen);
	}
	else if (typlen == -1)
	{
		struct varlena *v = pg_detoast_datum_packed((struct varlena *) DatumGetPointer(value));
		uint32		len = VARSIZE_ANY_EXHDR(v);

		/* the marker, the length in native byte order, the bytes (a value
		 * is at most 1 GB: the sum fits an int) */
		int			n = 1 + (int) sizeof(len) + (int) len;

		p = coco_buf_reserve(buf, n);
		p[0] = '\1';
		memcpy(p + 1, &len, sizeof(len));
		memcpy(p + 1 + sizeof(len), VARDATA_ANY(v), len);
		coco_buf_advance(buf, n);
		if ((Pointer) v != DatumGetPointer(value))
			pfree(v);
	}
	else
	{
		const char *s = DatumGetCString(value);

		appendStringInfoCharMacro(buf, '\1');
		appendBinaryStringInfo(buf, s, strlen(s) + 1);
	}
}

bytea *
coco_fingerprint_to_bytea(const CocoFingerprint *fp)
{
	bytea	   *b = palloc(VARHDRSZ + COCO_FINGERPRINT_LEN);

	SET_VARSIZE(b, VARHDRSZ + COCO_FINGERPRINT_LEN);
	memcpy(VARDATA(b), fp->bytes, COCO_FINGERPRINT_LEN);
	return b;
}

typedef struct RowFingerprintCache
{
	int			nargs;
	int16	   *typlen;
	bool	   *typbyval;
	StringInfoData buf;
} RowFingerprintCache;

/* Fingerprint of the function's arguments from position `first` on. */
void
coco_fingerprint_args(FunctionCallInfo fcinfo, int first, CocoFingerprint *fp)
{
	RowFingerprintCache *cache = fcinfo->flinfo->fn_extra;

	if (cache == NULL || cache->nargs != PG_NARGS())
	{
		MemoryContext old = MemoryContextSwitchTo(fcinfo->flinfo->fn_mcxt);

		cache = palloc0(sizeof(RowFingerprintCache));
		cache->nargs = PG_NARGS();
		cache->typlen = palloc(sizeof(int16) * Max(1, PG_NARGS()));
		cache->typbyval = palloc(sizeof(bool) * Max(1, PG_NARGS()));
		for (int i = 0; i < PG_NARGS(); i++)
			get_typlenbyval(get_fn_expr_argtype(fcinfo->flinfo, i),
							&cache->typlen[i], &cache->typbyval[i]);
		initStringInfo(&cache->buf);
		fcinfo->flinfo->fn_extra = cache;
		MemoryContextSwitchTo(old);
	}

	resetStringInfo(&cache->buf);
	for (int i = first; i < PG_NARGS(); i++)
		coco_fingerprint_add_datum(&cache->buf, PG_GETARG_DATUM(i), PG_ARGISNULL(i),
								   cache->typlen[i], cache->typbyval[i]);
	coco_fingerprint_bytes(cache->buf.data, cache->buf.len, fp);
}

/*
 * coco.row_fingerprint(VARIADIC "any") — fingerprint of a row's values.
 */
PG_FUNCTION_INFO_V1(coco_row_fingerprint);
Datum
coco_row_fingerprint(PG_FUNCTION_ARGS)
{
	CocoFingerprint fp;

	coco_fingerprint_args(fcinfo, 0, &fp);
	PG_RETURN_BYTEA_P(coco_fingerprint_to_bytea(&fp));
}

/* coco.fingerprint(bytea) — the fingerprint of raw bytes. */
PG_FUNCTION_INFO_V1(coco_fingerprint_sql);
Datum
coco_fingerprint_sql(PG_FUNCTION_ARGS)
{
	bytea	   *b = PG_GETARG_BYTEA_PP(0);
	CocoFingerprint fp;

	coco_fingerprint_bytes(VARDATA_ANY(b), VARSIZE_ANY_EXHDR(b), &fp);
	PG_RETURN_BYTEA_P(coco_fingerprint_to_bytea(&fp));
}
