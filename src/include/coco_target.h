/*
 * coco_target.h — the public C API of coco_target, for connector authors.
 *
 * A connector serves one *provider*: a namespace of target states.  For each
 * target state the engine hands the provider's handler the desired spec (or
 * NULL when it is no longer declared) and every tracking record that may be
 * true from earlier runs; the handler decides, without doing any I/O, what
 * action is needed, what to remember, and how the change affects children.
 * The provider's sink then applies a batch of such decisions.  Containers
 * (tables) additionally sync their children (rows) after their own action.
 *
 * The built-in connectors (postgres, localfs, sql) use exactly this header
 * and headers of their own folders; docs/connectors/writing-a-connector.md
 * walks through the postgres connector as the worked example.
 */
#ifndef COCO_TARGET_H
#define COCO_TARGET_H

#include "postgres.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "lib/stringinfo.h"
#include "utils/array.h"
#include "utils/jsonb.h"
#include "utils/snapshot.h"
#include "utils/uuid.h"

/*
 * The version of this API.  2 added what the built-in connectors need:
 * declaring into an app, the run's owner and guard, the child tally,
 * planning callbacks, privilege and SPI helpers, settings and fault points.
 * A connector built for another version should refuse to load.
 */
#define COCO_TARGET_API_VERSION 2

/* ---------------------------------------------------------------------
 * Stable keys
 *
 * A key is null, a boolean, a 64-bit integer, a numeric, a date, a
 * timestamp, a timestamptz, a string, bytes, a uuid, a symbol, or a tuple of
 * keys.  Its canonical binary encoding orders like the
 * values it encodes (bytewise comparison = logical comparison) and is what
 * tracking tables store.  Build one by appending items to a StringInfo.
 * ------------------------------------------------------------------- */
typedef enum CocoKeyKind
{
	COCO_KEY_END_TUPLE = 0x00,	/* closes a tuple; sorts before anything */
	COCO_KEY_NULL = 0x01,
	COCO_KEY_FALSE = 0x02,
	COCO_KEY_TRUE = 0x03,
	COCO_KEY_INT = 0x10,
	COCO_KEY_NUMERIC = 0x11,
	COCO_KEY_DATE = 0x12,
	COCO_KEY_TIMESTAMP = 0x13,
	COCO_KEY_TIMESTAMPTZ = 0x14,
	COCO_KEY_STR = 0x20,
	COCO_KEY_BYTES = 0x30,
	COCO_KEY_UUID = 0x40,
	COCO_KEY_SYMBOL = 0x50,
	COCO_KEY_TUPLE = 0x60
} CocoKeyKind;

typedef struct CocoKeyItem
{
	CocoKeyKind kind;
	int64		ival;			/* INT; DATE (days), TIMESTAMP(TZ) (microseconds) */
	char	   *data;			/* STR, BYTES, SYMBOL (palloc'd, unescaped), UUID (16 bytes),
								 * NUMERIC (its canonical text, NUL-terminated) */
	int			len;
} CocoKeyItem;

extern void coco_key_put_null(StringInfo buf);
extern void coco_key_put_bool(StringInfo buf, bool value);
extern void coco_key_put_int(StringInfo buf, int64 value);
extern void coco_key_put_str(StringInfo buf, const char *data, int len);
extern void coco_key_put_bytes(StringInfo buf, const char *data, int len);
extern void coco_key_put_uuid(StringInfo buf, const pg_uuid_t *value);
extern void coco_key_put_symbol(StringInfo buf, const char *data, int len);
extern void coco_key_begin_tuple(StringInfo buf);
extern void coco_key_end_tuple(StringInfo buf);

/* Whether a column of this type can be part of a key (a primary key column). */
extern bool coco_key_type_supported(Oid typid);
/* The hint of a refusal of any other type. */
#define COCO_KEY_TYPES_HINT \
	"Key columns may be boolean, smallint, integer, bigint, numeric, date, timestamp, " \
	"timestamptz, text, varchar, char, bytea or uuid (or a domain over one)."
