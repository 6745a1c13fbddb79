-- View: the counters of all writers (one shard each) added up per queue and
-- minute. The averages divide by the attempts whose times are in the sums:
-- completions and handler failures. Rescued attempts are in failed but bring
-- no time (a rescue knows neither when the handler started nor how long it
-- ran); dividing by them too would pull the averages towards 0.
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
  (sum(m.wait_ms_sum) / nullif(sum(m.completed) + sum(m.failed) - sum(m.rescued), 0))::float8 AS wait_ms_avg,
  (sum(m.run_ms_sum) / nullif(sum(m.completed) + sum(m.failed) - sum(m.rescued), 0))::float8 AS run_ms_avg,
  sum(m.rescued)::bigint AS rescued
FROM sluice.metrics_minutely m
GROUP BY m.queue, m.minute;
