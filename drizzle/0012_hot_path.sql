-- Hot path, as the profile of a 50,000-job drain pointed (issue 8).
--
-- Claim: commits asynchronously (see the function), and the picked ids were
-- joined back to sluice.jobs; in the cached
-- generic plan of the plpgsql function that join became a hash join over a
-- sequential scan of the whole table, so every claim read every live job
-- (EXPLAIN ANALYZE, 50,000 queued: 24 ms of a 48 ms 1,000-job claim). The ids
-- now go in as an array, which is always a primary-key lookup.
-- A claim's lease token is its time (attempted_at) in epoch microseconds;
-- every write after the claim presents it. These two say it once; both are
-- plain SQL expressions, inlined into the statements that use them.
CREATE FUNCTION sluice.lease_token(attempted_at timestamptz) RETURNS bigint
LANGUAGE sql STABLE AS $$ SELECT (extract(epoch FROM attempted_at) * 1000000)::bigint $$;
--> statement-breakpoint
-- Whether the claim that holds a row is the one `lease` names. A NULL lease
-- (a caller from SQL that has none) names any claim.
CREATE FUNCTION sluice.lease_holds(attempted_at timestamptz, lease bigint) RETURNS boolean
LANGUAGE sql STABLE AS $$ SELECT lease IS NULL OR attempted_at = timestamptz 'epoch' + lease * interval '1 microsecond' $$;
--> statement-breakpoint
-- How long a finished job waited between due and start, for the metrics:
-- the time since run_at less the handler's own run time.
CREATE FUNCTION sluice.wait_ms(run_at timestamptz, run_ms integer) RETURNS numeric
LANGUAGE sql STABLE AS $$ SELECT greatest(0, extract(epoch FROM now() - run_at)::numeric * 1000 - coalesce(run_ms, 0)) $$;
--> statement-breakpoint
DROP FUNCTION sluice.claim(text[], integer[], text, integer);
--> statement-breakpoint
-- `lease` identifies this claim: the claim's time (attempted_at) in epoch
-- microseconds. Every later write of the worker presents it with the attempt
-- and the worker id.
CREATE FUNCTION sluice.claim(queue_names text[], limits integer[], worker_id text, lease_ms integer)
RETURNS TABLE (id bigint, name text, queue text, payload jsonb, priority smallint, attempt integer,
  max_attempts integer, timeout_ms integer, created_at timestamptz, run_at timestamptz, lease bigint)
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
  -- Claims commit without waiting for the WAL flush, like acknowledgements.
  -- A claim lost in a crash leaves the job as it was (available, the
  -- previous attempt number), and a new claim after the restart may reuse
  -- that attempt number, even in the same worker; the first run's answers
  -- are still refused, since every write is fenced by the claim's lease
  -- (its time) as well. Queues with limits commit their claims synchronously
  -- (below): a lost claim would have let them run over their limit.
  PERFORM set_config('synchronous_commit', 'off', true);
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
                j.created_at, j.run_at, sluice.lease_token(j.attempted_at);
      CONTINUE;
    END IF;

    PERFORM set_config('synchronous_commit', 'on', true);
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
              j.created_at, j.run_at, sluice.lease_token(j.attempted_at);
    GET DIAGNOSTICS taken = ROW_COUNT;
    IF cfg.rate_limit_count IS NOT NULL THEN
      UPDATE sluice.queues x SET rate_window_used = x.rate_window_used + taken WHERE x.name = q;
    END IF;
  END LOOP;
END $$;
--> statement-breakpoint
-- Completion: one DELETE fenced by id + attempt + state (and the worker id
-- and the claim's lease, when the caller is a worker), instead of locking
-- the rows with SELECT ... FOR UPDATE and then deleting them by id: one
-- primary-key probe and one row lock per job fewer. The DELETE re-checks its
-- condition on rows a concurrent rescue changed, so a stale answer still
-- deletes nothing. Completed rows go to job_history unless their queue keeps
-- none.
DROP FUNCTION sluice.job_complete_many(bigint[], integer[], jsonb[], integer[]);
--> statement-breakpoint
CREATE FUNCTION sluice.job_complete_many(ids bigint[], attempts integer[], results jsonb[] DEFAULT NULL, run_ms integer[] DEFAULT NULL,
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
--> statement-breakpoint
-- Failures and progress are fenced by the worker id and the claim's lease too (see sluice.claim).
DROP FUNCTION sluice.job_fail_many(bigint[], integer[], jsonb[], boolean[], integer[], integer[]);
--> statement-breakpoint
CREATE FUNCTION sluice.job_fail_many(
  ids bigint[], attempts integer[], errors jsonb[], permanent boolean[], retry_delays_ms integer[] DEFAULT NULL,
  run_ms integer[] DEFAULT NULL, worker_id text DEFAULT NULL, leases bigint[] DEFAULT NULL
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
      coalesce(run_ms, array_fill(NULL::integer, ARRAY[cardinality(ids)])),
      coalesce(leases, array_fill(NULL::bigint, ARRAY[cardinality(ids)])))
      AS u(id, attempt, error, permanent, delay_ms, run_ms, lease)
  ), target AS (
    SELECT j.id, j.queue, j.run_at, i.run_ms, i.error, i.permanent, (i.permanent OR j.attempt >= j.max_attempts) AS to_dead,
      coalesce(i.delay_ms, sluice.retry_delay_ms(j.attempt, j.backoff_kind, j.backoff_base_ms,
        j.backoff_factor, j.backoff_max_ms, j.backoff_jitter)) AS delay_ms
    FROM sluice.jobs j JOIN input i ON i.id = j.id AND i.attempt = j.attempt
    WHERE j.id = ANY(ids) AND j.state = 'running' AND (worker_id IS NULL OR j.locked_by = worker_id)
      AND sluice.lease_holds(j.attempted_at, i.lease)
    FOR UPDATE OF j
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
DROP FUNCTION sluice.job_progress(bigint, integer, integer, text);
--> statement-breakpoint
CREATE FUNCTION sluice.job_progress(job_id bigint, job_attempt integer, pct integer, message text, worker_id text DEFAULT NULL,
  lease bigint DEFAULT NULL)
RETURNS boolean LANGUAGE sql AS $$
  WITH upd AS (
    UPDATE sluice.jobs SET progress = greatest(0, least(100, pct)), progress_message = left(message, 1000)
    WHERE id = job_id AND attempt = job_attempt AND state = 'running' AND (worker_id IS NULL OR locked_by = worker_id)
      AND sluice.lease_holds(attempted_at, lease)
    RETURNING 1
  )
  SELECT EXISTS (SELECT 1 FROM upd)
$$;
