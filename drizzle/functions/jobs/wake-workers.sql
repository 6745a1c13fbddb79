-- Wakes the workers of the queues holding those of job_ids still available:
-- the wake-up sluice.enqueue_many leaves to a caller that asks for it
-- (wake_after_commit), sent once the enqueue has committed, in a transaction
-- of its own. A NOTIFY takes PostgreSQL's one cluster-wide notify lock at
-- commit and keeps it until the commit is over, its WAL flush included
-- (async.c, PreCommit_Notify): notifying commits take turns, one flush each.
-- This transaction writes nothing, and commits without waiting for a flush
-- (set below; a lost wake-up is what the workers' poll is for), so it holds
-- that lock for microseconds. A caller inside a larger transaction makes
-- that whole transaction commit so.
--
-- Plans: made once a session and kept (force_generic_plan; planning each
-- call took most of this function's time), with sequential scans off so
-- that the kept plan reads the jobs by primary key whatever the statistics
-- were when it was made.
--
-- Guarantees: none beyond a hint; jobs already claimed or gone wake nobody.
-- Lease: none. Locks: none (reads sluice.jobs).
CREATE OR REPLACE FUNCTION sluice.wake_workers(job_ids bigint[]) RETURNS void LANGUAGE plpgsql
  SET plan_cache_mode = force_generic_plan SET enable_seqscan = off SET jit = off AS $$
BEGIN
  PERFORM set_config('synchronous_commit', 'off', true);
  -- "queue count first-id run_at", as jobs/enqueue-many.sql announces: only
  -- the workers whose turn it is claim (worker/wake.ts), and a worker whose
  -- claims resume past that run_at starts the queue from the front
  -- (worker/fetcher.ts).
  -- The jobs are looked up by id first, and their state read afterwards:
  -- asked in one scan, the planner may serve "state = 'available'" from
  -- jobs_claim_idx, which statistics that saw no job available make look
  -- empty, and read every available job of every queue to find these.
  PERFORM pg_notify('sluice_jobs', q.queue || ' ' || q.n || ' ' || q.first || ' ' || q.run_at_us)
  FROM (WITH given AS MATERIALIZED (SELECT j.id, j.queue, j.state, j.run_at FROM sluice.jobs j WHERE j.id = ANY(job_ids))
        SELECT g.queue, count(*) AS n, min(g.id) AS first, (extract(epoch FROM min(g.run_at)) * 1000000)::bigint AS run_at_us FROM given g
        WHERE g.state = 'available' GROUP BY g.queue) q;
END $$;