/* Append a value of a supported type; errors for NULL or unsupported types. */
extern void coco_key_put_datum(StringInfo buf, Datum value, Oid typid);
/* Read one item at *pos (advancing it); errors on malformed input. */
extern void coco_key_read(const char *data, int len, int *pos, CocoKeyItem *item);
/* Convert a scalar key item back into a datum of a supported type. */
extern Datum coco_key_item_datum(const CocoKeyItem *item, Oid typid);
/* The jsonb spelling of a key, and back. */
extern Jsonb *coco_key_to_jsonb(const char *data, int len);
extern void coco_key_from_jsonb(StringInfo buf, Jsonb *json);
/* A human-readable spelling for messages (the jsonb text). */
extern char *coco_key_describe(const char *data, int len);
/* An encoded key as a bytea (for parameters and tracking columns). */
extern bytea *coco_key_to_bytea(const char *data, int len);
extern bytea *coco_key_buf_to_bytea(StringInfo buf);
/* coco_key_put_datum with the type's base type already resolved (a row
 * stream resolves each key column's domain once). */
extern void coco_key_put_base_datum(StringInfo buf, Datum value, Oid basetypid, Oid typid);

/* ---------------------------------------------------------------------
 * Fingerprints: 128-bit XXH3 of a canonical byte string.
 * ------------------------------------------------------------------- */
#define COCO_FINGERPRINT_LEN 16

typedef struct CocoFingerprint
{
	uint8		bytes[COCO_FINGERPRINT_LEN];
} CocoFingerprint;

extern void coco_fingerprint_bytes(const void *data, size_t len, CocoFingerprint *out);
/* Append one typed value (or NULL) to a row buffer, then fingerprint it. */
extern void coco_fingerprint_add_datum(StringInfo buf, Datum value, bool isnull,
									   int16 typlen, bool typbyval);
extern bool coco_fingerprint_equal(const CocoFingerprint *a, const CocoFingerprint *b);
extern bytea *coco_fingerprint_to_bytea(const CocoFingerprint *fp);

/* ---------------------------------------------------------------------
 * Digests: the order-independent sum of a set of (key, fingerprint) rows.
 * Equal counts and digests mean a component declares exactly the children
 * it has; it is then not diffed.
 * ------------------------------------------------------------------- */
typedef struct CocoDigest
{
	uint64		lo;
	uint64		hi;
} CocoDigest;

extern void coco_digest_add_row(CocoDigest *d, const char *key, int keylen,
								const CocoFingerprint *fp);
extern bytea *coco_digest_to_bytea(const CocoDigest *d);
extern void coco_digest_from_bytea(bytea *b, CocoDigest *d);

/*
 * A child tally: the count and digest of the children each component
 * declares, per component.  The engine hands one to a container's
 * summarize_children and sync_children (CocoChildSync.tally); the provider
 * fills it as it reads the declarations.
 */
typedef struct CocoChildTally CocoChildTally;

extern CocoChildTally *coco_child_tally_create(void);
extern void coco_child_tally_reset(CocoChildTally *t);
extern void coco_child_tally_add(CocoChildTally *t, int comp_id, const char *key, int keylen,
								 const CocoFingerprint *fp);
extern void coco_child_tally_set(CocoChildTally *t, int comp_id, int64 nrows,
								 const CocoDigest *digest);
extern int	coco_child_tally_count(const CocoChildTally *t);
extern void coco_child_tally_nth(const CocoChildTally *t, int i, int *comp_id, int64 *nrows,
								 CocoDigest *digest);
extern bool coco_child_tally_get(const CocoChildTally *t, int comp_id, int64 *nrows,
								 CocoDigest *digest);
extern int64 coco_child_tally_total(const CocoChildTally *t);
/* While a statement that calls coco.tracked_fingerprint() runs, the tally
 * its calls add to (NULL: none).  Returns the one it replaces, to restore
 * afterwards (in PG_FINALLY); an abort clears it. */
extern CocoChildTally *coco_child_tally_collect(CocoChildTally *t);

