-- Active alerts, one row per queue and crossed threshold (thresholds are the
-- alert_* columns of sluice.queues; NULL or false turns one off):
--   depth       jobs not yet running (available + scheduled + waiting) > alert_max_depth
--   wait        oldest waiting job, in ms > alert_max_wait_ms
--   error_rate  failed / (completed + failed) attempts over 5 minutes > alert_max_error_rate
--   no_worker   alert_no_worker and no live worker (heartbeat within dead_after_ms) serves the queue
--
-- Lease: none. Locks: none (reads).
CREATE OR REPLACE FUNCTION sluice.queue_alerts(dead_after_ms integer DEFAULT 15000)
RETURNS TABLE (queue text, alert text, value float8, threshold float8, message text)
LANGUAGE sql STABLE AS $$
  WITH s AS (
    SELECT s.*, q.alert_max_depth, q.alert_max_wait_ms, q.alert_max_error_rate, q.alert_no_worker,
      (SELECT count(*) FROM sluice.worker_status(dead_after_ms) w WHERE w.alive AND s.queue = ANY(w.queues)) AS alive
    FROM sluice.queue_stats s JOIN sluice.queues q ON q.name = s.queue
    WHERE q.alert_max_depth IS NOT NULL OR q.alert_max_wait_ms IS NOT NULL
       OR q.alert_max_error_rate IS NOT NULL OR q.alert_no_worker
  ), a AS (
    SELECT s.queue, 'depth' AS alert, (s.available + s.scheduled + s.waiting)::float8 AS value,
      s.alert_max_depth::float8 AS threshold,
      format('%s jobs waiting, over %s', s.available + s.scheduled + s.waiting, s.alert_max_depth) AS what
    FROM s WHERE s.alert_max_depth IS NOT NULL AND s.available + s.scheduled + s.waiting > s.alert_max_depth
    UNION ALL
    SELECT s.queue, 'wait', s.oldest_wait_seconds * 1000, s.alert_max_wait_ms,
      format('oldest job has waited %s s, over %s s', round(s.oldest_wait_seconds::numeric, 1),
             trim_scale(round(s.alert_max_wait_ms / 1000.0, 3)))
    FROM s WHERE s.alert_max_wait_ms IS NOT NULL AND s.oldest_wait_seconds * 1000 > s.alert_max_wait_ms
    UNION ALL
    SELECT s.queue, 'error_rate', s.error_rate_5m, s.alert_max_error_rate::numeric::float8,
      format('%s%% of attempts failed in the last 5 min, over %s%%', round((s.error_rate_5m * 100)::numeric, 1),
             trim_scale(round((s.alert_max_error_rate * 100)::numeric, 2)))
    -- The threshold through numeric: the real 0.9 widens to 0.89999997, and a rate of exactly 0.9 would be over it.
    FROM s WHERE s.alert_max_error_rate IS NOT NULL AND s.error_rate_5m > s.alert_max_error_rate::numeric::float8
    UNION ALL
    SELECT s.queue, 'no_worker', 0, 1, 'no live worker serves it'
    FROM s WHERE s.alert_no_worker AND s.alive = 0
  )
  SELECT a.queue, a.alert, a.value, a.threshold, format('queue %s: %s', a.queue, a.what)
  FROM a
$$;
