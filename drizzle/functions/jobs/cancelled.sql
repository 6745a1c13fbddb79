-- Which of ids were cancelled: those kept in job_history as 'cancelled' (a
-- queue that keeps no history still keeps its cancelled rows,
-- jobs/move-to-history.sql). The worker's beat asks it about the held jobs
-- whose lease it could not extend (packages/sluice/src/sql/workers.ts): only
-- these are stopped as cancelled; a job rescued, retried, sent to the dead
-- jobs or completed elsewhere lost its lease, and a row some transaction holds
-- locked right now is not taken for cancelled either.
--
-- plpgsql, VOLATILE: each statement reads a snapshot of its own, taken after
-- the beat's lease UPDATE (whose result is this function's argument). A
-- cancel that committed while that UPDATE waited for the row shows its
-- history row here; the beat's own snapshot predates it. An empty ids (every
-- beat but a few) returns before any partition is opened, and the plan is
-- cached for the session. The rows are found by primary key, one probe per
-- partition, whatever the statistics say (enable_seqscan off, with jit = off
-- as elsewhere: docs/design-notes.md).
--
-- Lease: none (read only). Locks: none.
CREATE OR REPLACE FUNCTION sluice.cancelled_jobs(ids bigint[])
RETURNS SETOF bigint LANGUAGE plpgsql SET enable_seqscan = off SET jit = off AS $$
BEGIN
  IF cardinality(ids) > 0 THEN
    RETURN QUERY SELECT h.id FROM sluice.job_history h WHERE h.id = ANY(ids) AND h.state = 'cancelled';
  END IF;
END $$;
