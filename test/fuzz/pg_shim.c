/*
 * pg_shim.c — backend stand-ins for running src/core/stable_key.c,
 * src/core/statediff.c and src/core/fingerprint.c outside a server.  See pg_shim.h
 * and README.md for what is real and what is modelled.
 */
#include "postgres.h"

#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <sanitizer/asan_interface.h>

#include "access/transam.h"
#include "catalog/pg_type.h"
#include "fmgr.h"
#include "mb/pg_wchar.h"
#include "utils/builtins.h"
#include "utils/date.h"
#include "utils/json.h"
#include "utils/jsonb.h"
#include "utils/memutils.h"
#include "utils/numeric.h"
#include "utils/uuid.h"

#include "pg_shim.h"

void
fz_fail(const char *file, int line, const char *cond, const char *fmt,...)
{
	va_list		ap;

	fprintf(stderr, "\nINVARIANT BROKEN at %s:%d: %s\n  ", file, line, cond);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\n");
	abort();
}

/* An Assert() of a server built with --enable-cassert: a broken invariant. */
void
ExceptionalCondition(const char *conditionName, const char *errorType,
					 const char *fileName, int lineNumber)
{
	fz_fail(fileName, lineNumber, conditionName, "%s", errorType ? errorType : "Assert");
}

/* ---- memory: palloc over malloc, freed per input ------------------------
 *
 * Each chunk is malloc'd on its own (so AddressSanitizer sees every chunk's
 * bounds) behind a header that is poisoned while the chunk is in use, so
 * writing just before a chunk is caught too.  All chunks are on one list;
 * fz_arena_reset() frees them, as a memory context reset would.
 */
typedef struct FzChunk
{
	struct FzChunk *prev;
	struct FzChunk *next;
	size_t		size;
	uint64		magic;
} FzChunk;

#define FZ_MAGIC UINT64CONST(0xC0C0F00DC0C0F00D)

static FzChunk arena = {&arena, &arena, 0, 0};
static size_t arena_live;

MemoryContext CurrentMemoryContext = NULL;

static void
hdr_open(FzChunk *c)
{
	if (c != &arena)
		ASAN_UNPOISON_MEMORY_REGION(c, sizeof(FzChunk));
}

static void
hdr_close(FzChunk *c)
{
	if (c != &arena)
		ASAN_POISON_MEMORY_REGION(c, sizeof(FzChunk));
}

static void
chunk_link(FzChunk *c)
{
	FzChunk    *next;

	hdr_open(&arena);
	next = arena.next;
	hdr_open(next);
	c->prev = &arena;
	c->next = next;
	next->prev = c;
	arena.next = c;
	hdr_close(next);
	arena_live++;
}

static void
chunk_unlink(FzChunk *c)
{
	FzChunk    *p = c->prev,
			   *n = c->next;

	hdr_open(p);
	hdr_open(n);
	p->next = n;
	n->prev = p;
	hdr_close(p);
	hdr_close(n);
	arena_live--;
}

static FzChunk *
chunk_of(void *pointer, const char *what)
{
	FzChunk    *c;

	FZ_CHECK(pointer != NULL, "%s(NULL)", what);
	c = (FzChunk *) ((char *) pointer - sizeof(FzChunk));
	hdr_open(c);
	FZ_CHECK(c->magic == FZ_MAGIC, "%s of a pointer palloc did not return", what);
	return c;
}

static void *
alloc_chunk(Size size, bool zero)
{
	FzChunk    *c;

	if (!AllocSizeIsValid(size))
		elog(ERROR, "invalid memory alloc request size %zu", size);
	c = malloc(sizeof(FzChunk) + size);
	if (c == NULL)
		elog(ERROR, "out of memory");
	c->size = size;
	c->magic = FZ_MAGIC;
	chunk_link(c);
	hdr_close(c);
	if (zero)
		memset(c + 1, 0, size);
	return c + 1;
}

void *
palloc(Size size)
{
	return alloc_chunk(size, false);
}

void *
palloc0(Size size)
{
	return alloc_chunk(size, true);
}

void *
repalloc(void *pointer, Size size)
{
	FzChunk    *c = chunk_of(pointer, "repalloc");
	size_t		old = c->size;
	void	   *n;

	hdr_close(c);
	/* a fresh chunk, so a stale pointer to the old one is caught */
	n = alloc_chunk(size, false);
	memcpy(n, pointer, Min(old, size));
	pfree(pointer);
	return n;
}

