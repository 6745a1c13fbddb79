-- Deletes dead jobs for good. At least one filter is required, so a call with
-- no arguments purges nothing: pass died_before => now() to mean all. Returns
-- how many.
--
-- Lease: none. Locks: the row locks of the DELETE.
CREATE OR REPLACE FUNCTION sluice.dead_purge(
  queue_name text DEFAULT NULL, job_name text DEFAULT NULL, died_before timestamptz DEFAULT NULL, ids bigint[] DEFAULT NULL
) RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
  n bigint;
BEGIN
  IF queue_name IS NULL AND job_name IS NULL AND died_before IS NULL AND ids IS NULL THEN
    RAISE EXCEPTION 'sluice.dead_purge: give a queue, a job name, died_before or ids' USING ERRCODE = '22023';
  END IF;
  DELETE FROM sluice.dead_jobs d
  WHERE (queue_name IS NULL OR d.queue = queue_name)
    AND (job_name IS NULL OR d.name = job_name)
    AND (died_before IS NULL OR d.died_at < died_before)
    AND (ids IS NULL OR d.id = ANY(ids));
  GET DIAGNOSTICS n = ROW_COUNT;
  RETURN n;
END $$;
