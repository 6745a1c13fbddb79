-- Rescues jobs whose worker was lost: running jobs whose lease
-- (locked_until) passed go back to available with a WorkerLostError in their
-- errors, or to the dead jobs (reason 'crashed') when that was their last
-- attempt; the crash counts as a failed attempt in the metrics, and as
-- rescued, so that the wait and run averages, which it adds no time to, leave
-- it out (metrics/by-minute.sql). At most batch_size jobs, the
-- longest-expired first. Returns (id, 'rescued' | 'dead').
--
-- With lost_session_grace_ms, it first ends the leases of workers whose
-- process is gone, without waiting for those leases to lapse: a worker's
-- beats on its LISTEN session record that session's server process
-- (sluice.workers.session_pid), and when a process dies its sockets close and
-- the server ends the session at once. A worker whose recorded session has
-- not existed for lost_session_grace_ms, and that has not beaten since, has
-- the leases of the jobs it claimed before then ended now. The grace covers
-- a live worker whose session was cut (an administrator's
-- pg_terminate_backend, a proxy, a server that restarted after a backend
-- crashed, which keeps pg_postmaster_start_time): it beats through its pool
-- at once, which clears the record, and records its new session when it
-- reconnects. Not covered, so left to the leases: a session that outlived its
-- process (a machine or network gone without closing the connection; a
-- pooler in session mode keeping the server connection), and every session
-- of before the server's last start (a restart ended them all, the workers
-- with them or not).
--
-- A job its worker's last beat found claimed and not yet started (buffered
-- ahead of its slots: buffered_at later than attempted_at, leases/extend.sql)
-- gets its attempt back, as a hand-back would, and is never sent to the dead
-- jobs for it: a crash must not spend the retry budget of jobs that never
-- ran, nor kill a one-attempt job that never started. Its error entry says
-- so ("unstarted": true) and it counts in no metric. Not twice in a row: one
-- started after that beat and taking its process down with it would
-- otherwise never use up its attempts; the rescue after such an entry
-- counts, so a job that kills its worker uses its attempts at half the pace.
--
-- Guarantees: run_at is kept, so a rescued job goes back to the front of its
-- priority; the run that lost the job can no longer complete or fail it: the
-- job is no longer running under its claim, and the fence in
-- jobs/complete.sql and jobs/fail.sql refuses its answers.
-- Lease: locked_until < now() (the time lease), not the lease token.
-- Locks: FOR UPDATE SKIP LOCKED on the expired rows, so rescuers never wait on
-- each other or on a completion in flight; the row locks of the UPDATE of
-- sluice.workers; FOR UPDATE on a lost worker's jobs, in id order, before
-- their leases are ended, as every statement writing several jobs takes them
-- (jobs/complete.sql: in another order, a cancel_many of some of them
-- deadlocked with it).
CREATE OR REPLACE FUNCTION sluice.rescue_expired(batch_size integer DEFAULT 1000, lost_session_grace_ms integer DEFAULT NULL)
RETURNS TABLE (id bigint, outcome text) LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
  dead_ids bigint[];
  dead_errors jsonb[];
  back_ids bigint[];
  back_errors jsonb[];
  given_back bigint[];
  q text;
  lost_ids text[];
  lost_at timestamptz[];
  lost_rows bigint[];
  seqscan text := current_setting('enable_seqscan');
  nestloop text := current_setting('enable_nestloop');
