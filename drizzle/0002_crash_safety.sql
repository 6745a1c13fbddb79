-- Crash safety: rescue of jobs whose worker stopped heartbeating, and
-- cancellation of running jobs.

-- A running job's lease (locked_until) is renewed by its worker's heartbeat.
-- Once it lapses the worker is presumed dead: the attempt is recorded as a
-- crash (apart from handler failures) and the job goes back to its queue, or
-- to the dead-letter queue when that was its last attempt. Any worker may run
-- this; SKIP LOCKED keeps two rescuers from taking the same job.
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
    SELECT j.id, j.attempt >= j.max_attempts AS to_dead,
      jsonb_build_object('attempt', j.attempt, 'at', now(), 'kind', 'crash', 'name', 'WorkerLostError',
        'message', format('worker %s stopped heartbeating during this attempt', j.locked_by)) AS error
    FROM sluice.jobs j
    WHERE j.state = 'running' AND j.locked_until < now()
    ORDER BY j.locked_until
    LIMIT batch_size
    FOR UPDATE SKIP LOCKED
  )
  SELECT array_agg(e.id) FILTER (WHERE e.to_dead), array_agg(e.error) FILTER (WHERE e.to_dead),
         array_agg(e.id) FILTER (WHERE NOT e.to_dead), array_agg(e.error) FILTER (WHERE NOT e.to_dead)
    INTO dead_ids, dead_errors, back_ids, back_errors
  FROM expired e;

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
    WHERE j.id = b.id
    RETURNING j.id, 'rescued'::text;
    FOR q IN SELECT DISTINCT j.queue FROM sluice.jobs j WHERE j.id = ANY(back_ids) LOOP
      PERFORM pg_notify('sluice_jobs', q);
    END LOOP;
  END IF;
END $$;
--> statement-breakpoint
-- Forgets workers that stopped heartbeating long ago and hold no job.
CREATE FUNCTION sluice.reap_workers(dead_after_ms integer)
RETURNS integer LANGUAGE sql AS $$
  WITH gone AS (
    DELETE FROM sluice.workers w
    WHERE w.heartbeat_at < now() - make_interval(secs => dead_after_ms / 1000.0)
      AND NOT EXISTS (SELECT 1 FROM sluice.jobs j WHERE j.state = 'running' AND j.locked_by = w.id)
    RETURNING 1
  )
  SELECT count(*)::integer FROM gone
$$;
--> statement-breakpoint
DROP FUNCTION sluice.cancel(bigint);
--> statement-breakpoint
-- Cancels a live job. A waiting one moves to history at once; a running one
-- does too, and its worker is told on the sluice_cancel channel so the
-- handler's AbortSignal fires. The running attempt's late answer is then
-- refused by the lease check. Returns the state the job was in, or NULL when
-- no live job has that id.
CREATE FUNCTION sluice.cancel(job_id bigint)
RETURNS text LANGUAGE plpgsql AS $$
DECLARE
  found_state text;
BEGIN
  SELECT state INTO found_state FROM sluice.jobs WHERE id = job_id FOR UPDATE;
  IF found_state IS NULL THEN
    RETURN NULL;
  END IF;
  WITH d AS (DELETE FROM sluice.jobs WHERE id = job_id RETURNING *)
  INSERT INTO sluice.job_history (id, queue, name, payload, priority, attempt, max_attempts, state, errors,
    tags, created_at, run_at, attempted_at)
  SELECT d.id, d.queue, d.name, d.payload, d.priority, d.attempt, d.max_attempts, 'cancelled',
    d.errors || CASE WHEN d.state = 'running' THEN jsonb_build_array(jsonb_build_object(
      'attempt', d.attempt, 'at', now(), 'kind', 'cancelled', 'name', 'CancelledError',
      'message', 'cancelled while running')) ELSE '[]'::jsonb END,
    d.tags, d.created_at, d.run_at, d.attempted_at
  FROM d;
  IF found_state = 'running' THEN
    PERFORM pg_notify('sluice_cancel', job_id::text);
  END IF;
  RETURN found_state;
END $$;
