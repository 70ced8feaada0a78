-- coco_target 0.6 -> 0.7: tracked rows packed into chunks.
\echo Use "ALTER EXTENSION coco_target UPDATE TO '0.7'" to load this file. \quit

-- A row per tracked row took a heap row and a primary-key entry each: a
-- million rows loaded wrote a million B-tree entries one at a time.  A
-- chunk packs about sixty of a component's rows of a table (key and
-- fingerprint) into one row with one index entry (docs/performance.md).
-- The keys of a table stay unique: the run checks them.
CREATE TABLE coco.tracked_chunk (
    app_id     integer NOT NULL,
    target_id  bigint NOT NULL,       -- the table's target_state
    comp_id    integer NOT NULL,
    chunk_id   bigint NOT NULL,       -- numbered per table
    nrows      integer NOT NULL,
    rows       bytea NOT NULL,        -- packed: see coco.chunk_rows
    PRIMARY KEY (target_id, chunk_id)
) WITH (fillfactor = 75);             -- three chunks a page, and room to rewrite one there
-- never compressed: fingerprints do not compress, and a chunk stays small
-- enough to stay in its row
ALTER TABLE coco.tracked_chunk ALTER COLUMN rows SET STORAGE EXTERNAL;
REVOKE ALL ON coco.tracked_chunk FROM PUBLIC;
GRANT SELECT ON coco.tracked_chunk TO PUBLIC;
ALTER TABLE coco.tracked_chunk ENABLE ROW LEVEL SECURITY;
CREATE POLICY app_owner ON coco.tracked_chunk FOR SELECT
    USING (app_id OPERATOR(pg_catalog.=) ANY (
        (SELECT pg_catalog.array_agg(a.app_id) FROM coco.app a)::integer[]));
SELECT pg_catalog.pg_extension_config_dump('coco.tracked_chunk', '');
COMMENT ON TABLE coco.tracked_chunk IS
    'Tracking: the rows the reconciler wrote, by table and component, packed about sixty to a row (read coco.tracked_row).';

CREATE FUNCTION coco.chunk_rows(rows bytea, OUT key bytea, OUT fp bytea)
    RETURNS SETOF record
    AS 'MODULE_PATHNAME', 'coco_chunk_rows' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION coco.chunk_rows(bytea) IS
    'The tracked rows a chunk of coco.tracked_chunk packs: key and fingerprint (empty for a row coco.verify marked for re-writing).';

-- the rows of 0.6, packed (the table leaves the extension first, so that
-- pg_dump forgets it with it)
ALTER EXTENSION coco_target DROP TABLE coco.tracked_row;
ALTER TABLE coco.tracked_row RENAME TO tracked_row_unpacked;
CREATE FUNCTION coco.pack_tracked_rows() RETURNS bigint
    AS 'MODULE_PATHNAME', 'coco_pack_tracked_rows' LANGUAGE C;
SELECT coco.pack_tracked_rows();
DROP FUNCTION coco.pack_tracked_rows();
DROP VIEW coco.components;
DROP TABLE coco.tracked_row_unpacked;

CREATE VIEW coco.tracked_row WITH (security_invoker = true) AS
SELECT c.app_id, c.target_id, c.comp_id, r.key, r.fp
  FROM coco.tracked_chunk c, LATERAL coco.chunk_rows(c.rows) r;
GRANT SELECT ON coco.tracked_row TO PUBLIC;
COMMENT ON VIEW coco.tracked_row IS
    'Tracking: the rows the reconciler wrote, by table and key, with their fingerprint (unpacked from coco.tracked_chunk).';

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
  LEFT JOIN (SELECT comp_id, sum(nrows)::bigint AS n FROM coco.tracked_chunk GROUP BY comp_id) tr
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
GRANT SELECT ON coco.components TO PUBLIC;
COMMENT ON VIEW coco.components IS
    'One row per component: its state (declared, stale, pending or cleared), whether something is staged, what it tracks and the run that last replaced it.';
