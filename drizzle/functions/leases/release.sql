-- Gives back jobs a worker holds without an answer (worker.stop(), and the
-- buffered jobs of a queue paused meanwhile): each of ids still running under
-- worker_id and under the claim its attempt and lease name goes back to
-- available, its attempt handed back too (it never reached an answer, and a
-- deploy must not eat a job's retry budget). The workers of those queues are
-- told (sluice_jobs) and their claims resume from the front (sluice_rewind).
-- Returns how many went back. The worker sends it
-- (packages/sluice/src/sql/job-leases.ts, jobReleaseMany).
--
-- Guarantees: a claim that no longer holds its job (rescued, cancelled,
-- answered, claimed again) gives back nothing.
-- Lease: sluice.lease_holds(attempted_at, lease) with attempt and locked_by,
-- as in jobs/complete.sql.
-- Locks: FOR UPDATE on the given jobs this worker holds, in id order, before
-- any is written, as in jobs/complete.sql (see there why); the UPDATE takes
-- only the rows locked.
--
-- Plans: the jobs are found by primary key and matched to their leases in a
-- hash join whatever the statistics say, as the heartbeat's
-- (leases/extend.sql): with statistics taken while the table was empty, or
-- while other workers held every job, the release read the whole table by a
-- sequential scan. It is one statement on a pooled connection, so the
-- settings come with the function; it calls nothing they would bind. jit =
-- off goes with them (docs/design-notes.md).
CREATE OR REPLACE FUNCTION sluice.release_leases(worker_id text, ids bigint[], attempts integer[], leases bigint[])
RETURNS bigint LANGUAGE plpgsql SET enable_seqscan = off SET enable_nestloop = off SET jit = off AS $$
DECLARE
  locked bigint[];
  released bigint;
  queues text[];
BEGIN
  -- Arrays that do not line up were padded with NULLs: part of the call applied, and no word.
  IF ids IS NULL OR attempts IS NULL OR cardinality(attempts) <> cardinality(ids) OR cardinality(leases) <> cardinality(ids) THEN
    RAISE EXCEPTION 'sluice.release_leases: ids and attempts (and leases when given) must have one entry per job' USING ERRCODE = '22023';
  END IF;
  SELECT array_agg(l.id) INTO locked
  FROM (SELECT j.id FROM sluice.jobs j WHERE j.id = ANY(ids) AND j.locked_by = worker_id ORDER BY j.id FOR UPDATE) l;
  IF locked IS NULL THEN
    RETURN 0;
  END IF;
  WITH back AS (
    UPDATE sluice.jobs j
    SET state = 'available', attempt = j.attempt - 1, locked_by = NULL, locked_until = NULL
    FROM unnest(ids, attempts, leases) AS i(id, attempt, lease)
    WHERE j.id = ANY(locked) AND j.id = i.id AND j.attempt = i.attempt
      AND j.locked_by = worker_id AND sluice.lease_holds(j.attempted_at, i.lease)
    RETURNING j.queue
  )
  SELECT count(*), array_agg(DISTINCT back.queue) INTO released, queues FROM back;
  PERFORM pg_notify('sluice_jobs', q), pg_notify('sluice_rewind', q) FROM unnest(queues) q;
  RETURN released;
END $$;
