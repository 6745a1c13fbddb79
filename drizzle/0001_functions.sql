-- sluice functions and views. Every operation a TypeScript client performs is
-- also callable from psql, a trigger or another language through these.

-- A queue table is churned (insert, update, delete) all day: vacuum it early
-- and often so dead tuples never pile up in the claim index.
ALTER TABLE sluice.jobs SET (
  autovacuum_vacuum_scale_factor = 0.01,
  autovacuum_vacuum_threshold = 1000,
  autovacuum_analyze_scale_factor = 0.02,
  autovacuum_vacuum_cost_delay = 0,
  fillfactor = 80
);
--> statement-breakpoint
CREATE TABLE sluice.job_history_default PARTITION OF sluice.job_history DEFAULT;
--> statement-breakpoint
CREATE FUNCTION sluice.ensure_history_partitions(days_ahead integer DEFAULT 7)
RETURNS integer LANGUAGE plpgsql AS $$
DECLARE
  day date;
  part text;
  created integer := 0;
BEGIN
  FOR i IN 0..days_ahead LOOP
    day := (now() AT TIME ZONE 'UTC')::date + i;
    part := 'job_history_' || to_char(day, 'YYYYMMDD');
    IF to_regclass('sluice.' || part) IS NULL THEN
      BEGIN
        EXECUTE format(
          'CREATE TABLE sluice.%I PARTITION OF sluice.job_history FOR VALUES FROM (%L) TO (%L)',
          part, day::timestamp AT TIME ZONE 'UTC', (day + 1)::timestamp AT TIME ZONE 'UTC');
        created := created + 1;
      EXCEPTION WHEN duplicate_table OR object_not_in_prerequisite_state OR check_violation THEN
        -- Another process made it first, or the default partition already
        -- holds rows of that day: the default keeps them, nothing is lost.
        NULL;
      END;
    END IF;
  END LOOP;
  RETURN created;
END $$;
--> statement-breakpoint
SELECT sluice.ensure_history_partitions(7);
--> statement-breakpoint
CREATE FUNCTION sluice.check_name(kind text, value text)
RETURNS void LANGUAGE plpgsql IMMUTABLE AS $$
BEGIN
  IF value IS NULL OR value !~ '^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$' THEN
    RAISE EXCEPTION 'sluice: invalid % name: must match ^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$', kind
      USING ERRCODE = '22023';
  END IF;
END $$;
--> statement-breakpoint
-- Delay before the next attempt. The exponent is capped so a large attempt
-- number cannot overflow; jitter spreads retries of jobs that failed together.
CREATE FUNCTION sluice.retry_delay_ms(
  attempt integer, kind text, base_ms integer, factor real, max_ms integer, jitter real
) RETURNS bigint LANGUAGE sql VOLATILE AS $$
  SELECT least(
    max_ms::float8,
    greatest(0, CASE WHEN kind = 'fixed' THEN base_ms::float8
                     ELSE base_ms * power(factor::float8, least(greatest(attempt - 1, 0), 60)) END)
      * (1 + jitter * (2 * random() - 1))
  )::bigint
$$;
--> statement-breakpoint
-- Makes due scheduled jobs claimable, oldest first, in bounded batches.
CREATE FUNCTION sluice.promote_due(batch_size integer DEFAULT 1000)
RETURNS integer LANGUAGE plpgsql AS $$
DECLARE
  promoted integer;
  qs text[];
  q text;
BEGIN
  WITH due AS (
    SELECT id FROM sluice.jobs
    WHERE state = 'scheduled' AND run_at <= now()
    ORDER BY run_at
    LIMIT batch_size
    FOR UPDATE SKIP LOCKED
  ), upd AS (
    UPDATE sluice.jobs j SET state = 'available' FROM due WHERE j.id = due.id RETURNING j.queue
  )
  SELECT count(*), array_agg(DISTINCT upd.queue) INTO promoted, qs FROM upd;
  IF promoted > 0 THEN
    FOREACH q IN ARRAY qs LOOP
      PERFORM pg_notify('sluice_jobs', q);
    END LOOP;
  END IF;
  RETURN promoted;
END $$;
--> statement-breakpoint
CREATE VIEW sluice.queue_stats AS
SELECT
  q.name AS queue,
  q.paused,
  coalesce(l.scheduled, 0) AS scheduled,
  coalesce(l.available, 0) AS available,
  coalesce(l.running, 0) AS running,
  coalesce(d.dead, 0) AS dead,
  l.oldest_available_at,
  extract(epoch FROM now() - l.oldest_available_at)::float8 AS oldest_wait_seconds
FROM sluice.queues q
LEFT JOIN (
  SELECT queue,
    count(*) FILTER (WHERE state = 'scheduled') AS scheduled,
    count(*) FILTER (WHERE state = 'available') AS available,
    count(*) FILTER (WHERE state = 'running') AS running,
    min(run_at) FILTER (WHERE state = 'available') AS oldest_available_at
  FROM sluice.jobs GROUP BY queue
) l ON l.queue = q.name
LEFT JOIN (SELECT queue, count(*) AS dead FROM sluice.dead_jobs GROUP BY queue) d ON d.queue = q.name;
--> statement-breakpoint
CREATE VIEW sluice.job_counts AS
SELECT queue, name, state, count(*) AS jobs FROM sluice.jobs GROUP BY queue, name, state
UNION ALL
SELECT queue, name, 'dead', count(*) FROM sluice.dead_jobs GROUP BY queue, name;
