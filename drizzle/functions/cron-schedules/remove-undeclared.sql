-- Deletes the removable schedules of sluice.undeclared_schedules (of one
-- service when only_service, NULL naming the workers without a service) and
-- returns them.
--
-- Guarantees: a schedule declared by a worker that registered before the
-- DELETE began is kept. The table lock is taken first and the DELETE reads
-- with a snapshot taken after it, so no declaration commits between the
-- judgement and the delete; one that comes after it declares the schedule
-- again. The DELETE re-checks, on the row it deletes, that the schedule is
-- still a code schedule of the same service.
-- Lease: none.
-- Locks: EXCLUSIVE on sluice.cron_schedules, only when a first read finds
-- something to remove (plain reads go on; a scheduler firing or a
-- declaration waits, and this waits at most lock_timeout for them: the
-- caller tries again at its next occasion).
CREATE OR REPLACE FUNCTION sluice.remove_undeclared_schedules(only_service boolean DEFAULT false, of_service text DEFAULT NULL)
RETURNS TABLE (name text, service text)
LANGUAGE plpgsql SET lock_timeout = '2s' AS $$
#variable_conflict use_column
BEGIN
  -- Nothing to remove, the usual answer at a worker's stop: no lock taken.
  IF NOT EXISTS (SELECT 1 FROM sluice.undeclared_schedules() u
                 WHERE u.removable AND (NOT only_service OR u.service IS NOT DISTINCT FROM of_service)) THEN
    RETURN;
  END IF;
  LOCK TABLE sluice.cron_schedules IN EXCLUSIVE MODE;
  RETURN QUERY
  DELETE FROM sluice.cron_schedules c USING sluice.undeclared_schedules() u
  WHERE c.name = u.name AND u.removable AND c.declared_in = 'code' AND c.service IS NOT DISTINCT FROM u.service
    AND (NOT only_service OR c.service IS NOT DISTINCT FROM of_service)
  RETURNING c.name, c.service;
END $$;
