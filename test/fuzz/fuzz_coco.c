/*
 * fuzz_coco.c — libFuzzer target for the pure-C parts of coco_target:
 * the stable-key encoding (src/core/stable_key.c), the decision rules
 * (src/core/statediff.c) and row fingerprint buffers (src/core/fingerprint.c).
 *
 * The first byte of an input picks a mode, the rest is its payload:
 *
 *   0  raw key bytes: coco_key_read over arbitrary bytes never reads out
 *      of bounds, refuses with 22P03 or agrees item by item with an
 *      independent decoder of the format; what it reads re-encodes to the
 *      same bytes; scalar items survive coco_key_item_datum and
 *      coco_key_put_datum unchanged; coco_key_to_jsonb accepts exactly
 *      the well-formed keys coco_key_from_jsonb can produce and spells
 *      them as documented.
 *   1  structured keys: two key values built from the payload; their
 *      encodings decode back to them, are spelled as documented, and
 *      compare bytewise like the values compare logically.
 *   2  coco_diff over fingerprints: the decision rules.
 *   3  coco_composite_diff: the decision rules, per sub-record.
 *   4  coco_fingerprint_add_datum: a row buffer reads back as its row
 *      with the column types alone, so equal rows give equal buffers and
 *      different rows different ones, whatever the varlena header form.
 */
#include "postgres.h"

#include <stdio.h>

#include "catalog/pg_type.h"
#include "datatype/timestamp.h"
#include "mb/pg_wchar.h"
#include "utils/uuid.h"

#include "coco_target.h"
#include "pg_shim.h"

int			LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* ---- reading the payload ---------------------------------------------- */

typedef struct FzIn
{
	const uint8 *p;
	size_t		n;
} FzIn;

/* 0 once the payload is used up, so every generator terminates. */
static uint8
take(FzIn *in)
{
	if (in->n == 0)
		return 0;
	in->n--;
	return *in->p++;
}

/* ---- key values ------------------------------------------------------- */

typedef struct KVal
{
	CocoKeyKind kind;
	int64		ival;			/* INT, DATE, TIMESTAMP, TIMESTAMPTZ */
	char	   *data;			/* STR, BYTES, SYMBOL, UUID (16 bytes), NUMERIC (canonical text) */
	int			len;
	int			nelems;			/* TUPLE */
	struct KVal *elems;
} KVal;

#define GEN_MAX_DEPTH 40
#define REF_MAX_DEPTH 100
/* what coco_key_from_jsonb lets through: values at most this deep */
#define JSONB_MAX_DEPTH 32

static bool
is_scalar_kind(CocoKeyKind k)
{
	return k == COCO_KEY_NULL || k == COCO_KEY_FALSE || k == COCO_KEY_TRUE ||
		k == COCO_KEY_INT || k == COCO_KEY_STR;
}

static const int64 special_ints[] = {
	0, 1, -1, PG_INT64_MIN, PG_INT64_MAX, PG_INT32_MIN, PG_INT32_MAX,
	(int64) PG_INT32_MIN - 1, (int64) PG_INT32_MAX + 1, PG_INT16_MIN, PG_INT16_MAX,
	PG_INT16_MIN - 1, PG_INT16_MAX + 1, 255, 256, -256
};

static void
gen_value(FzIn *in, int depth, KVal *v)
{
	uint8		b = take(in);

	memset(v, 0, sizeof(*v));
	switch (b % 10)
	{
		case 0:
			v->kind = COCO_KEY_NULL;
			break;
		case 1:
			v->kind = COCO_KEY_FALSE;
			break;
		case 2:
			v->kind = COCO_KEY_TRUE;
			break;
		case 3:
			{
				uint8		how = take(in);

				v->kind = COCO_KEY_INT;
				if (how % 3 == 0)
				{
					uint64		u = 0;

					for (int i = 0; i < 8; i++)
						u = (u << 8) | take(in);
					v->ival = (int64) u;
				}
				else if (how % 3 == 1)
					v->ival = special_ints[take(in) % lengthof(special_ints)];
				else
					v->ival = (int8) take(in);
				break;
			}
		case 4:
		case 5:
		case 7:
			v->kind = b % 10 == 4 ? COCO_KEY_STR : b % 10 == 5 ? COCO_KEY_BYTES : COCO_KEY_SYMBOL;
			v->len = take(in) % 24;
			v->data = palloc(v->len + 1);
			for (int i = 0; i < v->len; i++)
				v->data[i] = (char) take(in);
			v->data[v->len] = '\0';
			break;
		case 6:
			v->kind = COCO_KEY_UUID;
			v->len = UUID_LEN;
			v->data = palloc(UUID_LEN);
			for (int i = 0; i < UUID_LEN; i++)
				v->data[i] = (char) take(in);
			break;
		case 8:
			v->kind = COCO_KEY_TUPLE;
			v->nelems = depth >= GEN_MAX_DEPTH ? 0 : take(in) % 5;
			v->elems = palloc(sizeof(KVal) * Max(v->nelems, 1));
			for (int i = 0; i < v->nelems; i++)
				gen_value(in, depth + 1, &v->elems[i]);
			break;
		case 9:
			{
				/* a chain of one-element tuples, to reach the depth limits */
				int			levels = take(in) % 40;
				KVal	   *cur = v;

				if (depth + levels > GEN_MAX_DEPTH)
					levels = Max(GEN_MAX_DEPTH - depth, 0);
				for (int i = 0; i < levels; i++)
				{
					cur->kind = COCO_KEY_TUPLE;
					cur->nelems = 1;
					cur->elems = palloc0(sizeof(KVal));
					cur = cur->elems;
				}
				gen_value(in, depth + levels, cur);
				break;
			}
	}
}

static void
encode_value(StringInfo buf, const KVal *v)
{
	switch (v->kind)
	{
		case COCO_KEY_NULL:
			coco_key_put_null(buf);
			break;
		case COCO_KEY_FALSE:
		case COCO_KEY_TRUE:
			coco_key_put_bool(buf, v->kind == COCO_KEY_TRUE);
			break;
		case COCO_KEY_INT:
			coco_key_put_int(buf, v->ival);
			break;
		case COCO_KEY_STR:
			coco_key_put_str(buf, v->data, v->len);
			break;
		case COCO_KEY_BYTES:
			coco_key_put_bytes(buf, v->data, v->len);
			break;
		case COCO_KEY_SYMBOL:
			coco_key_put_symbol(buf, v->data, v->len);
			break;
		case COCO_KEY_UUID:
			{
				pg_uuid_t	u;

				memcpy(u.data, v->data, UUID_LEN);
				coco_key_put_uuid(buf, &u);
				break;
			}
		case COCO_KEY_TUPLE:
			coco_key_begin_tuple(buf);
			for (int i = 0; i < v->nelems; i++)
				encode_value(buf, &v->elems[i]);
			coco_key_end_tuple(buf);
			break;
		case COCO_KEY_NUMERIC:
		case COCO_KEY_DATE:
		case COCO_KEY_TIMESTAMP:
		case COCO_KEY_TIMESTAMPTZ:
			/* read from raw bytes (mode 0) only; gen_value makes none */
			fz_fail(__FILE__, __LINE__, "kind", "kind %d is not generated", (int) v->kind);
		case COCO_KEY_END_TUPLE:
			fz_fail(__FILE__, __LINE__, "kind", "END_TUPLE is not a value");
	}
}

