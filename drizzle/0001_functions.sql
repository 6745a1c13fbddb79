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
CREATE FUNCTION sluice.enqueue_many(
  name text,
  payloads jsonb,
  queue text DEFAULT NULL,
  run_at timestamptz DEFAULT NULL,
  priority integer DEFAULT NULL,
  max_attempts integer DEFAULT NULL,
  timeout_ms integer DEFAULT NULL,
  backoff jsonb DEFAULT NULL,
  unique_keys text[] DEFAULT NULL,
  tags text[] DEFAULT NULL
) RETURNS SETOF bigint LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
  jt sluice.job_types%ROWTYPE;
  q text;
  at timestamptz := coalesce(enqueue_many.run_at, now());
  start_state text;
  bo jsonb;
  n integer;
  ids bigint[];
BEGIN
  PERFORM sluice.check_name('job', enqueue_many.name);
  IF payloads IS NULL OR jsonb_typeof(payloads) <> 'array' THEN
    RAISE EXCEPTION 'sluice.enqueue_many: payloads must be a JSON array' USING ERRCODE = '22023';
  END IF;
  n := jsonb_array_length(payloads);
  IF n = 0 THEN
    RETURN;
  END IF;
  IF unique_keys IS NOT NULL AND cardinality(unique_keys) <> n THEN
    RAISE EXCEPTION 'sluice.enqueue_many: unique_keys must have one entry per payload' USING ERRCODE = '22023';
  END IF;
  IF EXISTS (SELECT 1 FROM jsonb_array_elements(payloads) p WHERE octet_length(p::text) > 1048576) THEN
    RAISE EXCEPTION 'sluice.enqueue_many: a payload is larger than 1048576 bytes' USING ERRCODE = '54000';
  END IF;
  IF enqueue_many.priority IS NOT NULL AND enqueue_many.priority NOT BETWEEN -32768 AND 32767 THEN
    RAISE EXCEPTION 'sluice.enqueue_many: priority must be a smallint' USING ERRCODE = '22023';
  END IF;
  IF enqueue_many.max_attempts IS NOT NULL AND enqueue_many.max_attempts NOT BETWEEN 1 AND 1000 THEN
    RAISE EXCEPTION 'sluice.enqueue_many: max_attempts must be between 1 and 1000' USING ERRCODE = '22023';
  END IF;

  SELECT * INTO jt FROM sluice.job_types t WHERE t.name = enqueue_many.name;
  q := coalesce(enqueue_many.queue, jt.queue, 'default');
  PERFORM sluice.check_name('queue', q);
  bo := coalesce(backoff, '{}'::jsonb);
  start_state := CASE WHEN at > now() THEN 'scheduled' ELSE 'available' END;

  IF NOT EXISTS (SELECT 1 FROM sluice.queues x WHERE x.name = q) THEN
    INSERT INTO sluice.queues (name) VALUES (q) ON CONFLICT DO NOTHING;
  END IF;

  -- Ids are drawn before the insert so each input row keeps its own id in
  -- input order, whether it was inserted or met an existing unique key.
  WITH input AS (
    SELECT p.ord, p.value AS payload, enqueue_many.unique_keys[p.ord] AS unique_key,
           nextval('sluice.jobs_id_seq'::regclass) AS id
    FROM jsonb_array_elements(payloads) WITH ORDINALITY AS p(value, ord)
  ), ins AS (
    INSERT INTO sluice.jobs (
      id, queue, name, payload, priority, run_at, max_attempts, backoff_kind, backoff_base_ms,
      backoff_factor, backoff_max_ms, backoff_jitter, timeout_ms, state, unique_key, tags)
    SELECT i.id, q, enqueue_many.name, i.payload,
      coalesce(enqueue_many.priority, jt.priority, 0), at,
      coalesce(enqueue_many.max_attempts, jt.max_attempts, 25),
      coalesce(bo->>'kind', jt.backoff_kind, 'exponential'),
      coalesce((bo->>'baseMs')::integer, jt.backoff_base_ms, 1000),
      coalesce((bo->>'factor')::real, jt.backoff_factor, 2),
      coalesce((bo->>'maxMs')::integer, jt.backoff_max_ms, 3600000),
      coalesce((bo->>'jitter')::real, jt.backoff_jitter, 0.1),
      coalesce(enqueue_many.timeout_ms, jt.timeout_ms),
      start_state, i.unique_key, coalesce(enqueue_many.tags, '{}'::text[])
    FROM input i ORDER BY i.ord
    ON CONFLICT (queue, unique_key) WHERE unique_key IS NOT NULL DO NOTHING
    RETURNING id
  )
  SELECT array_agg(CASE WHEN ins.id IS NOT NULL OR i.unique_key IS NULL THEN i.id END ORDER BY i.ord)
    INTO ids
  FROM input i LEFT JOIN ins ON ins.id = i.id;

  -- Rows that met a live job with the same unique key return that job's id.
  IF array_position(ids, NULL) IS NOT NULL THEN
    SELECT array_agg(coalesce(ids[k], (
      SELECT j.id FROM sluice.jobs j WHERE j.queue = q AND j.unique_key = enqueue_many.unique_keys[k]
    )) ORDER BY k) INTO ids
    FROM generate_subscripts(ids, 1) AS k;
  END IF;

  IF start_state = 'available' THEN
    PERFORM pg_notify('sluice_jobs', q);
  ELSE
    PERFORM pg_notify('sluice_scheduled', q);
  END IF;
  RETURN QUERY SELECT unnest(ids);