void
pfree(void *pointer)
{
	FzChunk    *c = chunk_of(pointer, "pfree");

	c->magic = 0;
	chunk_unlink(c);
	free(c);
}

char *
pstrdup(const char *in)
{
	size_t		len = strlen(in);
	char	   *out = palloc(len + 1);

	memcpy(out, in, len + 1);
	return out;
}

char *
pnstrdup(const char *in, Size len)
{
	char	   *out;

	len = strnlen(in, len);
	out = palloc(len + 1);
	memcpy(out, in, len);
	out[len] = '\0';
	return out;
}

void
fz_arena_reset(void)
{
	for (;;)
	{
		FzChunk    *c;

		hdr_open(&arena);
		c = arena.next;
		if (c == &arena)
			break;
		hdr_open(c);
		c->magic = 0;
		chunk_unlink(c);
		free(c);
	}
	FZ_CHECK(arena_live == 0, "%zu chunks left after reset", arena_live);
}

size_t
fz_arena_live(void)
{
	return arena_live;
}

/* ---- errors: ereport(ERROR) longjmps to the nearest fz_try() ------------ */

static sigjmp_buf *fz_jmp;
static int	err_level;
static int	err_code;
static char err_msg[512];

bool
fz_try(void (*fn) (void *arg), void *arg)
{
	sigjmp_buf	jb;
	sigjmp_buf *volatile save = fz_jmp;

	if (sigsetjmp(jb, 0) == 0)
	{
		fz_jmp = &jb;
		fn(arg);
		fz_jmp = save;
		return true;
	}
	fz_jmp = save;
	return false;
}

int
fz_error_code(void)
{
	return err_code;
}

const char *
fz_error_message(void)
{
	return err_msg;
}

bool
errstart(int elevel, const char *domain)
{
	/* FATAL and PANIC end a backend: the code under test must never */
	FZ_CHECK(elevel <= ERROR, "ereport at level %d", elevel);
	err_level = elevel;
	err_code = elevel >= ERROR ? ERRCODE_INTERNAL_ERROR : 0;
	err_msg[0] = '\0';
	return true;
}

bool
errstart_cold(int elevel, const char *domain)
{
	return errstart(elevel, domain);
}

void
errfinish(const char *filename, int lineno, const char *funcname)
{
	if (err_level < ERROR)
		return;
	FZ_CHECK(fz_jmp != NULL, "ERROR outside fz_try at %s:%d (%s): %s",
			 filename, lineno, funcname, err_msg);
	siglongjmp(*fz_jmp, 1);
}

int
errcode(int sqlerrcode)
{
	err_code = sqlerrcode;
	return 0;
}

static void
keep_message(const char *fmt, va_list ap)
{
	if (err_msg[0] == '\0')
		vsnprintf(err_msg, sizeof(err_msg), fmt, ap);
}

int
errmsg(const char *fmt,...)
{
	va_list		ap;

	va_start(ap, fmt);
	keep_message(fmt, ap);
	va_end(ap);
	return 0;
}

int
errmsg_internal(const char *fmt,...)
{
	va_list		ap;

	va_start(ap, fmt);
	keep_message(fmt, ap);
	va_end(ap);
	return 0;
}

int
errdetail(const char *fmt,...)
{
	char		tmp[256];
	va_list		ap;

	/* formatted (so bad arguments are caught), then dropped */
	va_start(ap, fmt);
	vsnprintf(tmp, sizeof(tmp), fmt, ap);
	va_end(ap);
	return 0;
}

int
errhint(const char *fmt,...)
{
	char		tmp[256];
	va_list		ap;

	va_start(ap, fmt);
	vsnprintf(tmp, sizeof(tmp), fmt, ap);
	va_end(ap);
	return 0;
}

/* ---- catalog look-ups, modelled --------------------------------------- */

/*
 * Built-in types (OID below FirstGenbkiObjectId) are never domains, so their
 * base type is themselves; the harness passes no other OIDs.
 */
Oid
getBaseType(Oid typid)
{
	FZ_CHECK(typid < FirstGenbkiObjectId, "getBaseType(%u): not modelled", typid);
	return typid;
}

