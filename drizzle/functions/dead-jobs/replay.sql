-- Puts dead jobs back in their queues with a fresh attempt budget, under their
-- own ids. All ids must exist, or nothing is replayed (P0002 naming the
-- missing ones). Returns the ids.
--
-- A job that depended on parents (depends_on) keeps them. It goes back
-- available when none is left to complete: each completed (in job_history as
-- completed, or in no table at all: completed in a queue without history,
-- pruned, or purged from the dead-letter queue, as jobs/after-finish.sql
-- reads an absent parent); and waiting when one is live or replayed in this
-- call, to be released when they complete, as an enqueued child is. A job
-- whose parent ended without completing and is not replayed with it (dead,
-- cancelled, dropped) could never run: the replay is refused with SLD02,
-- naming up to ten such jobs with their parents, and nothing is replayed.
-- The way out is the caller's: replay the dead parent with it, purge the job,
-- or purge the dead parent to run the job without it.
--
-- Guarantees: all or nothing, also against a concurrent purge or replay of
-- the same ids (their rows are deleted, so locked, before they are checked); a replayed
-- job whose unique key a live job holds, also one enqueued while the replay
-- runs, or an older job replayed with it, still runs, without the key.
-- A bounded queue (max_depth) is honoured as by an enqueue, the replayed jobs
-- being its newest arrivals: a full reject queue raises SLQ01 and a full
-- block queue SLQ02 (a replay cannot wait for room; SLQ01 when the replay
-- alone is larger than max_depth), both replaying nothing; drop_oldest drops
-- the queue's oldest waiting jobs to make room, drop_newest drops the
-- replayed jobs that do not fit (to job_history as dropped, as an enqueue's).
-- A job counted in the depth that a worker claims while the replay runs is
-- not dropped (it is running), and none is dropped in its place.
-- Lease: none.
-- Locks: a shared advisory lock per parent id bucket, as jobs/enqueue-many.sql
-- takes for its parents (a parent that ends before this commits is then not
-- purged or pruned before the orphan sweep has read how it ended); the
-- DELETE's row locks on the dead_jobs rows (a DELETE, not FOR
-- UPDATE: the runtime role may delete dead jobs, not update them), then FOR
-- UPDATE on the sluice.queues
-- rows of the bounded queues replayed into (by name, as enqueues and claims
-- take them one at a time), so the depth each replay sees includes everything
-- committed before it; with drop_oldest, FOR UPDATE SKIP LOCKED on the jobs it
-- drops.
CREATE OR REPLACE FUNCTION sluice.dead_replay(ids bigint[])
RETURNS SETOF bigint LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
  dead sluice.dead_jobs[];
  locked bigint[];
  missing bigint[];
  cfg sluice.queues%ROWTYPE;
  depth integer;
  adds integer;
  drop_queues text[];
  drop_excess integer[];
  drop_newest boolean[];
  -- drop_oldest: the oldest jobs counted in each queue's depth, all queues
  -- in one array, and how many of them each queue has.
  oldest bigint[];
  drop_old bigint[];
  drop_old_n integer[];
  replayed bigint[];
  victims bigint[];
  vb bigint[];
  vn bigint[];
  k integer;
  q text;
  -- Parents not replayed here that are live, and the jobs waiting on them or
  -- on a parent replayed here.
  live bigint[];
  waits_on bigint[];
  blocked text[];
  nblocked integer;
  seqscan text;
  hashjoin text;
  mergejoin text;
  has_available boolean;
  has_waiting boolean;
