-- Priority aging: in queues with aging_after_ms, an available job that has
-- waited a full period gains one priority step (up to critical, 20) and its
-- run_at moves one period later: it then ranks like a job of the higher
-- priority enqueued that much later, so low jobs are never starved. Its
-- first due time stays in ready_at, from which its wait is counted. At most
-- batch_size jobs per call; returns how many.
--
-- Announces the queues it aged on sluice_rewind: an aged job sorts behind
-- where the workers' claims of its queue resume (worker/fetcher.ts).
-- Lease: none.
-- Locks: FOR UPDATE SKIP LOCKED on the aged rows.
CREATE OR REPLACE FUNCTION sluice.age_priorities(batch_size integer DEFAULT 1000)
RETURNS integer LANGUAGE plpgsql AS $$
DECLARE
  n integer;
  aged_queues text[];
BEGIN
  -- Most databases age no queue: then nothing is read. Without this the plan
  -- walks the claim index, where a transaction held open elsewhere keeps an
  -- entry for every job claimed since it began.
  IF NOT EXISTS (SELECT 1 FROM sluice.queues x WHERE x.aging_after_ms IS NOT NULL) THEN
    RETURN 0;
  END IF;
  WITH aged AS (
    UPDATE sluice.jobs j SET priority = j.priority + 1,
      run_at = j.run_at + q.aging_after_ms * interval '1 millisecond',
      ready_at = coalesce(j.ready_at, j.run_at)
    FROM sluice.queues q
    WHERE q.name = j.queue AND q.aging_after_ms IS NOT NULL
      AND j.id IN (
        SELECT a.id FROM sluice.jobs a JOIN sluice.queues aq ON aq.name = a.queue
        WHERE aq.aging_after_ms IS NOT NULL AND a.state = 'available' AND a.priority < 20
          AND a.run_at <= now() - aq.aging_after_ms * interval '1 millisecond'
        LIMIT batch_size
        FOR UPDATE OF a SKIP LOCKED)
    RETURNING j.queue
  ), counted AS (
    SELECT count(*)::integer AS n, array_agg(DISTINCT a.queue) AS queues FROM aged a
  )
  SELECT c.n, c.queues INTO n, aged_queues FROM counted c;
  -- An aged job moved up a priority with a run_at older than that priority's
  -- jobs: it sorts behind where the workers' claims of the queue resume.
  PERFORM pg_notify('sluice_rewind', x) FROM unnest(aged_queues) x;
  RETURN n;
END $$;
