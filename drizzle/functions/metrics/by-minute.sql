-- View: the counters of all writers (one shard each) added up per queue and
-- minute.
CREATE OR REPLACE VIEW sluice.metrics_by_minute AS
SELECT m.queue, m.minute,
  sum(m.enqueued)::bigint AS enqueued,
  sum(m.completed)::bigint AS completed,
  sum(m.failed)::bigint AS failed,
  sum(m.retried)::bigint AS retried,
  sum(m.dead)::bigint AS dead,
  sum(m.cancelled)::bigint AS cancelled,
  sum(m.wait_ms_sum)::bigint AS wait_ms_sum,
  max(m.wait_ms_max)::bigint AS wait_ms_max,
  sum(m.run_ms_sum)::bigint AS run_ms_sum,
  max(m.run_ms_max)::bigint AS run_ms_max,
  (sum(m.wait_ms_sum) / nullif(sum(m.completed) + sum(m.failed), 0))::float8 AS wait_ms_avg,
  (sum(m.run_ms_sum) / nullif(sum(m.completed) + sum(m.failed), 0))::float8 AS run_ms_avg
FROM sluice.metrics_minutely m
GROUP BY m.queue, m.minute;
