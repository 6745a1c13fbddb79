-- View: one row per queue with everything `sluice stats` shows. Counts come
-- from sluice.job_depth (jobs/depth.sql), so a huge backlog is estimated
-- instead of scanned; wait from sluice.oldest_waiting_at
-- (queues/oldest-waiting-at.sql).
--
-- job_depth counts scheduled and waiting jobs across all queues at once, or
-- takes them from the statistics when there are too many (no index leads with
-- queue for them): a queue with no such row then has an estimated 0 of them,
-- so every queue is marked estimated.
CREATE OR REPLACE VIEW sluice.queue_stats AS
WITH x AS (
  SELECT * FROM sluice.job_depth()
), e AS (
  SELECT coalesce(bool_or(x.estimated) FILTER (WHERE x.state IN ('scheduled', 'waiting')), false) AS waiting_estimated FROM x
), d AS (
  SELECT x.queue,
    sum(x.jobs) FILTER (WHERE x.state = 'scheduled') AS scheduled,
    sum(x.jobs) FILTER (WHERE x.state = 'available') AS available,
    sum(x.jobs) FILTER (WHERE x.state = 'running') AS running,
    sum(x.jobs) FILTER (WHERE x.state = 'waiting') AS waiting,
    sum(x.jobs) FILTER (WHERE x.state = 'dead') AS dead,
    bool_or(x.estimated) AS estimated
  FROM x GROUP BY x.queue
), w AS (
  SELECT u.queue, count(*) AS workers
  FROM sluice.workers_alive a, unnest(a.queues) AS u(queue) GROUP BY u.queue
), o AS (
  SELECT q.name, sluice.oldest_waiting_at(q.name) AS oldest FROM sluice.queues q
)
SELECT
  q.name AS queue,
  q.paused,
  coalesce(d.scheduled, 0)::bigint AS scheduled,
  coalesce(d.available, 0)::bigint AS available,
  coalesce(d.running, 0)::bigint AS running,
  coalesce(d.dead, 0)::bigint AS dead,
  o.oldest AS oldest_available_at,
  -- NULL when nothing waits (greatest() would turn it into 0).
  CASE WHEN o.oldest IS NOT NULL THEN greatest(extract(epoch FROM now() - o.oldest), 0)::float8 END AS oldest_wait_seconds,
  coalesce(d.waiting, 0)::bigint AS waiting,
  coalesce(d.estimated, false) OR e.waiting_estimated AS estimated,
  coalesce(w.workers, 0)::bigint AS workers_alive,
  t.completed_1m, t.completed_5m, t.completed_15m,
  t.failed_5m, t.retried_5m, t.dead_5m,
  t.completed_per_s_1m, t.completed_per_s_5m, t.completed_per_s_15m,
  t.error_rate_5m, t.wait_ms_avg_5m, t.wait_ms_max_5m, t.run_ms_avg_5m, t.run_ms_max_5m
FROM sluice.queues q
CROSS JOIN e
JOIN o ON o.name = q.name
LEFT JOIN d ON d.queue = q.name
LEFT JOIN w ON w.queue = q.name
LEFT JOIN sluice.queue_throughput t ON t.queue = q.name;
