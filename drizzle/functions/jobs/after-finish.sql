-- Everything that follows a job's end, whatever the end: children waiting on
-- it are released (completed) or sent down with it (dead, cancelled,
-- dropped), batch counts move and finished batches enqueue their callback,
-- and waitFor() callers are told on sluice_finished. Called by completion,
-- failure, cancellation and rescue, in their transaction.
--
-- Children sent down go one generation per round of a loop, not one nested
-- call per generation: a chain of any length ends without running out of
-- stack. A child goes dead (ParentDeadError, reason parent_dead) when a parent
-- of its round died and it says on_parent_dead dead; otherwise it is
-- cancelled. A completion releases a child only when no parent is live and
-- none ended without completing: a child enqueued while another of its
-- parents died or was cancelled (that end could not see it) goes down with
-- that parent, through that parent's cascade, as the orphan sweep sends it.
-- A batch's callback is enqueued past its queue's max_depth, whatever its
-- overflow policy: a job's end is never refused because another queue is
-- full, and drops nothing.
--
-- Guarantees: two parents of one child ending in overlapping transactions
-- release it when the second commits. The waiting children are locked first
-- (in id order), and whether any parent is still live is asked in the next
-- statement, whose snapshot, taken after the lock wait, sees the other
-- parent's end. Ends that share waiting descendants do not deadlock: a
-- release locks the children in one statement, and a cascade every waiting
-- descendant, of all generations, in one statement before its first move,
-- each in id order. (A cascade locking a generation a round would hold the
-- children while it waits for a grandchild, which a completing parent of
-- that grandchild may hold while it waits for one of those children.) The
-- exception is a completion that sends a child down with a parent that
-- ended without seeing it: it runs that parent's cascade holding the
-- children it locked, so an end that shares such orphans with it can meet
-- it in a deadlock, which PostgreSQL breaks by failing one (a worker's
-- completer retries its batch), as it may with the orphan sweep.
-- Lease: none (the caller has fenced).
-- Locks: FOR UPDATE on the waiting children (a cascade: on all waiting
-- descendants), in id order; the row locks of their moves and of the updates
-- to sluice.batches rows; a completion that sends children down takes the
-- locks of those parents' cascades too, after its own. Nothing when no job
-- waits (jobs_waiting_idx answers that).
CREATE OR REPLACE FUNCTION sluice.after_finish(final_state text, ids bigint[], batch_ids bigint[], notify_ids bigint[])
RETURNS void LANGUAGE plpgsql AS $$
DECLARE
  locked bigint[];
  -- A completion's released children, by queue; the parents of its children
  -- that died or were cancelled (see below).
  ready_queues text[];
  scheduled_queues text[];
  dead_parents bigint[];
  ended_parents bigint[];
  -- This round's jobs that ended: those that died, those that ended otherwise.
  died bigint[] := CASE WHEN final_state = 'dead' THEN ids END;
  ended bigint[] := CASE WHEN final_state <> 'dead' THEN ids END;
  child_dead bigint[];
  child_cancel bigint[];
  queues text[];
  -- The waiting descendants, a generation after another (children first):
  -- generation g ends at below[ends[g]].
  below bigint[];
  ends integer[];
  gen bigint[];
  round integer := 0;
  carried bigint[];
  -- Every job ended here, for the batches (its batch and how it ended) and for waitFor.
  all_batches bigint[] := batch_ids;
  all_states text[] := array_fill(final_state, ARRAY[coalesce(cardinality(batch_ids), 0)]);
  all_notify bigint[] := notify_ids;
  b record;
