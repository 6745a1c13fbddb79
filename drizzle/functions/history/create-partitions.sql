-- Creating and dropping partitions is DDL, which the runtime role may not run:
-- this and sluice.drop_history_partitions run as the schema owner (SECURITY
-- DEFINER), and do nothing else. EXECUTE is revoked from PUBLIC; docs/roles.sql
-- grants it to the runtime role. Checks days_ahead (0-366) and calls
-- sluice.ensure_history_partitions (history/ensure-partitions.sql).
--
-- Locks: those of ensure_history_partitions, with a 2 s lock timeout: a call
-- that would queue completions behind it fails, and the next run tries again.
CREATE OR REPLACE FUNCTION sluice.create_history_partitions(days_ahead integer DEFAULT 7)
RETURNS integer LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp SET lock_timeout = '2s' AS $$
BEGIN
  IF days_ahead IS NULL OR days_ahead NOT BETWEEN 0 AND 366 THEN
    RAISE EXCEPTION 'sluice.create_history_partitions: days_ahead must be between 0 and 366' USING ERRCODE = '22023';
  END IF;
  RETURN sluice.ensure_history_partitions(days_ahead);
END $$;

REVOKE EXECUTE ON FUNCTION sluice.create_history_partitions(integer) FROM PUBLIC;