static int
cmp_bytes(const char *a, int alen, const char *b, int blen)
{
	int			c = memcmp(a, b, Min(alen, blen));

	if (c != 0)
		return c < 0 ? -1 : 1;
	return alen < blen ? -1 : alen > blen ? 1 : 0;
}

/*
 * The logical order keys are documented to have: by kind (null < false <
 * true < integers < strings < bytes < uuids < symbols < tuples), integers
 * numerically, strings, bytes, symbols and uuids bytewise with a prefix
 * first, tuples element by element with a prefix first.
 */
static int
cmp_logical(const KVal *a, const KVal *b)
{
	if (a->kind != b->kind)
		return a->kind < b->kind ? -1 : 1;
	switch (a->kind)
	{
		case COCO_KEY_INT:
			return a->ival < b->ival ? -1 : a->ival > b->ival ? 1 : 0;
		case COCO_KEY_STR:
		case COCO_KEY_BYTES:
		case COCO_KEY_SYMBOL:
		case COCO_KEY_UUID:
			return cmp_bytes(a->data, a->len, b->data, b->len);
		case COCO_KEY_TUPLE:
			for (int i = 0; i < Min(a->nelems, b->nelems); i++)
			{
				int			c = cmp_logical(&a->elems[i], &b->elems[i]);

				if (c != 0)
					return c;
			}
			return a->nelems < b->nelems ? -1 : a->nelems > b->nelems ? 1 : 0;
		default:
			return 0;
	}
}

static bool
valid_text(const char *s, int len)
{
	/* the UTF-8 verifier refuses NUL too */
	return pg_encoding_verifymbstr(PG_UTF8, s, len) == len;
}

/*
 * Whether coco_key_from_jsonb can produce this key (a UTF8 database):
 * strings and symbols are valid text without NUL, and no value sits more
 * than 32 levels below the top (key_value_from_jsonb refuses it with
 * 22023).  coco_key_to_jsonb must accept exactly these: every key that
 * can be declared can be spelled back, and nothing else.
 */
static bool
jsonb_spellable(const KVal *v, int depth)
{
	if (depth > JSONB_MAX_DEPTH)
		return false;
	switch (v->kind)
	{
		case COCO_KEY_STR:
		case COCO_KEY_SYMBOL:
			return valid_text(v->data, v->len);
		case COCO_KEY_TUPLE:
			for (int i = 0; i < v->nelems; i++)
				if (!jsonb_spellable(&v->elems[i], depth + 1))
					return false;
			return true;
		default:
			return true;
	}
}

/* The documented jsonb spelling, as the recorder writes it. */
static void
expected_trace_value(StringInfo out, const KVal *v, char token)
{
	switch (v->kind)
	{
		case COCO_KEY_NULL:
			appendStringInfo(out, "%cn;", token);
			break;
		case COCO_KEY_FALSE:
		case COCO_KEY_TRUE:
			appendStringInfo(out, "%c%c;", token, v->kind == COCO_KEY_TRUE ? 't' : 'f');
			break;
		case COCO_KEY_INT:
			fz_trace_int(out, token, v->ival);
			break;
		case COCO_KEY_STR:
			fz_trace_string(out, token, v->data, v->len);
			break;
		case COCO_KEY_BYTES:
			{
				StringInfoData hex;

				initStringInfo(&hex);
				appendStringInfoString(&hex, "\\x");
				for (int i = 0; i < v->len; i++)
					appendStringInfo(&hex, "%02x", (unsigned char) v->data[i]);
				fz_trace_plain(out, "{");
				fz_trace_string(out, 'K', "bytes", 5);
				fz_trace_string(out, 'V', hex.data, hex.len);
				fz_trace_plain(out, "}");
				break;
			}
		case COCO_KEY_UUID:
			{
				char		s[37];

				fz_uuid_spell((const unsigned char *) v->data, s);
				fz_trace_plain(out, "{");
				fz_trace_string(out, 'K', "uuid", 4);
				fz_trace_string(out, 'V', s, 36);
				fz_trace_plain(out, "}");
				break;
			}
		case COCO_KEY_SYMBOL:
			fz_trace_plain(out, "{");
			fz_trace_string(out, 'K', "symbol", 6);
			fz_trace_string(out, 'V', v->data, v->len);
			fz_trace_plain(out, "}");
			break;
		case COCO_KEY_TUPLE:
			fz_trace_plain(out, "[");
			for (int i = 0; i < v->nelems; i++)
				expected_trace_value(out, &v->elems[i], 'E');
			fz_trace_plain(out, "]");
			break;
		case COCO_KEY_NUMERIC:
			fz_trace_plain(out, "{");
			fz_trace_string(out, 'K', "numeric", 7);
			fz_trace_string(out, 'V', v->data, v->len);
			fz_trace_plain(out, "}");
			break;
		case COCO_KEY_DATE:
		case COCO_KEY_TIMESTAMP:
		case COCO_KEY_TIMESTAMPTZ:
			{
				/* the documented tags; the date/time text is the server's (modelled) */
				static const int utc = 0;
				const char *tag = v->kind == COCO_KEY_DATE ? "date" :
					v->kind == COCO_KEY_TIMESTAMP ? "timestamp" : "timestamptz";
				Oid			typid = v->kind == COCO_KEY_DATE ? DATEOID :
					v->kind == COCO_KEY_TIMESTAMP ? TIMESTAMPOID : TIMESTAMPTZOID;
				char		spelled[64];

				fz_datetime_spell(typid, v->ival, typid == TIMESTAMPTZOID ? &utc : NULL, spelled);
				fz_trace_plain(out, "{");
				fz_trace_string(out, 'K', tag, strlen(tag));
				fz_trace_string(out, 'V', spelled, strlen(spelled));
				fz_trace_plain(out, "}");
				break;
			}
		case COCO_KEY_END_TUPLE:
			fz_fail(__FILE__, __LINE__, "kind", "END_TUPLE is not a value");
	}
}

static char *
expected_trace(const KVal *v)
{
	StringInfoData out;

	initStringInfo(&out);
	if (is_scalar_kind(v->kind))
	{
		/* a scalar at the top is a one-element raw scalar array */
		fz_trace_plain(&out, "[raw");
		expected_trace_value(&out, v, 'E');
		fz_trace_plain(&out, "]");
	}
	else
		expected_trace_value(&out, v, 'E');
	return out.data;
}

static void
print_hex(const char *what, const char *data, int len)
{
	fprintf(stderr, "%s (%d bytes):", what, len);
	for (int i = 0; i < len && i < 256; i++)
		fprintf(stderr, " %02x", (unsigned char) data[i]);
	fprintf(stderr, "%s\n", len > 256 ? " ..." : "");
}

