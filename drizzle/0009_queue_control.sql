-- Queue control and workflows: metrics counters, limits in the claim,
-- bounded queues, unique windows, dependencies, batches, results, progress,
-- waitFor notifications and pub/sub. Functions whose signature changes are
-- dropped and recreated; the rest are replaced.

-- Adds to this minute's counters in the caller's own shard (by backend), so
-- concurrent writers never wait on one row. Called once per statement, never
-- once per job.
CREATE FUNCTION sluice.metrics_add(
  q text, enqueued bigint DEFAULT 0, completed bigint DEFAULT 0, failed bigint DEFAULT 0,
  retried bigint DEFAULT 0, dead bigint DEFAULT 0, cancelled bigint DEFAULT 0,
  wait_ms_sum bigint DEFAULT 0, wait_ms_max bigint DEFAULT 0, run_ms_sum bigint DEFAULT 0, run_ms_max bigint DEFAULT 0
) RETURNS void LANGUAGE plpgsql AS $$
#variable_conflict use_column
BEGIN
  INSERT INTO sluice.metrics_minutely AS m (queue, minute, shard, enqueued, completed, failed, retried, dead,
    cancelled, wait_ms_sum, wait_ms_max, run_ms_sum, run_ms_max)
  VALUES (q, date_trunc('minute', now()), (pg_backend_pid() % 64)::smallint, enqueued, completed, failed, retried,
    dead, cancelled, coalesce(wait_ms_sum, 0), coalesce(wait_ms_max, 0), coalesce(run_ms_sum, 0), coalesce(run_ms_max, 0))
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
    run_ms_max = greatest(m.run_ms_max, excluded.run_ms_max);
END $$;
--> statement-breakpoint
-- Moves live jobs to history in a final state (completed, cancelled, dropped),
-- with their results and a last error entry when given. A queue that keeps no
-- history loses its completed rows here; cancelled and dropped ones are kept.
CREATE FUNCTION sluice.move_to_history(
  ids bigint[], final_state text, results jsonb[] DEFAULT NULL, last_errors jsonb[] DEFAULT NULL
) RETURNS TABLE (id bigint, queue text, batch_id bigint, notify boolean, run_at timestamptz, attempted_at timestamptz)
-- plpgsql rather than sql: its statement plans are cached for the session,
-- and this runs for every acknowledged batch.
LANGUAGE plpgsql AS $$
#variable_conflict use_column
BEGIN
  RETURN QUERY
  WITH input AS (
    SELECT * FROM unnest(ids, coalesce(results, array_fill(NULL::jsonb, ARRAY[cardinality(ids)])),
      coalesce(last_errors, array_fill(NULL::jsonb, ARRAY[cardinality(ids)]))) AS u(id, result, error)
  ), gone AS (
    DELETE FROM sluice.jobs j WHERE j.id = ANY(ids)
    RETURNING j.*
  ), kept AS (
    INSERT INTO sluice.job_history (id, queue, name, payload, priority, attempt, max_attempts, state, errors,
      result, unique_key, batch_id, tags, created_at, run_at, attempted_at)
    SELECT g.id, g.queue, g.name, g.payload, g.priority, g.attempt, g.max_attempts, final_state,
      g.errors || CASE WHEN i.error IS NULL THEN '[]'::jsonb ELSE jsonb_build_array(i.error) END,
      i.result, g.unique_key, g.batch_id, g.tags, g.created_at, g.run_at, g.attempted_at
    FROM gone g JOIN input i ON i.id = g.id
    WHERE final_state <> 'completed'
       OR NOT EXISTS (SELECT 1 FROM sluice.queues q WHERE q.name = g.queue AND NOT q.keep_history)
  )
  SELECT g.id, g.queue, g.batch_id, g.notify_on_finish, g.run_at, g.attempted_at FROM gone g;
END $$;
--> statement-breakpoint
-- Everything that follows a job's end, whatever the end: children waiting on
-- it are released (completed) or sent down with it (dead, cancelled,
-- dropped), batch counts move and finished batches enqueue their callback,
-- and waitFor() callers are told.
CREATE FUNCTION sluice.after_finish(final_state text, ids bigint[], batch_ids bigint[], notify_ids bigint[])
RETURNS void LANGUAGE plpgsql AS $$
DECLARE
  q text;
  child_dead bigint[];
  child_cancel bigint[];
  b record;
BEGIN
  IF final_state = 'completed' THEN
    FOR q IN
      WITH ready AS (
        UPDATE sluice.jobs c SET state = CASE WHEN c.run_at > now() THEN 'scheduled' ELSE 'available' END
        WHERE c.state = 'waiting' AND c.depends_on && ids
          AND NOT EXISTS (SELECT 1 FROM sluice.jobs p WHERE p.id = ANY(c.depends_on))
        RETURNING c.queue, c.state
      )
      SELECT DISTINCT ready.queue FROM ready WHERE ready.state = 'available'
    LOOP
      PERFORM pg_notify('sluice_jobs', q);
    END LOOP;
  ELSE
    SELECT array_agg(c.id) FILTER (WHERE final_state = 'dead' AND c.on_parent_dead = 'dead'),
           array_agg(c.id) FILTER (WHERE NOT (final_state = 'dead' AND c.on_parent_dead = 'dead'))
      INTO child_dead, child_cancel
    FROM sluice.jobs c WHERE c.state = 'waiting' AND c.depends_on && ids;
    IF child_dead IS NOT NULL THEN
      PERFORM sluice.move_to_dead(child_dead,
        array_fill(jsonb_build_object('attempt', 0, 'at', now(), 'kind', 'error', 'name', 'ParentDeadError',
          'message', 'a job this one depends on is dead'), ARRAY[cardinality(child_dead)]),
        array_fill('parent_dead'::text, ARRAY[cardinality(child_dead)]));
    END IF;
    IF child_cancel IS NOT NULL THEN
      PERFORM sluice.cancel_many(child_cancel, 'a job this one depends on ended without completing');
    END IF;
  END IF;

  IF cardinality(array_remove(batch_ids, NULL)) > 0 THEN
    FOR b IN
      UPDATE sluice.batches t SET
        completed = t.completed + CASE WHEN final_state = 'completed' THEN c.n ELSE 0 END,
        dead = t.dead + CASE WHEN final_state = 'dead' THEN c.n ELSE 0 END,
        cancelled = t.cancelled + CASE WHEN final_state IN ('cancelled', 'dropped') THEN c.n ELSE 0 END
      FROM (SELECT x AS batch_id, count(*)::integer AS n FROM unnest(batch_ids) x WHERE x IS NOT NULL GROUP BY x) c
      WHERE t.id = c.batch_id
      RETURNING t.*
    LOOP
      IF b.finished_at IS NULL AND b.completed + b.dead + b.cancelled = b.total THEN
        UPDATE sluice.batches SET finished_at = now(),
          callback_job_id = CASE WHEN b.on_complete_job IS NULL THEN NULL ELSE sluice.enqueue(b.on_complete_job,
            coalesce(b.on_complete_payload, '{}'::jsonb) || jsonb_build_object('batchId', b.id, 'total', b.total,
              'completed', b.completed, 'dead', b.dead, 'cancelled', b.cancelled)) END
        WHERE batches.id = b.id;
      END IF;
    END LOOP;
  END IF;

  PERFORM pg_notify('sluice_finished', x::text) FROM unnest(notify_ids) x WHERE x IS NOT NULL;
