-- Forgets workers that stopped heartbeating more than dead_after_ms ago and
-- hold no running job. Returns how many.
--
-- Lease: none. Locks: the row locks of the DELETE on sluice.workers.
CREATE OR REPLACE FUNCTION sluice.reap_workers(dead_after_ms integer)
RETURNS integer LANGUAGE sql AS $$
  WITH gone AS (
    DELETE FROM sluice.workers w
    WHERE w.heartbeat_at < now() - make_interval(secs => dead_after_ms / 1000.0)
      AND NOT EXISTS (SELECT 1 FROM sluice.jobs j WHERE j.state = 'running' AND j.locked_by = w.id)
    RETURNING 1
  )
  SELECT count(*)::integer FROM gone
$$;
