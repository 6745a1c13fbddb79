-- What became of acknowledgements whose first write got no answer (the
-- connection was given up while the server may have committed it) and whose
-- retry applied nothing: either that first write did commit, or the attempt
-- lost the job meanwhile. One row per given (id, attempt) whose fate is known
-- or cannot be known:
-- 'completed' when history holds that very claim completed: the attempt and
-- the lease (sluice.lease_holds on the history row's attempted_at), since an
-- attempt number alone does not name a claim (a claim lost in a crash is made
-- again with the same number, by another worker);
-- 'unknown' for a completion in a queue that keeps no history when the job
-- is nowhere any more (no live, dead or history row): its own write may have
-- deleted it, or it was rescued and a later attempt completed it, and nothing
-- left can tell;
-- 'dead' when that attempt's failure sent the job to the dead jobs (the dead
-- row is of that attempt and holds its error entry);
-- 'retry' when the job's errors hold the entry, live, dead or in history
-- (it was retried, and later attempts went on). error_ats: the `at` of each
-- failure's error entry, NULL for a completion; with the attempt, it names the
-- entry that attempt's own write appended (a rescue appends one of kind crash,
-- at its own time, written by the server in another format).
-- A NULL lease names any claim of that attempt (a caller from SQL that has none).
--
-- Lease: reads it (above). Locks: none.
CREATE OR REPLACE FUNCTION sluice.ack_outcomes(ids bigint[], attempts integer[], queues text[], error_ats text[], leases bigint[] DEFAULT NULL)
RETURNS TABLE (id bigint, attempt integer, outcome text)
LANGUAGE sql STABLE AS $$
  SELECT a.id, a.attempt, o.outcome
  FROM unnest(ids, attempts, queues, error_ats,
    coalesce(leases, array_fill(NULL::bigint, ARRAY[cardinality(ids)]))) AS a(id, attempt, queue, error_at, lease)
  CROSS JOIN LATERAL (SELECT jsonb_build_array(jsonb_build_object('attempt', a.attempt, 'at', a.error_at)) AS entry) e
  CROSS JOIN LATERAL (SELECT CASE
    WHEN a.error_at IS NULL THEN
      CASE WHEN EXISTS (SELECT 1 FROM sluice.job_history h WHERE h.id = a.id AND h.attempt = a.attempt AND h.state = 'completed'
                          AND sluice.lease_holds(h.attempted_at, a.lease)) THEN 'completed'
           WHEN EXISTS (SELECT 1 FROM sluice.queues q WHERE q.name = a.queue AND NOT q.keep_history)
                AND NOT EXISTS (SELECT 1 FROM sluice.jobs j WHERE j.id = a.id)
                AND NOT EXISTS (SELECT 1 FROM sluice.dead_jobs d WHERE d.id = a.id)
                AND NOT EXISTS (SELECT 1 FROM sluice.job_history h WHERE h.id = a.id) THEN 'unknown' END
    WHEN EXISTS (SELECT 1 FROM sluice.dead_jobs d WHERE d.id = a.id AND d.attempt = a.attempt AND d.errors @> e.entry) THEN 'dead'
    -- Retried, whatever came after (later attempts may have finished it, or run it out).
    WHEN EXISTS (SELECT 1 FROM sluice.dead_jobs d WHERE d.id = a.id AND d.errors @> e.entry)
      OR EXISTS (SELECT 1 FROM sluice.jobs j WHERE j.id = a.id AND j.errors @> e.entry)
      OR EXISTS (SELECT 1 FROM sluice.job_history h WHERE h.id = a.id AND h.errors @> e.entry) THEN 'retry'
  END AS outcome) o
  WHERE o.outcome IS NOT NULL
$$;
-- The signature before leases, which named a claim by its attempt alone.
DROP FUNCTION IF EXISTS sluice.ack_outcomes(bigint[], integer[], text[], text[]);
