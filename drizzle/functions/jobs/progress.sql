-- Stores a running job's progress (0-100) and message. Returns whether the job
-- was still held by that run.
--
-- Guarantees: a stale run's progress is refused and changes nothing.
-- Lease: sluice.lease_holds(attempted_at, lease) with attempt and locked_by, as
-- in jobs/complete.sql.
-- Locks: the row lock of the UPDATE.
CREATE OR REPLACE FUNCTION sluice.job_progress(job_id bigint, job_attempt integer, pct integer, message text, worker_id text DEFAULT NULL,
  lease bigint DEFAULT NULL)
RETURNS boolean LANGUAGE sql AS $$
  WITH upd AS (
    UPDATE sluice.jobs SET progress = greatest(0, least(100, pct)), progress_message = left(message, 1000)
    WHERE id = job_id AND attempt = job_attempt AND state = 'running' AND (worker_id IS NULL OR locked_by = worker_id)
      AND sluice.lease_holds(attempted_at, lease)
    RETURNING 1
  )
  SELECT EXISTS (SELECT 1 FROM upd)
$$;