END $$;
--> statement-breakpoint
CREATE FUNCTION sluice.enqueue(
  name text,
  payload jsonb DEFAULT '{}'::jsonb,
  queue text DEFAULT NULL,
  run_at timestamptz DEFAULT NULL,
  priority integer DEFAULT NULL,
  max_attempts integer DEFAULT NULL,
  timeout_ms integer DEFAULT NULL,
  backoff jsonb DEFAULT NULL,
  unique_key text DEFAULT NULL,
  tags text[] DEFAULT NULL
) RETURNS bigint LANGUAGE sql AS $$
  SELECT sluice.enqueue_many(name, jsonb_build_array(coalesce(payload, 'null'::jsonb)), queue, run_at, priority,
    max_attempts, timeout_ms, backoff, CASE WHEN unique_key IS NULL THEN NULL ELSE ARRAY[unique_key] END, tags)
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
-- Moves live jobs to the dead-letter queue, appending each one's last error.
CREATE FUNCTION sluice.move_to_dead(ids bigint[], last_errors jsonb[], reasons text[])
RETURNS TABLE (id bigint, queue text) LANGUAGE sql AS $$
  WITH input AS (
    SELECT * FROM unnest(ids, last_errors, reasons) AS u(id, error, reason)
  ), gone AS (
    DELETE FROM sluice.jobs j USING input i WHERE j.id = i.id
    RETURNING j.*, i.error AS last_error, i.reason AS dead_reason
  )
  INSERT INTO sluice.dead_jobs (
    id, queue, name, payload, priority, attempt, max_attempts, backoff_kind, backoff_base_ms,
    backoff_factor, backoff_max_ms, backoff_jitter, timeout_ms, unique_key, group_key, tags,
    errors, reason, created_at, run_at, attempted_at)
  SELECT g.id, g.queue, g.name, g.payload, g.priority, g.attempt, g.max_attempts, g.backoff_kind,
    g.backoff_base_ms, g.backoff_factor, g.backoff_max_ms, g.backoff_jitter, g.timeout_ms,
    g.unique_key, g.group_key, g.tags, g.errors || jsonb_build_array(g.last_error),
    g.dead_reason, g.created_at, g.run_at, g.attempted_at
  FROM gone g
  RETURNING dead_jobs.id, dead_jobs.queue
$$;
--> statement-breakpoint
-- Records failed attempts. A row is touched only when id, attempt and state
-- still match the caller's lease; the rest are stale answers and are left out
-- of the result. Exhausted or permanent failures move to the dead-letter queue.
CREATE FUNCTION sluice.job_fail_many(
  ids bigint[], attempts integer[], errors jsonb[], permanent boolean[], retry_delays_ms integer[] DEFAULT NULL
) RETURNS TABLE (id bigint, outcome text) LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
  dead_ids bigint[];
  dead_errors jsonb[];
  dead_reasons text[];
  retry_ids bigint[];
  retry_errors jsonb[];
  retry_delays bigint[];
  ready_queues text[];
  q text;