END $$;
--> statement-breakpoint
-- Moves live jobs to the dead-letter queue, appending each one's last error.
CREATE FUNCTION sluice.move_to_dead(ids bigint[], last_errors jsonb[], reasons text[])
RETURNS TABLE (id bigint, queue text) LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
  bids bigint[];
  nids bigint[];
  dids bigint[];
  dqueues text[];
BEGIN
  -- Arrays are built with array_agg in one statement: appending in a loop
  -- would be quadratic on large batches.
  WITH input AS (
      SELECT * FROM unnest(ids, last_errors, reasons) AS u(id, error, reason)
    ), gone AS (
      DELETE FROM sluice.jobs j WHERE j.id = ANY(ids)
      RETURNING j.*
    ), ins AS (
      INSERT INTO sluice.dead_jobs (
        id, queue, name, payload, priority, attempt, max_attempts, backoff_kind, backoff_base_ms,
        backoff_factor, backoff_max_ms, backoff_jitter, timeout_ms, unique_key, group_key, batch_id, tags,
        errors, reason, created_at, run_at, attempted_at)
      SELECT g.id, g.queue, g.name, g.payload, g.priority, g.attempt, g.max_attempts, g.backoff_kind,
        g.backoff_base_ms, g.backoff_factor, g.backoff_max_ms, g.backoff_jitter, g.timeout_ms,
        g.unique_key, g.group_key, g.batch_id, g.tags, g.errors || jsonb_build_array(i.error),
        i.reason, g.created_at, g.run_at, g.attempted_at
      FROM gone g JOIN input i ON i.id = g.id
    )
  SELECT array_agg(g.id), array_agg(g.queue), array_agg(g.batch_id), array_agg(g.id) FILTER (WHERE g.notify_on_finish)
    INTO dids, dqueues, bids, nids
  FROM gone g;
  IF cardinality(dids) > 0 THEN
    PERFORM sluice.metrics_add(x.queue, dead => x.n)
    FROM (SELECT d.queue, count(*) AS n FROM sluice.dead_jobs d WHERE d.id = ANY(dids) GROUP BY d.queue) x;
    PERFORM sluice.after_finish('dead', dids, bids, nids);
    RETURN QUERY SELECT * FROM unnest(dids, dqueues);
  END IF;
END $$;
--> statement-breakpoint
-- Cancels live jobs, whatever their state; running ones are told on
-- sluice_cancel so their handler's signal fires. Returns the ids cancelled.
CREATE FUNCTION sluice.cancel_many(ids bigint[], reason text DEFAULT 'cancelled')
RETURNS SETOF bigint LANGUAGE plpgsql AS $$
DECLARE
  running_ids bigint[];
  done_ids bigint[];
  done_queues text[];
  bids bigint[];
  nids bigint[];
  errs jsonb[];
BEGIN
  SELECT array_agg(j.id) FILTER (WHERE j.state = 'running'),
         array_agg(CASE WHEN j.state = 'running' THEN jsonb_build_object('attempt', j.attempt, 'at', now(),
           'kind', 'cancelled', 'name', 'CancelledError', 'message', reason) END ORDER BY j.id)
    INTO running_ids, errs
  FROM (SELECT * FROM sluice.jobs WHERE jobs.id = ANY(ids) ORDER BY jobs.id FOR UPDATE) j;
  SELECT array_agg(m.id), array_agg(m.queue), array_agg(m.batch_id), array_agg(m.id) FILTER (WHERE m.notify)
    INTO done_ids, done_queues, bids, nids
  FROM sluice.move_to_history(
    ARRAY(SELECT j.id FROM sluice.jobs j WHERE j.id = ANY(ids) ORDER BY j.id), 'cancelled', NULL, errs) m;
  IF done_ids IS NULL THEN
    RETURN;
  END IF;
  PERFORM pg_notify('sluice_cancel', x::text) FROM unnest(running_ids) x WHERE x IS NOT NULL;
  PERFORM sluice.metrics_add(x.queue, cancelled => count(*)) FROM unnest(done_queues) AS x(queue) GROUP BY x.queue;
  PERFORM sluice.after_finish('cancelled', done_ids, bids, nids);
  RETURN QUERY SELECT unnest(done_ids);
END $$;
--> statement-breakpoint
-- Cancels one live job; returns the state it was in, or NULL when none.
CREATE FUNCTION sluice.cancel(job_id bigint)
RETURNS text LANGUAGE plpgsql AS $$
DECLARE
  found_state text;
BEGIN
  SELECT state INTO found_state FROM sluice.jobs WHERE id = job_id FOR UPDATE;
  IF found_state IS NOT NULL THEN
    PERFORM sluice.cancel_many(ARRAY[job_id], CASE WHEN found_state = 'running' THEN 'cancelled while running' ELSE 'cancelled' END);
  END IF;
  RETURN found_state;
END $$;
--> statement-breakpoint
-- Completes jobs whose lease (id + attempt, still running) matches; the rest
-- are stale answers. Returns the ids applied.
CREATE FUNCTION sluice.job_complete_many(ids bigint[], attempts integer[], results jsonb[] DEFAULT NULL, run_ms integer[] DEFAULT NULL)
RETURNS SETOF bigint LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
  done_ids bigint[];
  done_results jsonb[];
  done_run integer[];
  done_queues text[];
  bids bigint[];
  nids bigint[];
