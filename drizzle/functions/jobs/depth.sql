-- Jobs per (queue, name, state), dead ones included. Exact while a table holds
-- fewer than exact_below rows; above that, the planner's statistics give the
-- big combinations (estimated = true), and what they cannot see is counted.
--
-- The statistics' MCV list leaves out a combination too rare in ANALYZE's
-- sample (a queue of a few jobs beside one of millions), which would then
-- read 0: an idle queue to an operator and to a depth alert. So:
-- - running jobs, few and indexed, are counted;
-- - available and dead jobs are counted per queue, for each queue the
--   statistics put under probe_rows jobs of that state: the queues present
--   are found by a loose scan of the claim index (dead_jobs_queue_idx for
--   dead jobs), one descent each, and a probe reads at most probe_rows + 1
--   of the queue's index entries, never a big queue's;
-- - scheduled and waiting jobs have no index that leads with queue
--   (jobs_scheduled_idx is on run_at, for the promoter), so they are counted
--   across all queues while that state holds at most probe_rows jobs;
--   beyond, the statistics give them.
-- A probe that finds more than probe_rows jobs (statistics older than the
-- backlog) gives each name the larger of its estimate and what the probe saw,
-- estimated. Spreading the statistics' unlisted remainder over queues instead
-- was rejected: it is smaller than the sampling error of the big entries, and
-- would put jobs in queues that have none.
--
-- Lease: none. Locks: none (reads).
CREATE OR REPLACE FUNCTION sluice.job_depth(exact_below bigint DEFAULT 100000)
RETURNS TABLE (queue text, name text, state text, jobs bigint, estimated boolean)
LANGUAGE plpgsql STABLE AS $$
#variable_conflict use_column
DECLARE
  live_rows float8 := sluice.relation_rows_estimate('sluice.jobs'::regclass);
  dead_rows float8 := sluice.relation_rows_estimate('sluice.dead_jobs'::regclass);
  -- Rows one probe may read: small enough that a call costs the same on any
  -- backlog, and never more than exact_below, the caller's bound on counting.
  probe_rows constant bigint := greatest(least(exact_below, 1000), 0);
  stats_live boolean;
  stats_dead boolean;
