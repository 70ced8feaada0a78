-- coco_target 0.3 -> 0.4: the extension explains itself.
\echo Use "ALTER EXTENSION coco_target UPDATE TO '0.4'" to load this file. \quit

-- The run that last replaced each component (declared into it, cleared it,
-- or a full run), written by the run; NULL until one has.
ALTER TABLE coco.component ADD COLUMN last_run bigint;

-- coco.verify gains remove_untracked; the calls of 0.3 keep working.
DROP FUNCTION coco.verify(text, boolean);
CREATE FUNCTION coco.verify(app text, repair boolean DEFAULT true,
                            remove_untracked boolean DEFAULT false)
    RETURNS jsonb AS 'MODULE_PATHNAME', 'coco_verify' LANGUAGE C;

-- What is staged and not yet reconciled: per app, component and target
-- (a table's name for its rows and queries, a state's readable name).  A
-- staged clear is a row of its own, with no target.
CREATE VIEW coco.staged WITH (security_invoker = true) AS
SELECT a.name AS app, c.path AS component, s.target,
       count(*) FILTER (WHERE s.kind = 'state') AS states,
       count(*) FILTER (WHERE s.kind = 'row') AS rows,
       count(*) FILTER (WHERE s.kind = 'query') AS queries,
       bool_or(s.kind = 'clear') AS cleared
  FROM (SELECT app_id, comp_id, name AS target, 'state'::text AS kind FROM coco.staged_state
        UNION ALL
        SELECT app_id, comp_id, tbl, 'row' FROM coco.staged_row
        UNION ALL
        SELECT app_id, comp_id, tbl, 'query' FROM coco.staged_query
        UNION ALL
        SELECT app_id, comp_id, NULL, 'clear' FROM coco.cleared_component) s
  JOIN coco.app a ON a.app_id = s.app_id
  JOIN coco.component c ON c.comp_id = s.comp_id
 GROUP BY a.name, c.path, s.target;

-- Every component and its state: stale (rows of it written under an older
-- generation of their table), declared (it tracks something), pending
-- (nothing tracked yet, declarations staged) or cleared (it tracks
-- nothing).  Counts read tracking, so they cost a scan of it.
CREATE VIEW coco.components WITH (security_invoker = true) AS
SELECT a.name AS app, c.path AS component,
       CASE WHEN st.comp_id IS NOT NULL THEN 'stale'
            WHEN COALESCE(ts.n, 0) + COALESCE(tr.n, 0) > 0 THEN 'declared'
            WHEN sg.comp_id IS NOT NULL THEN 'pending'
            ELSE 'cleared' END AS state,
       sg.comp_id IS NOT NULL AS staged,
       COALESCE(ts.n, 0) AS target_states,
       COALESCE(tr.n, 0) AS tracked_rows,
       c.last_run
  FROM coco.component c
  JOIN coco.app a ON a.app_id = c.app_id
  LEFT JOIN (SELECT comp_id, count(*) AS n FROM coco.target_state GROUP BY comp_id) ts
         ON ts.comp_id = c.comp_id
  LEFT JOIN (SELECT comp_id, count(*) AS n FROM coco.tracked_row GROUP BY comp_id) tr
         ON tr.comp_id = c.comp_id
  LEFT JOIN (SELECT DISTINCT s.comp_id FROM coco.row_set s
               JOIN coco.target_state t ON t.ts_id = s.target_id
              WHERE s.generation <> t.generation
                 OR s.schema_version <> t.schema_version) st
         ON st.comp_id = c.comp_id
  LEFT JOIN (SELECT comp_id FROM coco.staged_state
             UNION SELECT comp_id FROM coco.staged_row
             UNION SELECT comp_id FROM coco.staged_query
             UNION SELECT comp_id FROM coco.cleared_component) sg
         ON sg.comp_id = c.comp_id;

GRANT SELECT ON coco.staged, coco.components TO PUBLIC;
