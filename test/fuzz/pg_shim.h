/*
 * pg_shim.h — the little of the PostgreSQL backend that src/core/stable_key.c,
 * src/core/statediff.c and src/core/fingerprint.c need, for running them outside a
 * server (the fuzz target and the seed generator).
 *
 * What is real and what is modelled is listed in test/fuzz/README.md.  In
 * short: StringInfo, psprintf and the UTF-8 verifier are PostgreSQL's own
 * (libpgcommon.a); palloc is malloc with a per-input arena; ereport(ERROR)
 * longjmps back to the nearest fz_try(); the jsonb builder is replaced by a
 * recorder that checks and spells the token stream it is given; catalog and
 * SQL-callable-only functions abort if reached.
 */
#ifndef PG_SHIM_H
#define PG_SHIM_H

#include "postgres.h"
#include "lib/stringinfo.h"

/* Abort with a message: a broken invariant, reported by the fuzzer. */
#define FZ_CHECK(cond, ...) \
	do { \
		if (!(cond)) \
			fz_fail(__FILE__, __LINE__, #cond, __VA_ARGS__); \
	} while (0)

extern void fz_fail(const char *file, int line, const char *cond,
					const char *fmt,...) pg_attribute_printf(4, 5) pg_attribute_noreturn();

/* Run fn(arg); false if it raised ereport(ERROR) (then see fz_error_*). */
extern bool fz_try(void (*fn) (void *arg), void *arg);
extern int	fz_error_code(void);
extern const char *fz_error_message(void);

/* Free everything palloc'd since the last reset (a memory context reset). */
extern void fz_arena_reset(void);
extern size_t fz_arena_live(void);

/* The jsonb token recorder behind pushJsonbValue(). */
extern void fz_json_trace_reset(void);
extern const char *fz_json_trace(void);
/* Spellings of scalar tokens shared by the recorder and the oracles. */
extern void fz_trace_string(StringInfo out, char token, const char *s, int len);
extern void fz_trace_int(StringInfo out, char token, int64 v);
extern void fz_trace_plain(StringInfo out, const char *s);
/* uuid_out's spelling, used by the oracle for expected traces. */
extern void fz_uuid_spell(const unsigned char *u, char out[37]);
/* JsonEncodeDateTime's spelling here (a model, not the server's). */
extern void fz_datetime_spell(Oid typid, int64 value, const int *tzp, char *out);

#endif							/* PG_SHIM_H */
