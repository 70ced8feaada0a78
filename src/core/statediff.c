/*
 * statediff.c — the decision rules shared by every handler.
 *
 * Plain C over fingerprints, no I/O.  A state is skipped only when every
 * record that may be true equals the desired one and the state is known to
 * exist (reconciliation rules 2 and 5, docs/architecture.md).  The composite form covers records made of
 * a main part and named sub-records (a table: its primary key, its columns).
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "fmgr.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/json.h"
#include "utils/jsonb.h"

#include "coco_target.h"
#include "coco_internal.h"

const char *
coco_action_name(CocoAction action)
{
	switch (action)
	{
		case COCO_NO_ACTION:
			return "none";
		case COCO_INSERT:
			return "insert";
		case COCO_UPSERT:
			return "upsert";
		case COCO_REPLACE:
			return "replace";
		case COCO_DELETE:
			return "delete";
	}
	return "?";
}

CocoAction
coco_diff(const CocoFingerprint *desired, const CocoFingerprint *prev, int nprev,
		  bool prev_may_be_missing)
{
	if (desired == NULL)
		return nprev > 0 ? COCO_DELETE : COCO_NO_ACTION;
	if (nprev == 0)
		return COCO_INSERT;
	for (int i = 0; i < nprev; i++)
		if (!coco_fingerprint_equal(desired, &prev[i]))
			return COCO_UPSERT;
	return prev_may_be_missing ? COCO_UPSERT : COCO_NO_ACTION;
}

static int
find_sub(const CocoCompositeRecord *rec, const char *name)
{
	for (int i = 0; i < rec->nsubs; i++)
		if (strcmp(rec->sub_names[i], name) == 0)
			return i;
	return -1;
}

static void
add_sub(CocoCompositeDiff *out, int *cap, const char *name, CocoAction action)
{
	if (out->nsubs == *cap)
	{
		*cap *= 2;
		out->sub_names = repalloc(out->sub_names, sizeof(char *) * *cap);
		out->subs = repalloc(out->subs, sizeof(CocoAction) * *cap);
	}
	out->sub_names[out->nsubs] = name;
	out->subs[out->nsubs] = action;
	out->nsubs++;
}

static bool
already_listed(const CocoCompositeDiff *out, const char *name)
{
	for (int i = 0; i < out->nsubs; i++)
		if (strcmp(out->sub_names[i], name) == 0)
			return true;
	return false;
}

void
coco_composite_diff(const CocoCompositeRecord *desired,
					const CocoCompositeRecord *prev, int nprev,
					bool prev_may_be_missing, CocoCompositeDiff *out)
{
	int			cap = 8;

	out->nsubs = 0;
	out->sub_names = palloc(sizeof(char *) * cap);
	out->subs = palloc(sizeof(CocoAction) * cap);

	if (desired == NULL)
	{
		/* removal covers the subs: no per-sub transitions */
		out->main = nprev > 0 ? COCO_DELETE : COCO_NO_ACTION;
		return;
	}
	if (nprev == 0)
	{
		out->main = COCO_INSERT;
		for (int i = 0; i < desired->nsubs; i++)
			add_sub(out, &cap, desired->sub_names[i], COCO_INSERT);
		return;
	}
	for (int p = 0; p < nprev; p++)
	{
		if (!coco_fingerprint_equal(&desired->main, &prev[p].main))
		{
			/* an incompatible main part: rebuild the whole, subs included */
			out->main = COCO_REPLACE;
			return;
		}
	}
	out->main = prev_may_be_missing ? COCO_UPSERT : COCO_NO_ACTION;

	for (int i = 0; i < desired->nsubs; i++)
	{
		int			seen = 0;
		bool		differs = false;
		CocoAction	action;

		for (int p = 0; p < nprev; p++)
		{
			int			j = find_sub(&prev[p], desired->sub_names[i]);

			if (j < 0)
				continue;
			seen++;
			if (!coco_fingerprint_equal(&desired->subs[i], &prev[p].subs[j]))
				differs = true;
		}
		if (differs)
			action = COCO_REPLACE;
		else if (seen == 0)
			action = prev_may_be_missing ? COCO_UPSERT : COCO_INSERT;
		else if (seen < nprev || prev_may_be_missing)
			action = COCO_UPSERT;	/* seen only in some records: may be missing */
		else
			action = COCO_NO_ACTION;
		add_sub(out, &cap, desired->sub_names[i], action);
	}
	for (int p = 0; p < nprev; p++)
		for (int j = 0; j < prev[p].nsubs; j++)
			if (find_sub(desired, prev[p].sub_names[j]) < 0 &&
				!already_listed(out, prev[p].sub_names[j]))
				add_sub(out, &cap, prev[p].sub_names[j], COCO_DELETE);
}

/* ---- SQL-callable, for inspection and unit tests ----------------------- */

static void
fingerprint_bytea(bytea *b, CocoFingerprint *fp)
{
	coco_fingerprint_bytes(VARDATA_ANY(b), VARSIZE_ANY_EXHDR(b), fp);
}

static void
fingerprint_jsonb_string(Jsonb *container, const char *field, CocoFingerprint *fp, bool *found)
{
	JsonbValue *v = getKeyJsonValueFromContainer(&container->root, field, strlen(field), NULL);

	*found = (v != NULL);
	if (v == NULL)
		return;
	if (v->type != jbvString)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("field \"%s\" of a composite record must be a string", field)));
	coco_fingerprint_bytes(v->val.string.val, v->val.string.len, fp);
}

