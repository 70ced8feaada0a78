/*
 * stable_key.c — stable keys: canonical binary encoding and jsonb spelling.
 *
 * The encoding is order-preserving: comparing two encodings bytewise (as
 * bytea comparison does) orders them like the values.  Each item starts with
 * a tag byte (CocoKeyKind).  Integers are 8 bytes big-endian with the sign
 * bit flipped; dates (days since 2000-01-01) and timestamps (microseconds,
 * timestamptz the UTC instant) are the same 8 bytes under their own tag, and
 * their -infinity and infinity are the smallest and largest counts; a
 * numeric is described at put_numeric; strings, bytes and symbols escape
 * 0x00 as 0x00 0xFF and end with 0x00 0x00; a tuple is its tag, its items,
 * and 0x00.
 *
 * The jsonb spelling: null, true/false, integers as numbers, strings as
 * strings, tuples as arrays, and {"bytes": "\\x…"}, {"uuid": "…"},
 * {"symbol": "…"}, {"numeric": "…"}, {"date": "…"}, {"timestamp": "…"},
 * {"timestamptz": "…"} for the rest.
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "fmgr.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "port/pg_bswap.h"
#include "utils/builtins.h"
#include "utils/date.h"
#include "utils/json.h"
#include "utils/lsyscache.h"
#include "utils/numeric.h"
#include "utils/timestamp.h"

#include "coco_internal.h"

#define COCO_KEY_MAX_DEPTH 32

/* copied a run at a time up to each 0x00, which text never holds */
static void
put_escaped(StringInfo buf, CocoKeyKind kind, const char *data, int len)
{
	appendStringInfoCharMacro(buf, (char) kind);
	while (len > 0)
	{
		const char *nul = memchr(data, '\0', len);
		int			n = nul != NULL ? (int) (nul - data) + 1 : len;

		appendBinaryStringInfo(buf, data, n);
		if (nul != NULL)
			appendStringInfoCharMacro(buf, (char) 0xFF);
		data += n;
		len -= n;
	}
	appendStringInfoCharMacro(buf, '\0');
	appendStringInfoCharMacro(buf, '\0');
}

void
coco_key_put_null(StringInfo buf)
{
	appendStringInfoCharMacro(buf, (char) COCO_KEY_NULL);
}

void
coco_key_put_bool(StringInfo buf, bool value)
{
	appendStringInfoCharMacro(buf, (char) (value ? COCO_KEY_TRUE : COCO_KEY_FALSE));
}

/* an int64 under a tag: big-endian with the sign bit flipped, so it orders as unsigned bytes */
static void
put_int64(StringInfo buf, CocoKeyKind kind, int64 value)
{
	uint64		u = pg_hton64(((uint64) value) ^ UINT64CONST(0x8000000000000000));
	char	   *p = coco_buf_reserve(buf, 1 + sizeof(u));

	p[0] = (char) kind;
	memcpy(p + 1, &u, sizeof(u));
	coco_buf_advance(buf, 1 + sizeof(u));
}

void
coco_key_put_int(StringInfo buf, int64 value)
{
	put_int64(buf, COCO_KEY_INT, value);
}

/*
 * A numeric, from its canonical text (numeric_normalize: no trailing zeros,
 * so 1.0 and 1.00 give "1" and one key).  A class byte orders the kinds of
 * value as PostgreSQL does: -Infinity < negative < 0 < positive < Infinity
 * < NaN.  A non-zero finite value is ±0.d1…dn × 10^exp with d1 and dn
 * non-zero; after the class come exp (4 bytes big-endian, sign bit
 * flipped), the digits (one byte each, digit + 1) and a 0x00, which sorts a
 * digit string before its extensions (0.12 < 0.123).  For a negative value
 * these bytes are inverted, so a larger magnitude sorts first.
 */
#define NUMERIC_KEY_NEG_INF 0x01
#define NUMERIC_KEY_NEG 0x02
#define NUMERIC_KEY_ZERO 0x03
#define NUMERIC_KEY_POS 0x04
#define NUMERIC_KEY_POS_INF 0x05
#define NUMERIC_KEY_NAN 0x06
/* numeric's limits: 131072 digits before the decimal point, 16383 after */
#define NUMERIC_KEY_MAX_EXP 131072
#define NUMERIC_KEY_MIN_LAST_DIGIT (-16383)