/* ---------------------------------------------------------------------
 * State diffs: the decision rules every handler shares (reconciliation rules 1-5, docs/architecture.md).
 * ------------------------------------------------------------------- */
typedef enum CocoAction
{
	COCO_NO_ACTION = 0,
	COCO_INSERT,				/* create; nothing was there */
	COCO_UPSERT,				/* make it so; it may or may not be there */
	COCO_REPLACE,				/* incompatible change: remove and create */
	COCO_DELETE					/* remove */
} CocoAction;

extern const char *coco_action_name(CocoAction action);

/*
 * desired == NULL: no longer declared.  Skips only when every previous record
 * equals the desired one and the state is known to exist.
 */
extern CocoAction coco_diff(const CocoFingerprint *desired,
							const CocoFingerprint *prev, int nprev,
							bool prev_may_be_missing);

/* A record with a main part and named sub-records (a table and its columns). */
typedef struct CocoCompositeRecord
{
	CocoFingerprint main;
	int			nsubs;
	const char **sub_names;
	CocoFingerprint *subs;
} CocoCompositeRecord;

typedef struct CocoCompositeDiff
{
	CocoAction	main;
	int			nsubs;			/* every sub named in desired or any prev */
	const char **sub_names;
	CocoAction *subs;
} CocoCompositeDiff;

extern void coco_composite_diff(const CocoCompositeRecord *desired,
								const CocoCompositeRecord *prev, int nprev,
								bool prev_may_be_missing, CocoCompositeDiff *out);

/* ---------------------------------------------------------------------
 * Providers
 * ------------------------------------------------------------------- */
typedef enum CocoInvalidation
{
	COCO_INVALIDATE_NONE = 0,
	COCO_INVALIDATE_LOSSY,		/* children may have lost data: re-write all */
	COCO_INVALIDATE_DESTRUCTIVE /* container rebuilt: children are gone */
} CocoInvalidation;

/* What a handler is asked about one target state. */
typedef struct CocoTargetState
{
	const char *provider;
	const char *key;			/* encoded stable key */
	int			keylen;
	const char *name;			/* readable name, for messages */
	Jsonb	   *desired;		/* NULL: no longer declared */
	Jsonb	  **prev;			/* tracking records that may be true */
	int			nprev;
	bool		prev_may_be_missing;
	/* For an attachment: its container's decision in this run, or NULL
	 * (the container is not in play).  Its detail says what the container
	 * changes in place (a table's retyped columns), for an attachment that
	 * must then be made again.  Added to version 2 at the end. */
	const struct CocoDecision *container;
} CocoTargetState;

/* What it answers. */
typedef struct CocoDecision
{
	CocoAction	action;			/* COCO_NO_ACTION: nothing to apply */
	Jsonb	   *detail;			/* handler-defined payload for its sink */
	Jsonb	   *record;			/* tracking record to keep; NULL = gone */
	CocoInvalidation invalidation;
} CocoDecision;

/* One decided target state, as handed to a sink. */
typedef struct CocoPlannedAction
{
	const CocoTargetState *state;
	CocoDecision decision;
	void	   *sink_private;	/* free for the sink's use */
} CocoPlannedAction;

/*
 * coco.plan's report: each failure a sync of a container's children would
 * hit, and, when the caller asked for them, the children that would change.
 */
typedef struct CocoPlanReport CocoPlanReport;

/*
 * Children sync context, for containers whose children are numerous small
 * states tracked by fingerprint alone (rows of a table).  The engine fills
 * it; the provider's sync_children diffs and applies the children set-wise.
 */