/* {"main": "...", "subs": {"name": "...", ...}} → CocoCompositeRecord */
static void
composite_from_jsonb(Jsonb *j, CocoCompositeRecord *rec)
{
	JsonbValue *subs;
	bool		found;

	if (!JB_ROOT_IS_OBJECT(j))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("a composite record must be a JSON object with \"main\" and \"subs\"")));
	fingerprint_jsonb_string(j, "main", &rec->main, &found);
	if (!found)
		memset(&rec->main, 0, sizeof(rec->main));
	rec->nsubs = 0;
	subs = getKeyJsonValueFromContainer(&j->root, "subs", 4, NULL);
	if (subs == NULL)
		return;
	if (subs->type != jbvBinary || !JsonContainerIsObject(subs->val.binary.data))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("\"subs\" of a composite record must be an object")));
	{
		JsonbContainer *c = subs->val.binary.data;
		int			n = JsonContainerSize(c);
		JsonbIterator *it = JsonbIteratorInit(c);
		JsonbValue	v;
		JsonbIteratorToken tok;

		rec->sub_names = palloc(sizeof(char *) * Max(n, 1));
		rec->subs = palloc(sizeof(CocoFingerprint) * Max(n, 1));
		while ((tok = JsonbIteratorNext(&it, &v, true)) != WJB_DONE)
		{
			if (tok == WJB_KEY)
				rec->sub_names[rec->nsubs] = pnstrdup(v.val.string.val, v.val.string.len);
			else if (tok == WJB_VALUE)
			{
				if (v.type != jbvString)
					ereport(ERROR,
							(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
							 errmsg("sub-record \"%s\" must be a string", rec->sub_names[rec->nsubs])));
				coco_fingerprint_bytes(v.val.string.val, v.val.string.len, &rec->subs[rec->nsubs]);
				rec->nsubs++;
			}
		}
	}
}

PG_FUNCTION_INFO_V1(coco_diff_sql);
Datum
coco_diff_sql(PG_FUNCTION_ARGS)
{
	CocoFingerprint desired;
	CocoFingerprint *prev = NULL;
	int			nprev = 0;
	bool		mbm = PG_ARGISNULL(2) ? false : PG_GETARG_BOOL(2);

	if (!PG_ARGISNULL(0))
		fingerprint_bytea(PG_GETARG_BYTEA_PP(0), &desired);
	if (!PG_ARGISNULL(1))
	{
		Datum	   *elems;
		bool	   *nulls;

		deconstruct_array(PG_GETARG_ARRAYTYPE_P(1), BYTEAOID, -1, false, TYPALIGN_INT,
						  &elems, &nulls, &nprev);
		prev = palloc(sizeof(CocoFingerprint) * Max(nprev, 1));
		for (int i = 0; i < nprev; i++)
		{
			if (nulls[i])
				ereport(ERROR,
						(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
						 errmsg("previous records may not be null")));
			fingerprint_bytea(DatumGetByteaPP(elems[i]), &prev[i]);
		}
	}
	PG_RETURN_TEXT_P(cstring_to_text(coco_action_name(
		coco_diff(PG_ARGISNULL(0) ? NULL : &desired, prev, nprev, mbm))));
}

PG_FUNCTION_INFO_V1(coco_composite_diff_sql);
Datum
coco_composite_diff_sql(PG_FUNCTION_ARGS)
{
	CocoCompositeRecord desired;
	CocoCompositeRecord *prev = NULL;
	int			nprev = 0;
	bool		mbm = PG_ARGISNULL(2) ? false : PG_GETARG_BOOL(2);
	CocoCompositeDiff diff;
	StringInfoData out;

	if (!PG_ARGISNULL(0))
		composite_from_jsonb(PG_GETARG_JSONB_P(0), &desired);
	if (!PG_ARGISNULL(1))
	{
		Datum	   *elems;
		bool	   *nulls;

		deconstruct_array(PG_GETARG_ARRAYTYPE_P(1), JSONBOID, -1, false, TYPALIGN_INT,
						  &elems, &nulls, &nprev);
		prev = palloc(sizeof(CocoCompositeRecord) * Max(nprev, 1));
		for (int i = 0; i < nprev; i++)
		{
			if (nulls[i])
				ereport(ERROR,
						(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
						 errmsg("previous records may not be null")));
			composite_from_jsonb(DatumGetJsonbP(elems[i]), &prev[i]);
		}
	}
	coco_composite_diff(PG_ARGISNULL(0) ? NULL : &desired, prev, nprev, mbm, &diff);

	initStringInfo(&out);
	appendStringInfo(&out, "{\"main\": \"%s\", \"subs\": {", coco_action_name(diff.main));
	for (int i = 0; i < diff.nsubs; i++)
	{
		if (i > 0)
			appendStringInfoString(&out, ", ");
		escape_json(&out, diff.sub_names[i]);
		appendStringInfo(&out, ": \"%s\"", coco_action_name(diff.subs[i]));
	}
	appendStringInfoString(&out, "}}");
	PG_RETURN_DATUM(DirectFunctionCall1(jsonb_in, CStringGetDatum(out.data)));
}
