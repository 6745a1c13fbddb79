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
-- Locks: the row lock of the DELETE on each completed job, nothing else,
-- taken in id order as every statement writing several jobs takes them
-- (jobs/cancel-many.sql): a cancel_many of some of them in between would
-- otherwise deadlock with it. The DELETE meets the rows in id order without
-- a locking statement of its own (which would write a WAL record a job): its
-- input is sorted by id and the jobs are read by primary key (bitmap scans
-- off), so whichever of the two the hash join reads in order, the rows come
-- out in id order.
--
-- Cost: this runs for every acknowledged batch, so what is the same for the
-- whole batch is worked out once (which queues keep no history), the DELETE
-- is driven by the given ids: j.id = ANY(ids), a primary-key lookup each,
-- whatever the statistics say (with only the join to the unnest, statistics
-- taken while nothing ran had the planner read every job of the table to
-- hash-join them, for every batch). It never scans the running jobs of every
-- worker: "running" is asked as locked_by IS NOT NULL, the same by
-- jobs_running_locked_check, so that a large batch cannot tempt the planner
-- into jobs_running_queue_idx, where a transaction held open elsewhere
-- keeps an entry for every job run since it began. The history
-- rows come from the DELETE's RETURNING in the same statement (only the
-- columns history and the follow-up read: the rest of a row would be copied
-- into the CTE's store for nothing), and the metrics are summed per queue in
-- float8 from one value per job.
-- Plans: made once a session and kept (force_generic_plan; planning each
-- call cost more than the DELETE of a small batch), with sequential scans off
-- so that a kept plan reaches the jobs by index whatever the statistics were.
CREATE OR REPLACE FUNCTION sluice.job_complete_many(ids bigint[], attempts integer[], results jsonb[] DEFAULT NULL, run_ms integer[] DEFAULT NULL,
  worker_id text DEFAULT NULL, leases bigint[] DEFAULT NULL)
RETURNS SETOF bigint LANGUAGE plpgsql
  SET plan_cache_mode = force_generic_plan SET enable_seqscan = off SET jit = off AS $$
#variable_conflict use_column
DECLARE
  done_ids bigint[];
  done_queues text[];
  bids bigint[];
  nids bigint[];
  no_history text[];
  nestloop text := current_setting('enable_nestloop');
  bitmapscan text := current_setting('enable_bitmapscan');
BEGIN
  -- Arrays that do not line up were padded with NULLs by unnest: part of the
  -- call applied, the rest left running, and no word.
  IF ids IS NULL OR attempts IS NULL OR cardinality(attempts) <> cardinality(ids)
     OR cardinality(results) <> cardinality(ids) OR cardinality(run_ms) <> cardinality(ids)
     OR cardinality(leases) <> cardinality(ids) THEN
    RAISE EXCEPTION 'sluice.job_complete_many: ids and attempts (and results, run_ms, leases when given) must have one entry per job'
      USING ERRCODE = '22023';
  END IF;
  -- Acknowledgements commit without waiting for the WAL flush: a crash may
  -- lose the last few, and those jobs are then rescued and run again, which
  -- the at-least-once contract allows. Enqueues stay synchronous.
  PERFORM set_config('synchronous_commit', 'off', true);
  SELECT coalesce(array_agg(q.name), '{}') INTO no_history FROM sluice.queues q WHERE NOT q.keep_history;
  -- The planner takes "locked_by IS NOT NULL" for one row when the last
  -- ANALYZE saw no job running, and a nested loop over one row looks free:
  -- it then compared every completed job with every given one (a million
  -- comparisons for a batch of 1,000). A hash join is linear whatever the
  -- statistics; set for this statement only, as what follows
  -- (after_finish) looks jobs up by index in nested loops. Bitmap scans off:
  -- they read the jobs in the order of their places, not of their ids (Locks).
  PERFORM set_config('enable_nestloop', 'off', true);
  PERFORM set_config('enable_bitmapscan', 'off', true);
  WITH gone AS (
    DELETE FROM sluice.jobs j
    USING (SELECT u.* FROM unnest(ids, attempts,
      coalesce(results, array_fill(NULL::jsonb, ARRAY[cardinality(ids)])),
      coalesce(run_ms, array_fill(NULL::integer, ARRAY[cardinality(ids)])),
      coalesce(leases, array_fill(NULL::bigint, ARRAY[cardinality(ids)]))) AS u(id, attempt, result, run_ms, lease)
      ORDER BY u.id) AS i
    WHERE j.id = ANY(ids) AND j.id = i.id AND j.attempt = i.attempt AND j.locked_by IS NOT NULL
      AND (worker_id IS NULL OR j.locked_by = worker_id)
      AND sluice.lease_holds(j.attempted_at, i.lease)
    RETURNING j.id, j.queue, j.name, j.payload, j.priority, j.attempt, j.max_attempts, j.errors, j.unique_key,
      -- When it was due: an aged job's run_at moved later with its priority (jobs/age-priorities.sql).
      j.batch_id, j.tags, j.created_at, coalesce(j.ready_at, j.run_at) AS run_at, j.attempted_at, j.notify_on_finish,
      i.result AS r_result, coalesce(i.run_ms, 0) AS r_run_ms
  ), kept AS (
    INSERT INTO sluice.job_history (id, queue, name, payload, priority, attempt, max_attempts, state, errors,
      result, unique_key, batch_id, tags, created_at, run_at, attempted_at)
    SELECT g.id, g.queue, g.name, g.payload, g.priority, g.attempt, g.max_attempts, 'completed', g.errors,
      g.r_result, g.unique_key, g.batch_id, g.tags, g.created_at, g.run_at, g.attempted_at
    FROM gone g
    WHERE g.queue <> ALL(no_history)
  ), counted AS (
    SELECT sluice.metrics_add(w.queue, completed => count(*),
      wait_ms_sum => sum(w.wait_ms)::bigint, wait_ms_max => max(w.wait_ms)::bigint,
      run_ms_sum => sum(w.r_run_ms)::bigint, run_ms_max => max(w.r_run_ms)::bigint)
    FROM (SELECT g.queue, g.r_run_ms, sluice.wait_ms(g.run_at, g.r_run_ms) AS wait_ms FROM gone g) w
    GROUP BY w.queue
  )
  SELECT array_agg(g.id), array_agg(g.batch_id) FILTER (WHERE g.batch_id IS NOT NULL),
         array_agg(g.id) FILTER (WHERE g.notify_on_finish), array_agg(DISTINCT g.queue)
    INTO done_ids, bids, nids, done_queues
  FROM gone g WHERE (SELECT count(*) FROM counted) >= 0;
  PERFORM set_config('enable_nestloop', nestloop, true);
  PERFORM set_config('enable_bitmapscan', bitmapscan, true);
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
