-- Operations: depth with estimates, metrics views, alerts, queue settings,
-- retention, the doctor's checks and operator listings. Every function here
-- is callable from psql; docs/sql-reference.md has example queries.

-- A row per (queue, name, state) combination in the planner's statistics, so
-- depth on a table of millions of rows is read from ANALYZE's sample instead
-- of a count(*) that would scan it.
CREATE STATISTICS sluice.jobs_queue_name_state_stats (mcv) ON queue, name, state FROM sluice.jobs;
--> statement-breakpoint
ALTER STATISTICS sluice.jobs_queue_name_state_stats SET STATISTICS 500;
--> statement-breakpoint
CREATE STATISTICS sluice.dead_jobs_queue_name_stats (mcv) ON queue, name FROM sluice.dead_jobs;
--> statement-breakpoint
-- Counters are updated in place every few seconds and workers heartbeat all
-- day: free space on each page lets those updates stay HOT (no index writes,
-- no bloat), and early vacuums keep the few live rows on few pages.
ALTER TABLE sluice.metrics_minutely SET (fillfactor = 70, autovacuum_vacuum_scale_factor = 0.05);
--> statement-breakpoint
ALTER TABLE sluice.workers SET (fillfactor = 50, autovacuum_vacuum_scale_factor = 0.05, autovacuum_vacuum_threshold = 100);
--> statement-breakpoint
-- Rows in a table, by the planner's statistics scaled to the table's current
-- size (as the planner does). Before the first ANALYZE it guesses from the size.
CREATE FUNCTION sluice.relation_rows_estimate(rel regclass)
RETURNS float8 LANGUAGE sql STABLE AS $$
  SELECT CASE
    WHEN c.reltuples < 0 OR c.relpages = 0 THEN (pg_relation_size(c.oid) / current_setting('block_size')::float8) * 40
    ELSE c.reltuples / c.relpages * (pg_relation_size(c.oid) / current_setting('block_size')::float8)
  END
  FROM pg_class c WHERE c.oid = rel
$$;
--> statement-breakpoint
-- pg_stats_ext shows a table's statistics to its owner only; this definer
-- function lets the runtime and read-only roles read the two sluice ones.
CREATE FUNCTION sluice.mcv_estimates()
RETURNS TABLE (source text, queue text, name text, state text, jobs bigint)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
  WITH s AS (
    SELECT e.tablename::text AS tablename, e.attnames, e.most_common_vals AS vals, e.most_common_freqs AS freqs,
      sluice.relation_rows_estimate(format('%I.%I', e.schemaname, e.tablename)::regclass) AS total
    FROM pg_stats_ext e
    WHERE e.statistics_schemaname = 'sluice'
      AND e.statistics_name IN ('jobs_queue_name_state_stats', 'dead_jobs_queue_name_stats')
      AND e.most_common_vals IS NOT NULL
  )
  SELECT s.tablename,
    s.vals[i][array_position(s.attnames, 'queue'::name)],
    s.vals[i][array_position(s.attnames, 'name'::name)],
    CASE WHEN s.tablename = 'dead_jobs' THEN 'dead' ELSE s.vals[i][array_position(s.attnames, 'state'::name)] END,
    round(s.freqs[i] * s.total)::bigint
  FROM s, generate_subscripts(s.freqs, 1) AS i
$$;
--> statement-breakpoint
-- Jobs per (queue, name, state), dead ones included. Exact while a table
-- holds fewer than exact_below rows; above that, waiting states come from the
-- planner's statistics (estimated = true) and running jobs, which are few and
-- indexed, are still counted.
CREATE FUNCTION sluice.job_depth(exact_below bigint DEFAULT 100000)
RETURNS TABLE (queue text, name text, state text, jobs bigint, estimated boolean)
LANGUAGE plpgsql STABLE AS $$
#variable_conflict use_column
DECLARE
  live_rows float8 := sluice.relation_rows_estimate('sluice.jobs'::regclass);
  dead_rows float8 := sluice.relation_rows_estimate('sluice.dead_jobs'::regclass);
  stats_live boolean;
  stats_dead boolean;
