-- Deletes metric rows older than older_than, at most batch_size per call.
-- Returns how many.
--
-- Lease: none. Locks: the row locks of the DELETE.
CREATE OR REPLACE FUNCTION sluice.prune_metrics(older_than timestamptz, batch_size integer DEFAULT 10000)
RETURNS bigint LANGUAGE sql AS $$
  WITH doomed AS (
    SELECT m.queue, m.minute, m.shard FROM sluice.metrics_minutely m WHERE m.minute < older_than LIMIT batch_size
  ), gone AS (
    DELETE FROM sluice.metrics_minutely m USING doomed d
    WHERE m.queue = d.queue AND m.minute = d.minute AND m.shard = d.shard
    RETURNING 1
  )
  SELECT count(*) FROM gone
$$;