BEGIN
  IF final_state = 'completed' THEN
    IF EXISTS (SELECT 1 FROM sluice.jobs c WHERE c.state = 'waiting') THEN
      SELECT array_agg(x.id) INTO locked
      FROM (SELECT c.id FROM sluice.jobs c WHERE c.state = 'waiting' AND c.depends_on && ids ORDER BY c.id FOR UPDATE) x;
    END IF;
    IF locked IS NOT NULL THEN
      -- Of the locked children no parent of which is live, those whose other
      -- parents (not ending here) all completed are released. One whose other
      -- parent died or was cancelled while it was being enqueued (that end's
      -- follow-up could not see it) goes down with that parent, as the orphan
      -- sweep would send it (jobs/release-orphaned-waiting.sql), not run.
      -- Those parents are looked up by id (primary keys; job_history's leads
      -- with id in every partition), and only for a child with parents besides
      -- the ones completing here: a chain's child looks up nothing.
      -- A child released with a run_at still ahead is scheduled: the promoter
      -- must hear of it, or it sleeps on towards the due times it knew (up to
      -- its longest sleep) and promotes the child that much late.
      WITH free AS MATERIALIZED (
        SELECT c.id,
          CASE WHEN cardinality(o.others) > 0 THEN ARRAY(SELECT d.id FROM sluice.dead_jobs d WHERE d.id = ANY(o.others)) END AS dead_p,
          CASE WHEN cardinality(o.others) > 0 THEN ARRAY(SELECT h.id FROM sluice.job_history h
                                                         WHERE h.id = ANY(o.others) AND h.state <> 'completed') END AS ended_p
        FROM sluice.jobs c
          CROSS JOIN LATERAL (SELECT ARRAY(SELECT p FROM unnest(c.depends_on) p WHERE p <> ALL(ids)) AS others) o
        -- OFFSET 0 keeps the live-parent check a probe of the primary key per
        -- child: as an anti join, statistics of a nearly empty table made it
        -- one walk of the whole index, a plan a session may keep.
        WHERE c.id = ANY(locked) AND c.state = 'waiting'
          AND NOT EXISTS (SELECT 1 FROM sluice.jobs p WHERE p.id = ANY(c.depends_on) OFFSET 0)
      ), ready AS (
        UPDATE sluice.jobs c SET state = CASE WHEN c.run_at > now() THEN 'scheduled' ELSE 'available' END
        WHERE c.id = ANY(ARRAY(SELECT f.id FROM free f WHERE coalesce(f.dead_p, '{}') = '{}' AND coalesce(f.ended_p, '{}') = '{}'))
        RETURNING c.queue, c.state
      )
      SELECT (SELECT array_agg(DISTINCT r.queue) FROM ready r WHERE r.state = 'available'),
             (SELECT array_agg(DISTINCT r.queue) FROM ready r WHERE r.state = 'scheduled'),
             (SELECT array_agg(DISTINCT x) FROM free f, unnest(f.dead_p) x),
             (SELECT array_agg(DISTINCT x) FROM free f, unnest(f.ended_p) x)
        INTO ready_queues, scheduled_queues, dead_parents, ended_parents;
      PERFORM pg_notify('sluice_jobs', x), pg_notify('sluice_rewind', x) FROM unnest(ready_queues) x;
      PERFORM pg_notify('sluice_scheduled', x) FROM unnest(scheduled_queues) x;
      -- Dead first: a child with a dead and a cancelled parent goes dead, as
      -- it would had the dead parent's end seen it.
      IF dead_parents IS NOT NULL THEN
        PERFORM sluice.after_finish('dead', dead_parents, NULL, NULL);
      END IF;
      IF ended_parents IS NOT NULL THEN
        PERFORM sluice.after_finish('cancelled', ended_parents, NULL, NULL);
      END IF;
    END IF;
  ELSIF (died IS NOT NULL OR ended IS NOT NULL) AND EXISTS (SELECT 1 FROM sluice.jobs c WHERE c.state = 'waiting') THEN
    -- Every waiting descendant, found first (read only), a generation per
    -- statement: one probe of jobs_waiting_deps_idx per generation, where a
    -- recursive join would probe it, pending list and all, once per job. A
    -- job two paths reach is in the first generation that reaches it, the
    -- round that moves it below.
    gen := coalesce(died, '{}') || coalesce(ended, '{}');
    WHILE gen IS NOT NULL LOOP
      SELECT array_agg(c.id) INTO gen FROM sluice.jobs c
      WHERE c.state = 'waiting' AND c.depends_on && gen AND c.id NOT IN (SELECT unnest(below));
      below := below || gen;
      ends := ends || coalesce(cardinality(below), 0);
    END LOOP;
    -- All locked in one statement, in id order, before the first moves (see
    -- Guarantees). A child committed after the search is the orphan sweep's
    -- (jobs/release-orphaned-waiting.sql), as is one committed after this
    -- transaction ends.
    PERFORM FROM (SELECT c.id FROM sluice.jobs c WHERE c.id = ANY(below) AND c.state = 'waiting' ORDER BY c.id FOR UPDATE) x;
    -- A generation a round, read by id from the locked set: the probes are
    -- not made twice. A child is moved once a parent is (due); one whose
    -- parent of the generation before was not (no longer waiting when
    -- locked) waits for the next round.
    WHILE (died IS NOT NULL OR ended IS NOT NULL) AND below IS NOT NULL LOOP
      round := round + 1;
      SELECT array_agg(x.id) FILTER (WHERE x.due AND x.to_dead), array_agg(x.id) FILTER (WHERE x.due AND NOT x.to_dead),
             array_agg(x.id) FILTER (WHERE NOT x.due),
             all_batches || coalesce(array_agg(x.batch_id) FILTER (WHERE x.due AND x.batch_id IS NOT NULL), '{}'),
             all_states || coalesce(array_agg(CASE WHEN x.to_dead THEN 'dead' ELSE 'cancelled' END)
                                      FILTER (WHERE x.due AND x.batch_id IS NOT NULL), '{}'),
             all_notify || coalesce(array_agg(x.id) FILTER (WHERE x.due AND x.notify_on_finish), '{}')
        INTO child_dead, child_cancel, carried, all_batches, all_states, all_notify
      -- due and to_dead are columns, not conditions: a condition on depends_on
      -- would let the planner probe jobs_waiting_deps_idx again.
      FROM (SELECT c.id, c.batch_id, c.notify_on_finish,
                   c.depends_on && (coalesce(died, '{}') || coalesce(ended, '{}')) AS due,
                   coalesce(c.on_parent_dead = 'dead' AND c.depends_on && died, false) AS to_dead
            FROM sluice.jobs c
            WHERE c.id = ANY(coalesce(carried, '{}') || below[coalesce(ends[round - 1], 0) + 1 : ends[round]])
              AND c.state = 'waiting'
            ORDER BY c.id) x;
      died := NULL;
      ended := NULL;
      IF child_dead IS NOT NULL THEN
        SELECT array_agg(d.id) INTO died
        FROM sluice.move_to_dead(child_dead,
          array_fill(jsonb_build_object('attempt', 0, 'at', now(), 'kind', 'error', 'name', 'ParentDeadError',
            'message', 'a job this one depends on is dead'), ARRAY[cardinality(child_dead)]),
          array_fill('parent_dead'::text, ARRAY[cardinality(child_dead)]), follow_up => false) d;
      END IF;
      IF child_cancel IS NOT NULL THEN
        -- Waiting jobs: none is running, so there is no handler to tell and no error entry to add.
        SELECT array_agg(m.id), array_agg(m.queue) INTO ended, queues
        FROM sluice.move_to_history(child_cancel, 'cancelled') m;
        PERFORM sluice.metrics_add(x.queue, cancelled => count(*)) FROM unnest(queues) AS x(queue) GROUP BY x.queue;
      END IF;
    END LOOP;
  END IF;

  IF cardinality(array_remove(all_batches, NULL)) > 0 THEN
    FOR b IN
      -- Counted up to the batch's total and no further: a member past it (a
      -- SQL caller that put more jobs in the batch than its total, or one in
      -- a batch already finished) ends without being counted. Counted, it
      -- broke batches_counts_check, and every end of that job failed, the
      -- whole acknowledgement it came in and every rescue round with it.
      UPDATE sluice.batches t SET
        completed = t.completed + least(c.completed, t.total - t.completed - t.dead - t.cancelled),
        dead = t.dead + least(c.dead, t.total - t.completed - t.dead - t.cancelled
          - least(c.completed, t.total - t.completed - t.dead - t.cancelled)),
        cancelled = t.cancelled + least(c.cancelled, t.total - t.completed - t.dead - t.cancelled
          - least(c.completed, t.total - t.completed - t.dead - t.cancelled)
          - least(c.dead, t.total - t.completed - t.dead - t.cancelled
              - least(c.completed, t.total - t.completed - t.dead - t.cancelled)))
      FROM (SELECT x.batch_id,
                   (count(*) FILTER (WHERE x.st = 'completed'))::integer AS completed,
                   (count(*) FILTER (WHERE x.st = 'dead'))::integer AS dead,
                   (count(*) FILTER (WHERE x.st IN ('cancelled', 'dropped')))::integer AS cancelled
            FROM unnest(all_batches, all_states) AS x(batch_id, st) WHERE x.batch_id IS NOT NULL GROUP BY x.batch_id) c
      WHERE t.id = c.batch_id AND t.finished_at IS NULL
      RETURNING t.*
    LOOP
      IF b.finished_at IS NULL AND b.completed + b.dead + b.cancelled = b.total THEN
        UPDATE sluice.batches SET finished_at = now(),
          callback_job_id = CASE WHEN b.on_complete_job IS NULL THEN NULL ELSE (
            SELECT e.id FROM sluice.enqueue_many(b.on_complete_job, jsonb_build_array(
              coalesce(b.on_complete_payload, '{}'::jsonb) || jsonb_build_object('batchId', b.id, 'total', b.total,
                'completed', b.completed, 'dead', b.dead, 'cancelled', b.cancelled)),
              ignore_max_depth => true) AS e(id)) END
        WHERE batches.id = b.id;
      END IF;
    END LOOP;
  END IF;

  PERFORM pg_notify('sluice_finished', x::text) FROM unnest(all_notify) x WHERE x IS NOT NULL;
END $$;