static void
put_numeric(StringInfo buf, const char *s)
{
	bool		neg = (s[0] == '-');
	const char *p = s + (neg ? 1 : 0);
	char		mask = neg ? (char) 0xFF : 0;
	int			exp = 0;
	int			first = -1;		/* position of the first non-zero digit, counted from the left */
	int			last = -1;
	int			ndigits = 0;
	bool		point = false;
	uint32		u;

	appendStringInfoCharMacro(buf, (char) COCO_KEY_NUMERIC);
	if (strcmp(s, "NaN") == 0 || strcmp(p, "Infinity") == 0)
	{
		appendStringInfoCharMacro(buf, (char) (s[0] == 'N' ? NUMERIC_KEY_NAN :
											   neg ? NUMERIC_KEY_NEG_INF : NUMERIC_KEY_POS_INF));
		return;
	}
	/* exp counts the digits before the point; leading zeros are dropped below */
	for (const char *c = p; *c; c++)
	{
		if (*c == '.')
		{
			point = true;
			continue;
		}
		if (*c != '0')
		{
			if (first < 0)
				first = ndigits;
			last = ndigits;
		}
		ndigits++;
		if (!point)
			exp++;
	}
	if (first < 0)
	{
		appendStringInfoCharMacro(buf, (char) NUMERIC_KEY_ZERO);
		return;
	}
	exp -= first;
	appendStringInfoCharMacro(buf, (char) (neg ? NUMERIC_KEY_NEG : NUMERIC_KEY_POS));
	u = ((uint32) exp) ^ 0x80000000;
	for (int shift = 24; shift >= 0; shift -= 8)
		appendStringInfoCharMacro(buf, (char) ((u >> shift) & 0xFF) ^ mask);
	ndigits = 0;
	for (const char *c = p; *c; c++)
	{
		if (*c == '.')
			continue;
		if (ndigits >= first && ndigits <= last)
			appendStringInfoCharMacro(buf, (char) (*c - '0' + 1) ^ mask);
		ndigits++;
	}
	appendStringInfoCharMacro(buf, mask);
}

/* numeric key from a numeric datum (of any scale: its canonical form is encoded) */
static void
put_numeric_datum(StringInfo buf, Datum value)
{
	put_numeric(buf, numeric_normalize(DatumGetNumeric(value)));
}

void
coco_key_put_str(StringInfo buf, const char *data, int len)
{
	put_escaped(buf, COCO_KEY_STR, data, len);
}

void
coco_key_put_bytes(StringInfo buf, const char *data, int len)
{
	put_escaped(buf, COCO_KEY_BYTES, data, len);
}

void
coco_key_put_symbol(StringInfo buf, const char *data, int len)
{
	put_escaped(buf, COCO_KEY_SYMBOL, data, len);
}

void
coco_key_put_uuid(StringInfo buf, const pg_uuid_t *value)
{
	appendStringInfoCharMacro(buf, (char) COCO_KEY_UUID);
	appendBinaryStringInfo(buf, (const char *) value->data, UUID_LEN);
}

void
coco_key_begin_tuple(StringInfo buf)
{
	appendStringInfoCharMacro(buf, (char) COCO_KEY_TUPLE);
}

void
coco_key_end_tuple(StringInfo buf)
{
	appendStringInfoCharMacro(buf, (char) COCO_KEY_END_TUPLE);
}

bool
coco_key_type_supported(Oid typid)
{
	switch (getBaseType(typid))
	{
		case BOOLOID:
		case INT2OID:
		case INT4OID:
		case INT8OID:
		case NUMERICOID:
		case DATEOID:
		case TIMESTAMPOID:
		case TIMESTAMPTZOID:
		case TEXTOID:
		case VARCHAROID:
		case BPCHAROID:
		case BYTEAOID:
		case UUIDOID:
			return true;
		default:
			return false;
	}
}

void
coco_key_put_datum(StringInfo buf, Datum value, Oid typid)
{
	coco_key_put_base_datum(buf, value, getBaseType(typid), typid);
}

/*
 * The same with the base type already resolved (a domain's is looked up
 * in the catalog cache): for callers that encode many rows of one type.
 */
