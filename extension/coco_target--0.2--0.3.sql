-- coco_target 0.2 -> 0.3: tracked rows lose their per-component index.
\echo Use "ALTER EXTENSION coco_target UPDATE TO '0.3'" to load this file. \quit

-- The row diff reads a table's tracked rows by target (the primary key's
-- leading column) and picks the components itself; every other statement
-- on coco.tracked_row names the target or the app.  The index on
-- (target_id, comp_id) only made each tracking write maintain a second
-- B-tree: loading a million rows measured 1.9 s faster without it.
DROP INDEX coco.tracked_row_target_id_comp_id_idx;