typedef struct CocoChildSync
{
	int			app_id;
	int64		container_id;	/* the container's tracking id */
	const CocoTargetState *container;
	Jsonb	   *record;			/* the container's current record */
	int		   *replaced_comps; /* components whose children are replaced */
	int			nreplaced;
	int		   *rewrite_comps;	/* of those, the ones to re-write in full */
	int			nrewrite;
	bool		container_gone; /* container deleted: just forget children */
	bool		ignore_declarations;	/* delete every tracked child in the
										 * replaced components */
	Oid			owner;			/* the app owner, who applies the changes */
	Snapshot	snapshot;		/* the run's: read the staged declarations with it */
	int64		pass_id;		/* the run's pass: names it (a connector may
								 * stamp what it tracks with it) */
	CocoChildTally *tally;		/* filled by summarize_children and
								 * sync_children: what each replaced
								 * component declares */
	bool		fresh_container;	/* created or rebuilt by this run: empty */
	bool		exclusive;		/* no component outside the replaced ones
								 * tracks children of this container */
	/* counts, filled by the provider */
	int64		inserted;
	int64		updated;
	int64		deleted;
	int64		unchanged;
	/* Rows the provider may change before it stops (0: no limit).  Set
	 * when the worker commits a big run in batches; a provider that stops
	 * early sets `more`, and a later pass (a new transaction) diffs the
	 * components again: what was written is then unchanged. */
	int64		change_limit;
	bool		more;
	/* coco.plan's report, for plan_children (NULL in a run).  Added to
	 * version 2 at the end: a connector that does not know it never reads
	 * it, and the engine owns the struct. */
	CocoPlanReport *plan;
} CocoChildSync;

/* For plan_children.  A failure the run would hit: a row of the plan whose action is "error".
 * `provider` and `key` name what fails (key NULL: nothing narrower than
 * the provider); the detail names the rest (table, key, components,
 * column) with the run's "sqlstate" and "message". */
extern void coco_plan_error(CocoPlanReport *r, const char *provider, Jsonb *key,
							const char *detail);
/* How many more children the plan lists (0: none asked, or the limit is
 * reached). */
extern int64 coco_plan_room(const CocoPlanReport *r);
/* A child that would change ("insert", "update", "delete"); counts
 * against the limit. */
extern void coco_plan_child(CocoPlanReport *r, const char *provider, Jsonb *key,
							const char *action, const char *detail);

