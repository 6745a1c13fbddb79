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
  -- The marked buckets are read inside the DELETE, so after its snapshot:
  -- read in a statement before it, a producer could mark a parent, find it
  -- live and insert its child waiting, the parent then die, and the DELETE
  -- (a later snapshot) purge it unmarked, before the child's commit made
  -- it visible to the follow-up; the orphan sweep then took the parent, in
  -- no table, for completed, and ran the child.
  WITH gone AS (
    DELETE FROM sluice.dead_jobs d
    WHERE (queue_name IS NULL OR d.queue = queue_name)
      AND (job_name IS NULL OR d.name = job_name)
      AND (died_before IS NULL OR d.died_at < died_before)
      AND (ids IS NULL OR d.id = ANY(ids))
      AND (hashint8(d.id) & 63) NOT IN (
        SELECT l.objid::text::integer FROM pg_locks l
        WHERE l.locktype = 'advisory' AND l.classid = 1936486756 AND l.objsubid = 2 AND l.pid <> pg_backend_pid()
          AND l.database = (SELECT pd.oid FROM pg_database pd WHERE pd.datname = current_database()))
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
