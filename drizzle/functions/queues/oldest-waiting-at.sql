-- When the longest-waiting job of a queue became due: the oldest available job,
-- or a scheduled one already due that no promoter has moved yet. The available
-- side walks the claim index one priority at a time (a loose index scan), so it
-- costs a few index probes however long the backlog is. An aged job's run_at
-- has moved later with its priority: its first due time is its ready_at, the
-- oldest of which is one probe of jobs_aged_idx.
--
-- Lease: none. Locks: none (reads).
CREATE OR REPLACE FUNCTION sluice.oldest_waiting_at(queue_name text)
RETURNS timestamptz LANGUAGE sql STABLE AS $$
  WITH RECURSIVE prio(p) AS (
    (SELECT j.priority FROM sluice.jobs j WHERE j.state = 'available' AND j.queue = queue_name
     ORDER BY j.priority DESC LIMIT 1)
    UNION ALL
    SELECT (SELECT j.priority FROM sluice.jobs j WHERE j.state = 'available' AND j.queue = queue_name
            AND j.priority < prio.p ORDER BY j.priority DESC LIMIT 1)
    FROM prio WHERE prio.p IS NOT NULL
  )
  SELECT least(
    (SELECT min((SELECT j.run_at FROM sluice.jobs j WHERE j.state = 'available' AND j.queue = queue_name
                 AND j.priority = prio.p ORDER BY j.run_at LIMIT 1))
     FROM prio WHERE prio.p IS NOT NULL),
    (SELECT j.run_at FROM sluice.jobs j WHERE j.state = 'scheduled' AND j.run_at <= now() AND j.queue = queue_name
     ORDER BY j.run_at LIMIT 1),
    (SELECT j.ready_at FROM sluice.jobs j WHERE j.state = 'available' AND j.ready_at IS NOT NULL AND j.queue = queue_name
     ORDER BY j.ready_at LIMIT 1))
$$;
