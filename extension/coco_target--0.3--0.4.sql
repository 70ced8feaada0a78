-- coco_target 0.3 -> 0.4: the extension explains itself.
\echo Use "ALTER EXTENSION coco_target UPDATE TO '0.4'" to load this file. \quit
