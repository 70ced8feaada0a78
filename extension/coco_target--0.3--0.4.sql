-- coco_target 0.3 -> 0.4: the extension explains itself.
\echo Use "ALTER EXTENSION coco_target UPDATE TO '0.4'" to load this file. \quit

-- The fingerprint of the container's record (a table's spec) a component's
-- rows were written under: coco.verify compares the fingerprints of rows
-- written under the current spec, and only checks that the others exist.
ALTER TABLE coco.row_set ADD COLUMN record_fp bytea;
