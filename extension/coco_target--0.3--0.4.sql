-- coco_target 0.3 -> 0.4: the extension explains itself.
\echo Use "ALTER EXTENSION coco_target UPDATE TO '0.4'" to load this file. \quit

-- coco.progress shows a run that waits for a lock: the relation (or the
-- kind of lock) and the processes it waits for.
CREATE OR REPLACE VIEW coco.progress WITH (security_invoker = true) AS
SELECT a.name AS app, p.pid,
       CASE WHEN w.waiting_for IS NULL THEN p.phase ELSE 'waiting for lock' END AS phase,
       p.target, p.done, p.total, p.started_at, p.updated_at,
       w.waiting_for, w.blocked_by
  FROM coco.progress_slots() p JOIN coco.app a ON a.app_id = p.app_id
  LEFT JOIN LATERAL (
    SELECT coalesce(l.relation::pg_catalog.regclass::text, l.locktype) AS waiting_for,
           pg_catalog.pg_blocking_pids(p.pid) AS blocked_by
      FROM pg_catalog.pg_locks l
     WHERE l.pid OPERATOR(pg_catalog.=) p.pid AND NOT l.granted
     LIMIT 1) w ON true;
