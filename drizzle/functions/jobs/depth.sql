-- Jobs per (queue, name, state), dead ones included. Exact while a table holds
-- fewer than exact_below rows; above that, waiting states come from the
-- planner's statistics (estimated = true) and running jobs, which are few and
-- indexed, are still counted.
--
-- Lease: none. Locks: none (reads).
CREATE OR REPLACE FUNCTION sluice.job_depth(exact_below bigint DEFAULT 100000)
RETURNS TABLE (queue text, name text, state text, jobs bigint, estimated boolean)
LANGUAGE plpgsql STABLE AS $$
#variable_conflict use_column
DECLARE
  live_rows float8 := sluice.relation_rows_estimate('sluice.jobs'::regclass);
  dead_rows float8 := sluice.relation_rows_estimate('sluice.dead_jobs'::regclass);
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
    RETURN QUERY SELECT m.queue, m.name, m.state, m.jobs, true
      FROM sluice.mcv_estimates() m WHERE m.source = 'jobs' AND m.state <> 'running' AND m.jobs > 0;
  END IF;
  IF coalesce(dead_rows, 0) < exact_below OR NOT coalesce(stats_dead, false) THEN
    RETURN QUERY SELECT d.queue, d.name, 'dead'::text, count(*), false FROM sluice.dead_jobs d GROUP BY 1, 2;
  ELSE
    RETURN QUERY SELECT m.queue, m.name, m.state, m.jobs, true
      FROM sluice.mcv_estimates() m WHERE m.source = 'dead_jobs' AND m.jobs > 0;
  END IF;
END $$;
