-- The partitions of job_history with their ranges (NULL for the default one)
-- and row estimates.
--
-- The bounds are read back from pg_get_expr's text, which follows the
-- session's DateStyle and TimeZone: under DateStyle SQL it carries a zone
-- abbreviation that may read as another zone (IST: India or Israel), so the
-- function sets both.
--
-- Lease: none. Locks: none (reads the catalog).
CREATE OR REPLACE FUNCTION sluice.history_partitions()
RETURNS TABLE (partition text, range_from timestamptz, range_to timestamptz, is_default boolean, rows_estimate bigint)
LANGUAGE sql STABLE SET datestyle = 'ISO' SET timezone = 'UTC' AS $$
  SELECT c.relname::text,
    substring(pg_get_expr(c.relpartbound, c.oid) FROM $r$FROM \('([^']+)'\)$r$)::timestamptz,
    substring(pg_get_expr(c.relpartbound, c.oid) FROM $r$TO \('([^']+)'\)$r$)::timestamptz,
    pg_get_expr(c.relpartbound, c.oid) = 'DEFAULT',
    greatest(c.reltuples, 0)::bigint
  FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
  WHERE i.inhparent = 'sluice.job_history'::regclass
  ORDER BY 2 NULLS FIRST
$$;
