-- The code schedules that no known worker of their service declares, and
-- whether one may remove them: some known worker of that service was started
-- with undeclaredSchedules 'remove'. A worker is known while its row is in
-- sluice.workers: from its start until it stops (and deregisters) or, if it
-- died, until the leader forgets it (an hour without a beat and no job held,
-- workers/reap.sql). Judging by every known worker, not by the one asking, is
-- what makes a rolling deploy safe: while pods of the old and the new code
-- run side by side, neither removes what the other still declares, and what
-- only the old code declared goes when its last pod stops. Judging by a
-- fresh beat instead would remove what live pods declare whose beats are
-- late (every pod after a database outage). A service with no known worker
-- is not judged: no one is there to say what it declares. A worker with a
-- NULL list (it did not say) keeps every schedule of its service.
--
-- Lease: none. Locks: none (reads).
CREATE OR REPLACE FUNCTION sluice.undeclared_schedules()
RETURNS TABLE (name text, service text, removable boolean)
LANGUAGE sql STABLE AS $$
  SELECT c.name, c.service,
    EXISTS (SELECT 1 FROM sluice.workers w WHERE w.service IS NOT DISTINCT FROM c.service AND w.removes_undeclared_schedules)
  FROM sluice.cron_schedules c
  WHERE c.declared_in = 'code'
    AND EXISTS (SELECT 1 FROM sluice.workers w WHERE w.service IS NOT DISTINCT FROM c.service)
    AND NOT EXISTS (SELECT 1 FROM sluice.workers w WHERE w.service IS NOT DISTINCT FROM c.service
                      AND (w.schedules IS NULL OR c.name = ANY(w.schedules)))
$$;