typedef struct CocoProvider
{
	const char *name;			/* e.g. "postgres.table" */
	const char *child_name;		/* e.g. "postgres.row"; NULL: no children */
	/*
	 * Attachments name the provider of the container they attach to (e.g.
	 * "postgres.table"); their keys start with the container's key.  The
	 * engine retires them before their container changes, applies them after
	 * it (and its children) are in place, re-makes them when the container
	 * is rebuilt and forgets them when it is dropped.
	 */
	const char *parent;
	/* Pure: decide about one state.  Must not do I/O. */
	void		(*reconcile) (const CocoTargetState *state, CocoDecision *decision);
	/* Apply a batch of decided actions (runs as the app owner).  For an
	 * attachment: the creating half of inserts and replacements. */
	void		(*apply) (CocoPlannedAction *actions, int nactions);
	/* Attachments: the removing half of deletions and replacements, run
	 * before the container changes, from the previous records. */
	void		(*retire) (CocoPlannedAction *actions, int nactions);
	/* Optional: is the target still as its last record says?  Called for
	 * tracked states each run (catalog look-ups, no writes); a state found
	 * changed behind the reconciler's back is decided with
	 * prev_may_be_missing, so it is made again. */
	bool		(*matches_record) (const CocoTargetState *state);
	/* Optional: actions that must follow the children sync (e.g. SET NOT NULL). */
	void		(*finish) (CocoPlannedAction *actions, int nactions);
	/* Optional: diff and apply a container's children. */
	void		(*sync_children) (CocoChildSync *sync);
	/* With sync_children: count and digest what each replaced component
	 * declares (into sync->tally), so components that declare exactly what
	 * they have are not diffed.  sync->rewrite_comps names the components
	 * whose children are written even when unchanged, for a summary that
	 * diffs as it reads and leaves its work to sync_children. */
	void		(*summarize_children) (CocoChildSync *sync);
	/* Its states are declared with coco.declare_target_state(app, provider,
	 * key, spec): the handler must validate any JSON spec it is given. */
	bool		generic_specs;
	/* Its sink acts outside the database transaction (files, remote
	 * systems).  The engine then commits the intended record next to the old
	 * ones before the sink runs and prunes them after it succeeded
	 * (reconciliation rule 9, docs/architecture.md): a run records intents; the background worker applies them,
	 * each in a transaction of its own.  Its actions must be idempotent and
	 * correct whichever of the previous records is true (rule 5). */
	bool		outside_transaction;
	/* Optional, with outside_transaction: the creating half of an action as
	 * one SQL statement that must run outside any transaction block (CREATE
	 * INDEX CONCURRENTLY).  Called in a transaction, which may prepare (drop
	 * a leftover); the worker then runs the statement at top level as the
	 * app owner and prunes the records after it succeeded.  The removing
	 * half (retire) of such a provider is an ordinary statement: it runs in
	 * the run's transaction, and the completion does not repeat it.  Its
	 * record must be its spec: the engine remakes it from the record. */
	char	   *(*top_level_sql) (const CocoPlannedAction *action);
	/* Attachments: the name of the container state a spec attaches to
	 * (the readable name of a state of the `parent` provider). */
	char	   *(*container_name) (Jsonb *spec);
	/* Optional, for coco.plan: the label of a decided action ("create",
	 * "alter", ...; NULL: the engine's create/update/replace/drop) and the
	 * hazards it carries, each appended to `hazards` as ", \"label\"". */
	const char *(*plan_action) (const CocoPlannedAction *action, StringInfo hazards);
	/* Optional, with sync_children, for coco.plan: count what sync_children
	 * would do (sync's counts), applying nothing, and append the opening
	 * fields of the plan's detail object (e.g. "\"table\": \"s.t\", ").
	 * Report through sync->plan every failure the sync would hit (instead
	 * of raising it) and, while coco_plan_room allows, the children that
	 * would change.  A staged declaration the provider reads is left
	 * staged; nothing is written. */
	void		(*plan_children) (CocoChildSync *sync, StringInfo detail);
} CocoProvider;

/*
 * Register a root provider; call from _PG_init.  Names are unique.  The
 * macro passes the version and layout this connector was built with: a
 * mismatch is refused (22023), and a library built against version 1 of
 * this header, which linked to coco_register_root_provider itself, fails
 * to load (undefined symbol) instead of handing over a struct of another
 * layout.
 */
#define coco_register_root_provider(provider) \
	coco_register_provider_v((provider), COCO_TARGET_API_VERSION, sizeof(CocoProvider))
extern void coco_register_provider_v(const CocoProvider *provider, int api_version,
									 Size provider_size);
/* A provider by name: registered from C, or defined with SQL. */
extern const CocoProvider *coco_lookup_provider(const char *name);
/* A provider registered from C only (NULL if none has the name). */
extern const CocoProvider *coco_lookup_c_provider(const char *name);

/* ---------------------------------------------------------------------
 * Helpers for sinks
 * ------------------------------------------------------------------- */

/* Run fn(arg) with the extension owner's rights and a pinned search_path:
 * for connectors that keep bookkeeping of their own in the coco schema. */
extern void coco_as_extension_owner(void (*fn) (void *arg), void *arg);

/* The settings of context `key`, which must be of `kind` and usable by the
 * role `user` (errors otherwise).  Look them up when applying, not only when
 * declaring: a superuser may change them in between.  Inside SPI only. */
extern Jsonb *coco_context_settings(const char *key, const char *kind, Oid user);

/* A kind of context (as "localfs"), registered from a connector's _PG_init:
 * `check` validates a context's settings when a superuser defines it (raise
 * an error to refuse them); `reach` says what the context gives its users,
 * for the refusal a role without superuser gets; `providers` (NULL-ended)
 * are the connector's providers whose keys start with the key of the
 * context they use: a context is not dropped while one of them tracks a
 * state under it. */
typedef void (*CocoContextSettingsCheck) (const char *key, Jsonb *settings);
extern void coco_register_context_kind(const char *kind, const char *reach,
									   CocoContextSettingsCheck check,
									   const char *const *providers);