/* ---- an independent decoder of the format ------------------------------
 * Written from the description at the top of src/core/stable_key.c, not from
 * its code: a tag byte; integers 8 bytes big-endian with the sign bit
 * flipped, dates and timestamps the same under their tags (within their
 * types' ranges, or an infinity); a numeric as put_numeric describes it;
 * strings, bytes and symbols with 0x00 escaped as 0x00 0xFF and ended by
 * 0x00 0x00; uuids 16 bytes; a tuple is its tag, its items and 0x00.
 */

/*
 * A numeric: class 1 -Infinity, 2 negative, 3 zero, 4 positive, 5 Infinity,
 * 6 NaN; a non-zero finite value 0.d1..dn x 10^exp (d1, dn non-zero, exp
 * at most 131072, exp - n at least -16383): exp as 4 bytes big-endian with
 * the sign bit flipped, each digit as digit + 1, then 0x00; all of it
 * inverted for a negative value.  Its text: plain decimal notation.
 */
static bool
ref_read_numeric(const char *data, int len, int *pos, KVal *out)
{
	int			p = *pos;
	int			cls;
	unsigned char inv;
	uint32		u = 0;
	int64		exp;
	StringInfoData d,
				t;

	if (p >= len)
		return false;
	cls = (unsigned char) data[p++];
	initStringInfo(&t);
	if (cls == 1 || cls == 3 || cls == 5 || cls == 6)
	{
		appendStringInfoString(&t, cls == 1 ? "-Infinity" : cls == 3 ? "0" : cls == 5 ? "Infinity" : "NaN");
		out->data = t.data;
		out->len = t.len;
		*pos = p;
		return true;
	}
	if (cls != 2 && cls != 4)
		return false;
	inv = cls == 2 ? 0xFF : 0x00;
	if (len - p < 4)
		return false;
	for (int i = 0; i < 4; i++)
		u = (u << 8) | ((unsigned char) data[p + i] ^ inv);
	p += 4;
	exp = (int64) u - (INT64CONST(1) << 31);
	initStringInfo(&d);
	for (;;)
	{
		int			b;

		if (p >= len)
			return false;
		b = (unsigned char) data[p++] ^ inv;
		if (b == 0)
			break;
		if (b < 1 || b > 10)
			return false;
		appendStringInfoChar(&d, '0' + b - 1);
	}
	if (d.len == 0 || d.data[0] == '0' || d.data[d.len - 1] == '0' ||
		exp > 131072 || exp - d.len < -16383)
		return false;
	if (inv)
		appendStringInfoChar(&t, '-');
	if (exp <= 0)
	{
		appendStringInfoString(&t, "0.");
		for (int64 i = exp; i < 0; i++)
			appendStringInfoChar(&t, '0');
		appendStringInfoString(&t, d.data);
	}
	else if (exp < d.len)
		appendStringInfo(&t, "%.*s.%s", (int) exp, d.data, d.data + exp);
	else
	{
		appendStringInfoString(&t, d.data);
		for (int64 i = d.len; i < exp; i++)
			appendStringInfoChar(&t, '0');
	}
	out->data = t.data;
	out->len = t.len;
	*pos = p;
	return true;
}
static bool
ref_read_item(const char *data, int len, int *pos, KVal *out)
{
	int			p = *pos;
	unsigned char tag;

	memset(out, 0, sizeof(*out));
	if (p >= len)
		return false;
	tag = (unsigned char) data[p++];
	switch (tag)
	{
		case COCO_KEY_END_TUPLE:
		case COCO_KEY_NULL:
		case COCO_KEY_FALSE:
		case COCO_KEY_TRUE:
		case COCO_KEY_TUPLE:
			break;
		case COCO_KEY_INT:
		case COCO_KEY_DATE:
		case COCO_KEY_TIMESTAMP:
		case COCO_KEY_TIMESTAMPTZ:
			{
				uint64		u = 0;
				int64		v;

				if (len - p < 8)
					return false;
				for (int i = 0; i < 8; i++)
					u = (u << 8) | (unsigned char) data[p + i];
				p += 8;
				v = (int64) (u ^ (UINT64CONST(1) << 63));
				if (tag == COCO_KEY_DATE &&
					!(v == PG_INT32_MIN || v == PG_INT32_MAX || IS_VALID_DATE(v)))
					return false;
				if ((tag == COCO_KEY_TIMESTAMP || tag == COCO_KEY_TIMESTAMPTZ) &&
					!(v == PG_INT64_MIN || v == PG_INT64_MAX || IS_VALID_TIMESTAMP(v)))
					return false;
				out->ival = v;
				break;
			}
		case COCO_KEY_NUMERIC:
			if (!ref_read_numeric(data, len, &p, out))
				return false;
			break;
		case COCO_KEY_STR:
		case COCO_KEY_BYTES:
		case COCO_KEY_SYMBOL:
			{
				StringInfoData s;

				initStringInfo(&s);
				for (;;)
				{
					if (p >= len)
						return false;
					if (data[p] != 0)
					{
						appendStringInfoChar(&s, data[p]);
						p++;
						continue;
					}
					if (p + 1 >= len)
						return false;
					if (data[p + 1] == 0)
					{
						p += 2;
						break;
					}
					if ((unsigned char) data[p + 1] != 0xFF)
						return false;
					appendStringInfoChar(&s, '\0');
					p += 2;
				}
				out->data = s.data;
				out->len = s.len;
				break;
			}
		case COCO_KEY_UUID:
			if (len - p < UUID_LEN)
				return false;
			out->data = palloc(UUID_LEN);
			memcpy(out->data, data + p, UUID_LEN);
			out->len = UUID_LEN;
			p += UUID_LEN;
			break;
		default:
			return false;
	}
	out->kind = (CocoKeyKind) tag;
	*pos = p;
	return true;
}

/* One key value (tuples read to their end); false if malformed or deeper
 * than REF_MAX_DEPTH (far past any limit the code has). */
static bool
ref_parse_value(const char *data, int len, int *pos, int depth, KVal *out)
{
	int			cap = 4;

	if (depth > REF_MAX_DEPTH)
		return false;
	if (!ref_read_item(data, len, pos, out) || out->kind == COCO_KEY_END_TUPLE)
		return false;
	if (out->kind != COCO_KEY_TUPLE)
		return true;
	out->elems = palloc(sizeof(KVal) * cap);
	for (;;)
	{
		if (*pos >= len)
			return false;
		if (data[*pos] == COCO_KEY_END_TUPLE)
		{
			(*pos)++;
			return true;
		}
		if (out->nelems == cap)
		{
			cap *= 2;
			out->elems = repalloc(out->elems, sizeof(KVal) * cap);
		}
		if (!ref_parse_value(data, len, pos, depth + 1, &out->elems[out->nelems]))
			return false;
		out->nelems++;
	}
}