BEGIN
  WITH input AS (
    SELECT * FROM unnest(ids, attempts, errors, permanent,
      coalesce(retry_delays_ms, array_fill(NULL::integer, ARRAY[cardinality(ids)])))
      AS u(id, attempt, error, permanent, delay_ms)
  ), target AS (
    SELECT j.id, i.error, i.permanent, (i.permanent OR j.attempt >= j.max_attempts) AS to_dead,
      coalesce(i.delay_ms, sluice.retry_delay_ms(j.attempt, j.backoff_kind, j.backoff_base_ms,
        j.backoff_factor, j.backoff_max_ms, j.backoff_jitter)) AS delay_ms
    FROM sluice.jobs j JOIN input i ON i.id = j.id AND i.attempt = j.attempt
    WHERE j.state = 'running'
    FOR UPDATE OF j
  )
  SELECT array_agg(t.id) FILTER (WHERE t.to_dead),
         array_agg(t.error) FILTER (WHERE t.to_dead),
         array_agg(CASE WHEN t.permanent THEN 'permanent' ELSE 'exhausted' END) FILTER (WHERE t.to_dead),
         array_agg(t.id) FILTER (WHERE NOT t.to_dead),
         array_agg(t.error) FILTER (WHERE NOT t.to_dead),
         array_agg(t.delay_ms) FILTER (WHERE NOT t.to_dead)
    INTO dead_ids, dead_errors, dead_reasons, retry_ids, retry_errors, retry_delays
  FROM target t;

  IF dead_ids IS NOT NULL THEN
    RETURN QUERY SELECT d.id, 'dead'::text FROM sluice.move_to_dead(dead_ids, dead_errors, dead_reasons) d;
  END IF;
  IF retry_ids IS NOT NULL THEN
    RETURN QUERY
    UPDATE sluice.jobs j SET
      state = CASE WHEN r.delay_ms <= 0 THEN 'available' ELSE 'scheduled' END,
      run_at = now() + make_interval(secs => greatest(r.delay_ms, 0) / 1000.0),
      locked_by = NULL, locked_until = NULL,
      errors = j.errors || jsonb_build_array(r.error)
    FROM unnest(retry_ids, retry_errors, retry_delays) AS r(id, error, delay_ms)
    WHERE j.id = r.id
    RETURNING j.id, 'retry'::text;

    SELECT array_agg(DISTINCT j.queue) INTO ready_queues
    FROM sluice.jobs j WHERE j.id = ANY(retry_ids) AND j.state = 'available';
    FOREACH q IN ARRAY coalesce(ready_queues, '{}') LOOP
      PERFORM pg_notify('sluice_jobs', q);
    END LOOP;
    IF EXISTS (SELECT 1 FROM unnest(retry_delays) d WHERE d > 0) THEN
      PERFORM pg_notify('sluice_scheduled', '');
    END IF;
  END IF;
END $$;
--> statement-breakpoint
-- Puts dead jobs back in their queue with a fresh attempt budget. All ids
-- must exist, or nothing is replayed.
CREATE FUNCTION sluice.dead_replay(ids bigint[])
RETURNS SETOF bigint LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
  missing bigint[];
  q text;
BEGIN
  SELECT array_agg(x) INTO missing
  FROM (SELECT DISTINCT unnest(ids) AS x) w
  WHERE NOT EXISTS (SELECT 1 FROM sluice.dead_jobs d WHERE d.id = w.x);
  IF missing IS NOT NULL THEN
    RAISE EXCEPTION 'sluice.dead_replay: no dead job with id %', array_to_string(missing, ', ')
      USING ERRCODE = 'P0002';
  END IF;
  RETURN QUERY
  WITH d AS (
    DELETE FROM sluice.dead_jobs WHERE dead_jobs.id = ANY(ids) RETURNING *
  ), ins AS (
    INSERT INTO sluice.jobs (
      id, queue, name, payload, priority, run_at, attempt, max_attempts, backoff_kind, backoff_base_ms,
      backoff_factor, backoff_max_ms, backoff_jitter, timeout_ms, state, unique_key, group_key, tags,
      errors, created_at)
    SELECT d.id, d.queue, d.name, d.payload, d.priority, now(), 0, d.max_attempts, d.backoff_kind,
      d.backoff_base_ms, d.backoff_factor, d.backoff_max_ms, d.backoff_jitter, d.timeout_ms, 'available',
      -- A live job may have taken the unique key since: the replay still runs, without the key.
      CASE WHEN EXISTS (SELECT 1 FROM sluice.jobs j WHERE j.queue = d.queue AND j.unique_key = d.unique_key)
           THEN NULL ELSE d.unique_key END,
      d.group_key, d.tags, d.errors, d.created_at
    FROM d
    RETURNING jobs.id
  )
  SELECT ins.id FROM ins;
  FOR q IN SELECT DISTINCT j.queue FROM sluice.jobs j WHERE j.id = ANY(ids) LOOP
    PERFORM pg_notify('sluice_jobs', q);
  END LOOP;
END $$;
--> statement-breakpoint
-- Cancels a job that is still waiting (scheduled or available). Returns the
-- state the job was in, or NULL when there is no live job with that id.
CREATE FUNCTION sluice.cancel(job_id bigint)
RETURNS text LANGUAGE plpgsql AS $$
DECLARE
  found_state text;
BEGIN
  SELECT state INTO found_state FROM sluice.jobs WHERE id = job_id FOR UPDATE;
  IF found_state IS NULL OR found_state = 'running' THEN
    RETURN found_state;
  END IF;
  WITH d AS (DELETE FROM sluice.jobs WHERE id = job_id RETURNING *)
  INSERT INTO sluice.job_history (id, queue, name, payload, priority, attempt, max_attempts, state, errors,
    tags, created_at, run_at, attempted_at)
  SELECT d.id, d.queue, d.name, d.payload, d.priority, d.attempt, d.max_attempts, 'cancelled', d.errors,
    d.tags, d.created_at, d.run_at, d.attempted_at
  FROM d;
  RETURN found_state;
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
