-- Percentiles of wait (attempted_at - run_at) and run (finished_at -
-- attempted_at, which includes the batched acknowledgement) over the latest
-- completions of each queue: at most sample_size per queue and no older than
-- max_age, read backwards from the (queue, finished_at) index, so the cost is
-- bounded however busy the queue. Queues that keep no history have none.
--
-- Lease: none. Locks: none (reads).
CREATE OR REPLACE FUNCTION sluice.queue_latency(sample_size integer DEFAULT 1000, max_age interval DEFAULT interval '5 minutes')
RETURNS TABLE (queue text, samples bigint, wait_ms_p50 float8, wait_ms_p95 float8, run_ms_p50 float8, run_ms_p95 float8)
LANGUAGE sql STABLE AS $$
  SELECT q.name, count(h.*),
    percentile_cont(0.5) WITHIN GROUP (ORDER BY h.wait_ms),
    percentile_cont(0.95) WITHIN GROUP (ORDER BY h.wait_ms),
    percentile_cont(0.5) WITHIN GROUP (ORDER BY h.run_ms),
    percentile_cont(0.95) WITHIN GROUP (ORDER BY h.run_ms)
  FROM sluice.queues q
  LEFT JOIN LATERAL (
    SELECT extract(epoch FROM x.attempted_at - x.run_at) * 1000 AS wait_ms,
           extract(epoch FROM x.finished_at - x.attempted_at) * 1000 AS run_ms
    FROM sluice.job_history x
    WHERE x.queue = q.name AND x.state = 'completed' AND x.finished_at > now() - max_age
      AND x.attempted_at IS NOT NULL
    ORDER BY x.finished_at DESC LIMIT sample_size
  ) h ON true
  GROUP BY q.name
$$;