static bool
kval_equal(const KVal *a, const KVal *b)
{
	if (a->kind != b->kind)
		return false;
	switch (a->kind)
	{
		case COCO_KEY_INT:
		case COCO_KEY_DATE:
		case COCO_KEY_TIMESTAMP:
		case COCO_KEY_TIMESTAMPTZ:
			return a->ival == b->ival;
		case COCO_KEY_STR:
		case COCO_KEY_BYTES:
		case COCO_KEY_SYMBOL:
		case COCO_KEY_UUID:
		case COCO_KEY_NUMERIC:
			return a->len == b->len && memcmp(a->data, b->data, a->len) == 0;
		case COCO_KEY_TUPLE:
			if (a->nelems != b->nelems)
				return false;
			for (int i = 0; i < a->nelems; i++)
				if (!kval_equal(&a->elems[i], &b->elems[i]))
					return false;
			return true;
		default:
			return true;
	}
}

/* ---- calls under fz_try ----------------------------------------------- */

typedef struct ReadCall
{
	const char *data;
	int			len;
	int			pos;
	CocoKeyItem item;
} ReadCall;

static void
call_read(void *arg)
{
	ReadCall   *c = arg;

	coco_key_read(c->data, c->len, &c->pos, &c->item);
}

typedef struct ToJsonbCall
{
	const char *data;
	int			len;
} ToJsonbCall;

static void
call_to_jsonb(void *arg)
{
	ToJsonbCall *c = arg;

	(void) coco_key_to_jsonb(c->data, c->len);
}

typedef struct DatumCall
{
	const CocoKeyItem *item;
	Oid			typid;
	Datum		value;
	StringInfo	buf;
} DatumCall;

static void
call_item_datum(void *arg)
{
	DatumCall  *c = arg;

	c->value = coco_key_item_datum(c->item, c->typid);
}

static void
call_put_datum(void *arg)
{
	DatumCall  *c = arg;

	coco_key_put_datum(c->buf, c->value, c->typid);
}

/* A whole key value through coco_key_read, tuples included. */
typedef struct TreeCall
{
	const char *data;
	int			len;
	int			pos;
	KVal		out;
} TreeCall;

static void
read_tree(const char *data, int len, int *pos, int depth, KVal *out)
{
	CocoKeyItem item;
	int			cap = 4;

	FZ_CHECK(depth <= GEN_MAX_DEPTH + 1, "decoded deeper than encoded");
	coco_key_read(data, len, pos, &item);
	memset(out, 0, sizeof(*out));
	out->kind = item.kind;
	out->ival = item.ival;
	out->data = item.data;
	out->len = item.len;
	FZ_CHECK(item.kind != COCO_KEY_END_TUPLE, "END_TUPLE where a value goes");
	if (item.kind != COCO_KEY_TUPLE)
		return;
	out->elems = palloc(sizeof(KVal) * cap);
	for (;;)
	{
		FZ_CHECK(*pos < len, "tuple runs past the end");
		if (data[*pos] == COCO_KEY_END_TUPLE)
		{
			coco_key_read(data, len, pos, &item);
			FZ_CHECK(item.kind == COCO_KEY_END_TUPLE, "END_TUPLE misread");
			return;
		}
		if (out->nelems == cap)
		{
			cap *= 2;
			out->elems = repalloc(out->elems, sizeof(KVal) * cap);
		}
		read_tree(data, len, pos, depth + 1, &out->elems[out->nelems++]);
	}
}

static void
call_read_tree(void *arg)
{
	TreeCall   *c = arg;

	read_tree(c->data, c->len, &c->pos, 0, &c->out);
}

/* ---- shared checks ---------------------------------------------------- */

/* coco_key_to_jsonb over bytes whose reference parse is `tree` (NULL: not
 * one well-formed key). */
static void
check_to_jsonb(const char *data, int len, const KVal *tree)
{
	ToJsonbCall call = {data, len};
	bool		want = tree != NULL && jsonb_spellable(tree, 0);
	bool		got;

	fz_json_trace_reset();
	got = fz_try(call_to_jsonb, &call);
	if (got != want)
	{
		print_hex("key", data, len);
		fz_fail(__FILE__, __LINE__, "got == want",
				"coco_key_to_jsonb %s a key it should %s (%s)",
				got ? "accepted" : "refused", want ? "accept" : "refuse",
				got ? "" : fz_error_message());
	}
	if (!got)
	{
		FZ_CHECK(fz_error_code() == ERRCODE_INVALID_BINARY_REPRESENTATION,
				 "to_jsonb refused with the wrong error: %s", fz_error_message());
		return;
	}
	{
		const char *exp = expected_trace(tree);

		if (strcmp(exp, fz_json_trace()) != 0)
		{
			print_hex("key", data, len);
			fz_fail(__FILE__, __LINE__, "trace", "jsonb spelling differs:\n  got  %s\n  want %s",
					fz_json_trace(), exp);
		}
	}
}

static void
put_item(StringInfo buf, const CocoKeyItem *item)
{
	switch (item->kind)
	{
		case COCO_KEY_END_TUPLE:
			coco_key_end_tuple(buf);
			break;
		case COCO_KEY_TUPLE:
			coco_key_begin_tuple(buf);
			break;
		case COCO_KEY_NULL:
			coco_key_put_null(buf);
			break;
		case COCO_KEY_FALSE:
		case COCO_KEY_TRUE:
			coco_key_put_bool(buf, item->kind == COCO_KEY_TRUE);
			break;
		case COCO_KEY_INT:
			coco_key_put_int(buf, item->ival);
			break;
		case COCO_KEY_STR:
			coco_key_put_str(buf, item->data, item->len);
			break;
		case COCO_KEY_BYTES:
			coco_key_put_bytes(buf, item->data, item->len);
			break;
		case COCO_KEY_SYMBOL:
			coco_key_put_symbol(buf, item->data, item->len);
			break;
		case COCO_KEY_UUID:
			{
				pg_uuid_t	u;

				memcpy(u.data, item->data, UUID_LEN);
				coco_key_put_uuid(buf, &u);
				break;
			}
		case COCO_KEY_NUMERIC:
		case COCO_KEY_DATE:
		case COCO_KEY_TIMESTAMP:
		case COCO_KEY_TIMESTAMPTZ:
			{
				/* no put function of their own: through a datum of their type */
				Oid			typid = item->kind == COCO_KEY_NUMERIC ? NUMERICOID :
					item->kind == COCO_KEY_DATE ? DATEOID :
					item->kind == COCO_KEY_TIMESTAMP ? TIMESTAMPOID : TIMESTAMPTZOID;

				coco_key_put_datum(buf, coco_key_item_datum(item, typid), typid);
				break;
			}
		default:
			fz_fail(__FILE__, __LINE__, "kind", "coco_key_read returned kind %d", (int) item->kind);
	}
}