void
coco_key_put_base_datum(StringInfo buf, Datum value, Oid basetypid, Oid typid)
{
	switch (basetypid)
	{
		case BOOLOID:
			coco_key_put_bool(buf, DatumGetBool(value));
			break;
		case INT2OID:
			coco_key_put_int(buf, DatumGetInt16(value));
			break;
		case INT4OID:
			coco_key_put_int(buf, DatumGetInt32(value));
			break;
		case INT8OID:
			coco_key_put_int(buf, DatumGetInt64(value));
			break;
		case NUMERICOID:
			put_numeric_datum(buf, value);
			break;
		case DATEOID:
			put_int64(buf, COCO_KEY_DATE, DatumGetDateADT(value));
			break;
		case TIMESTAMPOID:
			put_int64(buf, COCO_KEY_TIMESTAMP, DatumGetTimestamp(value));
			break;
		case TIMESTAMPTZOID:
			/* the UTC instant: the session's TimeZone plays no part */
			put_int64(buf, COCO_KEY_TIMESTAMPTZ, DatumGetTimestampTz(value));
			break;
		case TEXTOID:
		case VARCHAROID:
			{
				text	   *t = DatumGetTextPP(value);

				coco_key_put_str(buf, VARDATA_ANY(t), VARSIZE_ANY_EXHDR(t));
				break;
			}
		case BPCHAROID:
			{
				/* char(n) compares without its trailing blanks: 'a' = 'a  ' */
				text	   *t = DatumGetTextPP(value);
				int			len = VARSIZE_ANY_EXHDR(t);

				while (len > 0 && VARDATA_ANY(t)[len - 1] == ' ')
					len--;
				coco_key_put_str(buf, VARDATA_ANY(t), len);
				break;
			}
		case BYTEAOID:
			{
				bytea	   *b = DatumGetByteaPP(value);

				coco_key_put_bytes(buf, VARDATA_ANY(b), VARSIZE_ANY_EXHDR(b));
				break;
			}
		case UUIDOID:
			coco_key_put_uuid(buf, DatumGetUUIDP(value));
			break;
		default:
			ereport(ERROR,
					(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
					 errmsg("type %s cannot be part of a stable key", format_type_be(typid)),
					 errhint("%s", COCO_KEY_TYPES_HINT)));
	}
}

/* bytes that are not a key: given to coco.key_to_jsonb() or coco.diff() */
static void
malformed(void)
{
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_BINARY_REPRESENTATION),
			 errmsg("malformed stable key encoding")));
}

static void
read_escaped(const char *data, int len, int *pos, CocoKeyItem *item)
{
	StringInfoData out;
	int			p = *pos;

	initStringInfo(&out);
	for (;;)
	{
		if (p >= len)
			malformed();
		if (data[p] != '\0')
		{
			appendStringInfoChar(&out, data[p++]);
			continue;
		}
		if (p + 1 >= len)
			malformed();
		if ((unsigned char) data[p + 1] == 0xFF)
			appendStringInfoChar(&out, '\0');
		else if (data[p + 1] != '\0')
			malformed();
		else
		{
			p += 2;
			break;
		}
		p += 2;
	}
	item->data = out.data;
	item->len = out.len;
	*pos = p;
}

static int64
read_int64(const char *data, int len, int *pos)
{
	uint64		u = 0;

	if (*pos + 8 > len)
		malformed();
	for (int i = 0; i < 8; i++)
		u = (u << 8) | (unsigned char) data[(*pos)++];
	return (int64) (u ^ UINT64CONST(0x8000000000000000));
}