BEGIN
  -- Acknowledgements commit without waiting for the WAL flush: a crash may
  -- lose the last few, and those jobs are then rescued and run again, which
  -- the at-least-once contract allows. Claims and enqueues stay synchronous.
  PERFORM set_config('synchronous_commit', 'off', true);
  WITH input AS (
    SELECT * FROM unnest(ids, attempts,
      coalesce(results, array_fill(NULL::jsonb, ARRAY[cardinality(ids)])),
      coalesce(run_ms, array_fill(NULL::integer, ARRAY[cardinality(ids)]))) AS u(id, attempt, result, run_ms)
  ), target AS (
    SELECT j.id, i.result, i.run_ms FROM sluice.jobs j JOIN input i ON i.id = j.id AND i.attempt = j.attempt
    WHERE j.id = ANY(ids) AND j.state = 'running'
    FOR UPDATE OF j
  )
  SELECT array_agg(t.id), array_agg(t.result), array_agg(t.run_ms) INTO done_ids, done_results, done_run FROM target t;
  IF done_ids IS NULL THEN
    RETURN;
  END IF;

  WITH moved AS (
    SELECT m.*, r.ms FROM sluice.move_to_history(done_ids, 'completed', done_results, NULL) m
    JOIN unnest(done_ids, done_run) AS r(id, ms) ON r.id = m.id
  ), counted AS (
    SELECT sluice.metrics_add(m.queue, completed => count(*),
      wait_ms_sum => sum(greatest(0, extract(epoch FROM now() - m.run_at) * 1000 - coalesce(m.ms, 0)))::bigint,
      wait_ms_max => max(greatest(0, extract(epoch FROM now() - m.run_at) * 1000 - coalesce(m.ms, 0)))::bigint,
      run_ms_sum => sum(coalesce(m.ms, 0))::bigint, run_ms_max => max(coalesce(m.ms, 0))::bigint)
    FROM moved m GROUP BY m.queue
  )
  SELECT array_agg(m.batch_id) FILTER (WHERE m.batch_id IS NOT NULL), array_agg(m.id) FILTER (WHERE m.notify),
         array_agg(DISTINCT m.queue)
    INTO bids, nids, done_queues
  FROM moved m WHERE (SELECT count(*) FROM counted) >= 0;
  -- A slot freed in a concurrency-limited queue: workers that found it full look again now.
  PERFORM pg_notify('sluice_jobs', q.name) FROM sluice.queues q
  WHERE q.name = ANY(done_queues) AND (q.concurrency IS NOT NULL OR q.group_concurrency IS NOT NULL);
  -- Only jobs that others wait on (children, batches, waitFor) need the follow-up.
  IF bids IS NOT NULL OR nids IS NOT NULL
     OR (EXISTS (SELECT 1 FROM sluice.jobs c WHERE c.state = 'waiting')
         AND EXISTS (SELECT 1 FROM sluice.jobs c WHERE c.state = 'waiting' AND c.depends_on && done_ids)) THEN
    PERFORM sluice.after_finish('completed', done_ids, bids, nids);
  END IF;
  RETURN QUERY SELECT unnest(done_ids);
