/*
 * protect.c — protection against destruction, in the deciding and the
 * recording halves of a pass.
 *
 * A root target state declared with "protect": true is tracked as
 * protected once a run applies it.  The protection lives in tracking
 * (coco.target_state.protected), not in the declaration: when the state is
 * no longer declared, the run keeps it (no action, its children left as
 * they are) and marks it retained, instead of removing it.  Cleared by a
 * declaration with "protect": false, or by coco.unprotect(); a retained
 * state that is no longer protected is removed by the next run of the app
 * (decide.c loads it whatever components that run replaces).
 *
 * The guard: a full pass that would remove every target state its app
 * tracks (and keeps or makes none) is refused before anything is applied,
 * unless the call said it is meant (allow_drop_all); coco.plan says it in a
 * NOTICE.  States kept only because they are protected count neither way.
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"

#include "run.h"

/* the names a refusal lists before "and N more" */
#define GUARD_NAMES_LISTED 5

/*
 * The "protect" option of a root state's declaration is the engine's, not
 * the provider's: it is taken out of the desired spec before the handler
 * sees it, so it is in neither the decision nor the tracking record, and
 * switching it changes nothing in the target.  A "protect" that is not a
 * boolean is left to the provider (declare_table refuses one).
 */
void
coco_protect_take_option(RootState *s)
{
	JsonbValue *v;
	JsonbParseState *state = NULL;
	JsonbIterator *it;
	JsonbValue	k;
	JsonbValue	val;
	JsonbIteratorToken tok;
	JsonbValue *res = NULL;

	s->protect_declared = -1;
	if (s->st.desired == NULL || s->provider->parent != NULL ||
		!JB_ROOT_IS_OBJECT(s->st.desired))
		return;
	v = getKeyJsonValueFromContainer(&s->st.desired->root, "protect", 7, NULL);
	if (v == NULL || v->type != jbvBool)
		return;
	s->protect_declared = v->val.boolean ? 1 : 0;

	/* the spec without it: copy every other field */
	it = JsonbIteratorInit(&s->st.desired->root);
	while ((tok = JsonbIteratorNext(&it, &k, true)) != WJB_DONE)
	{
		if (tok == WJB_KEY && k.val.string.len == 7 &&
			memcmp(k.val.string.val, "protect", 7) == 0)
		{
			(void) JsonbIteratorNext(&it, &val, true);
			continue;
		}
		res = pushJsonbValue(&state, tok, tok < WJB_BEGIN_ARRAY ? &k : NULL);
	}
	s->st.desired = JsonbValueToJsonb(res);
}

/*
 * A tracked, protected state whose decision would remove it is kept: no
 * action, its last record kept (so its attachments and children see a
 * container that stays), counted as kept.
 */
void
coco_protect_decide(RootState *states, int n, RunStats *rs)
{
	for (int i = 0; i < n; i++)
	{
		RootState  *s = &states[i];

		if (s->ts_id == 0 || !s->protected || s->st.desired != NULL || s->st.nprev == 0)
			continue;
		s->retain = true;
		memset(&s->decision, 0, sizeof(s->decision));
		s->decision.action = COCO_NO_ACTION;
		s->decision.record = s->st.prev[s->st.nprev - 1];
	}
}

/*
 * Refuse (or, for coco.plan, point out) a full pass that would remove every
 * target state of the app: at least one goes, and nothing declared stays.
 */
