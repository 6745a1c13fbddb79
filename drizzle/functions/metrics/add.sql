-- Adds to this minute's counters of queue q in the caller's own shard, its
-- server process id: no two sessions alive at once share one, so concurrent
-- writers never wait on one row, whatever their transactions hold (a pid
-- modulo 64 made two producers' open transactions deadlock, and one hold up
-- the acknowledgements of a worker session sharing its shard). Called once per
-- statement, never once per job. rescued is the part of failed that ended by
-- rescue: those attempts bring no wait or run time, and the averages
-- (metrics/by-minute.sql, queues/throughput.sql) divide by the others only.
--
-- Lease: none. Locks: the row lock of the UPSERT on the caller's own shard row.
CREATE OR REPLACE FUNCTION sluice.metrics_add(
  q text, enqueued bigint DEFAULT 0, completed bigint DEFAULT 0, failed bigint DEFAULT 0,
  retried bigint DEFAULT 0, dead bigint DEFAULT 0, cancelled bigint DEFAULT 0,
  wait_ms_sum bigint DEFAULT 0, wait_ms_max bigint DEFAULT 0, run_ms_sum bigint DEFAULT 0, run_ms_max bigint DEFAULT 0,
  rescued bigint DEFAULT 0
) RETURNS void LANGUAGE plpgsql AS $$
#variable_conflict use_column
BEGIN
  INSERT INTO sluice.metrics_minutely AS m (queue, minute, shard, enqueued, completed, failed, retried, dead,
    cancelled, wait_ms_sum, wait_ms_max, run_ms_sum, run_ms_max, rescued)
  VALUES (q, date_trunc('minute', now()), pg_backend_pid(), enqueued, completed, failed, retried,
    dead, cancelled, coalesce(wait_ms_sum, 0), coalesce(wait_ms_max, 0), coalesce(run_ms_sum, 0), coalesce(run_ms_max, 0),
    rescued)
  ON CONFLICT (queue, minute, shard) DO UPDATE SET
    enqueued = m.enqueued + excluded.enqueued,
    completed = m.completed + excluded.completed,
    failed = m.failed + excluded.failed,
    retried = m.retried + excluded.retried,
    dead = m.dead + excluded.dead,
    cancelled = m.cancelled + excluded.cancelled,
    wait_ms_sum = m.wait_ms_sum + excluded.wait_ms_sum,
    wait_ms_max = greatest(m.wait_ms_max, excluded.wait_ms_max),
    run_ms_sum = m.run_ms_sum + excluded.run_ms_sum,
    run_ms_max = greatest(m.run_ms_max, excluded.run_ms_max),
    rescued = m.rescued + excluded.rescued;
END $$;
-- The signature before rescued (migration 0024), dropped here rather than in
-- the migration: the migration commits before the function files apply, and
-- every enqueue and acknowledgement calls this function in between.
DROP FUNCTION IF EXISTS sluice.metrics_add(text, bigint, bigint, bigint, bigint, bigint, bigint, bigint, bigint, bigint, bigint);
