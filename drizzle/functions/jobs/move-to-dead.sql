-- Moves live jobs to sluice.dead_jobs, appending each one's last error and its
-- reason (exhausted, permanent, crashed, parent_dead), keeping its parents
-- (depends_on, on_parent_dead) for a replay to wait on, counts them as dead in
-- the metrics and runs the follow-up (jobs/after-finish.sql), unless follow_up
-- is false: the cascade in jobs/after-finish.sql moves a generation of
-- children here and runs their follow-up itself, in its loop. Returns each
-- job moved, with its queue.
--
-- Lease: none (the caller has fenced).
-- Locks: the row lock of the DELETE on each job.
CREATE OR REPLACE FUNCTION sluice.move_to_dead(ids bigint[], last_errors jsonb[], reasons text[], follow_up boolean DEFAULT true)
RETURNS TABLE (id bigint, queue text) LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
  bids bigint[];
  nids bigint[];
  dids bigint[];
  dqueues text[];
  nestloop text := current_setting('enable_nestloop');
BEGIN
  -- Arrays are built with array_agg in one statement: appending in a loop
  -- would be quadratic on large batches. The moved rows meet their errors
  -- in a hash join whatever the statistics say (see jobs/complete.sql).
  PERFORM set_config('enable_nestloop', 'off', true);
  WITH input AS (
      SELECT * FROM unnest(ids, last_errors, reasons) AS u(id, error, reason)
    ), gone AS (
      DELETE FROM sluice.jobs j WHERE j.id = ANY(ids)
      RETURNING j.*
    ), ins AS (
      INSERT INTO sluice.dead_jobs (
        id, queue, name, payload, priority, attempt, max_attempts, backoff_kind, backoff_base_ms,
        backoff_factor, backoff_max_ms, backoff_jitter, timeout_ms, unique_key, group_key, batch_id, tags,
        errors, reason, created_at, run_at, attempted_at, depends_on, on_parent_dead)
      SELECT g.id, g.queue, g.name, g.payload, g.priority, g.attempt, g.max_attempts, g.backoff_kind,
        g.backoff_base_ms, g.backoff_factor, g.backoff_max_ms, g.backoff_jitter, g.timeout_ms,
        g.unique_key, g.group_key, g.batch_id, g.tags, g.errors || jsonb_build_array(i.error),
        i.reason, g.created_at, coalesce(g.ready_at, g.run_at), g.attempted_at, g.depends_on, g.on_parent_dead
      FROM gone g JOIN input i ON i.id = g.id
    )
  SELECT array_agg(g.id), array_agg(g.queue), array_agg(g.batch_id), array_agg(g.id) FILTER (WHERE g.notify_on_finish)
    INTO dids, dqueues, bids, nids
  FROM gone g;
  PERFORM set_config('enable_nestloop', nestloop, true);
  IF cardinality(dids) > 0 THEN
    PERFORM sluice.metrics_add(x.queue, dead => x.n)
    FROM (SELECT d.queue, count(*) AS n FROM sluice.dead_jobs d WHERE d.id = ANY(dids) GROUP BY d.queue) x;
    IF follow_up THEN
      PERFORM sluice.after_finish('dead', dids, bids, nids);
    END IF;
    RETURN QUERY SELECT * FROM unnest(dids, dqueues);
  END IF;
END $$;
-- The signature before follow_up, dropped here rather than in a migration:
-- failures and rescues call this function, and the migrations commit before
-- the function files apply.
DROP FUNCTION IF EXISTS sluice.move_to_dead(bigint[], jsonb[], text[]);
