-- coco_target 0.3 -> 0.4: the extension explains itself.
\echo Use "ALTER EXTENSION coco_target UPDATE TO '0.4'" to load this file. \quit

-- coco.verify gains remove_untracked; the calls of 0.3 keep working.
DROP FUNCTION coco.verify(text, boolean);
CREATE FUNCTION coco.verify(app text, repair boolean DEFAULT true,
                            remove_untracked boolean DEFAULT false)
    RETURNS jsonb AS 'MODULE_PATHNAME', 'coco_verify' LANGUAGE C;