static const Oid key_types[] = {
	BOOLOID, INT2OID, INT4OID, INT8OID, NUMERICOID, DATEOID, TIMESTAMPOID, TIMESTAMPTZOID,
	TEXTOID, VARCHAROID, BPCHAROID, BYTEAOID, UUIDOID
};
static const Oid other_types[] = {FLOAT8OID, JSONBOID, INTERVALOID, TIMEOID};

/* Whether a decoded scalar item converts to a datum of the type. */
static bool
item_fits(const CocoKeyItem *item, Oid typid)
{
	switch (item->kind)
	{
		case COCO_KEY_FALSE:
		case COCO_KEY_TRUE:
			return typid == BOOLOID;
		case COCO_KEY_INT:
			return typid == INT8OID ||
				(typid == INT4OID && item->ival >= PG_INT32_MIN && item->ival <= PG_INT32_MAX) ||
				(typid == INT2OID && item->ival >= PG_INT16_MIN && item->ival <= PG_INT16_MAX);
		case COCO_KEY_STR:
			return typid == TEXTOID || typid == VARCHAROID || typid == BPCHAROID;
		case COCO_KEY_NUMERIC:
			return typid == NUMERICOID;
		case COCO_KEY_DATE:
			return typid == DATEOID;
		case COCO_KEY_TIMESTAMP:
			return typid == TIMESTAMPOID;
		case COCO_KEY_TIMESTAMPTZ:
			return typid == TIMESTAMPTZOID;
		case COCO_KEY_BYTES:
			return typid == BYTEAOID;
		case COCO_KEY_UUID:
			return typid == UUIDOID;
		default:
			return false;
	}
}

/* item → coco_key_item_datum → coco_key_put_datum gives back `enc`. */
static void
check_datum_roundtrip(const CocoKeyItem *item, const char *enc, int enclen)
{
	for (int t = 0; t < (int) lengthof(key_types) + (int) lengthof(other_types); t++)
	{
		Oid			typid = t < (int) lengthof(key_types) ? key_types[t]
			: other_types[t - lengthof(key_types)];
		DatumCall	c = {item, typid, (Datum) 0, NULL};
		StringInfoData buf;
		bool		ok;

		FZ_CHECK(coco_key_type_supported(typid) == (t < (int) lengthof(key_types)),
				 "coco_key_type_supported(%u) is wrong", typid);
		ok = fz_try(call_item_datum, &c);
		FZ_CHECK(ok == item_fits(item, typid),
				 "coco_key_item_datum(kind %d, type %u) %s", (int) item->kind, typid,
				 ok ? "accepted" : fz_error_message());
		if (!ok)
		{
			FZ_CHECK(fz_error_code() == ERRCODE_DATATYPE_MISMATCH,
					 "item_datum refused with the wrong error: %s", fz_error_message());
			continue;
		}
		initStringInfo(&buf);
		c.buf = &buf;
		FZ_CHECK(fz_try(call_put_datum, &c), "coco_key_put_datum failed: %s", fz_error_message());
		if (typid == BPCHAROID)
		{
			/* char(n) drops trailing blanks: the string without them */
			StringInfoData want;
			int			n = item->len;

			while (n > 0 && item->data[n - 1] == ' ')
				n--;
			initStringInfo(&want);
			coco_key_put_str(&want, item->data, n);
			FZ_CHECK(buf.len == want.len && memcmp(buf.data, want.data, want.len) == 0,
					 "char(n) key is not the string without trailing blanks");
			continue;
		}
		FZ_CHECK(buf.len == enclen && memcmp(buf.data, enc, enclen) == 0,
				 "datum round trip changed the encoding (type %u)", typid);

		/* the same text with a short (1-byte) varlena header */
		if ((typid == TEXTOID || typid == VARCHAROID || typid == BYTEAOID) &&
			item->len <= (int) (VARATT_SHORT_MAX - VARHDRSZ_SHORT))
		{
			char	   *s = palloc(VARHDRSZ_SHORT + item->len);

			SET_VARSIZE_SHORT(s, VARHDRSZ_SHORT + item->len);
			memcpy(s + VARHDRSZ_SHORT, item->data, item->len);
			c.value = PointerGetDatum(s);
			resetStringInfo(&buf);
			FZ_CHECK(fz_try(call_put_datum, &c), "coco_key_put_datum (short) failed: %s",
					 fz_error_message());
			FZ_CHECK(buf.len == enclen && memcmp(buf.data, enc, enclen) == 0,
					 "a short varlena header changed the encoding (type %u)", typid);
		}
	}
	/* unsupported types are refused by coco_key_put_datum */
	{
		StringInfoData buf;
		DatumCall	c = {item, FLOAT8OID, Float8GetDatum(1.5), &buf};

		initStringInfo(&buf);
		FZ_CHECK(!fz_try(call_put_datum, &c) &&
				 fz_error_code() == ERRCODE_FEATURE_NOT_SUPPORTED,
				 "coco_key_put_datum accepted float8");
	}
}

/* ---- mode 0: raw bytes ------------------------------------------------ */

static void
mode_raw(const char *data, int len)
{
	StringInfoData re;
	int			pos = 0;

	initStringInfo(&re);
	while (pos < len)
	{
		ReadCall	c = {data, len, pos};
		KVal		ref;
		int			rpos = pos;
		bool		rok = ref_read_item(data, len, &rpos, &ref);
		bool		ok = fz_try(call_read, &c);

		if (ok != rok)
		{
			print_hex("key", data, len);
			fz_fail(__FILE__, __LINE__, "ok == rok", "coco_key_read %s the item at %d",
					ok ? "accepted" : "refused", pos);
		}
		if (!ok)
		{
			FZ_CHECK(fz_error_code() == ERRCODE_INVALID_BINARY_REPRESENTATION,
					 "coco_key_read refused with the wrong error: %s", fz_error_message());
			/* a refused item leaves the position where it was */
			FZ_CHECK(c.pos == pos, "position moved on a refused item");
			break;
		}
		FZ_CHECK(c.pos > pos && c.pos <= len, "position %d after reading at %d of %d",
				 c.pos, pos, len);
		FZ_CHECK(c.pos == rpos, "coco_key_read ended at %d, the format says %d", c.pos, rpos);
		FZ_CHECK(c.item.kind == ref.kind, "kind %d, the format says %d",
				 (int) c.item.kind, (int) ref.kind);
		FZ_CHECK(c.item.ival == ref.ival, "integer " INT64_FORMAT ", the format says " INT64_FORMAT,
				 c.item.ival, ref.ival);
		FZ_CHECK(c.item.len == ref.len &&
				 (ref.len == 0 || memcmp(c.item.data, ref.data, ref.len) == 0),
				 "payload differs from the format");
		if (c.item.kind == COCO_KEY_STR || c.item.kind == COCO_KEY_BYTES ||
			c.item.kind == COCO_KEY_SYMBOL)
			FZ_CHECK(c.item.data != NULL && c.item.data[c.item.len] == '\0',
					 "string item not NUL-terminated");

		/* decoding is canonical: the item re-encodes to the same bytes */
		put_item(&re, &c.item);
		FZ_CHECK(re.len == c.pos && memcmp(re.data, data, re.len) == 0,
				 "re-encoding differs from the input up to %d", c.pos);

		if (c.item.kind != COCO_KEY_TUPLE && c.item.kind != COCO_KEY_END_TUPLE)
			check_datum_roundtrip(&c.item, data + pos, c.pos - pos);
		pos = c.pos;
	}

	/* coco_key_to_jsonb: arbitrary bytes, as coco.key_to_jsonb(bytea) gets */
	{
		KVal		tree;
		int			tpos = 0;
		bool		wf = ref_parse_value(data, len, &tpos, 0, &tree) && tpos == len;

		check_to_jsonb(data, len, wf ? &tree : NULL);
	}
}