/* Quote "schema"."name" after the caller validated both parts. */
extern char *coco_quote_qualified(const char *schema, const char *name);

/* Run body(arg) in an internal subtransaction, kept (committed) when body
 * returns true and rolled back when it returns false.  Afterwards the
 * caller is back in its memory context and resource owner.  Returns NULL
 * when body returned, or the error it raised: copied into the caller's
 * memory context and flushed, the subtransaction rolled back (which
 * restores the user, the settings and the snapshot body changed).  The
 * caller reports, replaces or re-raises it (ReThrowError keeps every
 * field).  Locals the caller reads afterwards travel in *arg. */
typedef bool (*CocoSubxactBody) (void *arg);
extern ErrorData *coco_subxact_try(CocoSubxactBody body, void *arg);
/* The same for fn(arg), kept whenever it returns. */
extern ErrorData *coco_subxact_call(void (*fn) (void *arg), void *arg);

/* ---------------------------------------------------------------------
 * Declaring into an app
 *
 * A connector's SQL declare functions look the app up (which checks that
 * the caller may use it), call coco_declaring (the run guard's check, then
 * auto-submit), and stage the state.  Staged states are decided by the next
 * run, in the component the declaration names.
 * ------------------------------------------------------------------- */
typedef struct CocoApp
{
	int			app_id;
	char	   *name;
	Oid			owner;
	Oid			declare_fn;
	char	   *search_path;	/* for declare_fn: the creating session's */
	bool		auto_submit;	/* declaring commits submit a run */
} CocoApp;

/* The app (a copy of the caller's own); errors if it does not exist (42704)
 * or the current role is not a member of its owner (42501). */
extern CocoApp *coco_app_lookup(const char *name);
/* Call right after coco_app_lookup in every declare function. */
extern void coco_declaring(const CocoApp *app);
/* Stage a target state of `provider` under `key` in `component` (an array
 * from coco_component_arg).  What the component staged under the key before
 * (under `provider`, or under `sibling`, the other provider the same key may
 * be staged under: an index built concurrently or not) is replaced.
 * Returns false, staging nothing, when another component staged the key;
 * report that with coco_stage_conflict. */
extern bool coco_stage_state(const CocoApp *app, ArrayType *component, const char *provider,
							 const char *sibling, StringInfo key, const char *name, Jsonb *spec);
/* Refuse (23505, `message`) a key another component staged, naming both. */
/* Delete what one component of the app has staged; mark_cleared: and stage
 * a clear of it (the next run replaces it with nothing). */
extern void coco_unstage_component(int app_id, int comp_id, bool mark_cleared);
extern void coco_stage_conflict(const CocoApp *app, ArrayType *component, const char *provider,
								const char *sibling, StringInfo key, const char *message) pg_attribute_noreturn();
/* The component's id, made if new.  A component that a persistent
 * declaration owns (coco.sync_table) is refused (55000), except between
 * coco_persistent_expansion_begin and _end, which bracket the staging of
 * persistent declarations into their components. */
extern int	coco_component_id(int app_id, ArrayType *path);
extern void coco_persistent_expansion_begin(void);
extern void coco_persistent_expansion_end(void);
/* The app's persistent declarations were made, replaced or removed: what
 * follows them (source-driven refresh's triggers) follows now. */
extern void coco_persistent_changed(const CocoApp *app);
/* Lock the app for a run (or, for_drop, against every other use). */
extern void coco_lock_app(CocoApp *app, bool for_drop);

/*
 * Arguments.  The API's SQL functions are not STRICT (a NULL must be an
 * error, not a silent NULL result): these check an argument and name it.
 */
extern void coco_require_arg(FunctionCallInfo fcinfo, int n, const char *what);
extern text *coco_text_arg(FunctionCallInfo fcinfo, int n, const char *what);
/* A component path (text[]; NULL: the root component), validated. */
extern ArrayType *coco_component_arg(FunctionCallInfo fcinfo, int n);

