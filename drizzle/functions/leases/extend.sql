-- Extends the leases of the jobs a worker holds: each of ids that is running
-- under worker_id gets locked_until = now() + lease_ms. Returns the ids
-- extended. The worker's beat calls it (packages/sluice/src/sql/workers.ts),
-- and reads which of its ids were not.
--
-- unstarted: those of ids the worker holds claimed but has not started
-- (buffered). They get buffered_at = now(), the others NULL: a rescue gives
-- back the attempt of a job whose last beat found it unstarted under its
-- present claim (buffered_at later than attempted_at), as a hand-back would
-- (jobs/rescue-expired.sql). Written in the same UPDATE, so it costs the
-- beat nothing more. A worker of before it passes none: every job counts.
--
-- A set locked_by means running (jobs_running_locked_check); the state is left
-- out so that no plan can read jobs_running_queue_idx, which a transaction
-- held open elsewhere fills with an entry for every job run since. The jobs
-- are found by primary key whatever the statistics say (enable_seqscan off):
-- the beat is one statement on a pooled connection, which may be behind a
-- transaction-mode pooler, so the setting can only come with a function. With
-- statistics taken while other workers held every job, the planner took this
-- worker's jobs for none and read the whole table by a sequential scan, on
-- every beat. jit = off goes with it (docs/design-notes.md).
--
-- Lease: worker_id (locked_by).
-- Locks: the row lock of the UPDATE on each job, taken in id order as every
-- writer of several jobs takes them (jobs/complete.sql; a cancel_many of some
-- of them deadlocked with the beat): the primary key is walked for the ids in
-- their order, and bitmap scans, which would read the rows in the order of
-- their places, are off. No locking statement first: it would write one more
-- WAL record a job on every beat.
CREATE OR REPLACE FUNCTION sluice.extend_leases(worker_id text, lease_ms double precision, ids bigint[], unstarted bigint[] DEFAULT NULL)
RETURNS SETOF bigint LANGUAGE plpgsql SET enable_seqscan = off SET enable_bitmapscan = off SET jit = off AS $$
BEGIN
  -- A NULL lease wrote a NULL locked_until, which no rescue ever finds
  -- lapsed: the job stayed running for good. (NaN sorts above infinity.)
  IF extend_leases.lease_ms IS NULL OR extend_leases.lease_ms <= 0 OR extend_leases.lease_ms >= 'Infinity' THEN
    RAISE EXCEPTION 'sluice.extend_leases: lease_ms must be a positive number of milliseconds' USING ERRCODE = '22023';
  END IF;
  RETURN QUERY
  UPDATE sluice.jobs j SET locked_until = now() + extend_leases.lease_ms * interval '1 millisecond',
    buffered_at = CASE WHEN j.id = ANY(extend_leases.unstarted) THEN now() END
  WHERE j.id = ANY(extend_leases.ids) AND j.locked_by = extend_leases.worker_id
  RETURNING j.id;
END $$;
-- The signature before `unstarted` (migration 0032), dropped here rather than
-- in the migration, so that no beat meets neither between the two.
DROP FUNCTION IF EXISTS sluice.extend_leases(text, double precision, bigint[]);