/* A numeric (see put_numeric) read back into its canonical text. */
static void
read_numeric(const char *data, int len, int *pos, CocoKeyItem *item)
{
	StringInfoData digits;
	StringInfoData out;
	int			p = *pos;
	int			cls;
	char		mask;
	uint32		u = 0;
	int64		exp;

	if (p >= len)
		malformed();
	cls = (unsigned char) data[p++];
	initStringInfo(&out);
	if (cls == NUMERIC_KEY_NEG_INF || cls == NUMERIC_KEY_ZERO || cls == NUMERIC_KEY_POS_INF ||
		cls == NUMERIC_KEY_NAN)
	{
		appendStringInfoString(&out, cls == NUMERIC_KEY_NEG_INF ? "-Infinity" :
							   cls == NUMERIC_KEY_ZERO ? "0" :
							   cls == NUMERIC_KEY_POS_INF ? "Infinity" : "NaN");
		item->data = out.data;
		item->len = out.len;
		*pos = p;
		return;
	}
	if (cls != NUMERIC_KEY_NEG && cls != NUMERIC_KEY_POS)
		malformed();
	mask = cls == NUMERIC_KEY_NEG ? (char) 0xFF : 0;
	if (p + 4 > len)
		malformed();
	for (int i = 0; i < 4; i++)
		u = (u << 8) | (unsigned char) (data[p++] ^ mask);
	exp = (int32) (u ^ 0x80000000);
	initStringInfo(&digits);
	for (;;)
	{
		int			b;

		if (p >= len)
			malformed();
		b = (unsigned char) (data[p++] ^ mask);
		if (b == 0)
			break;
		if (b > 10)
			malformed();
		appendStringInfoChar(&digits, (char) ('0' + b - 1));
	}
	/* one encoding per value, and a value numeric can hold */
	if (digits.len == 0 || digits.data[0] == '0' || digits.data[digits.len - 1] == '0' ||
		exp > NUMERIC_KEY_MAX_EXP || exp - digits.len < NUMERIC_KEY_MIN_LAST_DIGIT)
		malformed();

	/* plain decimal notation, as numeric_normalize spells it */
	if (mask)
		appendStringInfoChar(&out, '-');
	if (exp <= 0)
	{
		appendStringInfoString(&out, "0.");
		for (int64 i = exp; i < 0; i++)
			appendStringInfoChar(&out, '0');
		appendStringInfoString(&out, digits.data);
	}
	else if (exp >= digits.len)
	{
		appendStringInfoString(&out, digits.data);
		for (int64 i = digits.len; i < exp; i++)
			appendStringInfoChar(&out, '0');
	}
	else
		appendStringInfo(&out, "%.*s.%s", (int) exp, digits.data, digits.data + exp);
	pfree(digits.data);
	item->data = out.data;
	item->len = out.len;
	*pos = p;
}

void
coco_key_read(const char *data, int len, int *pos, CocoKeyItem *item)
{
	int			p = *pos;

	if (p >= len)
		malformed();
	memset(item, 0, sizeof(*item));
	item->kind = (CocoKeyKind) (unsigned char) data[p++];
	switch (item->kind)
	{
		case COCO_KEY_END_TUPLE:
		case COCO_KEY_NULL:
		case COCO_KEY_FALSE:
		case COCO_KEY_TRUE:
		case COCO_KEY_TUPLE:
			break;
		case COCO_KEY_INT:
			item->ival = read_int64(data, len, &p);
			break;
		case COCO_KEY_NUMERIC:
			read_numeric(data, len, &p, item);
			break;
		case COCO_KEY_DATE:
			item->ival = read_int64(data, len, &p);
			if (item->ival != DATEVAL_NOBEGIN && item->ival != DATEVAL_NOEND && !IS_VALID_DATE(item->ival))
				malformed();
			break;
		case COCO_KEY_TIMESTAMP:
		case COCO_KEY_TIMESTAMPTZ:
			item->ival = read_int64(data, len, &p);
			if (!TIMESTAMP_NOT_FINITE(item->ival) && !IS_VALID_TIMESTAMP(item->ival))
				malformed();
			break;
		case COCO_KEY_STR:
		case COCO_KEY_BYTES:
		case COCO_KEY_SYMBOL:
			read_escaped(data, len, &p, item);
			break;
		case COCO_KEY_UUID:
			if (p + UUID_LEN > len)
				malformed();
			item->data = palloc(UUID_LEN);
			memcpy(item->data, data + p, UUID_LEN);
			item->len = UUID_LEN;
			p += UUID_LEN;
			break;
		default:
			malformed();
	}
	*pos = p;
}

