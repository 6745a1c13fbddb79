-- Enqueues one job per element of the JSON array `payloads` with the same name
-- and options, and returns their ids in input order. Options left NULL come
-- from the job type (sluice.job_types), then the queue. Checks names, payload
-- size and parents, honours unique keys (a live job of the same name, or one
-- completed within the unique window, stands in for a new one and its id is
-- returned; a live job of another name holding the key raises SLU01), bounded
-- queues (reject, block, drop_oldest or drop_newest), batches and dependencies
-- (a job with a live parent waits). Workers of the queue are woken, on this
-- transaction's commit; or, with wake_after_commit, by the caller once its
-- commit has returned (sluice.wake_workers, jobs/wake-workers.sql): a NOTIFY
-- holds PostgreSQL's one cluster-wide notify lock through its transaction's
-- WAL flush, so enqueues that notify commit one flush at a time instead of
-- sharing one. Only a caller whose statement is its own transaction can
-- promise that.
--
-- A full queue whose overflow is block raises SLQ02, or, when the caller says
-- it will wait (wait_when_full, the TypeScript client does), returns no row
-- at all: the caller waits for room (sluice_room notifications, a poll) and
-- calls again. That answer costs the caller's transaction nothing: such a
-- call runs in a subtransaction, so "full" undoes it, the queue row lock
-- with it, and a producer waiting inside its own transaction does not stop
-- the others. A batch larger than max_depth can never fit: SLQ01 at once; so
-- is a queue whose row the transaction held before the call (an earlier
-- enqueue or replay into it), which no room can reach while it is open.
--
-- Unique keys are looked up once, after the queue row lock: the job that
-- stands in for a key then is the answer even if it ends before this call
-- does, so the depth check counts exactly the rows that go in (a row of a
-- key that was held is never inserted over the bound and dropped). A row
-- whose insert meets a job that committed after that look (ON CONFLICT)
-- looks again, and is inserted if that job has ended meanwhile. Repeats of
-- a key in one call are one job. The lookups need READ COMMITTED's fresh
-- snapshot per statement to see such late jobs.
-- A unique_window_ms on a queue with keep_history false raises 22023, as
-- its completed jobs leave no row to find. A queue's own unique_window_ms is
-- not refused (cron and every keyed enqueue would fail on a setting): on
-- such a queue, or for jobs that completed while history was off, only live
-- jobs stand in for a key.
--
-- ignore_max_depth: the queue takes the rows even over its max_depth, whatever
-- its overflow policy: nothing is refused, waited for or dropped, neither the
-- rows nor the queue's oldest jobs, and the queue row is not locked (the
-- depth is not counted). For an enqueue that must not be lost to the queue's
-- fullness: a batch's callback, enqueued by the end of its last member
-- (jobs/after-finish.sql).
--
-- A job with parents committed by other transactions marks them, until this
-- transaction ends, with a shared advisory lock per parent id bucket
-- (hashint8(id) & 63 under class 1936486756), taken before the parents are
-- looked at. A parent that ends meanwhile cannot see the uncommitted child;
-- sluice.dead_purge and sluice.prune_history, which would erase how it ended,
-- leave a parent of a marked bucket for a later round, so that the orphan
-- sweep (jobs/release-orphaned-waiting.sql) finds how it ended.
--
-- What is the same for every row (priority, attempts, backoff, timeout, tags)
-- is worked out once per call, and a call without unique keys (every
-- enqueueMany from TypeScript) inserts with a plain INSERT: ON CONFLICT makes
-- each row a speculative insertion (a lock and an extra WAL record per row),
-- about twice the cost of the insert.
--
-- Guarantees: all rows or none; ids keep input order.
-- Lease: none.
-- Locks: FOR UPDATE on the queue's sluice.queues row when the queue is bounded
-- (and ignore_max_depth is not given), so concurrent enqueuers take turns and each sees the depth before it; with
-- drop_oldest, FOR UPDATE on the jobs it drops, in id order (a claim taking
-- one is waited for, and the job it made running is left alone).
CREATE OR REPLACE FUNCTION sluice.enqueue_many(
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
  max_payload_bytes integer DEFAULT 1048576,
  wait_when_full boolean DEFAULT false,
  wake_after_commit boolean DEFAULT false,
  ignore_max_depth boolean DEFAULT false
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
  window_start timestamptz;
  missing bigint[];
  failed_parent bigint;
  parent_live boolean;
  vb bigint[];
  vn bigint[];
  adds integer;
  oldest bigint[];
  ukeys text[];
  kpos integer[];
  kord integer[];
  kids bigint[];
  rids bigint[];
  ukey text;
  kid bigint;
  holder text;
  first_pass boolean := true;
  new_ids bigint[];
  stale bigint[];
  -- One value for every row of the call.
  v_priority smallint;
  v_max_attempts integer;
  v_backoff_kind text;
  v_backoff_base_ms integer;
  v_backoff_factor real;
  v_backoff_max_ms integer;
  v_backoff_jitter real;
  v_timeout_ms integer;
  v_tags text[];
  v_depends_on bigint[];
  keyed boolean;
  seqscan text;
  hashjoin text;
  mergejoin text;
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
  -- 'infinity' would store a job that never comes due; '-infinity' one that
  -- sorts before every other forever.
  IF NOT isfinite(at) THEN
    RAISE EXCEPTION 'sluice.enqueue_many: run_at must be a finite time, not %', at USING ERRCODE = '22023';
  END IF;
  -- A member of a batch that does not exist would never be counted; one of a
  -- finished batch would end after its onComplete ran.
  IF enqueue_many.batch_id IS NOT NULL AND NOT EXISTS (
       SELECT 1 FROM sluice.batches b WHERE b.id = enqueue_many.batch_id AND b.finished_at IS NULL) THEN
    RAISE EXCEPTION 'sluice.enqueue_many: no unfinished batch with id %', enqueue_many.batch_id USING ERRCODE = '22023';
  END IF;

  SELECT * INTO jt FROM sluice.job_types t WHERE t.name = enqueue_many.name;
  q := coalesce(enqueue_many.queue, jt.queue, 'default');
  PERFORM sluice.check_name('queue', q);
  bo := coalesce(backoff, '{}'::jsonb);
  start_state := CASE WHEN at > now() THEN 'scheduled' ELSE 'available' END;

  v_priority := coalesce(enqueue_many.priority, jt.priority, 0);
  v_max_attempts := coalesce(enqueue_many.max_attempts, jt.max_attempts, 25);
  v_backoff_kind := coalesce(bo->>'kind', jt.backoff_kind, 'exponential');
  v_backoff_base_ms := coalesce((bo->>'baseMs')::integer, jt.backoff_base_ms, 1000);
  v_backoff_factor := coalesce((bo->>'factor')::real, jt.backoff_factor, 2);
  v_backoff_max_ms := coalesce((bo->>'maxMs')::integer, jt.backoff_max_ms, 3600000);
  v_backoff_jitter := coalesce((bo->>'jitter')::real, jt.backoff_jitter, 0.1);
  v_timeout_ms := coalesce(enqueue_many.timeout_ms, jt.timeout_ms);
  v_tags := coalesce(enqueue_many.tags, '{}'::text[]);
  v_depends_on := CASE WHEN cardinality(enqueue_many.depends_on) > 0 THEN enqueue_many.depends_on END;
  keyed := unique_keys IS NOT NULL AND EXISTS (SELECT 1 FROM unnest(unique_keys) k WHERE k IS NOT NULL);

  SELECT * INTO cfg FROM sluice.queues x WHERE x.name = q;
  IF NOT FOUND THEN
    INSERT INTO sluice.queues (name) VALUES (q) ON CONFLICT DO NOTHING;
    SELECT * INTO cfg FROM sluice.queues x WHERE x.name = q;
  END IF;
  IF ignore_max_depth THEN
    cfg.max_depth := NULL;
  END IF;

  IF cfg.max_depth IS NOT NULL AND cfg.overflow = 'block' AND wait_when_full THEN
    -- The same call in a subtransaction: "full" (SLQ02) undoes it whole.
    BEGIN
      SELECT array_agg(e.id ORDER BY e.ord) INTO ids
      FROM sluice.enqueue_many(enqueue_many.name, payloads, q, enqueue_many.run_at, enqueue_many.priority,
        enqueue_many.max_attempts, enqueue_many.timeout_ms, enqueue_many.backoff, enqueue_many.unique_keys,
        enqueue_many.tags, enqueue_many.group_keys, enqueue_many.depends_on, enqueue_many.on_parent_dead,
        enqueue_many.batch_id, enqueue_many.unique_window_ms, NULL, -- sizes checked above
        wait_when_full => false, wake_after_commit => enqueue_many.wake_after_commit) WITH ORDINALITY AS e(id, ord);
    EXCEPTION WHEN SQLSTATE 'SLQ02' THEN
      -- Room never comes to a transaction that held the queue's row before
      -- this call (an enqueue or a replay into the queue earlier in it) when
      -- the queue has a concurrency, group or rate limit: the subtransaction
      -- gave back only its own lock, and such a queue's claims, which would
      -- make room, lock that row too. Full is final then, as for reject.
      -- (Other queues' claims take no queue row: room can come.)
      IF (cfg.concurrency IS NOT NULL OR cfg.group_concurrency IS NOT NULL OR cfg.rate_limit_count IS NOT NULL)
         AND q = ANY(string_to_array(current_setting('sluice.queue_rows_held', true), ' ')) THEN
        RAISE EXCEPTION 'sluice.enqueue_many: queue % is full (max_depth %, overflow block), and this transaction holds the queue''s row since an earlier enqueue into it: no room can come before it ends', q, cfg.max_depth
          USING ERRCODE = 'SLQ01';
      END IF;
      RETURN;
    END;
    RETURN QUERY SELECT unnest(ids);
    RETURN;
  END IF;

  -- The window finds completed jobs in sluice.job_history, where such a
  -- queue writes none: it would let duplicates in without a word.
  IF enqueue_many.unique_window_ms IS NOT NULL AND NOT cfg.keep_history THEN
    RAISE EXCEPTION 'sluice.enqueue_many: unique_window_ms (uniqueWindowMs) needs a queue that keeps history, and queue % has keep_history false', q
      USING ERRCODE = '22023';
  END IF;

  IF array_position(enqueue_many.depends_on, NULL) IS NOT NULL THEN
    RAISE EXCEPTION 'sluice.enqueue_many: depends_on must hold job ids, not NULL' USING ERRCODE = '22023';
  END IF;
  IF cardinality(enqueue_many.depends_on) > 0 THEN
    -- Each parent is looked up by primary key, in jobs, job_history and
    -- dead_jobs, whatever the statistics say: as sets, the planner matched
    -- 1,000 parents to every row of those tables in hash joins over
    -- sequential scans, or read all of job_history once it believed few of
    -- its rows matched (statistics that saw only completed jobs). Index
    -- lookups in nested loops only, for these statements.
    seqscan := current_setting('enable_seqscan');
    hashjoin := current_setting('enable_hashjoin');
    mergejoin := current_setting('enable_mergejoin');
    PERFORM set_config('enable_seqscan', 'off', true);
    PERFORM set_config('enable_hashjoin', 'off', true);
    PERFORM set_config('enable_mergejoin', 'off', true);
    -- Before the statements below take their snapshots; parents this
    -- transaction wrote need no mark (no other can end them before it commits).
    PERFORM pg_advisory_xact_lock_shared(1936486756, x.k)
    FROM (SELECT DISTINCT hashint8(p) & 63 AS k FROM unnest(enqueue_many.depends_on) p
          WHERE NOT EXISTS (SELECT 1 FROM sluice.jobs j WHERE j.id = p
                              AND j.xmin = (txid_current_if_assigned() % 4294967296)::text::xid)) x;
    -- An id handed out and found nowhere ended completed where no history is
    -- kept (a queue with keep_history false, or history its retention
    -- pruned), as dead_replay and after_finish take it; only an id never
    -- handed out is no job at all. (An id of an enqueue rolled back counts as
    -- completed too: nothing tells the two apart.)
    SELECT array_agg(p) INTO missing FROM unnest(enqueue_many.depends_on) p
    WHERE NOT EXISTS (SELECT 1 FROM sluice.jobs j WHERE j.id = p)
      AND NOT EXISTS (SELECT 1 FROM sluice.job_history h WHERE h.id = p)
      AND NOT EXISTS (SELECT 1 FROM sluice.dead_jobs d WHERE d.id = p)
      AND p > coalesce(pg_sequence_last_value(pg_get_serial_sequence('sluice.jobs', 'id')::regclass), 0);
    IF missing IS NOT NULL THEN
      RAISE EXCEPTION 'sluice.enqueue_many: no job with id % to depend on', array_to_string(missing, ', ') USING ERRCODE = 'P0002';
    END IF;
    -- The first failed parent in the given order, and whether any parent
    -- is live, in one statement: one snapshot, in which a parent is either
    -- live or ended. Asked in two, a parent that died between them was
    -- neither failed in the first nor live in the second, and the child went
    -- in available, to run although its parent had died (the orphan sweep
    -- looks at waiting children only). Found by id in each table, not by
    -- joining the parents to them: an OR of two EXISTS was answered by
    -- hashing all of dead_jobs, and a join read all of job_history once when
    -- statistics said few of its jobs had failed.
    SELECT (SELECT f.id FROM (
              SELECT d.id FROM sluice.dead_jobs d WHERE d.id = ANY(enqueue_many.depends_on)
              UNION ALL
              SELECT h.id FROM sluice.job_history h WHERE h.id = ANY(enqueue_many.depends_on) AND h.state <> 'completed'
            ) f ORDER BY array_position(enqueue_many.depends_on, f.id) LIMIT 1),
           EXISTS (SELECT 1 FROM sluice.jobs j WHERE j.id = ANY(enqueue_many.depends_on))
      INTO failed_parent, parent_live;
    IF failed_parent IS NOT NULL THEN
      RAISE EXCEPTION 'sluice.enqueue_many: job % to depend on ended without completing', failed_parent USING ERRCODE = 'SLD01';
    END IF;
    IF parent_live THEN
      start_state := 'waiting';
    END IF;
    PERFORM set_config('enable_seqscan', seqscan, true);
    PERFORM set_config('enable_hashjoin', hashjoin, true);
    PERFORM set_config('enable_mergejoin', mergejoin, true);
  END IF;

  -- A bounded queue's row is locked so concurrent enqueuers take turns: the
  -- depth each one sees includes everything committed before it.
  -- Under REPEATABLE READ or SERIALIZABLE the count below would be taken in
  -- the snapshot from before the lock's wait, and miss what the enqueuer
  -- ahead committed: SLI01 instead, before anything is written.
  IF cfg.max_depth IS NOT NULL THEN
    IF current_setting('transaction_isolation') <> 'read committed' THEN
      RAISE EXCEPTION 'sluice.enqueue_many: an enqueue into a queue with a max_depth (%) needs READ COMMITTED, this transaction is %', q,
        current_setting('transaction_isolation') USING ERRCODE = 'SLI01';
    END IF;
    PERFORM 1 FROM sluice.queues x WHERE x.name = q FOR UPDATE;
    -- Known to the rest of the transaction (undone with the lock when a
    -- subtransaction around this call is): a later call that would wait for
    -- room must not (above).
    IF NOT q = ANY(coalesce(string_to_array(current_setting('sluice.queue_rows_held', true), ' '), '{}')) THEN
      PERFORM set_config('sluice.queue_rows_held', concat_ws(' ', nullif(current_setting('sluice.queue_rows_held', true), ''), q), true);
    END IF;
    -- drop_oldest: the jobs it may have to drop, counted in the depth (the
    -- same snapshot), the oldest first; none unless the rows would not fit.
    SELECT d.cnt, CASE WHEN cfg.overflow = 'drop_oldest' THEN ARRAY(
             SELECT j.id FROM sluice.jobs j WHERE j.queue = q AND j.state IN ('waiting', 'scheduled', 'available')
             ORDER BY j.id LIMIT greatest(d.cnt + n - cfg.max_depth, 0)) END
      INTO depth, oldest
    FROM (SELECT count(*)::integer AS cnt FROM sluice.jobs j
          WHERE j.queue = q AND j.state IN ('waiting', 'scheduled', 'available')) d;
  END IF;

  IF keyed THEN
    window_ms := coalesce(enqueue_many.unique_window_ms, cfg.unique_window_ms);
    -- Worked out here, not in each statement: a statement whose value folds
    -- into a constant only when planned for its values would be planned
    -- anew at every call.
    window_start := now() - make_interval(secs => window_ms / 1000.0);
    -- The distinct keys in order of first use, with the row each is first
    -- used by; per row, its key's place among them (0: no key).
    WITH u AS (
      SELECT x.k, x.ord::integer AS ord FROM unnest(enqueue_many.unique_keys) WITH ORDINALITY AS x(k, ord)
    ), f AS (
      SELECT u.k, min(u.ord) AS first, row_number() OVER (ORDER BY min(u.ord))::integer AS pos
      FROM u WHERE u.k IS NOT NULL GROUP BY u.k
    )
    SELECT (SELECT array_agg(f.k ORDER BY f.pos) FROM f), (SELECT array_agg(f.first ORDER BY f.pos) FROM f),
           array_agg(coalesce(f.pos, 0) ORDER BY u.ord)
      INTO ukeys, kord, kpos
    FROM u LEFT JOIN f ON f.k = u.k;
    -- Per key, the id of the job that stands in for it, 0 while none does.
    -- (No NULLs and no text in the arrays read by place below: an element
    -- of such an array is found without walking the ones before it.)
    kids := array_fill(0::bigint, ARRAY[cardinality(ukeys)]);
    -- One id per row, in input order; a row that adds no job leaves its id unused.
    rids := ARRAY(SELECT nextval('sluice.jobs_id_seq'::regclass) FROM generate_subscripts(kpos, 1) AS g);
  END IF;

  -- The first pass looks up every key, checks the depth and inserts; a
  -- later one is for the keys whose insert met a job committed after the
  -- look before it.
  LOOP
    IF keyed THEN
      -- What stands in for each key still open: a job of this name with the
      -- key that completed within the unique window, else the live job
      -- holding the key. One of another name is refused: its id would be a
      -- wrong answer, and would tell a caller who may enqueue only this name
      -- (the HTTP API) that the other job exists. A lookup or two per key,
      -- each with one plan for every call.
      FOR i IN 1..cardinality(ukeys) LOOP
        CONTINUE WHEN kids[i] <> 0;
        ukey := ukeys[i];
        kid := NULL;
        IF window_ms IS NOT NULL THEN
          SELECT h.id INTO kid FROM sluice.job_history h
          WHERE h.queue = q AND h.unique_key = ukey AND h.state = 'completed' AND h.name = enqueue_many.name
            AND h.finished_at > window_start
          ORDER BY h.finished_at DESC LIMIT 1;
        END IF;
        IF kid IS NULL THEN
          SELECT j.id, j.name INTO kid, holder FROM sluice.jobs j WHERE j.queue = q AND j.unique_key = ukey;
          IF holder <> enqueue_many.name THEN
            RAISE EXCEPTION 'sluice.enqueue_many: a unique key given is held by a live job of another name in queue %', q USING ERRCODE = 'SLU01';
          END IF;
        END IF;
        kids[i] := coalesce(kid, 0);
      END LOOP;
    END IF;

    IF first_pass THEN
      -- Rows that add a job: those without a key, and one per key nothing stands in for.
      adds := CASE WHEN keyed THEN cardinality(array_positions(kpos, 0)) + cardinality(array_positions(kids, 0::bigint)) ELSE n END;
      IF cfg.max_depth IS NOT NULL AND cfg.overflow IN ('reject', 'block') AND depth + adds > cfg.max_depth THEN
        IF cfg.overflow = 'block' AND adds <= cfg.max_depth THEN
          RAISE EXCEPTION 'sluice.enqueue_many: queue % is full (max_depth %, overflow block)', q, cfg.max_depth USING ERRCODE = 'SLQ02';
        END IF;
        RAISE EXCEPTION 'sluice.enqueue_many: queue % is full (max_depth %)', q, cfg.max_depth USING ERRCODE = 'SLQ01';
      END IF;
    END IF;
    EXIT WHEN NOT keyed OR adds = 0 OR NOT first_pass AND array_position(kids, 0::bigint) IS NULL;

    -- Rows without a key (first pass only) and the first row of each key still open.
    WITH input AS (
      SELECT p.ord::integer AS ord, p.payload, p.unique_key, p.group_key
      FROM ROWS FROM (jsonb_array_elements(payloads), unnest(enqueue_many.unique_keys), unnest(enqueue_many.group_keys))
        WITH ORDINALITY AS p(payload, unique_key, group_key, ord)
      WHERE CASE WHEN kpos[p.ord] = 0 THEN first_pass ELSE kord[kpos[p.ord]] = p.ord AND kids[kpos[p.ord]] = 0 END
    ), ins AS (
      INSERT INTO sluice.jobs (
        id, queue, name, payload, priority, run_at, max_attempts, backoff_kind, backoff_base_ms,
        backoff_factor, backoff_max_ms, backoff_jitter, timeout_ms, state, unique_key, group_key, tags,
        depends_on, on_parent_dead, batch_id)
      SELECT rids[i.ord], q, enqueue_many.name, i.payload, v_priority, at, v_max_attempts, v_backoff_kind,
        v_backoff_base_ms, v_backoff_factor, v_backoff_max_ms, v_backoff_jitter, v_timeout_ms,
        start_state, i.unique_key, i.group_key, v_tags, v_depends_on, enqueue_many.on_parent_dead, enqueue_many.batch_id
      FROM input i
      ORDER BY i.ord
      ON CONFLICT (queue, unique_key) WHERE unique_key IS NOT NULL DO NOTHING
      RETURNING id
    )
    -- A key whose first row went in has that row's id; one that met a job is still open.
    SELECT (SELECT array_agg(ins.id ORDER BY ins.id) FROM ins),
           ARRAY(SELECT CASE WHEN kids[k] <> 0 THEN kids[k] ELSE coalesce(x.id, 0) END
                 FROM generate_subscripts(ukeys, 1) AS k LEFT JOIN ins x ON x.id = rids[kord[k]] ORDER BY k)
      INTO new_ids, kids;
    inserted := inserted || new_ids;
    EXIT WHEN array_position(kids, 0::bigint) IS NULL;
    first_pass := false;
  END LOOP;

  IF NOT keyed THEN
    -- Every row is new: ids drawn in input order (the function scan yields
    -- the array in order), one plain INSERT, nothing to look up.
    WITH input AS MATERIALIZED (
      SELECT p.ord, p.value AS payload, nextval('sluice.jobs_id_seq'::regclass) AS id
      FROM jsonb_array_elements(payloads) WITH ORDINALITY AS p(value, ord)
    ), ins AS (
      INSERT INTO sluice.jobs (
        id, queue, name, payload, priority, run_at, max_attempts, backoff_kind, backoff_base_ms,
        backoff_factor, backoff_max_ms, backoff_jitter, timeout_ms, state, group_key, tags,
        depends_on, on_parent_dead, batch_id)
      SELECT i.id, q, enqueue_many.name, i.payload, v_priority, at, v_max_attempts, v_backoff_kind,
        v_backoff_base_ms, v_backoff_factor, v_backoff_max_ms, v_backoff_jitter, v_timeout_ms,
        start_state, enqueue_many.group_keys[i.ord], v_tags, v_depends_on, enqueue_many.on_parent_dead,
        enqueue_many.batch_id
      FROM input i
    )
    SELECT array_agg(i.id ORDER BY i.ord) INTO ids FROM input i;
    inserted := ids;
  ELSE
    IF window_ms IS NOT NULL AND inserted IS NOT NULL THEN
      -- An insert that met a job holding its key while that job's end was
      -- being committed waited for it, then went in. If it completed, it is
      -- in the window: a new statement (a new snapshot) sees it, and it
      -- stands in for the new row, which goes.
      FOR i IN 1..cardinality(ukeys) LOOP
        CONTINUE WHEN kids[i] <> rids[kord[i]];
        ukey := ukeys[i];
        SELECT h.id INTO kid FROM sluice.job_history h
        WHERE h.queue = q AND h.unique_key = ukey AND h.state = 'completed' AND h.name = enqueue_many.name
          AND h.finished_at > window_start
        ORDER BY h.finished_at DESC LIMIT 1;
        IF kid IS NOT NULL THEN
          stale := stale || kids[i];
          kids[i] := kid;
        END IF;
      END LOOP;
      IF stale IS NOT NULL THEN
        DELETE FROM sluice.jobs j WHERE j.id = ANY(stale);
        inserted := ARRAY(SELECT v FROM unnest(inserted) v WHERE v <> ALL(stale) ORDER BY v);
        IF inserted = '{}' THEN
          inserted := NULL;
        END IF;
      END IF;
    END IF;
    -- Each row's id: its own without a key, else its key's.
    ids := ARRAY(SELECT CASE WHEN kpos[o] = 0 THEN rids[o] ELSE kids[kpos[o]] END FROM generate_subscripts(kpos, 1) AS o);
  END IF;

  IF inserted IS NOT NULL THEN
    PERFORM sluice.metrics_add(q, enqueued => cardinality(inserted));
  END IF;

  -- Over the bound: drop the oldest waiting jobs, or the newest of this call.
  IF cfg.max_depth IS NOT NULL AND inserted IS NOT NULL THEN
    excess := depth + cardinality(inserted) - cfg.max_depth;
    IF excess > 0 THEN
      IF cfg.overflow = 'drop_oldest' THEN
        -- The oldest of those counted in the depth and of the new rows. One
        -- that a claim has taken since it was counted (the lock waits for a
        -- claim taking it now) is running, no longer counted: it stays, and
        -- no other goes in its place.
        SELECT array_agg(v.id ORDER BY v.id) INTO victims FROM (
          SELECT j.id FROM sluice.jobs j
          WHERE j.id = ANY(ARRAY(SELECT c FROM unnest(coalesce(oldest, '{}') || inserted) c ORDER BY c LIMIT excess))
            AND j.state IN ('waiting', 'scheduled', 'available')
          ORDER BY j.id FOR UPDATE) v;
      ELSIF cfg.overflow = 'drop_newest' THEN
        SELECT array_agg(v) INTO victims FROM (SELECT v FROM unnest(inserted) v ORDER BY v DESC LIMIT excess) s;
      ELSE
        -- Not reached: reject and block take no more than fits (above). Were
        -- it reached, refusing is their answer; dropping a job they took is not.
        RAISE EXCEPTION 'sluice.enqueue_many: queue % is full (max_depth %)', q, cfg.max_depth
          USING ERRCODE = CASE WHEN cfg.overflow = 'block' THEN 'SLQ02' ELSE 'SLQ01' END;
      END IF;
      IF victims IS NOT NULL THEN
        SELECT array_agg(m.batch_id), array_agg(m.id) FILTER (WHERE m.notify) INTO vb, vn
        FROM sluice.move_to_history(victims, 'dropped') m;
        PERFORM sluice.metrics_add(q, cancelled => cardinality(victims));
        PERFORM sluice.after_finish('dropped', victims, vb, vn);
      END IF;
    END IF;
  END IF;

  IF start_state = 'available' THEN
    -- "queue count first-id run_at": each listening worker works out from the
    -- count and the id whether it is one of the few that claim them, so one
    -- job does not wake a claim in every process (worker/wake.ts); and a
    -- worker whose claims resume past that run_at and id (this transaction's
    -- start, when it committed after later jobs were claimed) resumes just
    -- before them (worker/fetcher.ts). Nothing new (every row met an
    -- existing unique key): the plain queue, which wakes all.
    IF NOT wake_after_commit THEN
      PERFORM pg_notify('sluice_jobs', CASE WHEN inserted IS NULL THEN q
        ELSE q || ' ' || cardinality(inserted) || ' ' || (SELECT min(v) FROM unnest(inserted) v)
          || ' ' || (extract(epoch FROM at) * 1000000)::bigint END);
    END IF;
    -- A run_at in the past (a late cron fire, an explicit time) sorts behind
    -- where workers' claims resume (jobs/claim.sql).
    -- So does a job of a transaction already open for a while, which workers
    -- of earlier releases (resuming 2 s behind their last claim) hear only so.
    IF at < now() OR clock_timestamp() - now() > interval '1 second' THEN
      PERFORM pg_notify('sluice_rewind', q);
    END IF;
  ELSIF start_state IN ('scheduled', 'waiting') THEN
    -- Wakes the promoter: a due time to sleep towards, or children whose
    -- parents may have ended before this commit (sluice.release_orphaned_waiting).
    PERFORM pg_notify('sluice_scheduled', q);
  END IF;
  RETURN QUERY SELECT unnest(ids);
END $$;
-- The signature before ignore_max_depth, dropped here rather than in a
-- migration: the end of a batch's last member calls this function, and the
-- migrations commit before the function files apply.
DROP FUNCTION IF EXISTS sluice.enqueue_many(text, jsonb, text, timestamptz, integer, integer, integer, jsonb, text[],
  text[], text[], bigint[], text, bigint, integer, integer, boolean, boolean);