char *
format_type_be(Oid type_oid)
{
	return psprintf("type with OID %u", type_oid);
}

/* ---- varlena and text ------------------------------------------------- */

struct varlena *
pg_detoast_datum_packed(struct varlena *datum)
{
	/* as fmgr.c, without the toaster: nothing here is compressed or external */
	FZ_CHECK(!VARATT_IS_COMPRESSED(datum) && !VARATT_IS_EXTERNAL(datum),
			 "toasted datum: not modelled");
	return datum;
}

struct varlena *
pg_detoast_datum(struct varlena *datum)
{
	FZ_CHECK(!VARATT_IS_EXTENDED(datum), "extended datum: not modelled");
	return datum;
}

text *
cstring_to_text_with_len(const char *s, int len)
{
	text	   *result = (text *) palloc(len + VARHDRSZ);

	SET_VARSIZE(result, len + VARHDRSZ);
	memcpy(VARDATA(result), s, len);
	return result;
}

text *
cstring_to_text(const char *s)
{
	return cstring_to_text_with_len(s, strlen(s));
}

/* The server's check, for a UTF8 database (what the tests create). */
bool
pg_verifymbstr(const char *mbstr, int len, bool noError)
{
	if (pg_encoding_verifymbstr(PG_UTF8, mbstr, len) == len)
		return true;
	if (!noError)
		ereport(ERROR,
				(errcode(ERRCODE_CHARACTER_NOT_IN_REPERTOIRE),
				 errmsg("invalid byte sequence for encoding \"UTF8\"")));
	return false;
}

/* ---- fmgr ------------------------------------------------------------- */

Datum
DirectFunctionCall1Coll(PGFunction func, Oid collation, Datum arg1)
{
	LOCAL_FCINFO(fcinfo, 1);
	Datum		result;

	InitFunctionCallInfoData(*fcinfo, NULL, 1, collation, NULL, NULL);
	fcinfo->args[0].value = arg1;
	fcinfo->args[0].isnull = false;
	result = (*func) (fcinfo);
	if (fcinfo->isnull)
		elog(ERROR, "function returned NULL");
	return result;
}

Datum
DirectFunctionCall2Coll(PGFunction func, Oid collation, Datum arg1, Datum arg2)
{
	LOCAL_FCINFO(fcinfo, 2);
	Datum		result;

	InitFunctionCallInfoData(*fcinfo, NULL, 2, collation, NULL, NULL);
	fcinfo->args[0].value = arg1;
	fcinfo->args[0].isnull = false;
	fcinfo->args[1].value = arg2;
	fcinfo->args[1].isnull = false;
	result = (*func) (fcinfo);
	if (fcinfo->isnull)
		elog(ERROR, "function returned NULL");
	return result;
}

Datum
DirectFunctionCall3Coll(PGFunction func, Oid collation, Datum arg1, Datum arg2, Datum arg3)
{
	LOCAL_FCINFO(fcinfo, 3);
	Datum		result;

	InitFunctionCallInfoData(*fcinfo, NULL, 3, collation, NULL, NULL);
	fcinfo->args[0].value = arg1;
	fcinfo->args[0].isnull = false;
	fcinfo->args[1].value = arg2;
	fcinfo->args[1].isnull = false;
	fcinfo->args[2].value = arg3;
	fcinfo->args[2].isnull = false;
	result = (*func) (fcinfo);
	if (fcinfo->isnull)
		elog(ERROR, "function returned NULL");
	return result;
}

void
fz_uuid_spell(const unsigned char *u, char out[37])
{
	static const char hex[] = "0123456789abcdef";
	int			j = 0;

	for (int i = 0; i < UUID_LEN; i++)
	{
		if (i == 4 || i == 6 || i == 8 || i == 10)
			out[j++] = '-';
		out[j++] = hex[u[i] >> 4];
		out[j++] = hex[u[i] & 0x0F];
	}
	out[j] = '\0';
}

/* uuid_out's format (utils/adt/uuid.c): 8-4-4-4-12 lower-case hex. */
Datum
uuid_out(PG_FUNCTION_ARGS)
{
	pg_uuid_t  *u = PG_GETARG_UUID_P(0);
	char	   *s = palloc(37);

	fz_uuid_spell(u->data, s);
	PG_RETURN_CSTRING(s);
}

