-- Cancels one live job through sluice.cancel_many (jobs/cancel-many.sql);
-- returns the state it was in, or NULL when there was no live job.
--
-- Lease: none. Locks: FOR UPDATE on the job's row.
CREATE OR REPLACE FUNCTION sluice.cancel(job_id bigint)
RETURNS text LANGUAGE plpgsql AS $$
DECLARE
  found_state text;
BEGIN
  SELECT state INTO found_state FROM sluice.jobs WHERE id = job_id FOR UPDATE;
  IF found_state IS NOT NULL THEN
    PERFORM sluice.cancel_many(ARRAY[job_id], CASE WHEN found_state = 'running' THEN 'cancelled while running' ELSE 'cancelled' END);
  END IF;
  RETURN found_state;
END $$;