END $$;
--> statement-breakpoint
-- Records failed attempts. A row is touched only when id, attempt and state
-- still match the caller's lease; the rest are stale answers and are left out
-- of the result. Exhausted or permanent failures move to the dead-letter queue.
CREATE FUNCTION sluice.job_fail_many(
  ids bigint[], attempts integer[], errors jsonb[], permanent boolean[], retry_delays_ms integer[] DEFAULT NULL,
  run_ms integer[] DEFAULT NULL
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
  PERFORM set_config('synchronous_commit', 'off', true);
  WITH input AS (
    SELECT * FROM unnest(ids, attempts, errors, permanent,
      coalesce(retry_delays_ms, array_fill(NULL::integer, ARRAY[cardinality(ids)])),
      coalesce(run_ms, array_fill(NULL::integer, ARRAY[cardinality(ids)])))
      AS u(id, attempt, error, permanent, delay_ms, run_ms)
  ), target AS (
    SELECT j.id, j.queue, j.run_at, i.run_ms, i.error, i.permanent, (i.permanent OR j.attempt >= j.max_attempts) AS to_dead,
      coalesce(i.delay_ms, sluice.retry_delay_ms(j.attempt, j.backoff_kind, j.backoff_base_ms,
        j.backoff_factor, j.backoff_max_ms, j.backoff_jitter)) AS delay_ms
    FROM sluice.jobs j JOIN input i ON i.id = j.id AND i.attempt = j.attempt
    WHERE j.id = ANY(ids) AND j.state = 'running'
    FOR UPDATE OF j
  ), counted AS (
    SELECT sluice.metrics_add(t.queue, failed => count(*), retried => count(*) FILTER (WHERE NOT t.to_dead),
      wait_ms_sum => sum(greatest(0, extract(epoch FROM now() - t.run_at) * 1000 - coalesce(t.run_ms, 0)))::bigint,
      wait_ms_max => max(greatest(0, extract(epoch FROM now() - t.run_at) * 1000 - coalesce(t.run_ms, 0)))::bigint,
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

  IF dead_ids IS NOT NULL THEN
    RETURN QUERY SELECT d.id, 'dead'::text FROM sluice.move_to_dead(dead_ids, dead_errors, dead_reasons) d;
  END IF;
  IF retry_ids IS NOT NULL THEN
    RETURN QUERY
    UPDATE sluice.jobs j SET
      state = CASE WHEN r.delay_ms <= 0 THEN 'available' ELSE 'scheduled' END,
      run_at = now() + make_interval(secs => greatest(r.delay_ms, 0) / 1000.0),
      locked_by = NULL, locked_until = NULL, progress = NULL, progress_message = NULL,
      errors = j.errors || jsonb_build_array(r.error)
    FROM unnest(retry_ids, retry_errors, retry_delays) AS r(id, error, delay_ms)
    WHERE j.id = ANY(retry_ids) AND j.id = r.id
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
-- Same as before, and the crash counts as a failed attempt in the metrics.
CREATE FUNCTION sluice.rescue_expired(batch_size integer DEFAULT 1000)
RETURNS TABLE (id bigint, outcome text) LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
  dead_ids bigint[];
  dead_errors jsonb[];
  back_ids bigint[];
  back_errors jsonb[];
  q text;
BEGIN
  WITH expired AS (
    SELECT j.id, j.queue, j.attempt >= j.max_attempts AS to_dead,
      jsonb_build_object('attempt', j.attempt, 'at', now(), 'kind', 'crash', 'name', 'WorkerLostError',
        'message', format('worker %s stopped heartbeating during this attempt', j.locked_by)) AS error
    FROM sluice.jobs j
    WHERE j.state = 'running' AND j.locked_until < now()
    ORDER BY j.locked_until
    LIMIT batch_size
    FOR UPDATE SKIP LOCKED
  ), counted AS (
    SELECT sluice.metrics_add(e.queue, failed => count(*), retried => count(*) FILTER (WHERE NOT e.to_dead))
    FROM expired e GROUP BY e.queue
  )
  SELECT array_agg(e.id) FILTER (WHERE e.to_dead), array_agg(e.error) FILTER (WHERE e.to_dead),
         array_agg(e.id) FILTER (WHERE NOT e.to_dead), array_agg(e.error) FILTER (WHERE NOT e.to_dead)
    INTO dead_ids, dead_errors, back_ids, back_errors
  FROM expired e WHERE (SELECT count(*) FROM counted) >= 0;

  IF dead_ids IS NOT NULL THEN
    RETURN QUERY SELECT d.id, 'dead'::text
    FROM sluice.move_to_dead(dead_ids, dead_errors, array_fill('crashed'::text, ARRAY[cardinality(dead_ids)])) d;
  END IF;
  IF back_ids IS NOT NULL THEN
    -- run_at is kept, so a rescued job goes back to the front of its priority.
    RETURN QUERY
    UPDATE sluice.jobs j SET state = 'available', locked_by = NULL, locked_until = NULL,
      errors = j.errors || jsonb_build_array(b.error)
    FROM unnest(back_ids, back_errors) AS b(id, error)
    WHERE j.id = ANY(back_ids) AND j.id = b.id
    RETURNING j.id, 'rescued'::text;
    FOR q IN SELECT DISTINCT j.queue FROM sluice.jobs j WHERE j.id = ANY(back_ids) LOOP
      PERFORM pg_notify('sluice_jobs', q);
    END LOOP;
  END IF;
END $$;
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
  tags text[] DEFAULT NULL,
  group_keys text[] DEFAULT NULL,
  depends_on bigint[] DEFAULT NULL,
  on_parent_dead text DEFAULT 'dead',
  batch_id bigint DEFAULT NULL,
  unique_window_ms integer DEFAULT NULL,
  max_payload_bytes integer DEFAULT 1048576
) RETURNS SETOF bigint LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
  jt sluice.job_types%ROWTYPE;
  cfg sluice.queues%ROWTYPE;
  q text;
  at timestamptz := coalesce(enqueue_many.run_at, now());
  start_state text;
  bo jsonb;
  n integer;
  ids bigint[];
  inserted bigint[];
  depth integer;
  excess integer;
  victims bigint[];
  window_ms integer;
  missing bigint[];
  failed_parent bigint;
  vb bigint[];
  vn bigint[];
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
  IF group_keys IS NOT NULL AND cardinality(group_keys) <> n THEN
    RAISE EXCEPTION 'sluice.enqueue_many: group_keys must have one entry per payload' USING ERRCODE = '22023';
  END IF;
  -- TypeScript callers check their own (configurable) limit exactly and pass NULL.
  IF enqueue_many.max_payload_bytes IS NOT NULL
     AND EXISTS (SELECT 1 FROM jsonb_array_elements(payloads) p WHERE octet_length(p::text) > enqueue_many.max_payload_bytes) THEN
    RAISE EXCEPTION 'sluice.enqueue_many: a payload is larger than % bytes', enqueue_many.max_payload_bytes USING ERRCODE = '54000';
  END IF;
  IF enqueue_many.priority IS NOT NULL AND enqueue_many.priority NOT BETWEEN -32768 AND 32767 THEN
    RAISE EXCEPTION 'sluice.enqueue_many: priority must be a smallint' USING ERRCODE = '22023';
  END IF;
  IF enqueue_many.max_attempts IS NOT NULL AND enqueue_many.max_attempts NOT BETWEEN 1 AND 1000 THEN
    RAISE EXCEPTION 'sluice.enqueue_many: max_attempts must be between 1 and 1000' USING ERRCODE = '22023';
  END IF;
  IF enqueue_many.on_parent_dead IS NULL OR enqueue_many.on_parent_dead NOT IN ('dead', 'cancel') THEN
    RAISE EXCEPTION 'sluice.enqueue_many: on_parent_dead must be dead or cancel' USING ERRCODE = '22023';
  END IF;

  SELECT * INTO jt FROM sluice.job_types t WHERE t.name = enqueue_many.name;
  q := coalesce(enqueue_many.queue, jt.queue, 'default');
  PERFORM sluice.check_name('queue', q);
  bo := coalesce(backoff, '{}'::jsonb);
  start_state := CASE WHEN at > now() THEN 'scheduled' ELSE 'available' END;

  SELECT * INTO cfg FROM sluice.queues x WHERE x.name = q;
  IF NOT FOUND THEN
    INSERT INTO sluice.queues (name) VALUES (q) ON CONFLICT DO NOTHING;
    SELECT * INTO cfg FROM sluice.queues x WHERE x.name = q;
  END IF;

  IF cardinality(enqueue_many.depends_on) > 0 THEN
    SELECT array_agg(p) INTO missing FROM unnest(enqueue_many.depends_on) p
    WHERE NOT EXISTS (SELECT 1 FROM sluice.jobs j WHERE j.id = p)
      AND NOT EXISTS (SELECT 1 FROM sluice.job_history h WHERE h.id = p)
      AND NOT EXISTS (SELECT 1 FROM sluice.dead_jobs d WHERE d.id = p);
    IF missing IS NOT NULL THEN
      RAISE EXCEPTION 'sluice.enqueue_many: no job with id % to depend on', array_to_string(missing, ', ') USING ERRCODE = 'P0002';
    END IF;
    SELECT p INTO failed_parent FROM unnest(enqueue_many.depends_on) p
    WHERE EXISTS (SELECT 1 FROM sluice.dead_jobs d WHERE d.id = p)
       OR EXISTS (SELECT 1 FROM sluice.job_history h WHERE h.id = p AND h.state <> 'completed')
    LIMIT 1;
    IF failed_parent IS NOT NULL THEN
      RAISE EXCEPTION 'sluice.enqueue_many: job % to depend on ended without completing', failed_parent USING ERRCODE = 'SLD01';
    END IF;
    IF EXISTS (SELECT 1 FROM sluice.jobs j WHERE j.id = ANY(enqueue_many.depends_on)) THEN
      start_state := 'waiting';
    END IF;
  END IF;

  -- A bounded queue's row is locked so concurrent enqueuers take turns: the
  -- depth each one sees includes everything committed before it.
  IF cfg.max_depth IS NOT NULL THEN
    PERFORM 1 FROM sluice.queues x WHERE x.name = q FOR UPDATE;
    SELECT count(*) INTO depth FROM sluice.jobs j WHERE j.queue = q AND j.state IN ('waiting', 'scheduled', 'available');
    IF cfg.overflow = 'reject' AND depth + n - (
         -- Rows that meet a live job with their unique key add nothing.
         SELECT count(*) FROM unnest(enqueue_many.unique_keys) k
         WHERE k IS NOT NULL AND EXISTS (SELECT 1 FROM sluice.jobs j WHERE j.queue = q AND j.unique_key = k)
       ) > cfg.max_depth THEN
      RAISE EXCEPTION 'sluice.enqueue_many: queue % is full (max_depth %)', q, cfg.max_depth USING ERRCODE = 'SLQ01';
    END IF;
  END IF;

  window_ms := coalesce(enqueue_many.unique_window_ms, cfg.unique_window_ms);

  -- Ids are drawn before the insert so each input row keeps its own id in
  -- input order, whether it was inserted or met an existing unique key.
  WITH input AS (
    SELECT p.ord, p.value AS payload, enqueue_many.unique_keys[p.ord] AS unique_key,
           enqueue_many.group_keys[p.ord] AS group_key, nextval('sluice.jobs_id_seq'::regclass) AS id
    FROM jsonb_array_elements(payloads) WITH ORDINALITY AS p(value, ord)
  ), recent AS (
    -- A job with the key that completed within the unique window stands in for a new one.
    SELECT i.ord, (SELECT h.id FROM sluice.job_history h
                   WHERE h.queue = q AND h.unique_key = i.unique_key AND h.state = 'completed'
                     AND h.finished_at > now() - make_interval(secs => window_ms / 1000.0)
                   ORDER BY h.finished_at DESC LIMIT 1) AS hist_id
    FROM input i WHERE i.unique_key IS NOT NULL AND window_ms IS NOT NULL
  ), ins AS (
    INSERT INTO sluice.jobs (
      id, queue, name, payload, priority, run_at, max_attempts, backoff_kind, backoff_base_ms,
      backoff_factor, backoff_max_ms, backoff_jitter, timeout_ms, state, unique_key, group_key, tags,
      depends_on, on_parent_dead, batch_id)
    SELECT i.id, q, enqueue_many.name, i.payload,
      coalesce(enqueue_many.priority, jt.priority, 0), at,
      coalesce(enqueue_many.max_attempts, jt.max_attempts, 25),
      coalesce(bo->>'kind', jt.backoff_kind, 'exponential'),
      coalesce((bo->>'baseMs')::integer, jt.backoff_base_ms, 1000),
      coalesce((bo->>'factor')::real, jt.backoff_factor, 2),
      coalesce((bo->>'maxMs')::integer, jt.backoff_max_ms, 3600000),
      coalesce((bo->>'jitter')::real, jt.backoff_jitter, 0.1),
      coalesce(enqueue_many.timeout_ms, jt.timeout_ms),
      start_state, i.unique_key, i.group_key, coalesce(enqueue_many.tags, '{}'::text[]),
      CASE WHEN cardinality(enqueue_many.depends_on) > 0 THEN enqueue_many.depends_on END,
      enqueue_many.on_parent_dead, enqueue_many.batch_id
    FROM input i LEFT JOIN recent r ON r.ord = i.ord
    WHERE r.hist_id IS NULL
    ORDER BY i.ord
    ON CONFLICT (queue, unique_key) WHERE unique_key IS NOT NULL DO NOTHING
    RETURNING id
  )
  SELECT array_agg(coalesce(r.hist_id, CASE WHEN ins.id IS NOT NULL OR i.unique_key IS NULL THEN i.id END) ORDER BY i.ord),
         array_agg(ins.id) FILTER (WHERE ins.id IS NOT NULL)
    INTO ids, inserted
  FROM input i LEFT JOIN ins ON ins.id = i.id LEFT JOIN recent r ON r.ord = i.ord;

  -- Rows that met a live job with the same unique key return that job's id.
  IF array_position(ids, NULL) IS NOT NULL THEN
    SELECT array_agg(coalesce(ids[k], (
      SELECT j.id FROM sluice.jobs j WHERE j.queue = q AND j.unique_key = enqueue_many.unique_keys[k]
    )) ORDER BY k) INTO ids
    FROM generate_subscripts(ids, 1) AS k;
  END IF;

  IF inserted IS NOT NULL THEN
    PERFORM sluice.metrics_add(q, enqueued => cardinality(inserted));
  END IF;

  -- Over the bound: drop the oldest waiting jobs, or the newest of this batch.
  IF cfg.max_depth IS NOT NULL AND inserted IS NOT NULL THEN
    excess := depth + cardinality(inserted) - cfg.max_depth;
    IF excess > 0 THEN
      IF cfg.overflow = 'drop_oldest' THEN
        SELECT array_agg(v.id) INTO victims FROM (
          SELECT j.id FROM sluice.jobs j WHERE j.queue = q AND j.state IN ('waiting', 'scheduled', 'available')
          ORDER BY j.id LIMIT excess) v;
      ELSE
        SELECT array_agg(v) INTO victims FROM (SELECT v FROM unnest(inserted) v ORDER BY v DESC LIMIT excess) s;
      END IF;
      SELECT array_agg(m.batch_id), array_agg(m.id) FILTER (WHERE m.notify) INTO vb, vn
      FROM sluice.move_to_history(victims, 'dropped') m;
      PERFORM sluice.metrics_add(q, cancelled => cardinality(victims));
      PERFORM sluice.after_finish('dropped', victims, vb, vn);
    END IF;
  END IF;

  IF start_state = 'available' THEN
    PERFORM pg_notify('sluice_jobs', q);
  ELSIF start_state = 'scheduled' THEN
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
  tags text[] DEFAULT NULL,
  group_key text DEFAULT NULL,
  depends_on bigint[] DEFAULT NULL,
  on_parent_dead text DEFAULT 'dead',
  unique_window_ms integer DEFAULT NULL
) RETURNS bigint LANGUAGE sql AS $$
  SELECT sluice.enqueue_many(name, jsonb_build_array(coalesce(payload, 'null'::jsonb)), queue, run_at, priority,
    max_attempts, timeout_ms, backoff, CASE WHEN unique_key IS NULL THEN NULL ELSE ARRAY[unique_key] END, tags,
    CASE WHEN group_key IS NULL THEN NULL ELSE ARRAY[group_key] END, depends_on, on_parent_dead, NULL,
    unique_window_ms)
$$;
--> statement-breakpoint
-- Claims up to limits[i] jobs from each queues[i], highest priority first and
-- FIFO within a priority. A queue with no limits takes the plain SKIP LOCKED
-- path; a queue with a concurrency, group or rate limit locks its queues row
-- so claims on it take turns, and the limits hold across every worker.
CREATE FUNCTION sluice.claim(queue_names text[], limits integer[], worker_id text, lease_ms integer)
RETURNS TABLE (id bigint, name text, queue text, payload jsonb, priority smallint, attempt integer,
  max_attempts integer, timeout_ms integer, created_at timestamptz, run_at timestamptz)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
  i integer;
  q text;
  want integer;
  cfg sluice.queues%ROWTYPE;
  running integer;
  chosen bigint[];
  taken integer;
BEGIN
  FOR i IN 1..coalesce(cardinality(queue_names), 0) LOOP
    q := queue_names[i];
    want := limits[i];
    CONTINUE WHEN want IS NULL OR want <= 0;
    SELECT * INTO cfg FROM sluice.queues x WHERE x.name = q;
    CONTINUE WHEN NOT FOUND OR cfg.paused;

    IF cfg.concurrency IS NULL AND cfg.group_concurrency IS NULL AND cfg.rate_limit_count IS NULL THEN
      RETURN QUERY
      WITH picked AS (
        SELECT j.id FROM sluice.jobs j
        WHERE j.state = 'available' AND j.queue = q
        ORDER BY j.priority DESC, j.run_at, j.id
        LIMIT want
        FOR UPDATE SKIP LOCKED
      )
      UPDATE sluice.jobs j
      SET state = 'running', attempt = j.attempt + 1, locked_by = worker_id,
          locked_until = now() + lease_ms * interval '1 millisecond', attempted_at = now()
      FROM picked WHERE j.id = picked.id
      RETURNING j.id, j.name, j.queue, j.payload, j.priority, j.attempt, j.max_attempts, j.timeout_ms,
                j.created_at, j.run_at;
      CONTINUE;
    END IF;

    SELECT * INTO cfg FROM sluice.queues x WHERE x.name = q FOR UPDATE;
    IF cfg.concurrency IS NOT NULL THEN
      SELECT count(*) INTO running FROM sluice.jobs j WHERE j.queue = q AND j.state = 'running';
      want := least(want, cfg.concurrency - running);
    END IF;
    IF cfg.rate_limit_count IS NOT NULL THEN
      IF cfg.rate_window_started_at IS NULL
         OR cfg.rate_window_started_at + cfg.rate_limit_interval_ms * interval '1 millisecond' <= now() THEN
        UPDATE sluice.queues x SET rate_window_started_at = now(), rate_window_used = 0 WHERE x.name = q;
        cfg.rate_window_used := 0;
      END IF;
      want := least(want, cfg.rate_limit_count - cfg.rate_window_used);
    END IF;
    CONTINUE WHEN want <= 0;

    IF cfg.group_concurrency IS NULL THEN
      SELECT array_agg(p.id) INTO chosen FROM (
        SELECT j.id FROM sluice.jobs j WHERE j.state = 'available' AND j.queue = q
        ORDER BY j.priority DESC, j.run_at, j.id LIMIT want FOR UPDATE SKIP LOCKED) p;
    ELSE
      -- Fair round-robin across groups: every group's first job ranks before
      -- any group's second, so a tenant with 100k jobs and one with 10 take
      -- turns. Each group takes no more than its free group slots.
      WITH RECURSIVE groups AS (
        (SELECT j.group_key FROM sluice.jobs j
         WHERE j.queue = q AND j.state = 'available' AND j.group_key IS NOT NULL
         ORDER BY j.group_key LIMIT 1)
        UNION ALL
        SELECT (SELECT j.group_key FROM sluice.jobs j
                WHERE j.queue = q AND j.state = 'available' AND j.group_key > g.group_key
                ORDER BY j.group_key LIMIT 1)
        FROM groups g WHERE g.group_key IS NOT NULL
      ), busy AS (
        SELECT j.group_key, count(*) AS n FROM sluice.jobs j
        WHERE j.queue = q AND j.state = 'running' AND j.group_key IS NOT NULL GROUP BY j.group_key
      ), candidates AS (
        SELECT c.id, c.priority, c.run_at,
          row_number() OVER (PARTITION BY g.group_key ORDER BY c.priority DESC, c.run_at, c.id) AS rn,
          coalesce(b.n, 0) AS busy_n
        FROM groups g
        LEFT JOIN busy b ON b.group_key = g.group_key
        CROSS JOIN LATERAL (
          SELECT j.id, j.priority, j.run_at FROM sluice.jobs j
          WHERE j.queue = q AND j.state = 'available' AND j.group_key = g.group_key
          ORDER BY j.priority DESC, j.run_at, j.id
          LIMIT cfg.group_concurrency
        ) c
        WHERE g.group_key IS NOT NULL
      ), eligible AS (
        -- A group's next job ranks after the jobs it already runs, so groups
        -- with fewer running go first.
        SELECT c.id, c.priority, c.run_at, c.busy_n + c.rn AS rn FROM candidates c WHERE c.rn <= cfg.group_concurrency - c.busy_n
        UNION ALL
        -- Jobs without a group key are not group-limited.
        SELECT u.id, u.priority, u.run_at, row_number() OVER (ORDER BY u.priority DESC, u.run_at, u.id)
        FROM (SELECT j.id, j.priority, j.run_at FROM sluice.jobs j
              WHERE j.queue = q AND j.state = 'available' AND j.group_key IS NULL
              ORDER BY j.priority DESC, j.run_at, j.id LIMIT want) u
      )
      SELECT array_agg(p.id) INTO chosen FROM (
        SELECT j.id FROM sluice.jobs j
        JOIN (SELECT e.id FROM eligible e ORDER BY e.rn, e.priority DESC, e.run_at, e.id LIMIT want) c
          ON c.id = j.id
        WHERE j.state = 'available'
        FOR UPDATE OF j SKIP LOCKED) p;
    END IF;
    CONTINUE WHEN chosen IS NULL;

    RETURN QUERY
    UPDATE sluice.jobs j
    SET state = 'running', attempt = j.attempt + 1, locked_by = worker_id,
        locked_until = now() + lease_ms * interval '1 millisecond', attempted_at = now()
    WHERE j.id = ANY(chosen)
    RETURNING j.id, j.name, j.queue, j.payload, j.priority, j.attempt, j.max_attempts, j.timeout_ms,
              j.created_at, j.run_at;
    GET DIAGNOSTICS taken = ROW_COUNT;
    IF cfg.rate_limit_count IS NOT NULL THEN
      UPDATE sluice.queues x SET rate_window_used = x.rate_window_used + taken WHERE x.name = q;
    END IF;
  END LOOP;
END $$;
--> statement-breakpoint
-- Priority aging: in queues with aging_after_ms, an available job that has
-- waited a full period gains one priority step (up to critical, 20) and its
-- run_at moves one period later: it now ranks like a job of the higher
-- priority enqueued that much later, so low jobs are never starved.
CREATE FUNCTION sluice.age_priorities(batch_size integer DEFAULT 1000)
RETURNS integer LANGUAGE sql AS $$
  WITH aged AS (
    UPDATE sluice.jobs j SET priority = j.priority + 1,
      run_at = j.run_at + q.aging_after_ms * interval '1 millisecond'
    FROM sluice.queues q
    WHERE q.name = j.queue AND q.aging_after_ms IS NOT NULL
      AND j.id IN (
        SELECT a.id FROM sluice.jobs a JOIN sluice.queues aq ON aq.name = a.queue
        WHERE aq.aging_after_ms IS NOT NULL AND a.state = 'available' AND a.priority < 20
          AND a.run_at <= now() - aq.aging_after_ms * interval '1 millisecond'
        LIMIT batch_size
        FOR UPDATE OF a SKIP LOCKED)
    RETURNING 1
  )
  SELECT count(*)::integer FROM aged
$$;
--> statement-breakpoint
-- Fenced progress: applied only while the caller still holds the attempt.
CREATE FUNCTION sluice.job_progress(job_id bigint, job_attempt integer, pct integer, message text)
RETURNS boolean LANGUAGE sql AS $$
  WITH upd AS (
    UPDATE sluice.jobs SET progress = greatest(0, least(100, pct)), progress_message = left(message, 1000)
    WHERE id = job_id AND attempt = job_attempt AND state = 'running'
    RETURNING 1
  )
  SELECT EXISTS (SELECT 1 FROM upd)
$$;
--> statement-breakpoint
-- Creates a batch row for `total` members; the members are enqueued with it.
CREATE FUNCTION sluice.batch_create(total integer, on_complete_job text DEFAULT NULL, on_complete_payload jsonb DEFAULT NULL)
RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
  new_id bigint;
BEGIN
  IF total IS NULL OR total < 1 THEN
    RAISE EXCEPTION 'sluice.batch_create: total must be at least 1' USING ERRCODE = '22023';
  END IF;
  IF on_complete_job IS NOT NULL THEN
    PERFORM sluice.check_name('job', on_complete_job);
  END IF;
  INSERT INTO sluice.batches (total, on_complete_job, on_complete_payload)
  VALUES (total, on_complete_job, on_complete_payload) RETURNING id INTO new_id;
  RETURN new_id;
END $$;
--> statement-breakpoint
-- Publishes an event: one job per subscriber of the topic, in the caller's
-- transaction. Sequential delivery chains the subscribers' jobs with
-- depends_on, in subscription order. Returns the job ids.
CREATE FUNCTION sluice.publish(topic text, payload jsonb DEFAULT '{}'::jsonb, sequential boolean DEFAULT false)
RETURNS SETOF bigint LANGUAGE plpgsql AS $$
DECLARE
  s record;
  prev bigint;
  new_id bigint;
BEGIN
  PERFORM sluice.check_name('topic', topic);
  FOR s IN SELECT sub.job_name FROM sluice.subscriptions sub WHERE sub.topic = publish.topic ORDER BY sub.created_at, sub.job_name LOOP
    new_id := sluice.enqueue(s.job_name, payload,
      depends_on => CASE WHEN sequential AND prev IS NOT NULL THEN ARRAY[prev] END);
    prev := new_id;
    RETURN NEXT new_id;
  END LOOP;
END $$;
--> statement-breakpoint
-- Puts dead jobs back in their queues with a fresh attempt budget. All ids
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
      backoff_factor, backoff_max_ms, backoff_jitter, timeout_ms, state, unique_key, group_key, batch_id, tags,
      errors, created_at)
    SELECT d.id, d.queue, d.name, d.payload, d.priority, now(), 0, d.max_attempts, d.backoff_kind,
      d.backoff_base_ms, d.backoff_factor, d.backoff_max_ms, d.backoff_jitter, d.timeout_ms, 'available',
      -- A live job may have taken the unique key since: the replay still runs, without the key.
      CASE WHEN EXISTS (SELECT 1 FROM sluice.jobs j WHERE j.queue = d.queue AND j.unique_key = d.unique_key)
           THEN NULL ELSE d.unique_key END,
      d.group_key, NULL, d.tags, d.errors, d.created_at
    FROM d
    RETURNING jobs.id
  )
  SELECT ins.id FROM ins;
  FOR q IN SELECT DISTINCT j.queue FROM sluice.jobs j WHERE j.id = ANY(ids) LOOP
    PERFORM pg_notify('sluice_jobs', q);
  END LOOP;