/* ---- mode 1: structured keys ------------------------------------------ */

static void
check_value(const KVal *v, StringInfo enc)
{
	TreeCall	t = {enc->data, enc->len, 0};

	FZ_CHECK(fz_try(call_read_tree, &t), "an encoded key does not decode: %s",
			 fz_error_message());
	FZ_CHECK(t.pos == enc->len, "decoding stopped at %d of %d", t.pos, enc->len);
	FZ_CHECK(kval_equal(v, &t.out), "decoding gives another value");
	check_to_jsonb(enc->data, enc->len, v);
}

static void
mode_structured(FzIn *in)
{
	KVal		a,
				b;
	StringInfoData ea,
				eb;
	int			logical,
				bytewise;

	gen_value(in, 0, &a);
	gen_value(in, 0, &b);
	initStringInfo(&ea);
	initStringInfo(&eb);
	encode_value(&ea, &a);
	encode_value(&eb, &b);
	check_value(&a, &ea);
	check_value(&b, &eb);

	logical = cmp_logical(&a, &b);
	bytewise = cmp_bytes(ea.data, ea.len, eb.data, eb.len);
	if (logical != bytewise)
	{
		print_hex("a", ea.data, ea.len);
		print_hex("b", eb.data, eb.len);
		fz_fail(__FILE__, __LINE__, "order", "logical order %d, bytewise order %d",
				logical, bytewise);
	}
}

/* ---- fingerprints for the decision rules ------------------------------- */

#define NFP 4
static CocoFingerprint fp_pool[NFP];

static void
init_fp_pool(void)
{
	static bool done = false;

	if (done)
		return;
	coco_fingerprint_bytes("a", 1, &fp_pool[0]);
	coco_fingerprint_bytes("b", 1, &fp_pool[1]);
	/* differing from the first only in its last or first byte */
	fp_pool[2] = fp_pool[0];
	fp_pool[2].bytes[COCO_FINGERPRINT_LEN - 1] ^= 1;
	fp_pool[3] = fp_pool[0];
	fp_pool[3].bytes[0] ^= 0x80;
	for (int i = 0; i < NFP; i++)
		for (int j = 0; j < NFP; j++)
			FZ_CHECK(coco_fingerprint_equal(&fp_pool[i], &fp_pool[j]) == (i == j),
					 "fingerprint pool");
	done = true;
}

/* ---- mode 2: coco_diff ------------------------------------------------ */

#define MAX_PREV 6

static void
mode_diff(FzIn *in)
{
	uint8		flags = take(in);
	bool		has_desired = (flags & 1) == 0;
	bool		mbm = (flags & 2) != 0;
	int			nprev = take(in) % (MAX_PREV + 1);
	CocoFingerprint desired = fp_pool[take(in) % NFP];
	CocoFingerprint prev[MAX_PREV],
				prev_copy[MAX_PREV],
				desired_copy = desired,
				rev[MAX_PREV];
	bool		all_equal = true;
	CocoAction	act,
				act_rev;

	for (int i = 0; i < nprev; i++)
	{
		prev[i] = fp_pool[take(in) % NFP];
		if (!coco_fingerprint_equal(&prev[i], &desired))
			all_equal = false;
	}
	memcpy(prev_copy, prev, sizeof(prev));
	act = coco_diff(has_desired ? &desired : NULL,
					nprev == 0 && (flags & 4) ? NULL : prev, nprev, mbm);

	FZ_CHECK(memcmp(prev, prev_copy, sizeof(CocoFingerprint) * nprev) == 0 &&
			 memcmp(&desired, &desired_copy, sizeof(desired)) == 0, "coco_diff changed its input");
	FZ_CHECK(act == COCO_NO_ACTION || act == COCO_INSERT || act == COCO_UPSERT ||
			 act == COCO_DELETE, "coco_diff returned %d", (int) act);
	FZ_CHECK(strcmp(coco_action_name(act), "?") != 0, "unnamed action");
	/* skip only when nothing is declared and nothing tracked, or when every
	 * record equals the desired one and the state is known to exist */
	FZ_CHECK((act == COCO_NO_ACTION) ==
			 ((!has_desired && nprev == 0) || (has_desired && nprev > 0 && all_equal && !mbm)),
			 "NO_ACTION rule (desired %d, nprev %d, equal %d, mbm %d): got %s",
			 has_desired, nprev, all_equal, mbm, coco_action_name(act));
	/* delete exactly when no longer declared and something may exist */
	FZ_CHECK((act == COCO_DELETE) == (!has_desired && nprev > 0), "DELETE rule");
	/* insert exactly when declared and never recorded */
	FZ_CHECK((act == COCO_INSERT) == (has_desired && nprev == 0), "INSERT rule");
	/* upsert when declared, recorded, and something differs or may be missing */
	FZ_CHECK((act == COCO_UPSERT) == (has_desired && nprev > 0 && (!all_equal || mbm)),
			 "UPSERT rule");

	/* the records are a set: their order does not matter */
	for (int i = 0; i < nprev; i++)
		rev[i] = prev[nprev - 1 - i];
	act_rev = coco_diff(has_desired ? &desired : NULL, rev, nprev, mbm);
	FZ_CHECK(act == act_rev, "coco_diff depends on the order of the records");
}

/* ---- mode 3: coco_composite_diff -------------------------------------- */

#define NNAMES 24

static void
gen_record(FzIn *in, CocoCompositeRecord *rec)
{
	int			want = take(in) % (NNAMES + 1);
	bool		used[NNAMES] = {false};

	rec->main = fp_pool[take(in) % NFP];
	rec->nsubs = 0;
	rec->sub_names = palloc(sizeof(char *) * NNAMES);
	rec->subs = palloc(sizeof(CocoFingerprint) * NNAMES);
	for (int k = 0; k < want; k++)
	{
		int			n = take(in) % NNAMES;

		if (used[n])
			continue;			/* names in a record are unique (columns) */
		used[n] = true;
		/* a fresh string each time: names match by content */
		rec->sub_names[rec->nsubs] = psprintf("col%d", n);
		rec->subs[rec->nsubs] = fp_pool[take(in) % NFP];
		rec->nsubs++;
	}
}

