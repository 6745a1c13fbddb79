-- Moves live jobs to job_history in a final state (completed, cancelled,
-- dropped), with their results and a last error entry when given. A queue that
-- keeps no history loses its completed rows here; cancelled and dropped ones
-- are kept. Returns what the follow-up needs (queue, batch, waitFor flag).
--
-- Lease: none (the caller has fenced).
-- Locks: the row lock of the DELETE on each job.
CREATE OR REPLACE FUNCTION sluice.move_to_history(
  ids bigint[], final_state text, results jsonb[] DEFAULT NULL, last_errors jsonb[] DEFAULT NULL
) RETURNS TABLE (id bigint, queue text, batch_id bigint, notify boolean, run_at timestamptz, attempted_at timestamptz)
-- plpgsql rather than sql: its statement plans are cached for the session,
-- and this runs for every acknowledged batch. The DELETE finds the jobs by
-- primary key whatever the statistics say (enable_seqscan off: for 1,000 ids
-- they made the planner read the whole table instead); nothing it calls
-- inherits the setting. jit = off goes with it (docs/design-notes.md).
LANGUAGE plpgsql SET enable_seqscan = off SET jit = off AS $$
#variable_conflict use_column
BEGIN
  RETURN QUERY
  WITH input AS (
    SELECT * FROM unnest(ids, coalesce(results, array_fill(NULL::jsonb, ARRAY[cardinality(ids)])),
      coalesce(last_errors, array_fill(NULL::jsonb, ARRAY[cardinality(ids)]))) AS u(id, result, error)
  ), gone AS (
    DELETE FROM sluice.jobs j WHERE j.id = ANY(ids)
    RETURNING j.*
  ), kept AS (
    INSERT INTO sluice.job_history (id, queue, name, payload, priority, attempt, max_attempts, state, errors,
      result, unique_key, batch_id, tags, created_at, run_at, attempted_at)
    SELECT g.id, g.queue, g.name, g.payload, g.priority, g.attempt, g.max_attempts, final_state,
      g.errors || CASE WHEN i.error IS NULL THEN '[]'::jsonb ELSE jsonb_build_array(i.error) END,
      -- When it was due: an aged job's run_at moved later with its priority.
      i.result, g.unique_key, g.batch_id, g.tags, g.created_at, coalesce(g.ready_at, g.run_at), g.attempted_at
    FROM gone g JOIN input i ON i.id = g.id
    WHERE final_state <> 'completed'
       OR NOT EXISTS (SELECT 1 FROM sluice.queues q WHERE q.name = g.queue AND NOT q.keep_history)
  )
  SELECT g.id, g.queue, g.batch_id, g.notify_on_finish, g.run_at, g.attempted_at FROM gone g;
END $$;