/* ---- numeric: a box the recorder reads back --------------------------- */

typedef struct FzNumeric
{
	uint64		magic;
	int64		value;
} FzNumeric;

#define FZ_NUMERIC_MAGIC UINT64CONST(0x4E554D4E554D4E55)

Numeric
int64_to_numeric(int64 val)
{
	FzNumeric  *n = palloc(sizeof(FzNumeric));

	n->magic = FZ_NUMERIC_MAGIC;
	n->value = val;
	return (Numeric) n;
}

/*
 * numeric_in and numeric_normalize: a box holding the text.  stable_key.c
 * passes numeric_in only the canonical text it decoded, and normalizes only
 * what numeric_in made, so the text is already canonical.
 */
typedef struct FzNumText
{
	int32		vl_len_;		/* a plain varlena, as DatumGetNumeric expects */
	uint32		magic;
	char		text[FLEXIBLE_ARRAY_MEMBER];
} FzNumText;

#define FZ_NUMTEXT_MAGIC 0x4E554D54

Datum
numeric_in(PG_FUNCTION_ARGS)
{
	const char *s = PG_GETARG_CSTRING(0);
	Size		size = offsetof(FzNumText, text) + strlen(s) + 1;
	FzNumText  *n = palloc(size);

	SET_VARSIZE(n, size);
	n->magic = FZ_NUMTEXT_MAGIC;
	strcpy(n->text, s);
	PG_RETURN_POINTER(n);
}

char *
numeric_normalize(Numeric num)
{
	FzNumText  *n = (FzNumText *) num;

	FZ_CHECK(n != NULL && n->magic == FZ_NUMTEXT_MAGIC, "numeric not made by numeric_in");
	return pstrdup(n->text);
}

/*
 * JsonEncodeDateTime: the server's date/time spelling is not modelled (the
 * server's own is checked by sql/24_key_types.sql); this one names the type
 * and the count, and fz_datetime_spell gives the oracle the same.
 */
void
fz_datetime_spell(Oid typid, int64 value, const int *tzp, char *out)
{
	snprintf(out, 64, "%u:" INT64_FORMAT "%s", typid, value, tzp ? (*tzp == 0 ? "@utc" : "@tz") : "");
}

char *
JsonEncodeDateTime(char *buf, Datum value, Oid typid, const int *tzp)
{
	char	   *out = buf ? buf : palloc(64);

	fz_datetime_spell(typid, typid == DATEOID ? (int64) DatumGetDateADT(value) : DatumGetInt64(value),
					  tzp, out);
	return out;
}

/* ---- the jsonb builder, replaced by a checking recorder ---------------
 *
 * pushJsonbValue() is given the same calls the real builder would be; the
 * recorder checks they form one well-formed jsonb value (balanced
 * containers, keys then values in objects, scalars only where scalars go,
 * a raw scalar array only at the top with exactly one element, every
 * string valid UTF-8 without NUL so the value can be printed and parsed
 * back) and spells the tokens into a trace the oracle compares.
 */
#define FZ_JSON_MAX_DEPTH 64

typedef struct FzFrame
{
	bool		is_array;
	bool		raw;
	bool		want_value;		/* object: a key was pushed */
	int			count;
} FzFrame;

static FzFrame frames[FZ_JSON_MAX_DEPTH];
static int	nframes;
static bool json_done;
static StringInfoData trace;
static bool trace_ready;
static JsonbValue json_result;	/* what the top-level end returns */
static JsonbValue json_partial; /* what every other push returns */
static JsonbParseState json_state;	/* *pstate while a value is open */

void
fz_trace_plain(StringInfo out, const char *s)
{
	appendStringInfoString(out, s);
	appendStringInfoChar(out, ';');
}

void
fz_trace_string(StringInfo out, char token, const char *s, int len)
{
	appendStringInfo(out, "%cs%d:", token, len);
	appendBinaryStringInfo(out, s, len);
	appendStringInfoChar(out, ';');
}

void
fz_trace_int(StringInfo out, char token, int64 v)
{
	appendStringInfo(out, "%ci" INT64_FORMAT ";", token, v);
}

void
fz_json_trace_reset(void)
{
	/* the trace lives in the arena: (re)made per input */
	initStringInfo(&trace);
	trace_ready = true;
	nframes = 0;
	json_done = false;
}