BEGIN
  IF lost_session_grace_ms IS NOT NULL THEN
    UPDATE sluice.workers w SET session_lost_at = now()
    WHERE w.session_pid IS NOT NULL AND w.session_lost_at IS NULL
      AND w.heartbeat_at > pg_postmaster_start_time()
      AND NOT EXISTS (SELECT 1 FROM pg_stat_activity a WHERE a.pid = w.session_pid);
    -- The lost workers' rows are locked first: a beat committing meanwhile
    -- has cleared session_lost_at, and the row, read again after the wait, is
    -- left out (a join would keep the old row). A pid that exists again
    -- (reused by a new session) is left to the leases. Only jobs claimed
    -- before the mark: a worker that claims after it is alive (it claims
    -- through its pool while its LISTEN session is down).
    SELECT array_agg(w.id), array_agg(w.session_lost_at) INTO lost_ids, lost_at
    FROM (SELECT w.id, w.session_lost_at FROM sluice.workers w
          WHERE w.session_lost_at < now() - lost_session_grace_ms * interval '1 millisecond'
            AND NOT EXISTS (SELECT 1 FROM pg_stat_activity a WHERE a.pid = w.session_pid)
          FOR UPDATE OF w) w;
    IF lost_ids IS NOT NULL THEN
      -- Through jobs_running_queue_idx, whatever the statistics say (below).
      -- Locked in id order before any is written (see Locks).
      PERFORM set_config('enable_seqscan', 'off', true);
      SELECT array_agg(x.id) INTO lost_rows
      FROM (SELECT j.id FROM sluice.jobs j JOIN unnest(lost_ids, lost_at) AS l(id, session_lost_at) ON j.locked_by = l.id
            WHERE j.state = 'running' AND j.attempted_at < l.session_lost_at AND j.locked_until >= now()
            ORDER BY j.id FOR UPDATE OF j) x;
      UPDATE sluice.jobs j SET locked_until = now() - interval '1 millisecond' WHERE j.id = ANY(lost_rows);
      PERFORM set_config('enable_seqscan', seqscan, true);
    END IF;
  END IF;
  -- Only running jobs can have expired, and this runs every second: they are
  -- read through jobs_running_queue_idx whatever the statistics say. With
  -- statistics taken while every job ran, the planner read the whole table
  -- by a sequential scan instead, on every call, expired jobs or none; the
  -- rescue of those found, by id, likewise. Set for the statements on jobs
  -- only (a table without a usable index would be given the disabled cost,
  -- which starts the JIT compiler), and lifted around move_to_dead, which
  -- plans for itself.
  PERFORM set_config('enable_seqscan', 'off', true);
  WITH lapsed AS (
    SELECT j.id, j.queue, j.attempt, j.max_attempts, j.locked_by,
      coalesce(j.buffered_at > j.attempted_at, false) AND coalesce(j.errors -> -1 ->> 'unstarted', '') <> 'true' AS unstarted
    FROM sluice.jobs j
    WHERE j.state = 'running' AND j.locked_until < now()
    ORDER BY j.locked_until
    LIMIT batch_size
    FOR UPDATE SKIP LOCKED
  ), expired AS (
    SELECT l.id, l.queue, l.unstarted, NOT l.unstarted AND l.attempt >= l.max_attempts AS to_dead,
      jsonb_build_object('attempt', l.attempt, 'at', now(), 'kind', 'crash', 'name', 'WorkerLostError',
        'message', CASE WHEN l.unstarted
          THEN format('worker %s was lost before this attempt started (it was claimed ahead); the attempt is given back', l.locked_by)
          ELSE format('worker %s was lost during this attempt (its process ended, or it stopped heartbeating)', l.locked_by) END)
        || CASE WHEN l.unstarted THEN '{"unstarted": true}'::jsonb ELSE '{}'::jsonb END AS error
    FROM lapsed l
  ), counted AS (
    -- An attempt given back failed nothing, as a hand-back (leases/release.sql).
    SELECT sluice.metrics_add(e.queue, failed => count(*), retried => count(*) FILTER (WHERE NOT e.to_dead),
      rescued => count(*))
    FROM expired e WHERE NOT e.unstarted GROUP BY e.queue
  )
  SELECT array_agg(e.id) FILTER (WHERE e.to_dead), array_agg(e.error) FILTER (WHERE e.to_dead),
         array_agg(e.id) FILTER (WHERE NOT e.to_dead), array_agg(e.error) FILTER (WHERE NOT e.to_dead),
         array_agg(e.id) FILTER (WHERE e.unstarted)
    INTO dead_ids, dead_errors, back_ids, back_errors, given_back
  FROM expired e WHERE (SELECT count(*) FROM counted) >= 0;
  PERFORM set_config('enable_seqscan', seqscan, true);

  IF dead_ids IS NOT NULL THEN
    RETURN QUERY SELECT d.id, 'dead'::text
    FROM sluice.move_to_dead(dead_ids, dead_errors, array_fill('crashed'::text, ARRAY[cardinality(dead_ids)])) d;
  END IF;
  IF back_ids IS NOT NULL THEN
    -- run_at is kept, so a rescued job goes back to the front of its priority.
    -- The jobs meet their errors in a hash join (see jobs/complete.sql).
    PERFORM set_config('enable_seqscan', 'off', true);
    PERFORM set_config('enable_nestloop', 'off', true);
    RETURN QUERY
    UPDATE sluice.jobs j SET state = 'available', locked_by = NULL, locked_until = NULL, buffered_at = NULL,
      attempt = CASE WHEN j.id = ANY(given_back) THEN j.attempt - 1 ELSE j.attempt END,
      errors = j.errors || jsonb_build_array(b.error)
    FROM unnest(back_ids, back_errors) AS b(id, error)
    WHERE j.id = ANY(back_ids) AND j.id = b.id
    RETURNING j.id, 'rescued'::text;
    PERFORM set_config('enable_nestloop', nestloop, true);
    FOR q IN SELECT DISTINCT j.queue FROM sluice.jobs j WHERE j.id = ANY(back_ids) LOOP
      PERFORM pg_notify('sluice_jobs', q);
      PERFORM pg_notify('sluice_rewind', q);
    END LOOP;
    PERFORM set_config('enable_seqscan', seqscan, true);
  END IF;
END $$;
-- The signature before lost_session_grace_ms (migration 0025), dropped here
-- rather than in the migration, so that a leader's rescuer never meets
-- neither between the two.
DROP FUNCTION IF EXISTS sluice.rescue_expired(integer);
