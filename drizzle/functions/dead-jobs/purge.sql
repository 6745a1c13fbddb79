-- Deletes dead jobs for good. At least one filter is required, so a call with
-- no arguments purges nothing: pass died_before => now() to mean all. Returns
-- how many.
--
-- A dead job is the only trace that it did not complete: a child still
-- waiting on it (one enqueued while it died, which its end could not see) is
-- sent down with it (jobs/after-finish.sql), and one whose id bucket a
-- transaction still in flight has marked as a parent (jobs/enqueue-many.sql)
-- is left for a later purge, so that the orphan sweep never takes a purged
-- parent for a completed one.
--
-- Lease: none. Locks: the row locks of the DELETE; FOR UPDATE on the waiting
-- children sent down.
CREATE OR REPLACE FUNCTION sluice.dead_purge(
  queue_name text DEFAULT NULL, job_name text DEFAULT NULL, died_before timestamptz DEFAULT NULL, ids bigint[] DEFAULT NULL
) RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
  doomed bigint[];
BEGIN
  IF queue_name IS NULL AND job_name IS NULL AND died_before IS NULL AND ids IS NULL THEN
    RAISE EXCEPTION 'sluice.dead_purge: give a queue, a job name, died_before or ids' USING ERRCODE = '22023';
  END IF;
  -- The marks are read inside the DELETE, after its snapshot (jobs/marked-parent-buckets.sql).
  WITH gone AS (
    DELETE FROM sluice.dead_jobs d
    WHERE (queue_name IS NULL OR d.queue = queue_name)
      AND (job_name IS NULL OR d.name = job_name)
      AND (died_before IS NULL OR d.died_at < died_before)
      AND (ids IS NULL OR d.id = ANY(ids))
      AND (hashint8(d.id) & 63) NOT IN (SELECT sluice.marked_parent_buckets())
    RETURNING d.id
  )
  SELECT array_agg(gone.id) INTO doomed FROM gone;
  IF doomed IS NULL THEN
    RETURN 0;
  END IF;
  -- The follow-up needs the ids only: the rows may go first.
  PERFORM sluice.after_finish('dead', doomed, NULL, NULL);
  RETURN cardinality(doomed);
END $$;