Datum
coco_key_item_datum(const CocoKeyItem *item, Oid typid)
{
	Oid			base = getBaseType(typid);

	switch (item->kind)
	{
		case COCO_KEY_FALSE:
		case COCO_KEY_TRUE:
			if (base == BOOLOID)
				return BoolGetDatum(item->kind == COCO_KEY_TRUE);
			break;
		case COCO_KEY_INT:
			if (base == INT8OID)
				return Int64GetDatum(item->ival);
			if (base == INT4OID && item->ival >= PG_INT32_MIN && item->ival <= PG_INT32_MAX)
				return Int32GetDatum((int32) item->ival);
			if (base == INT2OID && item->ival >= PG_INT16_MIN && item->ival <= PG_INT16_MAX)
				return Int16GetDatum((int16) item->ival);
			break;
		case COCO_KEY_NUMERIC:
			if (base == NUMERICOID)
				return DirectFunctionCall3(numeric_in, CStringGetDatum(item->data),
										   ObjectIdGetDatum(InvalidOid), Int32GetDatum(-1));
			break;
		case COCO_KEY_DATE:
			if (base == DATEOID)
				return DateADTGetDatum((DateADT) item->ival);
			break;
		case COCO_KEY_TIMESTAMP:
			if (base == TIMESTAMPOID)
				return TimestampGetDatum(item->ival);
			break;
		case COCO_KEY_TIMESTAMPTZ:
			if (base == TIMESTAMPTZOID)
				return TimestampTzGetDatum(item->ival);
			break;
		case COCO_KEY_STR:
			/* char(n) pads the value again when it is stored or compared */
			if (base == TEXTOID || base == VARCHAROID || base == BPCHAROID)
				return PointerGetDatum(cstring_to_text_with_len(item->data, item->len));
			break;
		case COCO_KEY_BYTES:
			if (base == BYTEAOID)
			{
				bytea	   *b = palloc(VARHDRSZ + item->len);

				SET_VARSIZE(b, VARHDRSZ + item->len);
				memcpy(VARDATA(b), item->data, item->len);
				return PointerGetDatum(b);
			}
			break;
		case COCO_KEY_UUID:
			if (base == UUIDOID)
			{
				pg_uuid_t  *u = palloc(sizeof(pg_uuid_t));

				memcpy(u->data, item->data, UUID_LEN);
				return UUIDPGetDatum(u);
			}
			break;
		default:
			break;
	}
	ereport(ERROR,
			(errcode(ERRCODE_DATATYPE_MISMATCH),
			 errmsg("stable key item does not fit type %s", format_type_be(typid))));
	return (Datum) 0;			/* keep compiler quiet */
}

/* ---- jsonb spelling ---------------------------------------------------- */

static JsonbValue *
push_string(JsonbParseState **state, JsonbIteratorToken tok, const char *s, int len)
{
	JsonbValue	v;

	v.type = jbvString;
	v.val.string.val = (char *) s;
	v.val.string.len = len;
	return pushJsonbValue(state, tok, &v);
}

static JsonbValue *
push_tagged(JsonbParseState **state, const char *tag, const char *s, int len)
{
	pushJsonbValue(state, WJB_BEGIN_OBJECT, NULL);
	push_string(state, WJB_KEY, tag, strlen(tag));
	push_string(state, WJB_VALUE, s, len);
	return pushJsonbValue(state, WJB_END_OBJECT, NULL);
}

/*
 * A date or timestamp spelled in ISO 8601 whatever the session's DateStyle,
 * as to_jsonb spells it; a timestamptz in UTC whatever its TimeZone.
 */
static char *
datetime_text(const CocoKeyItem *item)
{
	static const int utc = 0;

	switch (item->kind)
	{
		case COCO_KEY_DATE:
			return JsonEncodeDateTime(NULL, DateADTGetDatum((DateADT) item->ival), DATEOID, NULL);
		case COCO_KEY_TIMESTAMP:
			return JsonEncodeDateTime(NULL, TimestampGetDatum(item->ival), TIMESTAMPOID, NULL);
		default:
			return JsonEncodeDateTime(NULL, TimestampTzGetDatum(item->ival), TIMESTAMPTZOID, &utc);
	}
}

/* A string item spelled as JSON text must be valid text: no NUL, valid
 * encoding (keys made from text values always are). */
static void
check_text(const CocoKeyItem *item)
{
	if (memchr(item->data, '\0', item->len) != NULL ||
		!pg_verifymbstr(item->data, item->len, true))
		malformed();
}

