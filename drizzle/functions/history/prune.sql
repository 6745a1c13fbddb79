-- Whole partitions can only go once every queue's retention has passed; the
-- history rows of queues with a shorter retention (and anything in the default
-- partition) are deleted here, at most batch_size rows per call. Returns how
-- many.
--
-- Lease: none. Locks: the row locks of the DELETE.
CREATE OR REPLACE FUNCTION sluice.prune_history(batch_size integer DEFAULT 10000)
RETURNS bigint LANGUAGE sql AS $$
  WITH doomed AS (
    SELECT h.id, h.finished_at
    FROM sluice.queues q
    CROSS JOIN LATERAL (
      SELECT x.id, x.finished_at FROM sluice.job_history x
      -- At most 100 years (the client's limit): a larger retention_ms written by
      -- hand would take now() out of the timestamp range, failing every queue.
      WHERE x.queue = q.name AND x.finished_at < now() - least(q.retention_ms, 3155760000000) * interval '1 millisecond'
      LIMIT batch_size
    ) h
    LIMIT batch_size
  ), gone AS (
    DELETE FROM sluice.job_history x USING doomed d
    WHERE x.id = d.id AND x.finished_at = d.finished_at
    RETURNING 1
  )
  SELECT count(*) FROM gone
$$;
