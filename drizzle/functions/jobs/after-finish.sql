-- Everything that follows a job's end, whatever the end: children waiting on
-- it are released (completed) or sent down with it (dead, cancelled,
-- dropped), batch counts move and finished batches enqueue their callback,
-- and waitFor() callers are told on sluice_finished. Called by completion,
-- failure, cancellation and rescue, in their transaction.
--
-- Lease: none (the caller has fenced).
-- Locks: the row locks of the updates to children and to sluice.batches rows.
CREATE OR REPLACE FUNCTION sluice.after_finish(final_state text, ids bigint[], batch_ids bigint[], notify_ids bigint[])
RETURNS void LANGUAGE plpgsql AS $$
DECLARE
  q text;
  st text;
  child_dead bigint[];
  child_cancel bigint[];
  b record;
BEGIN
  IF final_state = 'completed' THEN
    -- A child released with a run_at still ahead is scheduled: the promoter
    -- must hear of it, or it sleeps on towards the due times it knew (up to
    -- its longest sleep) and promotes the child that much late.
    FOR q, st IN
      WITH ready AS (
        UPDATE sluice.jobs c SET state = CASE WHEN c.run_at > now() THEN 'scheduled' ELSE 'available' END
        WHERE c.state = 'waiting' AND c.depends_on && ids
          AND NOT EXISTS (SELECT 1 FROM sluice.jobs p WHERE p.id = ANY(c.depends_on))
        RETURNING c.queue, c.state
      )
      SELECT DISTINCT ready.queue, ready.state FROM ready
    LOOP
      IF st = 'available' THEN
        PERFORM pg_notify('sluice_jobs', q);
        PERFORM pg_notify('sluice_rewind', q);
      ELSE
        PERFORM pg_notify('sluice_scheduled', q);
      END IF;
    END LOOP;
  ELSE
    SELECT array_agg(c.id) FILTER (WHERE final_state = 'dead' AND c.on_parent_dead = 'dead'),
           array_agg(c.id) FILTER (WHERE NOT (final_state = 'dead' AND c.on_parent_dead = 'dead'))
      INTO child_dead, child_cancel
    FROM sluice.jobs c WHERE c.state = 'waiting' AND c.depends_on && ids;
    IF child_dead IS NOT NULL THEN
      PERFORM sluice.move_to_dead(child_dead,
        array_fill(jsonb_build_object('attempt', 0, 'at', now(), 'kind', 'error', 'name', 'ParentDeadError',
          'message', 'a job this one depends on is dead'), ARRAY[cardinality(child_dead)]),
        array_fill('parent_dead'::text, ARRAY[cardinality(child_dead)]));
    END IF;
    IF child_cancel IS NOT NULL THEN
      PERFORM sluice.cancel_many(child_cancel, 'a job this one depends on ended without completing');
    END IF;
  END IF;

  IF cardinality(array_remove(batch_ids, NULL)) > 0 THEN
    FOR b IN
      UPDATE sluice.batches t SET
        completed = t.completed + CASE WHEN final_state = 'completed' THEN c.n ELSE 0 END,
        dead = t.dead + CASE WHEN final_state = 'dead' THEN c.n ELSE 0 END,
        cancelled = t.cancelled + CASE WHEN final_state IN ('cancelled', 'dropped') THEN c.n ELSE 0 END
      FROM (SELECT x AS batch_id, count(*)::integer AS n FROM unnest(batch_ids) x WHERE x IS NOT NULL GROUP BY x) c
      WHERE t.id = c.batch_id
      RETURNING t.*
    LOOP
      IF b.finished_at IS NULL AND b.completed + b.dead + b.cancelled = b.total THEN
        UPDATE sluice.batches SET finished_at = now(),
          callback_job_id = CASE WHEN b.on_complete_job IS NULL THEN NULL ELSE sluice.enqueue(b.on_complete_job,
            coalesce(b.on_complete_payload, '{}'::jsonb) || jsonb_build_object('batchId', b.id, 'total', b.total,
              'completed', b.completed, 'dead', b.dead, 'cancelled', b.cancelled)) END
        WHERE batches.id = b.id;
      END IF;
    END LOOP;
  END IF;

  PERFORM pg_notify('sluice_finished', x::text) FROM unnest(notify_ids) x WHERE x IS NOT NULL;
END $$;