const char *
fz_json_trace(void)
{
	FZ_CHECK(trace_ready, "no trace");
	return trace.data;
}

static void
check_string(const JsonbValue *v)
{
	FZ_CHECK(v->val.string.len >= 0, "negative string length");
	FZ_CHECK(v->val.string.len == 0 || v->val.string.val != NULL, "NULL string");
	FZ_CHECK(pg_encoding_verifymbstr(PG_UTF8, v->val.string.val, v->val.string.len)
			 == v->val.string.len,
			 "jsonb string is not valid UTF-8 (or has a NUL)");
}

static void
trace_scalar(char token, const JsonbValue *v)
{
	FZ_CHECK(v != NULL, "scalar token without a value");
	switch (v->type)
	{
		case jbvNull:
			appendStringInfo(&trace, "%cn;", token);
			break;
		case jbvBool:
			appendStringInfo(&trace, "%c%c;", token, v->val.boolean ? 't' : 'f');
			break;
		case jbvNumeric:
			{
				FzNumeric  *n = (FzNumeric *) v->val.numeric;

				FZ_CHECK(n != NULL && n->magic == FZ_NUMERIC_MAGIC,
						 "numeric not made by int64_to_numeric");
				fz_trace_int(&trace, token, n->value);
				break;
			}
		case jbvString:
			check_string(v);
			fz_trace_string(&trace, token, v->val.string.val, v->val.string.len);
			break;
		default:
			fz_fail(__FILE__, __LINE__, "scalar", "value of type %d where a scalar goes", v->type);
	}
}

static void
child_done(void)
{
	FzFrame    *f;

	if (nframes == 0)
		return;
	f = &frames[nframes - 1];
	if (f->is_array)
	{
		f->count++;
		FZ_CHECK(!f->raw || f->count == 1, "raw scalar array with %d elements", f->count);
	}
	else
	{
		FZ_CHECK(f->want_value, "value in an object without a key");
		f->want_value = false;
		f->count++;
	}
}

JsonbValue *
pushJsonbValue(JsonbParseState **pstate, JsonbIteratorToken seq, JsonbValue *jbval)
{
	FzFrame    *top = nframes > 0 ? &frames[nframes - 1] : NULL;

	FZ_CHECK(trace_ready, "pushJsonbValue outside a traced call");
	FZ_CHECK(!json_done, "token %d after the value was complete", (int) seq);
	FZ_CHECK((*pstate == NULL) == (nframes == 0), "parse state out of step");

	switch (seq)
	{
		case WJB_BEGIN_ARRAY:
		case WJB_BEGIN_OBJECT:
			{
				bool		raw = (seq == WJB_BEGIN_ARRAY && jbval != NULL &&
								   jbval->val.array.rawScalar);

				FZ_CHECK(nframes < FZ_JSON_MAX_DEPTH, "too deep");
				FZ_CHECK(!raw || nframes == 0, "raw scalar array inside a container");
				FZ_CHECK(top == NULL || top->is_array || top->want_value,
						 "container where an object key goes");
				FZ_CHECK(top == NULL || !top->raw, "container inside a raw scalar array");
				frames[nframes].is_array = (seq == WJB_BEGIN_ARRAY);
				frames[nframes].raw = raw;
				frames[nframes].want_value = false;
				frames[nframes].count = 0;
				nframes++;
				fz_trace_plain(&trace, seq == WJB_BEGIN_OBJECT ? "{" : raw ? "[raw" : "[");
				*pstate = &json_state;
				return &json_partial;
			}
		case WJB_KEY:
			FZ_CHECK(top != NULL && !top->is_array && !top->want_value, "key out of place");
			FZ_CHECK(jbval != NULL && jbval->type == jbvString, "key is not a string");
			check_string(jbval);
			fz_trace_string(&trace, 'K', jbval->val.string.val, jbval->val.string.len);
			top->want_value = true;
			return &json_partial;
		case WJB_VALUE:
			FZ_CHECK(top != NULL && !top->is_array && top->want_value, "value out of place");
			trace_scalar('V', jbval);
			child_done();
			return &json_partial;
		case WJB_ELEM:
			FZ_CHECK(top != NULL && top->is_array, "element outside an array");
			trace_scalar('E', jbval);
			child_done();
			return &json_partial;
		case WJB_END_ARRAY:
		case WJB_END_OBJECT:
			FZ_CHECK(top != NULL && top->is_array == (seq == WJB_END_ARRAY),
					 "end token does not match its container");
			FZ_CHECK(!top->raw || top->count == 1, "raw scalar array without its element");
			FZ_CHECK(top->is_array || !top->want_value, "object ends after a key");
			fz_trace_plain(&trace, seq == WJB_END_OBJECT ? "}" : "]");
			nframes--;
			child_done();
			if (nframes == 0)
			{
				json_done = true;
				*pstate = NULL;
				return &json_result;
			}
			return &json_partial;
		default:
			fz_fail(__FILE__, __LINE__, "seq", "unexpected token %d", (int) seq);
	}
}

