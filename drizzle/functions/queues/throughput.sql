-- View: per queue over the last 1, 5 and 15 minutes. A window of N minutes is
-- the N whole minutes before the current one plus the current one so far;
-- rates divide by that exact span, so they do not dip at the start of a minute.
-- Wait and run averages and maxima are over the timed attempts (not rescues,
-- which bring no time: metrics/by-minute.sql), and NULL when there were none:
-- a 0 would read as instant.
CREATE OR REPLACE VIEW sluice.queue_throughput AS
WITH w AS (
  SELECT date_trunc('minute', now()) AS this_minute, now() AS at
), m AS (
  SELECT b.queue, b.minute, b.enqueued, b.completed, b.failed, b.retried, b.dead, b.cancelled,
    b.wait_ms_sum, b.wait_ms_max, b.run_ms_sum, b.run_ms_max, b.rescued,
    b.minute >= w.this_minute - interval '1 minute' AS in_1m,
    b.minute >= w.this_minute - interval '5 minutes' AS in_5m
  FROM sluice.metrics_by_minute b, w
  WHERE b.minute >= w.this_minute - interval '15 minutes'
), agg AS (
  SELECT m.queue,
    sum(m.enqueued) FILTER (WHERE in_1m) AS enqueued_1m, sum(m.enqueued) FILTER (WHERE in_5m) AS enqueued_5m,
    sum(m.enqueued) AS enqueued_15m,
    sum(m.completed) FILTER (WHERE in_1m) AS completed_1m, sum(m.completed) FILTER (WHERE in_5m) AS completed_5m,
    sum(m.completed) AS completed_15m,
    sum(m.failed) FILTER (WHERE in_1m) AS failed_1m, sum(m.failed) FILTER (WHERE in_5m) AS failed_5m,
    sum(m.failed) AS failed_15m,
    sum(m.retried) FILTER (WHERE in_5m) AS retried_5m,
    sum(m.dead) FILTER (WHERE in_5m) AS dead_5m,
    sum(m.cancelled) FILTER (WHERE in_5m) AS cancelled_5m,
    sum(m.completed + m.failed - m.rescued) FILTER (WHERE in_5m) AS timed_5m,
    sum(m.wait_ms_sum) FILTER (WHERE in_5m) AS wait_ms_sum_5m, max(m.wait_ms_max) FILTER (WHERE in_5m) AS wait_ms_max_5m,
    sum(m.run_ms_sum) FILTER (WHERE in_5m) AS run_ms_sum_5m, max(m.run_ms_max) FILTER (WHERE in_5m) AS run_ms_max_5m
  FROM m GROUP BY m.queue
)
SELECT q.name AS queue,
  coalesce(a.enqueued_1m, 0)::bigint AS enqueued_1m,
  coalesce(a.enqueued_5m, 0)::bigint AS enqueued_5m,
  coalesce(a.enqueued_15m, 0)::bigint AS enqueued_15m,
  coalesce(a.completed_1m, 0)::bigint AS completed_1m,
  coalesce(a.completed_5m, 0)::bigint AS completed_5m,
  coalesce(a.completed_15m, 0)::bigint AS completed_15m,
  coalesce(a.failed_1m, 0)::bigint AS failed_1m,
  coalesce(a.failed_5m, 0)::bigint AS failed_5m,
  coalesce(a.failed_15m, 0)::bigint AS failed_15m,
  coalesce(a.retried_5m, 0)::bigint AS retried_5m,
  coalesce(a.dead_5m, 0)::bigint AS dead_5m,
  coalesce(a.cancelled_5m, 0)::bigint AS cancelled_5m,
  (coalesce(a.completed_1m, 0) / extract(epoch FROM w.at - (w.this_minute - interval '1 minute')))::float8 AS completed_per_s_1m,
  (coalesce(a.completed_5m, 0) / extract(epoch FROM w.at - (w.this_minute - interval '5 minutes')))::float8 AS completed_per_s_5m,
  (coalesce(a.completed_15m, 0) / extract(epoch FROM w.at - (w.this_minute - interval '15 minutes')))::float8 AS completed_per_s_15m,
  (a.failed_5m / nullif(a.completed_5m + a.failed_5m, 0))::float8 AS error_rate_5m,
  (a.wait_ms_sum_5m / nullif(a.timed_5m, 0))::float8 AS wait_ms_avg_5m,
  CASE WHEN a.timed_5m > 0 THEN a.wait_ms_max_5m END::bigint AS wait_ms_max_5m,
  (a.run_ms_sum_5m / nullif(a.timed_5m, 0))::float8 AS run_ms_avg_5m,
  CASE WHEN a.timed_5m > 0 THEN a.run_ms_max_5m END::bigint AS run_ms_max_5m
FROM sluice.queues q CROSS JOIN w LEFT JOIN agg a ON a.queue = q.name;
