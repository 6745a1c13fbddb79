-- The code schedules that no live worker of their service declares, and
-- whether one may remove them: some live worker of that service was started
-- with undeclaredSchedules 'remove'. A worker is live while its heartbeat is
-- younger than dead_after_ms. A service with no live worker is not judged:
-- no one is there to say what it declares (every pod down in a deploy).
-- Judging by every live worker, not by the one asking, is what makes a
-- rolling deploy safe: while pods of the old and the new code run side by
-- side, neither removes what the other still declares, and what only the old
-- code declared goes when its last pod stops (the worker's deregistration)
-- or stops beating (the rescuer's round, once a minute).
-- A worker with a NULL list (it did not say what it declares) keeps every
-- schedule of its service.
--
-- Lease: none. Locks: none (reads).
CREATE OR REPLACE FUNCTION sluice.undeclared_schedules(dead_after_ms integer)
RETURNS TABLE (name text, service text, removable boolean)
LANGUAGE sql STABLE AS $$
  WITH live AS (
    SELECT w.service, w.schedules, w.removes_undeclared_schedules AS removes
    FROM sluice.workers w
    WHERE w.heartbeat_at > now() - make_interval(secs => dead_after_ms / 1000.0)
  )
  SELECT c.name, c.service,
    EXISTS (SELECT 1 FROM live l WHERE l.service IS NOT DISTINCT FROM c.service AND l.removes)
  FROM sluice.cron_schedules c
  WHERE c.declared_in = 'code'
    AND EXISTS (SELECT 1 FROM live l WHERE l.service IS NOT DISTINCT FROM c.service)
    AND NOT EXISTS (SELECT 1 FROM live l WHERE l.service IS NOT DISTINCT FROM c.service
                      AND (l.schedules IS NULL OR c.name = ANY(l.schedules)))
$$;