Jsonb *
JsonbValueToJsonb(JsonbValue *val)
{
	Jsonb	   *j;

	FZ_CHECK(val == &json_result && json_done && nframes == 0,
			 "JsonbValueToJsonb of an incomplete value");
	j = palloc0(sizeof(Jsonb));
	SET_VARSIZE(j, sizeof(Jsonb));
	return j;
}

/* ---- not linked: reached only from SQL-callable functions or the jsonb
 * parser side, which the harness does not call.  Reaching one is a harness
 * bug and aborts loudly. ------------------------------------------------- */

#define FZ_NOT_LINKED(name) \
	fz_fail(__FILE__, __LINE__, #name, "%s is not available outside the server", #name)

void
check_stack_depth(void)
{
	FZ_NOT_LINKED(check_stack_depth);
}

char *
JsonbToCString(StringInfo out, JsonbContainer *in, int estimated_len)
{
	FZ_NOT_LINKED(JsonbToCString);
}

bool
JsonbExtractScalar(JsonbContainer *jbc, JsonbValue *res)
{
	FZ_NOT_LINKED(JsonbExtractScalar);
}

JsonbIterator *
JsonbIteratorInit(JsonbContainer *container)
{
	FZ_NOT_LINKED(JsonbIteratorInit);
}

JsonbIteratorToken
JsonbIteratorNext(JsonbIterator **it, JsonbValue *val, bool skipNested)
{
	FZ_NOT_LINKED(JsonbIteratorNext);
}

JsonbValue *
getKeyJsonValueFromContainer(JsonbContainer *container, const char *keyVal, int keyLen,
							 JsonbValue *res)
{
	FZ_NOT_LINKED(getKeyJsonValueFromContainer);
}

void
escape_json(StringInfo buf, const char *str)
{
	FZ_NOT_LINKED(escape_json);
}

void
deconstruct_array(ArrayType *array, Oid elmtype, int elmlen, bool elmbyval, char elmalign,
				  Datum **elemsp, bool **nullsp, int *nelemsp)
{
	FZ_NOT_LINKED(deconstruct_array);
}

Oid
get_fn_expr_argtype(FmgrInfo *flinfo, int argnum)
{
	FZ_NOT_LINKED(get_fn_expr_argtype);
}

void
get_typlenbyval(Oid typid, int16 *typlen, bool *typbyval)
{
	FZ_NOT_LINKED(get_typlenbyval);
}

Datum
byteain(PG_FUNCTION_ARGS)
{
	FZ_NOT_LINKED(byteain);
}

Datum
uuid_in(PG_FUNCTION_ARGS)
{
	FZ_NOT_LINKED(uuid_in);
}

Datum
numeric_trunc(PG_FUNCTION_ARGS)
{
	FZ_NOT_LINKED(numeric_trunc);
}

Datum
numeric_eq(PG_FUNCTION_ARGS)
{
	FZ_NOT_LINKED(numeric_eq);
}

Datum
numeric_int8(PG_FUNCTION_ARGS)
{
	FZ_NOT_LINKED(numeric_int8);
}

Datum
jsonb_in(PG_FUNCTION_ARGS)
{
	FZ_NOT_LINKED(jsonb_in);
}

Datum
date_in(PG_FUNCTION_ARGS)
{
	FZ_NOT_LINKED(date_in);
}

Datum
timestamp_in(PG_FUNCTION_ARGS)
{
	FZ_NOT_LINKED(timestamp_in);
}

Datum
timestamptz_in(PG_FUNCTION_ARGS)
{
	FZ_NOT_LINKED(timestamptz_in);
}
