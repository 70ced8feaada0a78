-- coco_target 0.3 -> 0.4: the extension explains itself.
\echo Use "ALTER EXTENSION coco_target UPDATE TO '0.4'" to load this file. \quit

-- coco.plan lists the failures a run would hit (action 'error'), the rows
-- it would change (rows => true, up to row_limit), and previews the next
-- coco.update (update => true).  The calls coco.plan(app) and
-- coco.plan(app, full) keep working: the new arguments have defaults.
DROP FUNCTION coco.plan(text, boolean);
CREATE FUNCTION coco.plan(app text, "full" boolean DEFAULT false, "rows" boolean DEFAULT false,
                          "update" boolean DEFAULT false, row_limit integer DEFAULT 100)
    RETURNS TABLE(provider text, key jsonb, action text, detail jsonb)
    AS 'MODULE_PATHNAME', 'coco_plan' LANGUAGE C;