BEGIN
  SELECT bool_or(m.source = 'jobs'), bool_or(m.source = 'dead_jobs') INTO stats_live, stats_dead
  FROM sluice.mcv_estimates() m;
  IF coalesce(live_rows, 0) < exact_below OR NOT coalesce(stats_live, false) THEN
    RETURN QUERY SELECT j.queue, j.name, j.state, count(*), false FROM sluice.jobs j GROUP BY 1, 2, 3;
  ELSE
    RETURN QUERY SELECT j.queue, j.name, 'running'::text, count(*), false
      FROM sluice.jobs j WHERE j.state = 'running' GROUP BY 1, 2;
    RETURN QUERY SELECT m.queue, m.name, m.state, m.jobs, true
      FROM sluice.mcv_estimates() m WHERE m.source = 'jobs' AND m.state <> 'running' AND m.jobs > 0;
  END IF;
  IF coalesce(dead_rows, 0) < exact_below OR NOT coalesce(stats_dead, false) THEN
    RETURN QUERY SELECT d.queue, d.name, 'dead'::text, count(*), false FROM sluice.dead_jobs d GROUP BY 1, 2;
  ELSE
    RETURN QUERY SELECT m.queue, m.name, m.state, m.jobs, true
      FROM sluice.mcv_estimates() m WHERE m.source = 'dead_jobs' AND m.jobs > 0;
  END IF;
END $$;
--> statement-breakpoint
-- When the longest-waiting job of a queue became due: the oldest available
-- job, or a scheduled one already due that no promoter has moved yet. The
-- available side walks the claim index one priority at a time (a loose index
-- scan), so it costs a few index probes however long the backlog is.
CREATE FUNCTION sluice.oldest_waiting_at(queue_name text)
RETURNS timestamptz LANGUAGE sql STABLE AS $$
  WITH RECURSIVE prio(p) AS (
    (SELECT j.priority FROM sluice.jobs j WHERE j.state = 'available' AND j.queue = queue_name
     ORDER BY j.priority DESC LIMIT 1)
    UNION ALL
    SELECT (SELECT j.priority FROM sluice.jobs j WHERE j.state = 'available' AND j.queue = queue_name
            AND j.priority < prio.p ORDER BY j.priority DESC LIMIT 1)
    FROM prio WHERE prio.p IS NOT NULL
  )
  SELECT least(
    (SELECT min((SELECT j.run_at FROM sluice.jobs j WHERE j.state = 'available' AND j.queue = queue_name
                 AND j.priority = prio.p ORDER BY j.run_at LIMIT 1))
     FROM prio WHERE prio.p IS NOT NULL),
    (SELECT j.run_at FROM sluice.jobs j WHERE j.state = 'scheduled' AND j.run_at <= now() AND j.queue = queue_name
     ORDER BY j.run_at LIMIT 1))