static JsonbValue *
key_item_to_jsonb(const char *data, int len, int *pos, JsonbParseState **state,
				  JsonbIteratorToken tok, int depth)
{
	CocoKeyItem item;
	JsonbValue	v;

	if (depth > COCO_KEY_MAX_DEPTH)
		malformed();
	coco_key_read(data, len, pos, &item);
	switch (item.kind)
	{
		case COCO_KEY_NULL:
			v.type = jbvNull;
			return pushJsonbValue(state, tok, &v);
		case COCO_KEY_FALSE:
		case COCO_KEY_TRUE:
			v.type = jbvBool;
			v.val.boolean = (item.kind == COCO_KEY_TRUE);
			return pushJsonbValue(state, tok, &v);
		case COCO_KEY_INT:
			v.type = jbvNumeric;
			v.val.numeric = int64_to_numeric(item.ival);
			return pushJsonbValue(state, tok, &v);
		case COCO_KEY_STR:
			check_text(&item);
			return push_string(state, tok, item.data, item.len);
		case COCO_KEY_BYTES:
			{
				StringInfoData hex;

				initStringInfo(&hex);
				appendStringInfoString(&hex, "\\x");
				for (int i = 0; i < item.len; i++)
					appendStringInfo(&hex, "%02x", (unsigned char) item.data[i]);
				return push_tagged(state, "bytes", hex.data, hex.len);
			}
		case COCO_KEY_UUID:
			{
				pg_uuid_t	u;
				char	   *s;

				memcpy(u.data, item.data, UUID_LEN);
				s = DatumGetCString(DirectFunctionCall1(uuid_out, UUIDPGetDatum(&u)));
				return push_tagged(state, "uuid", s, strlen(s));
			}
		case COCO_KEY_SYMBOL:
			check_text(&item);
			return push_tagged(state, "symbol", item.data, item.len);
		case COCO_KEY_NUMERIC:
			return push_tagged(state, "numeric", item.data, item.len);
		case COCO_KEY_DATE:
		case COCO_KEY_TIMESTAMP:
		case COCO_KEY_TIMESTAMPTZ:
			{
				char	   *s = datetime_text(&item);

				return push_tagged(state, item.kind == COCO_KEY_DATE ? "date" :
								   item.kind == COCO_KEY_TIMESTAMP ? "timestamp" : "timestamptz",
								   s, strlen(s));
			}
		case COCO_KEY_TUPLE:
			{
				JsonbValue *res;

				pushJsonbValue(state, WJB_BEGIN_ARRAY, NULL);
				while (*pos < len && data[*pos] != (char) COCO_KEY_END_TUPLE)
					key_item_to_jsonb(data, len, pos, state, WJB_ELEM, depth + 1);
				if (*pos >= len)
					malformed();
				(*pos)++;
				res = pushJsonbValue(state, WJB_END_ARRAY, NULL);
				return res;
			}
		case COCO_KEY_END_TUPLE:
			malformed();
	}
	return NULL;
}

Jsonb *
coco_key_to_jsonb(const char *data, int len)
{
	JsonbParseState *state = NULL;
	JsonbValue *res;
	int			pos = 0;

	/* a JSON scalar at top level is wrapped as a one-element raw scalar array */
	if (len > 0 && (data[0] == (char) COCO_KEY_NULL || data[0] == (char) COCO_KEY_FALSE ||
					data[0] == (char) COCO_KEY_TRUE || data[0] == (char) COCO_KEY_INT ||
					data[0] == (char) COCO_KEY_STR))
	{
		JsonbValue	v;

		v.type = jbvArray;
		v.val.array.rawScalar = true;
		v.val.array.nElems = 1;
		v.val.array.elems = NULL;
		pushJsonbValue(&state, WJB_BEGIN_ARRAY, &v);
		key_item_to_jsonb(data, len, &pos, &state, WJB_ELEM, 0);
		res = pushJsonbValue(&state, WJB_END_ARRAY, NULL);
	}
	else
		res = key_item_to_jsonb(data, len, &pos, &state, WJB_ELEM, 0);
	if (pos != len)
		malformed();
	return JsonbValueToJsonb(res);
}

char *
coco_key_describe(const char *data, int len)
{
	Jsonb	   *j = coco_key_to_jsonb(data, len);

	return JsonbToCString(NULL, &j->root, VARSIZE(j));
}

