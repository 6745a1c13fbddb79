-- FROM 0002_crash_safety.sql
-- Crash safety: forgetting workers long gone. Rescue of lapsed leases and
-- cancellation live with the other job functions in 0009_queue_control.
-- Forgets workers that stopped heartbeating long ago and hold no job.
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
