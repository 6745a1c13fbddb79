-- Whole partitions can only go once every queue's retention has passed; the
-- history rows of queues with a shorter retention (and anything in the default
-- partition) are deleted here, at most batch_size rows per call. Returns how
-- many.
--
-- A cancelled or dropped row is the only trace that its job did not complete:
-- as in dead-jobs/purge.sql, a child still waiting on it is sent down with it
-- (jobs/after-finish.sql), and one whose id bucket a transaction in flight
-- has marked as a parent (jobs/enqueue-many.sql) waits for a later round.
--
-- Lease: none. Locks: the row locks of the DELETE; FOR UPDATE on the waiting
-- children sent down.
CREATE OR REPLACE FUNCTION sluice.prune_history(batch_size integer DEFAULT 10000)
RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
  n bigint;
  ended bigint[];
BEGIN
  -- The marked buckets are read inside the DELETE, so after its snapshot:
  -- read in a statement before it, a producer could mark a parent, find it
  -- live and insert its child waiting, the parent then die, and the DELETE
  -- (a later snapshot) delete it unmarked, before the child's commit made
  -- it visible to the follow-up; the orphan sweep then took the parent, in
  -- no table, for completed, and ran the child.
  WITH marked AS MATERIALIZED (
    SELECT l.objid::text::integer AS bucket FROM pg_locks l
    WHERE l.locktype = 'advisory' AND l.classid = 1936486756 AND l.objsubid = 2 AND l.pid <> pg_backend_pid()
      AND l.database = (SELECT pd.oid FROM pg_database pd WHERE pd.datname = current_database())
  ), doomed AS (
    SELECT h.id, h.finished_at
    FROM sluice.queues q
    CROSS JOIN LATERAL (
      SELECT x.id, x.finished_at FROM sluice.job_history x
      -- At most 100 years (the client's limit): a larger retention_ms written by
      -- hand would take now() out of the timestamp range, failing every queue.
      WHERE x.queue = q.name AND x.finished_at < now() - least(q.retention_ms, 3155760000000) * interval '1 millisecond'
        AND (x.state = 'completed' OR (hashint8(x.id) & 63) NOT IN (SELECT m.bucket FROM marked m))
      LIMIT batch_size
    ) h
    LIMIT batch_size
  ), gone AS (
    DELETE FROM sluice.job_history x USING doomed d
    WHERE x.id = d.id AND x.finished_at = d.finished_at
    RETURNING x.id, x.state
  )
  SELECT count(*), array_agg(gone.id) FILTER (WHERE gone.state <> 'completed') INTO n, ended FROM gone;
  IF ended IS NOT NULL THEN
    PERFORM sluice.after_finish('cancelled', ended, NULL, NULL);
  END IF;
  RETURN n;
END $$;