static void
bad_key(const char *detail)
{
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			 errmsg("invalid stable key"),
			 errdetail("%s", detail),
			 errhint("A key is null, a boolean, an integer, a string, an array of keys, "
					 "or an object {\"bytes\": \"\\\\x…\"}, {\"uuid\": \"…\"}, {\"symbol\": \"…\"}, "
					 "{\"numeric\": \"…\"}, {\"date\": \"…\"}, {\"timestamp\": \"…\"} "
					 "or {\"timestamptz\": \"…\"}.")));
}

static void key_value_from_jsonb(StringInfo buf, JsonbValue *v, int depth);

static void
key_container_from_jsonb(StringInfo buf, JsonbContainer *c, int depth)
{
	JsonbIterator *it;
	JsonbValue	v;
	JsonbIteratorToken tok;

	if (depth > COCO_KEY_MAX_DEPTH)
		bad_key("Keys may nest at most 32 levels deep.");
	check_stack_depth();

	if (JsonContainerIsArray(c))
	{
		coco_key_begin_tuple(buf);
		it = JsonbIteratorInit(c);
		while ((tok = JsonbIteratorNext(&it, &v, true)) != WJB_DONE)
		{
			if (tok == WJB_ELEM)
				key_value_from_jsonb(buf, &v, depth + 1);
		}
		coco_key_end_tuple(buf);
		return;
	}

	/* an object: exactly one of the tagged forms */
	if (JsonContainerSize(c) != 1)
		bad_key("A key object must have exactly one field: bytes, uuid, symbol, numeric, date, "
				"timestamp or timestamptz.");
	it = JsonbIteratorInit(c);
	{
		char	   *tag = NULL;
		JsonbValue	val;

		memset(&val, 0, sizeof(val));
		val.type = jbvNull;

		while ((tok = JsonbIteratorNext(&it, &v, true)) != WJB_DONE)
		{
			if (tok == WJB_KEY)
				tag = pnstrdup(v.val.string.val, v.val.string.len);
			else if (tok == WJB_VALUE)
				val = v;
		}
		/* a numeric may be a JSON number too: jsonb keeps it as a numeric */
		if (tag != NULL && strcmp(tag, "numeric") == 0 && val.type == jbvNumeric)
		{
			put_numeric(buf, numeric_normalize(val.val.numeric));
			return;
		}
		if (tag == NULL || val.type != jbvString)
			bad_key("The field of a key object must be a string.");
		if (strcmp(tag, "symbol") == 0)
			coco_key_put_symbol(buf, val.val.string.val, val.val.string.len);
		else if (strcmp(tag, "uuid") == 0)
		{
			char	   *s = pnstrdup(val.val.string.val, val.val.string.len);
			Datum		u = DirectFunctionCall1(uuid_in, CStringGetDatum(s));

			coco_key_put_uuid(buf, DatumGetUUIDP(u));
		}
		else if (strcmp(tag, "bytes") == 0)
		{
			char	   *s = pnstrdup(val.val.string.val, val.val.string.len);
			bytea	   *b = DatumGetByteaPP(DirectFunctionCall1(byteain, CStringGetDatum(s)));

			coco_key_put_bytes(buf, VARDATA_ANY(b), VARSIZE_ANY_EXHDR(b));
		}
		else if (strcmp(tag, "numeric") == 0)
		{
			char	   *s = pnstrdup(val.val.string.val, val.val.string.len);

			put_numeric_datum(buf, DirectFunctionCall3(numeric_in, CStringGetDatum(s),
													   ObjectIdGetDatum(InvalidOid), Int32GetDatum(-1)));
		}
		else if (strcmp(tag, "date") == 0)
		{
			char	   *s = pnstrdup(val.val.string.val, val.val.string.len);

			put_int64(buf, COCO_KEY_DATE, DatumGetDateADT(DirectFunctionCall1(date_in, CStringGetDatum(s))));
		}
		else if (strcmp(tag, "timestamp") == 0 || strcmp(tag, "timestamptz") == 0)
		{
			char	   *s = pnstrdup(val.val.string.val, val.val.string.len);
			bool		tz = strcmp(tag, "timestamptz") == 0;

			/* a timestamptz without an offset is read in the session's TimeZone */
			put_int64(buf, tz ? COCO_KEY_TIMESTAMPTZ : COCO_KEY_TIMESTAMP,
					  DatumGetTimestamp(DirectFunctionCall3(tz ? timestamptz_in : timestamp_in,
															CStringGetDatum(s), ObjectIdGetDatum(InvalidOid),
															Int32GetDatum(-1))));
		}
		else
			bad_key("A key object's field must be bytes, uuid, symbol, numeric, date, timestamp or "
					"timestamptz.");
	}
}

