-- FROM 0001_functions.sql
-- Makes due scheduled jobs claimable, oldest first, in bounded batches.
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
    END LOOP;
  END IF;
  RETURN promoted;
END $$;
