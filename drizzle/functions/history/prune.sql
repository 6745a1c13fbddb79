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
  -- The marks are read inside the DELETE, after its snapshot (jobs/marked-parent-buckets.sql).
  WITH doomed AS (
    SELECT h.id, h.finished_at
    FROM sluice.queues q
    CROSS JOIN LATERAL (
      SELECT x.id, x.finished_at FROM sluice.job_history x
      -- At most 100 years (the client's limit): a larger retention_ms written by
      -- hand would take now() out of the timestamp range, failing every queue.
      WHERE x.queue = q.name AND x.finished_at < now() - least(q.retention_ms, 3155760000000) * interval '1 millisecond'
        AND (x.state = 'completed' OR (hashint8(x.id) & 63) NOT IN (SELECT sluice.marked_parent_buckets()))
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
