-- Claims up to limits[i] available jobs of each queue_names[i] for worker_id:
-- each claimed row becomes running with attempt + 1, locked_by = worker_id,
-- attempted_at = the claim's clock time after it picked the jobs, locked_until =
-- attempted_at + lease_ms, and comes back with
-- its lease token (sluice.lease_token(attempted_at), leases/token.sql), which
-- every later write of that run presents with the attempt and the worker id.
--
-- Guarantees: a job goes to one claimer at a time, highest priority first, then
-- oldest run_at, then lowest id; paused queues give nothing; queues with
-- concurrency, group_concurrency or a rate limit never hand out more than their
-- limit, and groups take turns. A rate limit of count per interval holds in
-- every window of that length, across all claimers (a sliding log, below):
-- no stretch of rate_limit_interval_ms holds more than rate_limit_count claims
-- by attempted_at, which on a limited queue is the claim's clock time after
-- it took the queue's lock. The picked ids go to the UPDATE as an array,
-- so it reads each row by primary key whatever plan the function caches.
-- Resuming: a long transaction elsewhere (a REPEATABLE READ report, a
-- pg_dump) keeps every claimed job's old index entry alive, and a claim that
-- starts at the front of the claim index walks them all again, each time.
-- A caller may pass, per queue, the key (priority, run_at as epoch
-- microseconds, id) of the last job it claimed there (after_*; NULL: from
-- the front): the claim then reads jobs of a higher priority, the rest of that
-- priority after the key, then lower priorities, so it walks no entry twice.
-- Jobs that become available behind such a key (promoted, retried at once, rescued, released,
-- replayed, children released, a run_at in the past) are announced on
-- sluice_rewind, and the caller starts from the front again (the worker also
-- does so every few seconds, for rows changed by hand).
-- Lease: none checked; this is where the lease starts.
-- Locks: FOR UPDATE SKIP LOCKED on the picked jobs rows (claimers never wait on
-- each other); on a queue with limits, FOR UPDATE on its sluice.queues row, so
-- that queue's claimers take turns and see each other's counts. Queues with
-- limits are claimed after the others, in name order: workers list their
-- queues in their own orders, and two claims taking two queue rows in
-- opposite orders would deadlock. Queues without limits take no such lock.
-- A queue row held for longer than 2 s (a producer's open transaction that
-- enqueued into a bounded queue) is skipped, not waited for.
-- Isolation: READ COMMITTED only, else SLI01 before anything is read: a
-- limited queue's claim counts its running jobs after it took the queue's
-- row, which under REPEATABLE READ would be counted in a snapshot from
-- before that wait (and its limit run over), and the picks would fail with
-- serialization errors on rows others claimed since.
-- Bad input (no lease, no worker, arrays of different lengths) raises 22023
-- before anything is written: a job claimed without a lease would stay
-- running with nothing to ever free it.
-- Plans: made once per session and kept (plan_cache_mode =
-- force_generic_plan), with sequential and bitmap scans off, so that every
-- plan reaches sluice.jobs by an index whatever the statistics say when it
-- is made: a pick walks jobs_claim_idx in the claim order and stops at its
-- limit (a bitmap scan would read every entry of the queue, under a held
-- snapshot every job claimed since, then sort), the UPDATE reads the picked
-- ids by primary key. Kept without those settings, a plan made while the
-- table was nearly empty would read every row by a sequential scan for the
-- rest of the session (nothing plans it again while no ANALYZE runs, and
-- under a held snapshot that is every row version since). Planning each
-- call instead took about half of a one-job claim's time on the server
-- (docs/design-notes.md). jit = off: a path that can only be a disabled one
-- keeps a cost of 10^10, which would start the JIT compiler.
CREATE OR REPLACE FUNCTION sluice.claim(queue_names text[], limits integer[], worker_id text, lease_ms integer,
  after_priorities smallint[] DEFAULT NULL, after_run_at_us bigint[] DEFAULT NULL, after_ids bigint[] DEFAULT NULL)