static void
key_value_from_jsonb(StringInfo buf, JsonbValue *v, int depth)
{
	/* scalars too: coco_key_to_jsonb reads no item deeper than this */
	if (depth > COCO_KEY_MAX_DEPTH)
		bad_key("Keys may nest at most 32 levels deep.");
	switch (v->type)
	{
		case jbvNull:
			coco_key_put_null(buf);
			break;
		case jbvBool:
			coco_key_put_bool(buf, v->val.boolean);
			break;
		case jbvString:
			coco_key_put_str(buf, v->val.string.val, v->val.string.len);
			break;
		case jbvNumeric:
			{
				Datum		num = NumericGetDatum(v->val.numeric);
				Datum		trunc = DirectFunctionCall2(numeric_trunc, num, Int32GetDatum(0));
				int64		i;

				if (!DatumGetBool(DirectFunctionCall2(numeric_eq, num, trunc)))
					bad_key("A number in a key must be an integer.");
				/* errors with numeric_value_out_of_range past 64 bits */
				i = DatumGetInt64(DirectFunctionCall1(numeric_int8, num));
				coco_key_put_int(buf, i);
				break;
			}
		case jbvBinary:
			key_container_from_jsonb(buf, v->val.binary.data, depth);
			break;
		default:
			bad_key("Unsupported JSON value.");
	}
}

void
coco_key_from_jsonb(StringInfo buf, Jsonb *json)
{
	JsonbValue	v;

	if (JB_ROOT_IS_SCALAR(json))
	{
		JsonbExtractScalar(&json->root, &v);
		key_value_from_jsonb(buf, &v, 0);
	}
	else
		key_container_from_jsonb(buf, &json->root, 0);
}

/* ---- SQL-callable ------------------------------------------------------ */

/* An encoded key as the bytea stored in the tracking tables. */
bytea *
coco_key_to_bytea(const char *data, int len)
{
	bytea	   *b = palloc(VARHDRSZ + len);

	SET_VARSIZE(b, VARHDRSZ + len);
	memcpy(VARDATA(b), data, len);
	return b;
}

bytea *
coco_key_buf_to_bytea(StringInfo buf)
{
	return coco_key_to_bytea(buf->data, buf->len);
}

/*
 * coco.row_key(VARIADIC "any") — the stable key of a row: the tuple of its
 * primary-key values.  NULL key values are refused: a key column is NOT NULL.
 */
PG_FUNCTION_INFO_V1(coco_row_key);
Datum
coco_row_key(PG_FUNCTION_ARGS)
{
	StringInfoData buf;

	initStringInfo(&buf);
	coco_key_begin_tuple(&buf);
	for (int i = 0; i < PG_NARGS(); i++)
	{
		if (PG_ARGISNULL(i))
			ereport(ERROR,
					(errcode(ERRCODE_NOT_NULL_VIOLATION),
					 errmsg("primary key value %d of a declared row is null", i + 1),
					 errhint("Every primary key column must have a value.")));
		coco_key_put_datum(&buf, PG_GETARG_DATUM(i), get_fn_expr_argtype(fcinfo->flinfo, i));
	}
	coco_key_end_tuple(&buf);
	PG_RETURN_BYTEA_P(coco_key_buf_to_bytea(&buf));
}

PG_FUNCTION_INFO_V1(coco_key_to_jsonb_sql);
Datum
coco_key_to_jsonb_sql(PG_FUNCTION_ARGS)
{
	bytea	   *b = PG_GETARG_BYTEA_PP(0);

	PG_RETURN_JSONB_P(coco_key_to_jsonb(VARDATA_ANY(b), VARSIZE_ANY_EXHDR(b)));
}

PG_FUNCTION_INFO_V1(coco_key_from_jsonb_sql);
Datum
coco_key_from_jsonb_sql(PG_FUNCTION_ARGS)
{
	StringInfoData buf;

	initStringInfo(&buf);
	coco_key_from_jsonb(&buf, PG_GETARG_JSONB_P(0));
	PG_RETURN_BYTEA_P(coco_key_buf_to_bytea(&buf));
}