static int
rec_find(const CocoCompositeRecord *rec, const char *name)
{
	for (int i = 0; i < rec->nsubs; i++)
		if (strcmp(rec->sub_names[i], name) == 0)
			return i;
	return -1;
}

static CocoAction
diff_lookup(const CocoCompositeDiff *d, const char *name, int *count)
{
	CocoAction	a = COCO_NO_ACTION;

	*count = 0;
	for (int i = 0; i < d->nsubs; i++)
		if (strcmp(d->sub_names[i], name) == 0)
		{
			a = d->subs[i];
			(*count)++;
		}
	return a;
}

static void
mode_composite(FzIn *in)
{
	uint8		flags = take(in);
	bool		has_desired = (flags & 1) == 0;
	bool		mbm = (flags & 2) != 0;
	int			nprev = take(in) % 5;
	CocoCompositeRecord desired;
	CocoCompositeRecord prev[4],
				rev[4];
	CocoCompositeDiff d,
				drev;
	bool		main_differs = false;

	gen_record(in, &desired);
	for (int p = 0; p < nprev; p++)
	{
		gen_record(in, &prev[p]);
		if (!coco_fingerprint_equal(&prev[p].main, &desired.main))
			main_differs = true;
	}
	coco_composite_diff(has_desired ? &desired : NULL, nprev == 0 && (flags & 4) ? NULL : prev,
						nprev, mbm, &d);
	FZ_CHECK(d.nsubs >= 0, "negative nsubs");

	if (!has_desired)
	{
		/* removal covers the subs */
		FZ_CHECK(d.main == (nprev > 0 ? COCO_DELETE : COCO_NO_ACTION), "undeclared main: %s",
				 coco_action_name(d.main));
		FZ_CHECK(d.nsubs == 0, "undeclared record with sub actions");
		return;
	}
	if (nprev == 0)
	{
		FZ_CHECK(d.main == COCO_INSERT, "first record main: %s", coco_action_name(d.main));
		FZ_CHECK(d.nsubs == desired.nsubs, "first record: %d subs of %d", d.nsubs, desired.nsubs);
		for (int i = 0; i < d.nsubs; i++)
			FZ_CHECK(strcmp(d.sub_names[i], desired.sub_names[i]) == 0 && d.subs[i] == COCO_INSERT,
					 "first record sub %d", i);
		return;
	}
	if (main_differs)
	{
		/* an incompatible main part rebuilds the whole, subs included */
		FZ_CHECK(d.main == COCO_REPLACE && d.nsubs == 0, "main differs: %s with %d subs",
				 coco_action_name(d.main), d.nsubs);
		return;
	}
	FZ_CHECK(d.main == (mbm ? COCO_UPSERT : COCO_NO_ACTION), "equal main: %s",
			 coco_action_name(d.main));

	/* desired subs first, in their order */
	FZ_CHECK(d.nsubs >= desired.nsubs, "fewer subs than desired");
	for (int i = 0; i < desired.nsubs; i++)
		FZ_CHECK(strcmp(d.sub_names[i], desired.sub_names[i]) == 0, "sub order");

	/* every sub of desired or of any record is listed exactly once */
	for (int n = 0; n < NNAMES; n++)
	{
		char		name[16];
		int			di,
					count,
					seen = 0;
		bool		differs = false,
					anywhere;
		CocoAction	a;

		snprintf(name, sizeof(name), "col%d", n);
		di = rec_find(&desired, name);
		anywhere = di >= 0;
		for (int p = 0; p < nprev; p++)
		{
			int			j = rec_find(&prev[p], name);

			if (j < 0)
				continue;
			anywhere = true;
			seen++;
			if (di >= 0 && !coco_fingerprint_equal(&prev[p].subs[j], &desired.subs[di]))
				differs = true;
		}
		a = diff_lookup(&d, name, &count);
		FZ_CHECK(count == (anywhere ? 1 : 0), "%s listed %d times", name, count);
		if (!anywhere)
			continue;
		if (di < 0)
			FZ_CHECK(a == COCO_DELETE, "%s only in records: %s", name, coco_action_name(a));
		else if (differs)
			FZ_CHECK(a == COCO_REPLACE, "%s changed: %s", name, coco_action_name(a));
		else if (seen == nprev && !mbm)
			FZ_CHECK(a == COCO_NO_ACTION, "%s unchanged: %s", name, coco_action_name(a));
		else if (seen == 0 && !mbm)
			FZ_CHECK(a == COCO_INSERT, "%s new: %s", name, coco_action_name(a));
		else
			FZ_CHECK(a == COCO_UPSERT, "%s may be missing: %s", name, coco_action_name(a));
	}

	/* the records are a set: their order does not change any decision */
	for (int p = 0; p < nprev; p++)
		rev[p] = prev[nprev - 1 - p];
	coco_composite_diff(&desired, rev, nprev, mbm, &drev);
	FZ_CHECK(drev.main == d.main && drev.nsubs == d.nsubs, "order of records matters");
	for (int i = 0; i < d.nsubs; i++)
	{
		int			count;

		FZ_CHECK(diff_lookup(&drev, d.sub_names[i], &count) == d.subs[i] && count == 1,
				 "order of records changes %s", d.sub_names[i]);
	}
}

/* ---- mode 4: row fingerprint buffers ----------------------------------- */

typedef struct ColType
{
	int16		typlen;
	bool		typbyval;
} ColType;

static const ColType col_types[] = {
	{1, true}, {2, true}, {4, true}, {8, true}, {16, false}, {-1, false}, {-2, false}
};

typedef struct ColVal
{
	bool		isnull;
	int64		ival;			/* byval */
	char	   *data;			/* by reference */
	int			len;
	bool		short_header;	/* varlena: 1-byte header */
} ColVal;

#define MAX_COLS 8

static void
gen_col(FzIn *in, const ColType *t, ColVal *v)
{
	memset(v, 0, sizeof(*v));
	v->isnull = take(in) % 4 == 0;
	if (v->isnull)
		return;
	if (t->typbyval)
	{
		uint64		u = 0;

		for (int i = 0; i < t->typlen; i++)
			u = (u << 8) | take(in);
		v->ival = (int64) u;
		return;
	}
	v->len = t->typlen > 0 ? t->typlen : take(in) % 20;
	v->data = palloc(v->len + 1);
	for (int i = 0; i < v->len; i++)
	{
		v->data[i] = (char) take(in);
		if (t->typlen == -2 && v->data[i] == '\0')
			v->data[i] = 'z';	/* a cstring has no NUL inside */
	}
	v->data[v->len] = '\0';
	v->short_header = (take(in) & 1) != 0;
}