void
coco_protect_guard(CocoApp *app, bool full, RunDecisions *rd, RunStats *rs)
{
	int			removed = 0;
	int			containers = 0;
	StringInfoData names;

	if (!full || rs->drop_guard == COCO_DROP_ALLOWED)
		return;
	initStringInfo(&names);
	for (int i = 0; i < rd->ntables; i++)
	{
		RootState  *s = &rd->tables[i];

		if (s->retain)
			continue;
		if (s->decision.record != NULL)
			return;				/* something declared stays */
		if (s->ts_id == 0)
			continue;
		if (removed < GUARD_NAMES_LISTED)
			appendStringInfo(&names, "%s\"%s\"", removed > 0 ? ", " : "", s->st.name);
		if (s->provider->child_name != NULL)
			containers++;
		removed++;
	}
	if (removed == 0)
		return;
	if (removed > GUARD_NAMES_LISTED)
		appendStringInfo(&names, " and %d more", removed - GUARD_NAMES_LISTED);

	ereport(rs->drop_guard == COCO_DROP_REFUSED ? ERROR : NOTICE,
			(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
			 errmsg("full run of app \"%s\" would drop all %d of its %s",
					app->name, removed, containers == removed ? "tables" : "targets"),
			 errdetail("Nothing declared keeps any of them: %s.", names.data),
			 rs->drop_guard == COCO_DROP_REFUSED ?
			 errhint("If that is meant, call coco.reconcile(app, true, allow_drop_all => true) "
					 "or coco.update(app, allow_drop_all => true); otherwise declare what the app "
					 "should keep (a declaration function that declared nothing is the usual cause).") :
			 errhint("coco.reconcile(app, true) refuses this run unless called with allow_drop_all => true.")));
}

/*
 * After a root state's decision is recorded: a kept one is marked retained;
 * a declared one takes its declaration's protection (none declared: as it
 * was) and is no longer retained.  By (app, provider, key): the state may
 * have been inserted by this run, or recorded as an intent.
 */
void
coco_protect_record(CocoApp *app, RootState *s)
{
	Oid			types[4] = {INT4OID, TEXTOID, BYTEAOID, BOOLOID};
	Datum		values[4];
	char		nulls[4] = {' ', ' ', ' ', ' '};
	CocoUserContext uc;

	if (s->provider->parent != NULL || s->decision.record == NULL)
		return;
	if (!s->retain && s->protect_declared < 0 && !s->retained)
		return;					/* nothing changes: no statement */
	if (s->retain && s->retained)
		return;
	values[0] = Int32GetDatum(app->app_id);
	values[1] = CStringGetTextDatum(s->st.provider);
	values[2] = PointerGetDatum(coco_key_to_bytea(s->st.key, s->st.keylen));
	values[3] = BoolGetDatum(s->protect_declared == 1);
	if (s->protect_declared < 0)
		nulls[3] = 'n';
	coco_enter_extension_owner(&uc);
	coco_spi_exec(s->retain ?
				  "UPDATE coco.target_state SET retained = true "
				  "WHERE app_id OPERATOR(pg_catalog.=) $1 AND provider OPERATOR(pg_catalog.=) $2 "
				  "AND key OPERATOR(pg_catalog.=) $3" :
				  "UPDATE coco.target_state SET protected = coalesce($4, protected), retained = false "
				  "WHERE app_id OPERATOR(pg_catalog.=) $1 AND provider OPERATOR(pg_catalog.=) $2 "
				  "AND key OPERATOR(pg_catalog.=) $3",
				  4, types, values, nulls, SPI_OK_UPDATE);
	coco_leave(&uc);
}

/*
 * coco.drop_app: its pass kept the protected states (retained); they stay
 * where they are, untracked once the app's tracking goes.  Say which.
 */
void
coco_protect_notice_left(CocoApp *app)
{
	Oid			types[1] = {INT4OID};
	Datum		values[1] = {Int32GetDatum(app->app_id)};
	CocoUserContext uc;
	char	   *names = NULL;

	coco_enter_extension_owner(&uc);
	coco_spi_exec("SELECT pg_catalog.string_agg(pg_catalog.format('\"%s\"', name), ', ' ORDER BY name) "
				  "FROM coco.target_state WHERE app_id OPERATOR(pg_catalog.=) $1 AND retained",
				  1, types, values, NULL, SPI_OK_SELECT);
	if (SPI_processed > 0)
		names = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1);
	coco_leave(&uc);
	if (names != NULL)
		ereport(NOTICE,
				(errmsg("app \"%s\" leaves its protected targets in place: %s", app->name, names),
				 errdetail("They are no longer tracked by any app."),
				 errhint("Drop them by hand if they are not wanted, or declare them in another app.")));
}
