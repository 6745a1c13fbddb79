-- pg_stats_ext shows a table's statistics to its owner only; this definer
-- function lets the runtime and read-only roles read the two sluice ones.
--
-- Lease: none. Locks: none (reads statistics).
CREATE OR REPLACE FUNCTION sluice.mcv_estimates()
RETURNS TABLE (source text, queue text, name text, state text, jobs bigint)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
  WITH s AS (
    SELECT e.tablename::text AS tablename, e.attnames, e.most_common_vals AS vals, e.most_common_freqs AS freqs,
      sluice.relation_rows_estimate(format('%I.%I', e.schemaname, e.tablename)::regclass) AS total
    FROM pg_stats_ext e
    WHERE e.statistics_schemaname = 'sluice'
      AND e.statistics_name IN ('jobs_queue_name_state_stats', 'dead_jobs_queue_name_stats')
      AND e.most_common_vals IS NOT NULL
  )
  SELECT s.tablename,
    s.vals[i][array_position(s.attnames, 'queue'::name)],
    s.vals[i][array_position(s.attnames, 'name'::name)],
    CASE WHEN s.tablename = 'dead_jobs' THEN 'dead' ELSE s.vals[i][array_position(s.attnames, 'state'::name)] END,
    round(s.freqs[i] * s.total)::bigint
  FROM s, generate_subscripts(s.freqs, 1) AS i
$$;