BEGIN
  -- Deleted first, and checked after: a purge or another replay in between
  -- cannot leave this one replaying only part of the ids (an error undoes
  -- the delete).
  WITH gone AS (DELETE FROM sluice.dead_jobs d WHERE d.id = ANY(ids) RETURNING d.*)
  SELECT array_agg(g ORDER BY g.id) INTO dead FROM gone g;
  locked := ARRAY(SELECT x.id FROM unnest(dead) x);
  SELECT array_agg(x ORDER BY x) INTO missing
  FROM (SELECT DISTINCT unnest(ids) AS x) w
  WHERE x IS NULL OR x <> ALL(coalesce(locked, '{}'));
  IF missing IS NOT NULL THEN
    RAISE EXCEPTION 'sluice.dead_replay: no dead job with id %', array_to_string(missing, ', ', 'NULL')
      USING ERRCODE = 'P0002';
  END IF;

  IF EXISTS (SELECT 1 FROM unnest(dead) d WHERE cardinality(d.depends_on) > 0) THEN
    -- Marked before they are looked at; those replayed here are locked by the DELETE.
    PERFORM pg_advisory_xact_lock_shared(1936486756, x.k)
    FROM (SELECT DISTINCT hashint8(p) & 63 AS k FROM unnest(dead) d, unnest(d.depends_on) p WHERE p <> ALL(locked)) x;
    -- Each parent by primary key, whatever the statistics say (see
    -- jobs/enqueue-many.sql): scalar subqueries, which the planner neither
    -- turns into joins nor hashes whole tables for.
    seqscan := current_setting('enable_seqscan');
    hashjoin := current_setting('enable_hashjoin');
    mergejoin := current_setting('enable_mergejoin');
    PERFORM set_config('enable_seqscan', 'off', true);
    PERFORM set_config('enable_hashjoin', 'off', true);
    PERFORM set_config('enable_mergejoin', 'off', true);
    WITH p AS (
      SELECT DISTINCT p.id FROM unnest(dead) d, unnest(d.depends_on) AS p(id) WHERE p.id <> ALL(locked)
    ), s AS (
      SELECT p.id, coalesce(
          (SELECT 'live' FROM sluice.jobs j WHERE j.id = p.id LIMIT 1),
          (SELECT 'dead' FROM sluice.dead_jobs x WHERE x.id = p.id LIMIT 1),
          (SELECT h.state FROM sluice.job_history h WHERE h.id = p.id AND h.state <> 'completed' LIMIT 1)) AS how
      FROM p
    ), b AS (
      SELECT d.id AS job, s.id AS parent, s.how
      FROM unnest(dead) d JOIN s ON s.id = ANY(d.depends_on)
      WHERE s.how <> 'live'
    )
    SELECT (SELECT array_agg(s.id) FROM s WHERE s.how = 'live'),
           (SELECT array_agg(format('job %s on job %s (%s)', b.job, b.parent, b.how) ORDER BY b.job, b.parent) FROM b),
           (SELECT count(*) FROM b)
      INTO live, blocked, nblocked;
    PERFORM set_config('enable_seqscan', seqscan, true);
    PERFORM set_config('enable_hashjoin', hashjoin, true);
    PERFORM set_config('enable_mergejoin', mergejoin, true);
    IF nblocked > 0 THEN
      RAISE EXCEPTION 'sluice.dead_replay: % replayed job(s) depend on a job that ended without completing: %',
        nblocked, array_to_string(blocked[1:10], ', ') || CASE WHEN nblocked > 10 THEN format(', and %s more', nblocked - 10) ELSE '' END
        USING ERRCODE = 'SLD02';
    END IF;
    waits_on := locked || coalesce(live, '{}');
  END IF;

  FOR cfg IN
    SELECT x.* FROM sluice.queues x
    WHERE x.max_depth IS NOT NULL AND x.name IN (SELECT d.queue FROM unnest(dead) d)
    ORDER BY x.name
    FOR UPDATE OF x
  LOOP
    -- Held until the transaction ends: an enqueue into this queue later in it does not wait for room (jobs/enqueue-many.sql).
    IF NOT cfg.name = ANY(coalesce(string_to_array(current_setting('sluice.queue_rows_held', true), ' '), '{}')) THEN
      PERFORM set_config('sluice.queue_rows_held', concat_ws(' ', nullif(current_setting('sluice.queue_rows_held', true), ''), cfg.name), true);
    END IF;
    SELECT count(*) INTO adds FROM unnest(dead) d WHERE d.queue = cfg.name;
    -- The oldest ones that may have to go are picked with the count (one
    -- snapshot): one claimed since then is not taken for another.
    SELECT d.cnt, CASE WHEN cfg.overflow = 'drop_oldest' THEN ARRAY(
             SELECT j.id FROM sluice.jobs j WHERE j.queue = cfg.name AND j.state IN ('waiting', 'scheduled', 'available')
             ORDER BY j.id LIMIT greatest(d.cnt + adds - cfg.max_depth, 0)) END
      INTO depth, oldest
    FROM (SELECT count(*)::integer AS cnt FROM sluice.jobs j
          WHERE j.queue = cfg.name AND j.state IN ('waiting', 'scheduled', 'available')) d;
    CONTINUE WHEN depth + adds <= cfg.max_depth;
    IF cfg.overflow = 'block' AND adds <= cfg.max_depth THEN
      RAISE EXCEPTION 'sluice.dead_replay: queue % is full (max_depth %, overflow block)', cfg.name, cfg.max_depth
        USING ERRCODE = 'SLQ02';
    ELSIF cfg.overflow IN ('reject', 'block') THEN
      RAISE EXCEPTION 'sluice.dead_replay: queue % is full (max_depth %)', cfg.name, cfg.max_depth USING ERRCODE = 'SLQ01';
    END IF;
    drop_queues := drop_queues || cfg.name;
    drop_excess := drop_excess || (depth + adds - cfg.max_depth);
    drop_newest := drop_newest || (cfg.overflow = 'drop_newest');
    drop_old := drop_old || oldest;
    drop_old_n := drop_old_n || coalesce(cardinality(oldest), 0);
  END LOOP;

  WITH d AS (
    SELECT * FROM unnest(dead)
  ), r AS (
    -- Two dead jobs of this replay may hold one key (it was free again once
    -- the first died): the oldest tries for it, the others run without it.
    SELECT d.*, CASE WHEN row_number() OVER (PARTITION BY d.queue, d.unique_key ORDER BY d.id) = 1 THEN d.unique_key END AS try_key,
      CASE WHEN d.depends_on && waits_on THEN 'waiting' ELSE 'available' END AS start_state
    FROM d
  ), ins AS (
    -- ON CONFLICT, not a look for the key first: a look does not see a job
    -- enqueued with it by a transaction still open, and the insert would then
    -- fail when that one commits.
    INSERT INTO sluice.jobs (
      id, queue, name, payload, priority, run_at, attempt, max_attempts, backoff_kind, backoff_base_ms,
      backoff_factor, backoff_max_ms, backoff_jitter, timeout_ms, state, unique_key, group_key, batch_id, tags,
      errors, created_at, depends_on, on_parent_dead)
    SELECT r.id, r.queue, r.name, r.payload, r.priority, now(), 0, r.max_attempts, r.backoff_kind,
      r.backoff_base_ms, r.backoff_factor, r.backoff_max_ms, r.backoff_jitter, r.timeout_ms, r.start_state,
      r.try_key, r.group_key, NULL, r.tags, r.errors, r.created_at, r.depends_on, r.on_parent_dead
    FROM r
    ON CONFLICT (queue, unique_key) WHERE unique_key IS NOT NULL DO NOTHING
    RETURNING jobs.id
  ), keyless AS (
    -- Those whose key a live job holds run without it.
    INSERT INTO sluice.jobs (
      id, queue, name, payload, priority, run_at, attempt, max_attempts, backoff_kind, backoff_base_ms,
      backoff_factor, backoff_max_ms, backoff_jitter, timeout_ms, state, unique_key, group_key, batch_id, tags,
      errors, created_at, depends_on, on_parent_dead)
    SELECT r.id, r.queue, r.name, r.payload, r.priority, now(), 0, r.max_attempts, r.backoff_kind,
      r.backoff_base_ms, r.backoff_factor, r.backoff_max_ms, r.backoff_jitter, r.timeout_ms, r.start_state,
      NULL, r.group_key, NULL, r.tags, r.errors, r.created_at, r.depends_on, r.on_parent_dead
    FROM r
    WHERE r.try_key IS NOT NULL AND NOT EXISTS (SELECT 1 FROM ins WHERE ins.id = r.id)
    RETURNING jobs.id
  )
  SELECT array_agg(x.id) INTO replayed FROM (SELECT ins.id FROM ins UNION ALL SELECT keyless.id FROM keyless) x;

  -- Over the bound of a drop queue: as an enqueue would, with the replayed
  -- jobs as the newest arrivals.
  FOR k IN 1..coalesce(cardinality(drop_queues), 0) LOOP
    q := drop_queues[k];
    IF drop_newest[k] THEN
      victims := ARRAY(SELECT j.id FROM sluice.jobs j WHERE j.queue = q AND j.id = ANY(replayed)
                       ORDER BY j.id DESC LIMIT drop_excess[k]);
    ELSE
      -- Those counted, then the oldest replayed ones. One a claim has made
      -- running since it was counted is no longer waiting: it stays, and no
      -- other goes in its place. SKIP LOCKED: one a claim is taking now is
      -- left to it, not waited for (a claim of several queues may hold such
      -- a job while it waits for a queue row this replay holds).
      SELECT array_agg(v.id) INTO victims FROM (
        SELECT j.id FROM sluice.jobs j
        WHERE j.id = ANY(drop_old) AND j.queue = q AND j.state IN ('waiting', 'scheduled', 'available')
        ORDER BY j.id FOR UPDATE SKIP LOCKED) v;
      victims := coalesce(victims, '{}') || ARRAY(SELECT j.id FROM sluice.jobs j WHERE j.queue = q AND j.id = ANY(replayed)
                                                  ORDER BY j.id LIMIT greatest(drop_excess[k] - drop_old_n[k], 0));
    END IF;
    CONTINUE WHEN cardinality(victims) = 0;
    SELECT array_agg(m.batch_id), array_agg(m.id) FILTER (WHERE m.notify) INTO vb, vn
    FROM sluice.move_to_history(victims, 'dropped') m;
    PERFORM sluice.metrics_add(q, cancelled => cardinality(victims));
    PERFORM sluice.after_finish('dropped', victims, vb, vn);
  END LOOP;

  -- Counted as enqueued, as every other way into a queue is (those dropped at
  -- once too: they are counted as cancelled above).
  -- A waiting one wakes the promoter, whose orphan sweep releases it should
  -- its last parent end before this commits (that end cannot see it).
  FOR q, k, has_available, has_waiting IN
    SELECT d.queue, count(*)::integer, bool_or(NOT coalesce(d.depends_on && waits_on, false)),
           bool_or(coalesce(d.depends_on && waits_on, false))
    FROM unnest(dead) d GROUP BY d.queue
  LOOP
    PERFORM sluice.metrics_add(q, enqueued => k);
    IF has_available THEN
      PERFORM pg_notify('sluice_jobs', q);
      PERFORM pg_notify('sluice_rewind', q);
    END IF;
    IF has_waiting THEN
      PERFORM pg_notify('sluice_scheduled', q);
    END IF;
  END LOOP;
  RETURN QUERY SELECT unnest(replayed);
END $$;