BEGIN
  SELECT bool_or(m.source = 'jobs'), bool_or(m.source = 'dead_jobs') INTO stats_live, stats_dead
  FROM sluice.mcv_estimates() m;
  IF coalesce(live_rows, 0) < exact_below OR NOT coalesce(stats_live, false) THEN
    RETURN QUERY SELECT j.queue, j.name, j.state, count(*), false FROM sluice.jobs j GROUP BY 1, 2, 3;
  ELSE
    RETURN QUERY SELECT j.queue, j.name, 'running'::text, count(*), false
      FROM sluice.jobs j WHERE j.state = 'running' GROUP BY 1, 2;
    RETURN QUERY
      WITH RECURSIVE m AS MATERIALIZED (
        SELECT m.queue, m.name, m.jobs FROM sluice.mcv_estimates() m
        WHERE m.source = 'jobs' AND m.state = 'available' AND m.jobs > 0
      ), present(queue) AS (
        (SELECT j.queue FROM sluice.jobs j WHERE j.state = 'available' ORDER BY j.queue LIMIT 1)
        UNION ALL
        SELECT (SELECT j.queue FROM sluice.jobs j WHERE j.state = 'available' AND j.queue > p.queue
                ORDER BY j.queue LIMIT 1)
        FROM present p WHERE p.queue IS NOT NULL
      ), probed AS (
        SELECT p.queue, c.name, c.jobs, sum(c.jobs) OVER (PARTITION BY p.queue) AS total
        FROM present p CROSS JOIN LATERAL (
          SELECT l.name, count(*) AS jobs
          -- In the claim index's order: any other plan would sort the whole
          -- queue, so the planner walks the index and stops at the limit.
          FROM (SELECT j.name FROM sluice.jobs j WHERE j.queue = p.queue AND j.state = 'available'
                ORDER BY j.priority DESC, j.run_at, j.id LIMIT probe_rows + 1) l
          GROUP BY l.name
        ) c
        WHERE p.queue IS NOT NULL
          AND coalesce((SELECT sum(m.jobs) FROM m WHERE m.queue = p.queue), 0) < probe_rows
      )
      SELECT b.queue, b.name, 'available'::text, b.jobs, false FROM probed b WHERE b.total <= probe_rows
      UNION ALL
      SELECT e.queue, e.name, 'available'::text, max(e.jobs)::bigint, true
      FROM (SELECT m.queue, m.name, m.jobs FROM m
            UNION ALL SELECT b.queue, b.name, b.jobs FROM probed b WHERE b.total > probe_rows) e
      -- A queue absent from the claim index has no available job, whatever the statistics say.
      WHERE EXISTS (SELECT 1 FROM present p WHERE p.queue = e.queue)
        AND NOT EXISTS (SELECT 1 FROM probed b WHERE b.queue = e.queue AND b.total <= probe_rows)
      GROUP BY e.queue, e.name;
    RETURN QUERY
      WITH m AS MATERIALIZED (
        SELECT m.queue, m.name, m.state, m.jobs FROM sluice.mcv_estimates() m
        WHERE m.source = 'jobs' AND m.state IN ('scheduled', 'waiting') AND m.jobs > 0
      ), seen AS MATERIALIZED (
        -- Ordered by the partial indexes' keys, so the planner walks them and stops.
        SELECT 'scheduled'::text AS state, l.queue, l.name
        FROM (SELECT j.queue, j.name FROM sluice.jobs j WHERE j.state = 'scheduled'
              ORDER BY j.run_at LIMIT probe_rows + 1) l
        UNION ALL
        SELECT 'waiting'::text, l.queue, l.name
        FROM (SELECT j.queue, j.name FROM sluice.jobs j WHERE j.state = 'waiting'
              ORDER BY j.id LIMIT probe_rows + 1) l
      ), counted AS (
        SELECT v.state, (SELECT count(*) FROM seen s WHERE s.state = v.state) <= probe_rows AS exact
        FROM (VALUES ('scheduled'), ('waiting')) v(state)
      )
      SELECT s.queue, s.name, s.state, count(*), false
      FROM seen s JOIN counted c ON c.state = s.state AND c.exact
      GROUP BY 1, 2, 3
      UNION ALL
      SELECT e.queue, e.name, e.state, max(e.jobs)::bigint, true
      FROM (SELECT m.queue, m.name, m.state, m.jobs FROM m
            UNION ALL SELECT s.queue, s.name, s.state, count(*) FROM seen s GROUP BY 1, 2, 3) e
      JOIN counted c ON c.state = e.state AND NOT c.exact
      GROUP BY 1, 2, 3;
  END IF;
  IF coalesce(dead_rows, 0) < exact_below OR NOT coalesce(stats_dead, false) THEN
    RETURN QUERY SELECT d.queue, d.name, 'dead'::text, count(*), false FROM sluice.dead_jobs d GROUP BY 1, 2;
  ELSE
    RETURN QUERY
      WITH RECURSIVE m AS MATERIALIZED (
        SELECT m.queue, m.name, m.jobs FROM sluice.mcv_estimates() m WHERE m.source = 'dead_jobs' AND m.jobs > 0
      ), present(queue) AS (
        (SELECT d.queue FROM sluice.dead_jobs d ORDER BY d.queue LIMIT 1)
        UNION ALL
        SELECT (SELECT d.queue FROM sluice.dead_jobs d WHERE d.queue > p.queue ORDER BY d.queue LIMIT 1)
        FROM present p WHERE p.queue IS NOT NULL
      ), probed AS (
        SELECT p.queue, c.name, c.jobs, sum(c.jobs) OVER (PARTITION BY p.queue) AS total
        FROM present p CROSS JOIN LATERAL (
          SELECT l.name, count(*) AS jobs
          -- In dead_jobs_queue_idx's order, as above.
          FROM (SELECT d.name FROM sluice.dead_jobs d WHERE d.queue = p.queue
                ORDER BY d.died_at LIMIT probe_rows + 1) l
          GROUP BY l.name
        ) c
        WHERE p.queue IS NOT NULL
          AND coalesce((SELECT sum(m.jobs) FROM m WHERE m.queue = p.queue), 0) < probe_rows
      )
      SELECT b.queue, b.name, 'dead'::text, b.jobs, false FROM probed b WHERE b.total <= probe_rows
      UNION ALL
      SELECT e.queue, e.name, 'dead'::text, max(e.jobs)::bigint, true
      FROM (SELECT m.queue, m.name, m.jobs FROM m
            UNION ALL SELECT b.queue, b.name, b.jobs FROM probed b WHERE b.total > probe_rows) e
      WHERE EXISTS (SELECT 1 FROM present p WHERE p.queue = e.queue)
        AND NOT EXISTS (SELECT 1 FROM probed b WHERE b.queue = e.queue AND b.total <= probe_rows)
      GROUP BY e.queue, e.name;
  END IF;
END $$;
