-- FROM 0012_hot_path.sql
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
