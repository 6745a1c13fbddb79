-- Cancels live jobs, whatever their state: they move to job_history as
-- cancelled (a running one with a CancelledError entry), what waits on them
-- follows (jobs/after-finish.sql), and running ones are told on sluice_cancel
-- so their handler's signal fires. Returns the ids cancelled.
--
-- Guarantees: a job already finished is left alone; once cancelled, the worker
-- still running it can no longer complete or fail it (its row is gone).
-- Lease: none; cancellation overrides any claim.
-- Locks: FOR UPDATE on the jobs rows, in id order (no deadlock between two
-- cancellations of overlapping sets). A writer that takes rows out of that
-- order can still meet it the other way round: a completion locks the waiting
-- children of the jobs it completed after those jobs, whatever their ids
-- (jobs/after-finish.sql). When PostgreSQL ends this side of such a cycle
-- (40P01), everything it did is rolled back to the savepoint of its block,
-- its locks go, the other writer finishes, and the cancellation starts
-- again, up to five times, instead of failing the caller's transaction.
CREATE OR REPLACE FUNCTION sluice.cancel_many(ids bigint[], reason text DEFAULT 'cancelled')
RETURNS SETOF bigint LANGUAGE plpgsql AS $$
DECLARE
  running_ids bigint[];
  done_ids bigint[];
  done_queues text[];
  bids bigint[];
  nids bigint[];
  errs jsonb[];
  locked_ids bigint[];
  seqscan text := current_setting('enable_seqscan');
BEGIN
  FOR try IN 1..5 LOOP
    BEGIN
      -- By primary key whatever the statistics say: for a large set they made
      -- the planner read the whole table instead (a sequential scan). For this
      -- statement only; what follows (after_finish) is left to the planner. The
      -- ids moved are those locked here, in the order of their errors.
      PERFORM set_config('enable_seqscan', 'off', true);
      SELECT coalesce(array_agg(j.id ORDER BY j.id), '{}'), array_agg(j.id) FILTER (WHERE j.state = 'running'),
             array_agg(CASE WHEN j.state = 'running' THEN jsonb_build_object('attempt', j.attempt, 'at', now(),
               'kind', 'cancelled', 'name', 'CancelledError', 'message', reason) END ORDER BY j.id)
        INTO locked_ids, running_ids, errs
      FROM (SELECT * FROM sluice.jobs WHERE jobs.id = ANY(ids) ORDER BY jobs.id FOR UPDATE) j;
      PERFORM set_config('enable_seqscan', seqscan, true);
      SELECT array_agg(m.id), array_agg(m.queue), array_agg(m.batch_id), array_agg(m.id) FILTER (WHERE m.notify)
        INTO done_ids, done_queues, bids, nids
      FROM sluice.move_to_history(locked_ids, 'cancelled', NULL, errs) m;
      IF done_ids IS NOT NULL THEN
        PERFORM pg_notify('sluice_cancel', x::text) FROM unnest(running_ids) x WHERE x IS NOT NULL;
        PERFORM sluice.metrics_add(x.queue, cancelled => count(*)) FROM unnest(done_queues) AS x(queue) GROUP BY x.queue;
        PERFORM sluice.after_finish('cancelled', done_ids, bids, nids);
      END IF;
      EXIT;
    EXCEPTION WHEN deadlock_detected THEN
      IF try = 5 THEN
        RAISE;
      END IF;
    END;
  END LOOP;
  IF done_ids IS NOT NULL THEN
    RETURN QUERY SELECT unnest(done_ids);
  END IF;
END $$;