END $$;
--> statement-breakpoint
-- Changes a queue's settings (creating the queue if needed). Only the keys
-- present in `settings` change; a JSON null removes a limit.
CREATE FUNCTION sluice.queue_configure(queue_name text, settings jsonb)
RETURNS void LANGUAGE plpgsql AS $$
DECLARE
  unknown text;
BEGIN
  PERFORM sluice.check_name('queue', queue_name);
  SELECT k INTO unknown FROM jsonb_object_keys(settings) k
  WHERE k NOT IN ('paused', 'concurrency', 'group_concurrency', 'rate_limit_count', 'rate_limit_interval_ms',
    'max_depth', 'overflow', 'weight', 'aging_after_ms', 'unique_window_ms', 'keep_history', 'retention_ms',
    'alert_max_depth', 'alert_max_wait_ms', 'alert_max_error_rate', 'alert_no_worker')
  LIMIT 1;
  IF unknown IS NOT NULL THEN
    RAISE EXCEPTION 'sluice.queue_configure: unknown setting %', unknown USING ERRCODE = '22023';
  END IF;
  INSERT INTO sluice.queues (name) VALUES (queue_name) ON CONFLICT DO NOTHING;
  UPDATE sluice.queues q SET
    paused = CASE WHEN settings ? 'paused' THEN (settings->>'paused')::boolean ELSE q.paused END,
    concurrency = CASE WHEN settings ? 'concurrency' THEN (settings->>'concurrency')::integer ELSE q.concurrency END,
    group_concurrency = CASE WHEN settings ? 'group_concurrency' THEN (settings->>'group_concurrency')::integer ELSE q.group_concurrency END,
    rate_limit_count = CASE WHEN settings ? 'rate_limit_count' THEN (settings->>'rate_limit_count')::integer ELSE q.rate_limit_count END,
    rate_limit_interval_ms = CASE WHEN settings ? 'rate_limit_interval_ms' THEN (settings->>'rate_limit_interval_ms')::integer ELSE q.rate_limit_interval_ms END,
    max_depth = CASE WHEN settings ? 'max_depth' THEN (settings->>'max_depth')::integer ELSE q.max_depth END,
    overflow = CASE WHEN settings ? 'overflow' THEN settings->>'overflow' ELSE q.overflow END,
    weight = CASE WHEN settings ? 'weight' THEN (settings->>'weight')::integer ELSE q.weight END,
    aging_after_ms = CASE WHEN settings ? 'aging_after_ms' THEN (settings->>'aging_after_ms')::integer ELSE q.aging_after_ms END,
    unique_window_ms = CASE WHEN settings ? 'unique_window_ms' THEN (settings->>'unique_window_ms')::integer ELSE q.unique_window_ms END,
    keep_history = CASE WHEN settings ? 'keep_history' THEN (settings->>'keep_history')::boolean ELSE q.keep_history END,
    retention_ms = CASE WHEN settings ? 'retention_ms' THEN (settings->>'retention_ms')::bigint ELSE q.retention_ms END,
    alert_max_depth = CASE WHEN settings ? 'alert_max_depth' THEN (settings->>'alert_max_depth')::integer ELSE q.alert_max_depth END,
    alert_max_wait_ms = CASE WHEN settings ? 'alert_max_wait_ms' THEN (settings->>'alert_max_wait_ms')::integer ELSE q.alert_max_wait_ms END,
    alert_max_error_rate = CASE WHEN settings ? 'alert_max_error_rate' THEN (settings->>'alert_max_error_rate')::real ELSE q.alert_max_error_rate END,
    alert_no_worker = CASE WHEN settings ? 'alert_no_worker' THEN (settings->>'alert_no_worker')::boolean ELSE q.alert_no_worker END,
    rate_window_started_at = CASE WHEN settings ? 'rate_limit_count' OR settings ? 'rate_limit_interval_ms' THEN NULL ELSE q.rate_window_started_at END
  WHERE q.name = queue_name;
  -- A resumed or widened queue may have claimable work right now.
  PERFORM pg_notify('sluice_jobs', queue_name);
