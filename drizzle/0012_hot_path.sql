-- Hot path, as the profile of a 50,000-job drain pointed (issue 8).
--
-- Claim: the picked ids were joined back to sluice.jobs; in the cached
-- generic plan of the plpgsql function that join became a hash join over a
-- sequential scan of the whole table, so every claim read every live job
-- (EXPLAIN ANALYZE, 50,000 queued: 24 ms of a 48 ms 1,000-job claim). The ids
-- now go in as an array, which is always a primary-key lookup.
CREATE OR REPLACE FUNCTION sluice.claim(queue_names text[], limits integer[], worker_id text, lease_ms integer)
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
      UPDATE sluice.jobs j
      SET state = 'running', attempt = j.attempt + 1, locked_by = worker_id,
          locked_until = now() + lease_ms * interval '1 millisecond', attempted_at = now()
      WHERE j.id = ANY(ARRAY(
        SELECT p.id FROM sluice.jobs p
        WHERE p.state = 'available' AND p.queue = q
        ORDER BY p.priority DESC, p.run_at, p.id
        LIMIT want
        FOR UPDATE SKIP LOCKED))
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
-- Completion: one DELETE fenced by id + attempt + state, instead of locking
-- the rows with SELECT ... FOR UPDATE and then deleting them by id: one
-- primary-key probe and one row lock per job fewer. The DELETE re-checks its
-- condition on rows a concurrent rescue changed, so a stale answer still
-- deletes nothing. Completed rows go to job_history unless their queue keeps
-- none.
CREATE OR REPLACE FUNCTION sluice.job_complete_many(ids bigint[], attempts integer[], results jsonb[] DEFAULT NULL, run_ms integer[] DEFAULT NULL)
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
  -- the at-least-once contract allows. Claims and enqueues stay synchronous.
  PERFORM set_config('synchronous_commit', 'off', true);
  WITH input AS (
    SELECT * FROM unnest(ids, attempts,
      coalesce(results, array_fill(NULL::jsonb, ARRAY[cardinality(ids)])),
      coalesce(run_ms, array_fill(NULL::integer, ARRAY[cardinality(ids)]))) AS u(id, attempt, result, run_ms)
  ), gone AS (
    DELETE FROM sluice.jobs j USING input i
    WHERE j.id = ANY(ids) AND j.id = i.id AND j.attempt = i.attempt AND j.state = 'running'
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
      wait_ms_sum => sum(greatest(0, extract(epoch FROM now() - g.run_at) * 1000 - coalesce(g.r_run_ms, 0)))::bigint,
      wait_ms_max => max(greatest(0, extract(epoch FROM now() - g.run_at) * 1000 - coalesce(g.r_run_ms, 0)))::bigint,
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
