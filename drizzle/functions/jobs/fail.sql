-- Records failed runs: each job whose (id, attempt) is given, still running,
-- held by worker_id and by the claim named in leases, either retries (back to
-- scheduled, or available when the delay is 0, after retry_delays_ms or the
-- job's own backoff, jobs/retry-delay.sql) or, when permanent or out of
-- attempts, moves to the dead jobs (jobs/move-to-dead.sql). The error is
-- appended to the job's errors. Returns (id, 'retry' | 'dead') per job moved.
--
-- Guarantees: a stale answer fails nothing; a retry keeps the attempt count, so
-- max_attempts bounds the runs; the queue's workers are woken when a retry is
-- claimable now or a slot frees in a limited queue.
-- Lease: sluice.lease_holds(attempted_at, lease) with attempt and locked_by, as
-- in jobs/complete.sql.
-- Locks: FOR UPDATE on the given jobs this worker holds, in id order, before
-- any is written, as in jobs/complete.sql (see there why); the row locks of
-- the moves and retries of those rows.
-- Plans: made for each call, as in jobs/claim.sql (see there why).
CREATE OR REPLACE FUNCTION sluice.job_fail_many(
  ids bigint[], attempts integer[], errors jsonb[], permanent boolean[], retry_delays_ms integer[] DEFAULT NULL,
  run_ms integer[] DEFAULT NULL, worker_id text DEFAULT NULL, leases bigint[] DEFAULT NULL
) RETURNS TABLE (id bigint, outcome text) LANGUAGE plpgsql SET enable_seqscan = off SET jit = off AS $$
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
  locked bigint[];
  nestloop text := current_setting('enable_nestloop');
BEGIN
  -- Arrays that do not line up were padded with NULLs by unnest, and a NULL
  -- permanent flag neither retried the job nor sent it to the dead jobs: it
  -- stayed running, counted as failed, for the rescuer to fail again.
  IF job_fail_many.ids IS NULL OR job_fail_many.attempts IS NULL OR job_fail_many.errors IS NULL OR job_fail_many.permanent IS NULL
     OR cardinality(job_fail_many.attempts) <> cardinality(job_fail_many.ids)
     OR cardinality(job_fail_many.errors) <> cardinality(job_fail_many.ids)
     OR cardinality(job_fail_many.permanent) <> cardinality(job_fail_many.ids)
     OR cardinality(job_fail_many.retry_delays_ms) <> cardinality(job_fail_many.ids)
     OR cardinality(job_fail_many.run_ms) <> cardinality(job_fail_many.ids)
     OR cardinality(job_fail_many.leases) <> cardinality(job_fail_many.ids) THEN
    RAISE EXCEPTION 'sluice.job_fail_many: ids, attempts, errors and permanent (and retry_delays_ms, run_ms, leases when given) must have one entry per job'
      USING ERRCODE = '22023';
  END IF;
  IF array_position(job_fail_many.permanent, NULL) IS NOT NULL THEN
    RAISE EXCEPTION 'sluice.job_fail_many: permanent must be true or false for every job' USING ERRCODE = '22023';
  END IF;
  PERFORM set_config('synchronous_commit', 'off', true);
  SELECT array_agg(l.id) INTO locked
  FROM (SELECT j.id FROM sluice.jobs j
        WHERE j.id = ANY(ids) AND j.locked_by IS NOT NULL AND (worker_id IS NULL OR j.locked_by = worker_id)
        ORDER BY j.id FOR UPDATE) l;
  IF locked IS NULL THEN
    RETURN;
  END IF;
  -- Hash joins between the given runs and their jobs, whatever the
  -- statistics say (see jobs/complete.sql), for the two statements that
  -- join them; what follows them looks jobs up in nested loops.
  PERFORM set_config('enable_nestloop', 'off', true);
  WITH input AS (
    SELECT * FROM unnest(ids, attempts, errors, permanent,
      coalesce(retry_delays_ms, array_fill(NULL::integer, ARRAY[cardinality(ids)])),
      coalesce(run_ms, array_fill(NULL::integer, ARRAY[cardinality(ids)])),
      coalesce(leases, array_fill(NULL::bigint, ARRAY[cardinality(ids)])))
      AS u(id, attempt, error, permanent, delay_ms, run_ms, lease)
  ), target AS (
    SELECT j.id, j.queue, coalesce(j.ready_at, j.run_at) AS run_at, i.run_ms, i.error, i.permanent, (i.permanent OR j.attempt >= j.max_attempts) AS to_dead,
      coalesce(i.delay_ms, sluice.retry_delay_ms(j.attempt, j.backoff_kind, j.backoff_base_ms,
        j.backoff_factor, j.backoff_max_ms, j.backoff_jitter)) AS delay_ms
    FROM sluice.jobs j JOIN input i ON i.id = j.id AND i.attempt = j.attempt
    -- Running, asked as locked_by IS NOT NULL (jobs_running_locked_check): see jobs/complete.sql.
    WHERE j.id = ANY(locked) AND j.locked_by IS NOT NULL AND (worker_id IS NULL OR j.locked_by = worker_id)
      AND sluice.lease_holds(j.attempted_at, i.lease)
  ), counted AS (
    SELECT sluice.metrics_add(t.queue, failed => count(*), retried => count(*) FILTER (WHERE NOT t.to_dead),
      wait_ms_sum => sum(sluice.wait_ms(t.run_at, t.run_ms))::bigint,
      wait_ms_max => max(sluice.wait_ms(t.run_at, t.run_ms))::bigint,
      run_ms_sum => sum(coalesce(t.run_ms, 0))::bigint, run_ms_max => max(coalesce(t.run_ms, 0))::bigint)
    FROM target t GROUP BY t.queue
  ), freed AS (
    -- A slot freed in a concurrency-limited queue: workers that found it full look again now.
    SELECT pg_notify('sluice_jobs', q.name) FROM sluice.queues q
    WHERE q.name IN (SELECT t.queue FROM target t) AND (q.concurrency IS NOT NULL OR q.group_concurrency IS NOT NULL)
  )
  SELECT array_agg(t.id) FILTER (WHERE t.to_dead),
         array_agg(t.error) FILTER (WHERE t.to_dead),
         array_agg(CASE WHEN t.permanent THEN 'permanent' ELSE 'exhausted' END) FILTER (WHERE t.to_dead),
         array_agg(t.id) FILTER (WHERE NOT t.to_dead),
         array_agg(t.error) FILTER (WHERE NOT t.to_dead),
         array_agg(t.delay_ms) FILTER (WHERE NOT t.to_dead)
    INTO dead_ids, dead_errors, dead_reasons, retry_ids, retry_errors, retry_delays
  FROM target t WHERE (SELECT count(*) FROM counted) + (SELECT count(*) FROM freed) >= 0;
  PERFORM set_config('enable_nestloop', nestloop, true);

  IF dead_ids IS NOT NULL THEN
    RETURN QUERY SELECT d.id, 'dead'::text FROM sluice.move_to_dead(dead_ids, dead_errors, dead_reasons) d;
  END IF;
  IF retry_ids IS NOT NULL THEN
    PERFORM set_config('enable_nestloop', 'off', true);
    RETURN QUERY
    UPDATE sluice.jobs j SET
      state = CASE WHEN r.delay_ms <= 0 THEN 'available' ELSE 'scheduled' END,
      run_at = now() + make_interval(secs => greatest(r.delay_ms, 0) / 1000.0), ready_at = NULL,
      locked_by = NULL, locked_until = NULL, progress = NULL, progress_message = NULL,
      errors = j.errors || jsonb_build_array(r.error)
    FROM unnest(retry_ids, retry_errors, retry_delays) AS r(id, error, delay_ms)
    WHERE j.id = ANY(retry_ids) AND j.id = r.id
    RETURNING j.id, 'retry'::text;
    PERFORM set_config('enable_nestloop', nestloop, true);

    SELECT array_agg(DISTINCT j.queue) INTO ready_queues
    FROM sluice.jobs j WHERE j.id = ANY(retry_ids) AND j.state = 'available';
    -- On sluice_rewind too: run_at is this transaction's start, behind any
    -- job enqueued meanwhile and claimed before this commits, so behind
    -- where those claims resume (jobs/claim.sql).
    FOREACH q IN ARRAY coalesce(ready_queues, '{}') LOOP
      PERFORM pg_notify('sluice_jobs', q);
      PERFORM pg_notify('sluice_rewind', q);
    END LOOP;
    IF EXISTS (SELECT 1 FROM unnest(retry_delays) d WHERE d > 0) THEN
      PERFORM pg_notify('sluice_scheduled', '');
    END IF;
  END IF;
END $$;