$$;
--> statement-breakpoint
-- The counters of all writers (one shard each) added up per queue and minute.
CREATE VIEW sluice.metrics_by_minute AS
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
--> statement-breakpoint
-- Per queue over the last 1, 5 and 15 minutes. A window of N minutes is the N
-- whole minutes before the current one plus the current one so far; rates
-- divide by that exact span, so they do not dip at the start of a minute.
CREATE VIEW sluice.queue_throughput AS
WITH w AS (
  SELECT date_trunc('minute', now()) AS this_minute, now() AS at
), m AS (
  SELECT b.queue, b.minute, b.enqueued, b.completed, b.failed, b.retried, b.dead, b.cancelled,
    b.wait_ms_sum, b.wait_ms_max, b.run_ms_sum, b.run_ms_max,
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
  (a.wait_ms_sum_5m / nullif(a.completed_5m + a.failed_5m, 0))::float8 AS wait_ms_avg_5m,
  CASE WHEN a.completed_5m + a.failed_5m > 0 THEN a.wait_ms_max_5m END::bigint AS wait_ms_max_5m,
  (a.run_ms_sum_5m / nullif(a.completed_5m + a.failed_5m, 0))::float8 AS run_ms_avg_5m,
  CASE WHEN a.completed_5m + a.failed_5m > 0 THEN a.run_ms_max_5m END::bigint AS run_ms_max_5m
FROM sluice.queues q CROSS JOIN w LEFT JOIN agg a ON a.queue = q.name;
--> statement-breakpoint
-- Percentiles of wait (attempted_at - run_at) and run (finished_at -
-- attempted_at, which includes the batched acknowledgement) over the latest
-- completions of each queue: at most sample_size per queue and no older than
-- max_age, read backwards from the (queue, finished_at) index, so the cost is
-- bounded however busy the queue. Queues that keep no history have none.
CREATE FUNCTION sluice.queue_latency(sample_size integer DEFAULT 1000, max_age interval DEFAULT interval '5 minutes')
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
--> statement-breakpoint
-- A worker is alive while its heartbeat is younger than dead_after_ms (the
-- workers' workerDeadAfterMs; 15 s by default).
CREATE FUNCTION sluice.worker_status(dead_after_ms integer DEFAULT 15000)
RETURNS TABLE (id text, service text, host text, pid integer, queues text[], concurrency integer, version text,
  started_at timestamptz, heartbeat_at timestamptz, alive boolean, running bigint)
LANGUAGE sql STABLE AS $$
  SELECT w.id, w.service, w.host, w.pid, w.queues, w.concurrency, w.version, w.started_at, w.heartbeat_at,
    w.heartbeat_at > now() - make_interval(secs => dead_after_ms / 1000.0),
    (SELECT count(*) FROM sluice.jobs j WHERE j.state = 'running' AND j.locked_by = w.id)
  FROM sluice.workers w
$$;
--> statement-breakpoint
CREATE VIEW sluice.workers_alive AS
SELECT * FROM sluice.worker_status() WHERE alive;
--> statement-breakpoint
-- One row per queue with everything `sluice stats` shows. The first columns
-- keep the shape sluice.queue_stats had; counts now come from job_depth(), so
-- a huge backlog is estimated instead of scanned.
CREATE OR REPLACE VIEW sluice.queue_stats AS
WITH d AS (
  SELECT x.queue,
    sum(x.jobs) FILTER (WHERE x.state = 'scheduled') AS scheduled,
    sum(x.jobs) FILTER (WHERE x.state = 'available') AS available,
    sum(x.jobs) FILTER (WHERE x.state = 'running') AS running,
    sum(x.jobs) FILTER (WHERE x.state = 'waiting') AS waiting,
    sum(x.jobs) FILTER (WHERE x.state = 'dead') AS dead,
    bool_or(x.estimated) AS estimated
  FROM sluice.job_depth() x GROUP BY x.queue
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
  coalesce(d.estimated, false) AS estimated,
  coalesce(w.workers, 0)::bigint AS workers_alive,
  t.completed_1m, t.completed_5m, t.completed_15m,
  t.failed_5m, t.retried_5m, t.dead_5m,
  t.completed_per_s_1m, t.completed_per_s_5m, t.completed_per_s_15m,
  t.error_rate_5m, t.wait_ms_avg_5m, t.wait_ms_max_5m, t.run_ms_avg_5m, t.run_ms_max_5m
FROM sluice.queues q
JOIN o ON o.name = q.name
LEFT JOIN d ON d.queue = q.name
LEFT JOIN w ON w.queue = q.name
LEFT JOIN sluice.queue_throughput t ON t.queue = q.name;
--> statement-breakpoint
-- Active alerts, one row per queue and crossed threshold (thresholds are the
-- alert_* columns of sluice.queues; NULL or false turns one off):
--   depth       jobs not yet running (available + scheduled + waiting) > alert_max_depth
--   wait        oldest waiting job, in ms > alert_max_wait_ms
--   error_rate  failed / (completed + failed) attempts over 5 minutes > alert_max_error_rate
--   no_worker   alert_no_worker and no live worker (heartbeat within dead_after_ms) serves the queue
CREATE FUNCTION sluice.queue_alerts(dead_after_ms integer DEFAULT 15000)
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
    FROM s WHERE s.alert_max_error_rate IS NOT NULL AND s.error_rate_5m > s.alert_max_error_rate
    UNION ALL
    SELECT s.queue, 'no_worker', 0, 1, 'no live worker serves it'
    FROM s WHERE s.alert_no_worker AND s.alive = 0
  )
  SELECT a.queue, a.alert, a.value, a.threshold, format('queue %s: %s', a.queue, a.what)
  FROM a
$$;
--> statement-breakpoint
CREATE VIEW sluice.active_alerts AS SELECT * FROM sluice.queue_alerts();
--> statement-breakpoint
-- The partitions of job_history with their ranges (NULL for the default one).
CREATE FUNCTION sluice.history_partitions()
RETURNS TABLE (partition text, range_from timestamptz, range_to timestamptz, is_default boolean, rows_estimate bigint)
LANGUAGE sql STABLE AS $$
  SELECT c.relname::text,
    substring(pg_get_expr(c.relpartbound, c.oid) FROM $r$FROM \('([^']+)'\)$r$)::timestamptz,
    substring(pg_get_expr(c.relpartbound, c.oid) FROM $r$TO \('([^']+)'\)$r$)::timestamptz,
    pg_get_expr(c.relpartbound, c.oid) = 'DEFAULT',
    greatest(c.reltuples, 0)::bigint
  FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
  WHERE i.inhparent = 'sluice.job_history'::regclass
  ORDER BY 2 NULLS FIRST
$$;
--> statement-breakpoint
-- Creating and dropping partitions is DDL, which the runtime role may not
-- run: these two run as the schema owner, and do nothing else. A short lock
-- timeout keeps a drop from queueing completions behind it: the next run
-- tries again.
CREATE FUNCTION sluice.create_history_partitions(days_ahead integer DEFAULT 7)
RETURNS integer LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp SET lock_timeout = '2s' AS $$
BEGIN
  IF days_ahead IS NULL OR days_ahead NOT BETWEEN 0 AND 366 THEN
    RAISE EXCEPTION 'sluice.create_history_partitions: days_ahead must be between 0 and 366' USING ERRCODE = '22023';
  END IF;
  RETURN sluice.ensure_history_partitions(days_ahead);
END $$;
--> statement-breakpoint
CREATE FUNCTION sluice.drop_history_partitions(ended_before timestamptz)
RETURNS SETOF text LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp SET lock_timeout = '2s' AS $$
DECLARE
  p record;
BEGIN
  IF ended_before IS NULL OR ended_before > now() THEN
    RAISE EXCEPTION 'sluice.drop_history_partitions: ended_before must be a time in the past' USING ERRCODE = '22023';
  END IF;
  FOR p IN SELECT * FROM sluice.history_partitions() h
           WHERE NOT h.is_default AND h.range_to IS NOT NULL AND h.range_to <= ended_before LOOP
    EXECUTE format('DROP TABLE sluice.%I', p.partition);
    RETURN NEXT p.partition;
  END LOOP;
END $$;
--> statement-breakpoint
REVOKE EXECUTE ON FUNCTION sluice.create_history_partitions(integer) FROM PUBLIC;
--> statement-breakpoint
REVOKE EXECUTE ON FUNCTION sluice.drop_history_partitions(timestamptz) FROM PUBLIC;
--> statement-breakpoint
-- Whole partitions can only go once every queue's retention has passed; the
-- history rows of queues with a shorter retention (and anything in the
-- default partition) are deleted here, at most batch_size rows per call.
CREATE FUNCTION sluice.prune_history(batch_size integer DEFAULT 10000)
RETURNS bigint LANGUAGE sql AS $$
  WITH doomed AS (
    SELECT h.id, h.finished_at
    FROM sluice.queues q
    CROSS JOIN LATERAL (
      SELECT x.id, x.finished_at FROM sluice.job_history x
      WHERE x.queue = q.name AND x.finished_at < now() - q.retention_ms * interval '1 millisecond'
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
--> statement-breakpoint
CREATE FUNCTION sluice.prune_metrics(older_than timestamptz, batch_size integer DEFAULT 10000)
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
--> statement-breakpoint
-- Deletes dead jobs for good. At least one filter is required, so a call
-- with no arguments purges nothing: pass died_before => now() to mean all.
CREATE FUNCTION sluice.dead_purge(
  queue_name text DEFAULT NULL, job_name text DEFAULT NULL, died_before timestamptz DEFAULT NULL, ids bigint[] DEFAULT NULL
) RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
  n bigint;
BEGIN
  IF queue_name IS NULL AND job_name IS NULL AND died_before IS NULL AND ids IS NULL THEN
    RAISE EXCEPTION 'sluice.dead_purge: give a queue, a job name, died_before or ids' USING ERRCODE = '22023';
  END IF;
  DELETE FROM sluice.dead_jobs d
  WHERE (queue_name IS NULL OR d.queue = queue_name)
    AND (job_name IS NULL OR d.name = job_name)
    AND (died_before IS NULL OR d.died_at < died_before)
    AND (ids IS NULL OR d.id = ANY(ids));
  GET DIAGNOSTICS n = ROW_COUNT;
  RETURN n;
END $$;
--> statement-breakpoint
-- Jobs wherever they are (live, history, dead), newest id first, for
-- operators. Keyset pagination: pass the last id of a page as before_id.
-- Payloads are left out on purpose; read one job to see its payload.
CREATE FUNCTION sluice.job_list(
  queue_name text DEFAULT NULL, job_state text DEFAULT NULL, job_name text DEFAULT NULL,
  before_id bigint DEFAULT NULL, page_size integer DEFAULT 50
) RETURNS TABLE (id bigint, queue text, name text, state text, priority smallint, attempt integer,
  max_attempts integer, run_at timestamptz, created_at timestamptz, attempted_at timestamptz,
  finished_at timestamptz, locked_by text, reason text, last_error text)
LANGUAGE plpgsql STABLE AS $$
#variable_conflict use_column
BEGIN
  IF page_size IS NULL OR page_size NOT BETWEEN 1 AND 10000 THEN
    RAISE EXCEPTION 'sluice.job_list: page_size must be between 1 and 10000' USING ERRCODE = '22023';
  END IF;
  IF job_state IS NOT NULL AND job_state NOT IN
     ('waiting', 'scheduled', 'available', 'running', 'completed', 'cancelled', 'dropped', 'dead') THEN
    RAISE EXCEPTION 'sluice.job_list: unknown state' USING ERRCODE = '22023';
  END IF;
  RETURN QUERY
  SELECT * FROM (
    (SELECT j.id, j.queue, j.name, j.state, j.priority, j.attempt, j.max_attempts, j.run_at, j.created_at,
       j.attempted_at, NULL::timestamptz, j.locked_by, NULL::text, left(j.errors->-1->>'message', 200)
     FROM sluice.jobs j
     WHERE (job_state IS NULL OR j.state = job_state)
       AND (job_state IS NULL OR job_state IN ('waiting', 'scheduled', 'available', 'running'))
       AND (queue_name IS NULL OR j.queue = queue_name) AND (job_name IS NULL OR j.name = job_name)
       AND (before_id IS NULL OR j.id < before_id)
     ORDER BY j.id DESC LIMIT page_size)
    UNION ALL
    (SELECT h.id, h.queue, h.name, h.state, h.priority, h.attempt, h.max_attempts, h.run_at, h.created_at,
       h.attempted_at, h.finished_at, NULL, NULL, left(h.errors->-1->>'message', 200)
     FROM sluice.job_history h
     WHERE (job_state IS NULL OR h.state = job_state)
       AND (job_state IS NULL OR job_state IN ('completed', 'cancelled', 'dropped'))
       AND (queue_name IS NULL OR h.queue = queue_name) AND (job_name IS NULL OR h.name = job_name)
       AND (before_id IS NULL OR h.id < before_id)
     ORDER BY h.id DESC LIMIT page_size)
    UNION ALL
    (SELECT d.id, d.queue, d.name, 'dead', d.priority, d.attempt, d.max_attempts, d.run_at, d.created_at,
       d.attempted_at, d.died_at, NULL, d.reason, left(d.errors->-1->>'message', 200)
     FROM sluice.dead_jobs d
     WHERE (job_state IS NULL OR job_state = 'dead')
       AND (queue_name IS NULL OR d.queue = queue_name) AND (job_name IS NULL OR d.name = job_name)
       AND (before_id IS NULL OR d.id < before_id)
     ORDER BY d.id DESC LIMIT page_size)
  ) x
  ORDER BY 1 DESC LIMIT page_size;
END $$;
--> statement-breakpoint
-- The doctor's checks, one row each: 'ok' or 'warn' with what to do.
--   dead_tuples     a sluice table whose dead rows outnumber a fifth of its live ones (and 10,000)
--   bloat           a table estimated more than half empty space and over 8 MB
--   partitions      a day from today to today + 2 with no history partition, or rows in the default one
--   long_xact       a transaction (or prepared transaction, or replication slot) older than long_xact_ms
--                   holding back the xmin horizon, so vacuum cannot remove dead rows
CREATE FUNCTION sluice.doctor(long_xact_ms integer DEFAULT 300000)
RETURNS TABLE (check_name text, status text, subject text, value float8, detail text)
LANGUAGE plpgsql STABLE AS $$
#variable_conflict use_column
DECLARE
  r record;
  found_any boolean;
  block float8 := current_setting('block_size')::float8;
  horizon interval := make_interval(secs => long_xact_ms / 1000.0);
BEGIN
  found_any := false;
  FOR r IN SELECT t.relname::text AS rel, t.n_dead_tup, t.n_live_tup, t.last_autovacuum
           FROM pg_stat_user_tables t WHERE t.schemaname = 'sluice'
             AND t.n_dead_tup > 10000 AND t.n_dead_tup > 0.2 * t.n_live_tup ORDER BY t.n_dead_tup DESC LOOP
    found_any := true;
    RETURN QUERY SELECT 'dead_tuples', 'warn', 'sluice.' || r.rel, r.n_dead_tup::float8,
      format('%s dead rows beside %s live (last autovacuum %s): look for a long transaction below, or run VACUUM sluice.%I',
             r.n_dead_tup, r.n_live_tup, coalesce(r.last_autovacuum::text, 'never'), r.rel);
  END LOOP;
  IF NOT found_any THEN
    RETURN QUERY SELECT 'dead_tuples', 'ok', 'sluice', 0::float8, 'no table carries many dead rows';
  END IF;

  found_any := false;
  FOR r IN
    WITH widths AS (
      SELECT s.tablename, sum(s.avg_width) AS width FROM pg_stats s WHERE s.schemaname = 'sluice' GROUP BY 1
    )
    SELECT c.relname::text AS rel, c.relpages::float8 * block AS actual_bytes,
      ceil(c.reltuples * (w.width + 28) / (block * coalesce(
        (SELECT option_value::float8 FROM pg_options_to_table(c.reloptions) WHERE option_name = 'fillfactor'), 100) / 100))
        * block AS expected_bytes
    FROM pg_class c JOIN widths w ON w.tablename = c.relname
    WHERE c.relnamespace = 'sluice'::regnamespace AND c.relkind = 'r' AND c.reltuples >= 0
  LOOP
    IF r.actual_bytes > 8 * 1024 * 1024 AND r.expected_bytes < 0.5 * r.actual_bytes THEN
      found_any := true;
      RETURN QUERY SELECT 'bloat', 'warn', 'sluice.' || r.rel, 1 - r.expected_bytes / r.actual_bytes,
        format('about %s of %s is free space: VACUUM makes it reusable; pg_repack or VACUUM FULL (locks) gives it back',
               pg_size_pretty((r.actual_bytes - r.expected_bytes)::bigint), pg_size_pretty(r.actual_bytes::bigint));
    END IF;
  END LOOP;
  IF NOT found_any THEN
    RETURN QUERY SELECT 'bloat', 'ok', 'sluice', 0::float8, 'no table is mostly empty space (estimate from statistics)';
  END IF;

  found_any := false;
  FOR r IN SELECT d::date AS day FROM generate_series((now() AT TIME ZONE 'UTC')::date,
             (now() AT TIME ZONE 'UTC')::date + 2, interval '1 day') AS d
           WHERE NOT EXISTS (SELECT 1 FROM sluice.history_partitions() p
             WHERE NOT p.is_default AND p.range_from <= (d::date::timestamp AT TIME ZONE 'UTC')
               AND p.range_to > (d::date::timestamp AT TIME ZONE 'UTC')) LOOP
    found_any := true;
    RETURN QUERY SELECT 'partitions', 'warn', 'sluice.job_history', 0::float8,
      format('no partition for %s: its rows go to the default partition; run `sluice prune` (or keep a worker running)', r.day);
  END LOOP;
  IF EXISTS (SELECT 1 FROM sluice.job_history_default LIMIT 1) THEN
    found_any := true;
    RETURN QUERY SELECT 'partitions', 'warn', 'sluice.job_history_default',
      (SELECT count(*) FROM (SELECT 1 FROM sluice.job_history_default LIMIT 100000) x)::float8,
      'rows in the default partition are deleted row by row by retention instead of dropped with their day';
  END IF;
  IF NOT found_any THEN
    RETURN QUERY SELECT 'partitions', 'ok', 'sluice.job_history', 0::float8, 'partitions exist for today and the next 2 days';
  END IF;

  found_any := false;
  FOR r IN SELECT a.pid, a.usename::text AS who, a.state AS st, a.datname::text AS db,
             extract(epoch FROM now() - coalesce(a.xact_start, a.backend_start))::float8 AS secs
           FROM pg_stat_activity a
           WHERE a.backend_xmin IS NOT NULL AND a.pid <> pg_backend_pid()
             AND coalesce(a.xact_start, a.backend_start) < now() - horizon
           ORDER BY a.xact_start LOOP
    found_any := true;
    RETURN QUERY SELECT 'long_xact', 'warn', format('pid %s (%s, db %s)', r.pid, coalesce(r.who, '?'), coalesce(r.db, '?')), r.secs,
      format('%s transaction open for %s s holds back vacuum: end it, or SELECT pg_terminate_backend(%s)',
             coalesce(r.st, 'a'), round(r.secs), r.pid);
  END LOOP;
  FOR r IN SELECT p.gid, extract(epoch FROM now() - p.prepared)::float8 AS secs FROM pg_prepared_xacts p
           WHERE p.prepared < now() - horizon LOOP
    found_any := true;
    RETURN QUERY SELECT 'long_xact', 'warn', 'prepared transaction ' || r.gid, r.secs,
      format('prepared %s s ago and never committed: COMMIT PREPARED or ROLLBACK PREPARED %L', round(r.secs), r.gid);
  END LOOP;
  FOR r IN SELECT s.slot_name::text AS slot FROM pg_replication_slots s
           WHERE NOT s.active AND (s.xmin IS NOT NULL OR s.catalog_xmin IS NOT NULL) LOOP
    found_any := true;
    RETURN QUERY SELECT 'long_xact', 'warn', 'replication slot ' || r.slot, 0::float8,
      format('inactive slot keeps old rows alive: drop it with SELECT pg_drop_replication_slot(%L) if unused', r.slot);
  END LOOP;
  IF NOT found_any THEN
    RETURN QUERY SELECT 'long_xact', 'ok', 'cluster', 0::float8,
      format('nothing older than %s s holds back vacuum (sessions of other users are visible with pg_read_all_stats)', long_xact_ms / 1000);
  END IF;
END $$;