/* Identifiers: [A-Za-z_][A-Za-z0-9_]* (42602), at most NAMEDATALEN-1 bytes
 * (42622). */
extern void coco_validate_identifier(const char *ident, const char *what);
/* A user function to call by name later: its name looked up from the OID
 * now (42883 if gone), so a function swapped under the name is not called. */
extern char *coco_function_call_name(Oid fn, const char *what);
/* Refuses a temporary function as one to remember (42P17). */
extern void coco_check_lasting_function(Oid fn, const char *what);

/* ---------------------------------------------------------------------
 * Runs
 * ------------------------------------------------------------------- */
/* The role the current run applies changes as; only inside a run (a sink,
 * a handler), an error elsewhere. */
extern Oid	coco_run_owner(void);
/* One run at a time in a backend: enter before a run-like operation on the
 * app (55006 if one is in progress), leave when done; an abort leaves. */
extern void coco_run_guard_enter(const CocoApp *app, const char *what);
extern void coco_run_guard_leave(void);
/* Refuse `what` while any run is in progress (55006). */
extern void coco_run_guard_check_idle(const char *what);
/* Whether a run (or a declaration function it calls) is in progress. */
extern bool coco_run_in_progress(void);
/* Reconcile the app now, running its declaration function first (as
 * coco.update() does); returns the run's statistics. */
extern Jsonb *coco_engine_reconcile(CocoApp *app, bool full, bool declare_first, int64 run_id);
/* the same, with a full pass that would remove every target of the app
 * allowed (coco_engine_reconcile refuses one) */
extern Jsonb *coco_engine_reconcile_guarded(CocoApp *app, bool full, bool declare_first,
											int64 run_id, bool allow_drop_all);
/* Make a copy of the run's snapshot the active one (pop it when done). */
extern void coco_push_snapshot(Snapshot snapshot);
/* An int4[] of the values (component lists as statement parameters). */
extern ArrayType *coco_run_int_array(const int *values, int n);
/* The running phase and how far it got, shown in the view coco.progress. */
extern void coco_progress_phase(const char *phase, const char *target, int64 total);
extern void coco_progress_advance(int64 done);

/* ---------------------------------------------------------------------
 * Rights and statements
 * ------------------------------------------------------------------- */
/* search_path for every statement a connector builds itself */
#define COCO_SAFE_SEARCH_PATH "pg_catalog, pg_temp"

typedef struct CocoUserContext
{
	Oid			save_userid;
	int			save_sec_context;
	int			save_nestlevel;
} CocoUserContext;

/* Switch to the extension owner (for the coco schema's tables) or the app
 * owner (for user objects), with search_path pinned (NULL: the safe one);
 * coco_leave switches back.  An error switches back by itself. */
extern void coco_enter_extension_owner(CocoUserContext *ctx);
extern void coco_enter_app_owner(Oid owner, const char *search_path, CocoUserContext *ctx);
extern void coco_leave(CocoUserContext *ctx);
extern char *coco_current_search_path(void);

/* SPI_execute_with_args that errors unless the result is `expected`. */
extern void coco_spi_exec(const char *sql, int nargs, Oid *types, Datum *values,
						  const char *nulls, int expected);
/* The int8 in the first column of the one row a statement returns. */
extern int64 coco_spi_int8(const char *sql, int nargs, Oid *types, Datum *values, bool *isnull);

/* ---------------------------------------------------------------------
 * Settings and fault points
 * ------------------------------------------------------------------- */
extern PGDLLIMPORT int coco_work_mem;	/* coco_target.work_mem, kB */
extern PGDLLIMPORT int coco_batch_size; /* coco_target.batch_size, rows */
extern PGDLLIMPORT bool coco_declare_rows_count;	/* coco_target.declare_rows_count */
/* For the crash tests: kills the backend when the superuser-only setting
 * coco_target.fault_point names `point`; a no-op otherwise. */
extern void coco_fault(const char *point);

#endif							/* COCO_TARGET_H */