END $$;
--> statement-breakpoint
-- A child enqueued in a transaction that was still open when its last parent
-- finished was invisible to that parent's follow-up, and would wait forever.
-- Promoters sweep for such children: released when no parent is live and all
-- completed, sent down with a parent that did not complete.
CREATE FUNCTION sluice.release_orphaned_waiting(batch_size integer DEFAULT 1000)
RETURNS integer LANGUAGE plpgsql AS $$
DECLARE
  ready bigint[];
  doomed bigint[];
  q text;
BEGIN
  IF NOT EXISTS (SELECT 1 FROM sluice.jobs c WHERE c.state = 'waiting') THEN
    RETURN 0;
  END IF;
  WITH orphans AS (
    SELECT c.id,
      EXISTS (SELECT 1 FROM sluice.dead_jobs d WHERE d.id = ANY(c.depends_on))
        OR EXISTS (SELECT 1 FROM sluice.job_history h WHERE h.id = ANY(c.depends_on) AND h.state <> 'completed') AS failed
    FROM sluice.jobs c
    WHERE c.state = 'waiting'
      AND NOT EXISTS (SELECT 1 FROM sluice.jobs p WHERE p.id = ANY(c.depends_on))
    LIMIT batch_size
    FOR UPDATE OF c SKIP LOCKED
  )
  SELECT array_agg(o.id) FILTER (WHERE NOT o.failed), array_agg(o.id) FILTER (WHERE o.failed) INTO ready, doomed FROM orphans o;
  IF ready IS NOT NULL THEN
    FOR q IN
      WITH upd AS (
        UPDATE sluice.jobs c SET state = CASE WHEN c.run_at > now() THEN 'scheduled' ELSE 'available' END
        WHERE c.id = ANY(ready) RETURNING c.queue, c.state
      )
      SELECT DISTINCT upd.queue FROM upd WHERE upd.state = 'available'
    LOOP
      PERFORM pg_notify('sluice_jobs', q);
    END LOOP;
  END IF;
  IF doomed IS NOT NULL THEN
    -- The same cascade the failed parents' ends would have run.
    PERFORM sluice.after_finish('dead',
      ARRAY(SELECT DISTINCT d.id FROM sluice.jobs c JOIN sluice.dead_jobs d ON d.id = ANY(c.depends_on)
            WHERE c.id = ANY(doomed)), NULL, NULL);
    PERFORM sluice.after_finish('cancelled',
      ARRAY(SELECT DISTINCT h.id FROM sluice.jobs c JOIN sluice.job_history h ON h.id = ANY(c.depends_on)
            WHERE c.id = ANY(doomed) AND h.state <> 'completed'), NULL, NULL);
  END IF;
  RETURN coalesce(cardinality(ready), 0) + coalesce(cardinality(doomed), 0);
END $$;