RETURNS TABLE (id bigint, name text, queue text, payload jsonb, priority smallint, attempt integer,
  max_attempts integer, timeout_ms integer, created_at timestamptz, run_at timestamptz, lease bigint)
LANGUAGE plpgsql SET plan_cache_mode = force_generic_plan SET enable_seqscan = off SET enable_bitmapscan = off
  SET jit = off AS $$
#variable_conflict use_column
DECLARE
  i integer;
  q text;
  want integer;
  cfg sluice.queues%ROWTYPE;
  running integer;
  chosen bigint[];
  taken integer;
  k_priority smallint;
  k_run_at timestamptz;
  k_id bigint;
  claimed_at timestamptz;
  now_us bigint;
  window_us bigint;
  used integer;
  keep integer[];
  last integer;
  limited_at integer[];
  lock_wait text;
  got boolean;
BEGIN
  IF current_setting('transaction_isolation') <> 'read committed' THEN
    RAISE EXCEPTION 'sluice.claim: a claim needs READ COMMITTED, this transaction is %', current_setting('transaction_isolation')
      USING ERRCODE = 'SLI01';
  END IF;
  IF lease_ms IS NULL OR lease_ms <= 0 THEN
    RAISE EXCEPTION 'sluice.claim: lease_ms must be a positive number of milliseconds' USING ERRCODE = '22023';
  END IF;
  IF worker_id IS NULL OR worker_id = '' THEN
    RAISE EXCEPTION 'sluice.claim: worker_id must be a non-empty text' USING ERRCODE = '22023';
  END IF;
  IF coalesce(cardinality(limits), 0) <> coalesce(cardinality(queue_names), 0)
     OR cardinality(after_priorities) <> coalesce(cardinality(queue_names), 0)
     OR cardinality(after_run_at_us) <> coalesce(cardinality(queue_names), 0)
     OR cardinality(after_ids) <> coalesce(cardinality(queue_names), 0) THEN
    RAISE EXCEPTION 'sluice.claim: limits and after_* must have one entry per queue name' USING ERRCODE = '22023';
  END IF;
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
    IF cfg.concurrency IS NOT NULL OR cfg.group_concurrency IS NOT NULL OR cfg.rate_limit_count IS NOT NULL THEN
      -- Claimed below, once every queue row it needs is known.
      limited_at := limited_at || i;
      CONTINUE;
    END IF;

    k_id := after_ids[i];
    IF k_id IS NULL THEN
      chosen := ARRAY(
        SELECT p.id FROM sluice.jobs p
        WHERE p.state = 'available' AND p.queue = q
        ORDER BY p.priority DESC, p.run_at, p.id
        LIMIT want
        FOR UPDATE SKIP LOCKED);
    ELSE
      k_priority := after_priorities[i];
      k_run_at := 'epoch'::timestamptz + after_run_at_us[i] * interval '1 microsecond';
      chosen := ARRAY(
        SELECT p.id FROM sluice.jobs p
        WHERE p.state = 'available' AND p.queue = q AND p.priority > k_priority
        ORDER BY p.priority DESC, p.run_at, p.id
        LIMIT want
        FOR UPDATE SKIP LOCKED);
      IF cardinality(chosen) < want THEN
        chosen := chosen || ARRAY(
          SELECT p.id FROM sluice.jobs p
          WHERE p.state = 'available' AND p.queue = q AND p.priority = k_priority
            AND (p.run_at, p.id) > (k_run_at, k_id)
          ORDER BY p.priority DESC, p.run_at, p.id
          LIMIT want - cardinality(chosen)
          FOR UPDATE SKIP LOCKED);
      END IF;
      IF cardinality(chosen) < want THEN
        chosen := chosen || ARRAY(
          SELECT p.id FROM sluice.jobs p
          WHERE p.state = 'available' AND p.queue = q AND p.priority < k_priority
          ORDER BY p.priority DESC, p.run_at, p.id
          LIMIT want - cardinality(chosen)
          FOR UPDATE SKIP LOCKED);
      END IF;
    END IF;
    CONTINUE WHEN cardinality(chosen) = 0;
    -- The clock after the picking statements, not now(): each statement
    -- above read its own snapshot, later than the transaction's start, so
    -- a job released by a parent that finished meanwhile must not look
    -- claimed before that parent finished.
    claimed_at := clock_timestamp();
    RETURN QUERY
    UPDATE sluice.jobs j
    SET state = 'running', attempt = j.attempt + 1, locked_by = worker_id,
        locked_until = claimed_at + lease_ms * interval '1 millisecond', attempted_at = claimed_at
    WHERE j.id = ANY(chosen)
    RETURNING j.id, j.name, j.queue, j.payload, j.priority, j.attempt, j.max_attempts, j.timeout_ms,
              j.created_at, j.run_at, sluice.lease_token(j.attempted_at);
    GET DIAGNOSTICS taken = ROW_COUNT;
    IF cfg.overflow = 'block' AND cfg.max_depth IS NOT NULL THEN
      -- Producers waiting for room on this queue look again (a hint: they re-check the depth).
      IF taken > 0 THEN
        PERFORM pg_notify('sluice_room', q);
      END IF;
    END IF;
  END LOOP;

  -- Every claimer takes the rows of the queues with limits in one order (by
  -- name), whatever order its caller listed them in, so two never wait for
  -- each other's. The rows come back in no particular order either way.
  IF cardinality(limited_at) > 1 THEN
    limited_at := ARRAY(SELECT k FROM unnest(limited_at) k ORDER BY queue_names[k], k);
  END IF;
  FOREACH i IN ARRAY coalesce(limited_at, '{}') LOOP
    q := queue_names[i];
    want := limits[i];
    PERFORM set_config('synchronous_commit', 'on', true);
    -- Waited for no longer than 2 s (lock_timeout, for this statement only;
    -- a worker gives a claim up after 10 s at the least): a producer
    -- that enqueues into a bounded queue holds this row until its own
    -- transaction ends, and a claim still waiting when its worker gave it up
    -- would commit later for no one, its jobs running under a worker that
    -- never heard of them until the rescuer took them, an attempt spent.
    -- The queue is left for the next claim instead; the jobs of the other
    -- queues picked above are claimed now.
    BEGIN
      lock_wait := current_setting('lock_timeout');
      PERFORM set_config('lock_timeout', '2s', true);
      SELECT * INTO cfg FROM sluice.queues x WHERE x.name = q FOR UPDATE;
      got := FOUND;
      PERFORM set_config('lock_timeout', lock_wait, true);
    EXCEPTION WHEN lock_not_available THEN
      -- The failed block's setting is undone with it.
      CONTINUE;
    END;
    CONTINUE WHEN NOT got OR cfg.paused;
    -- The clock after the lock: claimers of this queue pass here one at a
    -- time, so these times increase in the order the claims are decided
    -- (now() is the transaction's start, which a claimer waiting for the
    -- lock would carry past a later one).
    claimed_at := clock_timestamp();
    IF cfg.concurrency IS NOT NULL THEN
      SELECT count(*) INTO running FROM sluice.jobs j WHERE j.queue = q AND j.state = 'running';
      want := least(want, cfg.concurrency - running);
    END IF;
    IF cfg.rate_limit_count IS NOT NULL THEN
      -- Sliding log: each entry holds the claims of a short stretch (its
      -- first and last claim time, how many jobs). An entry whose last claim
      -- is inside the window (claimed_at - interval, claimed_at] counts
      -- whole, so every claim inside the window is counted (a few just
      -- outside may be too: the limit errs on the safe side by at most one
      -- entry's stretch, 1/100 of the interval). Since each claim takes at
      -- most the count minus what the window before it holds, no window of
      -- the interval's length ever holds more than the count.
      now_us := (extract(epoch FROM claimed_at) * 1000000)::bigint;
      window_us := cfg.rate_limit_interval_ms::bigint * 1000;
      SELECT coalesce(array_agg(k ORDER BY k), '{}'), coalesce(sum(cfg.rate_log_taken[k]), 0) INTO keep, used
      FROM generate_subscripts(cfg.rate_log_last_us, 1) k
      WHERE cfg.rate_log_last_us[k] > now_us - window_us;
      cfg.rate_log_first_us := ARRAY(SELECT cfg.rate_log_first_us[k] FROM unnest(keep) WITH ORDINALITY u(k, o) ORDER BY o);
      cfg.rate_log_last_us := ARRAY(SELECT cfg.rate_log_last_us[k] FROM unnest(keep) WITH ORDINALITY u(k, o) ORDER BY o);
      cfg.rate_log_taken := ARRAY(SELECT cfg.rate_log_taken[k] FROM unnest(keep) WITH ORDINALITY u(k, o) ORDER BY o);
      want := least(want, cfg.rate_limit_count - used);
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
      -- The chosen jobs are locked one by one, each looked up by primary key:
      -- joined as a set, the planner hash-joined them to a sequential scan of
      -- every available job of the table. Its state is compared with IS NOT
      -- DISTINCT FROM (the same for a NOT NULL column), which no partial index
      -- matches: with statistics that saw no job available, the planner took
      -- jobs_claim_idx for empty and read all of it for each id.
      SELECT array_agg(l.id) INTO chosen
      FROM (SELECT e.id FROM eligible e ORDER BY e.rn, e.priority DESC, e.run_at, e.id LIMIT want) c
      CROSS JOIN LATERAL (
        SELECT j.id FROM sluice.jobs j WHERE j.id = c.id AND j.state IS NOT DISTINCT FROM 'available'
        FOR UPDATE SKIP LOCKED) l;
    END IF;
    CONTINUE WHEN chosen IS NULL;

    RETURN QUERY
    UPDATE sluice.jobs j
    SET state = 'running', attempt = j.attempt + 1, locked_by = worker_id,
        locked_until = claimed_at + lease_ms * interval '1 millisecond', attempted_at = claimed_at
    WHERE j.id = ANY(chosen)
    RETURNING j.id, j.name, j.queue, j.payload, j.priority, j.attempt, j.max_attempts, j.timeout_ms,
              j.created_at, j.run_at, sluice.lease_token(j.attempted_at);
    GET DIAGNOSTICS taken = ROW_COUNT;
    IF cfg.overflow = 'block' AND cfg.max_depth IS NOT NULL AND taken > 0 THEN
      PERFORM pg_notify('sluice_room', q);
    END IF;
    IF cfg.rate_limit_count IS NOT NULL AND taken > 0 THEN
      -- Merged into the newest entry while that entry spans under 1/100 of
      -- the interval, so the log holds about 100 entries at most.
      last := cardinality(cfg.rate_log_taken);
      IF last > 0 AND now_us - cfg.rate_log_first_us[last] < greatest(window_us / 100, 1) THEN
        cfg.rate_log_last_us[last] := now_us;
        cfg.rate_log_taken[last] := cfg.rate_log_taken[last] + taken;
      ELSE
        cfg.rate_log_first_us := cfg.rate_log_first_us || now_us;
        cfg.rate_log_last_us := cfg.rate_log_last_us || now_us;
        cfg.rate_log_taken := cfg.rate_log_taken || taken;
      END IF;
      UPDATE sluice.queues x
      SET rate_log_first_us = cfg.rate_log_first_us, rate_log_last_us = cfg.rate_log_last_us, rate_log_taken = cfg.rate_log_taken
      WHERE x.name = q;
    END IF;
  END LOOP;
END $$;
