-- Acknowledges finished runs: each job whose (id, attempt) is given, still
-- running, held by worker_id and by the claim named in leases, is deleted from
-- sluice.jobs, kept in job_history as completed (unless its queue keeps no
-- history) with its result, and counted in the metrics. What waits on it
-- (children, batches, waitFor callers) follows through jobs/after-finish.sql.
-- Returns the ids completed; an answer that no longer holds the job is a no-op.
--
-- Guarantees: a stale answer (an earlier attempt, another worker, a claim lost
-- in a crash and made again) completes nothing. The DELETE re-checks its
-- condition on a row a concurrent rescue changed, so a race ends the same way.
-- Lease: sluice.lease_holds(attempted_at, lease) with attempt and locked_by
-- (leases/holds.sql); a NULL worker_id or lease (a caller from SQL) skips that
-- part of the fence.
-- Locks: the row lock of the DELETE on each completed job; nothing else.
CREATE OR REPLACE FUNCTION sluice.job_complete_many(ids bigint[], attempts integer[], results jsonb[] DEFAULT NULL, run_ms integer[] DEFAULT NULL,
  worker_id text DEFAULT NULL, leases bigint[] DEFAULT NULL)
RETURNS SETOF bigint LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
  done_ids bigint[];
  done_queues text[];
  bids bigint[];
  nids bigint[];
BEGIN
  -- Acknowledgements commit without waiting for the WAL flush: a crash may
  -- lose the last few, and those jobs are then rescued and run again, which
  -- the at-least-once contract allows. Enqueues stay synchronous.
  PERFORM set_config('synchronous_commit', 'off', true);
  WITH input AS (
    SELECT * FROM unnest(ids, attempts,
      coalesce(results, array_fill(NULL::jsonb, ARRAY[cardinality(ids)])),
      coalesce(run_ms, array_fill(NULL::integer, ARRAY[cardinality(ids)])),
      coalesce(leases, array_fill(NULL::bigint, ARRAY[cardinality(ids)]))) AS u(id, attempt, result, run_ms, lease)
  ), gone AS (
    DELETE FROM sluice.jobs j USING input i
    WHERE j.id = ANY(ids) AND j.id = i.id AND j.attempt = i.attempt AND j.state = 'running'
      AND (worker_id IS NULL OR j.locked_by = worker_id)
      AND sluice.lease_holds(j.attempted_at, i.lease)
    RETURNING j.*, i.result AS r_result, i.run_ms AS r_run_ms
  ), kept AS (
    INSERT INTO sluice.job_history (id, queue, name, payload, priority, attempt, max_attempts, state, errors,
      result, unique_key, batch_id, tags, created_at, run_at, attempted_at)
    SELECT g.id, g.queue, g.name, g.payload, g.priority, g.attempt, g.max_attempts, 'completed', g.errors,
      g.r_result, g.unique_key, g.batch_id, g.tags, g.created_at, g.run_at, g.attempted_at
    FROM gone g
    WHERE NOT EXISTS (SELECT 1 FROM sluice.queues q WHERE q.name = g.queue AND NOT q.keep_history)
  ), counted AS (
    SELECT sluice.metrics_add(g.queue, completed => count(*),
      wait_ms_sum => sum(sluice.wait_ms(g.run_at, g.r_run_ms))::bigint,
      wait_ms_max => max(sluice.wait_ms(g.run_at, g.r_run_ms))::bigint,
      run_ms_sum => sum(coalesce(g.r_run_ms, 0))::bigint, run_ms_max => max(coalesce(g.r_run_ms, 0))::bigint)
    FROM gone g GROUP BY g.queue
  )
  SELECT array_agg(g.id), array_agg(g.batch_id) FILTER (WHERE g.batch_id IS NOT NULL),
         array_agg(g.id) FILTER (WHERE g.notify_on_finish), array_agg(DISTINCT g.queue)
    INTO done_ids, bids, nids, done_queues
  FROM gone g WHERE (SELECT count(*) FROM counted) >= 0;
  IF done_ids IS NULL THEN
    RETURN;
  END IF;
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