static Datum
col_datum(const ColType *t, const ColVal *v)
{
	if (v->isnull)
		return (Datum) 0;
	switch (t->typlen)
	{
		case 1:
			return CharGetDatum((char) v->ival);
		case 2:
			return Int16GetDatum((int16) v->ival);
		case 4:
			return Int32GetDatum((int32) v->ival);
		case 8:
			return Int64GetDatum(v->ival);
		case -1:
			{
				char	   *p;

				if (v->short_header)
				{
					p = palloc(VARHDRSZ_SHORT + v->len);
					SET_VARSIZE_SHORT(p, VARHDRSZ_SHORT + v->len);
					memcpy(p + VARHDRSZ_SHORT, v->data, v->len);
				}
				else
				{
					p = palloc(VARHDRSZ + v->len);
					SET_VARSIZE(p, VARHDRSZ + v->len);
					memcpy(p + VARHDRSZ, v->data, v->len);
				}
				return PointerGetDatum(p);
			}
		default:
			{
				/* a private copy, so nothing can read past the value */
				char	   *p = palloc(v->len + 1);

				memcpy(p, v->data, v->len + 1);
				return PointerGetDatum(p);
			}
	}
}

static bool
col_equal(const ColType *t, const ColVal *a, const ColVal *b)
{
	if (a->isnull || b->isnull)
		return a->isnull == b->isnull;
	if (t->typbyval)
	{
		uint64		mask = t->typlen == 8 ? ~UINT64CONST(0) : (UINT64CONST(1) << (8 * t->typlen)) - 1;

		return (((uint64) a->ival ^ (uint64) b->ival) & mask) == 0;
	}
	return a->len == b->len && memcmp(a->data, b->data, a->len) == 0;
}

/*
 * Read a row buffer back with the column types alone: a null marker, then
 * the value's bytes (a byval's as wide as its type, a fixed-length
 * reference's typlen bytes, a varlena's 4-byte length and data, a
 * cstring's bytes and NUL).  That this always gives back the row is what
 * makes the buffer, and so the fingerprint, tell different rows apart.
 */
static void
check_row_decodes(const StringInfoData *buf, const ColType *const *types, int ncols,
				  const ColVal *row)
{
	int			p = 0;

	for (int c = 0; c < ncols; c++)
	{
		const ColType *t = types[c];
		ColVal		got;

		memset(&got, 0, sizeof(got));
		FZ_CHECK(p < buf->len, "row buffer ends before column %d", c);
		FZ_CHECK(buf->data[p] == 0 || buf->data[p] == 1, "column %d: null marker %d", c,
				 buf->data[p]);
		got.isnull = buf->data[p++] == 0;
		if (!got.isnull)
		{
			if (t->typbyval)
			{
				int8		i1;
				int16		i2;
				int32		i4;
				int64		i8;

				FZ_CHECK(buf->len - p >= t->typlen, "column %d: short byval", c);
				switch (t->typlen)
				{
					case 1:
						memcpy(&i1, buf->data + p, 1);
						got.ival = i1;
						break;
					case 2:
						memcpy(&i2, buf->data + p, 2);
						got.ival = i2;
						break;
					case 4:
						memcpy(&i4, buf->data + p, 4);
						got.ival = i4;
						break;
					default:
						memcpy(&i8, buf->data + p, 8);
						got.ival = i8;
						break;
				}
				p += t->typlen;
			}
			else if (t->typlen > 0)
			{
				FZ_CHECK(buf->len - p >= t->typlen, "column %d: short fixed value", c);
				got.data = buf->data + p;
				got.len = t->typlen;
				p += t->typlen;
			}
			else if (t->typlen == -1)
			{
				uint32		len;

				FZ_CHECK(buf->len - p >= 4, "column %d: no varlena length", c);
				memcpy(&len, buf->data + p, 4);
				p += 4;
				FZ_CHECK(len <= (uint32) (buf->len - p), "column %d: varlena length %u past the end",
						 c, len);
				got.data = buf->data + p;
				got.len = (int) len;
				p += len;
			}
			else
			{
				char	   *nul = memchr(buf->data + p, '\0', buf->len - p);

				FZ_CHECK(nul != NULL, "column %d: unterminated cstring", c);
				got.data = buf->data + p;
				got.len = nul - (buf->data + p);
				p += got.len + 1;
			}
		}
		FZ_CHECK(col_equal(t, &got, &row[c]), "column %d reads back as another value", c);
	}
	FZ_CHECK(p == buf->len, "%d bytes left after the last column", buf->len - p);
}

static void
mode_fingerprint(FzIn *in)
{
	int			ncols = 1 + take(in) % MAX_COLS;
	const ColType *types[MAX_COLS];
	ColVal		a[MAX_COLS],
				b[MAX_COLS];
	StringInfoData ba,
				bb;
	bool		equal = true;
	CocoFingerprint fa,
				fb;

	for (int c = 0; c < ncols; c++)
	{
		types[c] = &col_types[take(in) % lengthof(col_types)];
		gen_col(in, types[c], &a[c]);
		if (take(in) & 1)
		{
			b[c] = a[c];		/* the same value, perhaps another header */
			b[c].short_header = (take(in) & 1) != 0;
		}
		else
			gen_col(in, types[c], &b[c]);
		equal = equal && col_equal(types[c], &a[c], &b[c]);
	}
	initStringInfo(&ba);
	initStringInfo(&bb);
	for (int c = 0; c < ncols; c++)
	{
		coco_fingerprint_add_datum(&ba, col_datum(types[c], &a[c]), a[c].isnull,
								   types[c]->typlen, types[c]->typbyval);
		coco_fingerprint_add_datum(&bb, col_datum(types[c], &b[c]), b[c].isnull,
								   types[c]->typlen, types[c]->typbyval);
	}
	check_row_decodes(&ba, types, ncols, a);
	check_row_decodes(&bb, types, ncols, b);
	FZ_CHECK((ba.len == bb.len && memcmp(ba.data, bb.data, ba.len) == 0) == equal,
			 "rows that are %s give %s row buffers", equal ? "equal" : "different",
			 equal ? "different" : "equal");
	coco_fingerprint_bytes(ba.data, ba.len, &fa);
	coco_fingerprint_bytes(bb.data, bb.len, &fb);
	if (equal)
		FZ_CHECK(coco_fingerprint_equal(&fa, &fb), "equal rows, different fingerprints");
}

/* ---- entry ------------------------------------------------------------ */

typedef struct OneInput
{
	const uint8 *data;
	size_t		size;
} OneInput;

static void
run_one(void *arg)
{
	OneInput   *one = arg;
	FzIn		in = {one->data + 1, one->size - 1};

	init_fp_pool();
	switch (one->data[0] % 5)
	{
		case 0:
			mode_raw((const char *) one->data + 1, (int) one->size - 1);
			break;
		case 1:
			mode_structured(&in);
			break;
		case 2:
			mode_diff(&in);
			break;
		case 3:
			mode_composite(&in);
			break;
		case 4:
			mode_fingerprint(&in);
			break;
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	OneInput	one = {data, size};

	if (size < 1 || size > 1000000)
		return 0;
	/* every expected refusal is caught inside the modes: one here is not */
	FZ_CHECK(fz_try(run_one, &one), "unexpected ERROR: %s", fz_error_message());
	fz_arena_reset();
	return 0;
}
