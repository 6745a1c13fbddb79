-- Rows in a table, by the planner's statistics scaled to the table's current
-- size (as the planner does). Before the first ANALYZE it guesses from the
-- size.
--
-- Lease: none. Locks: none.
CREATE OR REPLACE FUNCTION sluice.relation_rows_estimate(rel regclass)
RETURNS float8 LANGUAGE sql STABLE AS $$
  SELECT CASE
    WHEN c.reltuples < 0 OR c.relpages = 0 THEN (pg_relation_size(c.oid) / current_setting('block_size')::float8) * 40
    ELSE c.reltuples / c.relpages * (pg_relation_size(c.oid) / current_setting('block_size')::float8)
  END
  FROM pg_class c WHERE c.oid = rel
$$;
