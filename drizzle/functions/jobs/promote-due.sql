-- Makes due scheduled jobs claimable: at most batch_size of them, oldest run_at
-- first, become available, and each queue that got some is woken on
-- sluice_jobs and on sluice_rewind (their run_at may lie behind where
-- workers' claims resume: see jobs/claim.sql). Returns how many.
--
-- Lease: none.
-- Locks: FOR UPDATE SKIP LOCKED on the due rows, so promoters never wait on
-- each other.
CREATE OR REPLACE FUNCTION sluice.promote_due(batch_size integer DEFAULT 1000)
RETURNS integer LANGUAGE plpgsql AS $$
DECLARE
  promoted integer;
  qs text[];
  q text;
BEGIN
  WITH due AS (
    SELECT id FROM sluice.jobs
    WHERE state = 'scheduled' AND run_at <= now()
    ORDER BY run_at
    LIMIT batch_size
    FOR UPDATE SKIP LOCKED
  ), upd AS (
    UPDATE sluice.jobs j SET state = 'available' FROM due WHERE j.id = due.id RETURNING j.queue
  )
  SELECT count(*), array_agg(DISTINCT upd.queue) INTO promoted, qs FROM upd;
  IF promoted > 0 THEN
    FOREACH q IN ARRAY qs LOOP
      PERFORM pg_notify('sluice_jobs', q);
      PERFORM pg_notify('sluice_rewind', q);
    END LOOP;
  END IF;
  RETURN promoted;
END $$;
