-- A child enqueued in a transaction that was still open when its last parent
-- finished was invisible to that parent's follow-up, and would wait forever.
-- Promoters sweep for such children: released when no parent is live and all
-- completed, sent down with a parent that did not complete. At most batch_size
-- per call; returns how many.
--
-- Lease: none.
-- Locks: FOR UPDATE SKIP LOCKED on the waiting children.
CREATE OR REPLACE FUNCTION sluice.release_orphaned_waiting(batch_size integer DEFAULT 1000)
RETURNS integer LANGUAGE plpgsql AS $$
DECLARE
  ready bigint[];
  doomed bigint[];
  q text;
BEGIN
  IF NOT EXISTS (SELECT 1 FROM sluice.jobs c WHERE c.state = 'waiting') THEN
    RETURN 0;
  END IF;
  WITH orphans AS (
    SELECT c.id,
      EXISTS (SELECT 1 FROM sluice.dead_jobs d WHERE d.id = ANY(c.depends_on))
        OR EXISTS (SELECT 1 FROM sluice.job_history h WHERE h.id = ANY(c.depends_on) AND h.state <> 'completed') AS failed
    FROM sluice.jobs c
    WHERE c.state = 'waiting'
      AND NOT EXISTS (SELECT 1 FROM sluice.jobs p WHERE p.id = ANY(c.depends_on))
    LIMIT batch_size
    FOR UPDATE OF c SKIP LOCKED
  )
  SELECT array_agg(o.id) FILTER (WHERE NOT o.failed), array_agg(o.id) FILTER (WHERE o.failed) INTO ready, doomed FROM orphans o;
  IF ready IS NOT NULL THEN
    FOR q IN
      WITH upd AS (
        UPDATE sluice.jobs c SET state = CASE WHEN c.run_at > now() THEN 'scheduled' ELSE 'available' END
        WHERE c.id = ANY(ready) RETURNING c.queue, c.state
      )
      SELECT DISTINCT upd.queue FROM upd WHERE upd.state = 'available'
    LOOP
      PERFORM pg_notify('sluice_jobs', q);
      PERFORM pg_notify('sluice_rewind', q);
    END LOOP;
  END IF;
  IF doomed IS NOT NULL THEN
    -- The same cascade the failed parents' ends would have run.
    PERFORM sluice.after_finish('dead',
      ARRAY(SELECT DISTINCT d.id FROM sluice.jobs c JOIN sluice.dead_jobs d ON d.id = ANY(c.depends_on)
            WHERE c.id = ANY(doomed)), NULL, NULL);
    PERFORM sluice.after_finish('cancelled',
      ARRAY(SELECT DISTINCT h.id FROM sluice.jobs c JOIN sluice.job_history h ON h.id = ANY(c.depends_on)
            WHERE c.id = ANY(doomed) AND h.state <> 'completed'), NULL, NULL);
  END IF;
  RETURN coalesce(cardinality(ready), 0) + coalesce(cardinality(doomed), 0);
END $$;
