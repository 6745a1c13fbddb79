-- Drops the day partitions of job_history that ended before ended_before;
-- returns their names. SECURITY DEFINER, like create_history_partitions
-- (history/create-partitions.sql), and revoked from PUBLIC.
--
-- Locks: DROP TABLE takes ACCESS EXCLUSIVE on job_history and the partition,
-- with a 2 s lock timeout so completions never queue behind it for long: the
-- next run tries again.
CREATE OR REPLACE FUNCTION sluice.drop_history_partitions(ended_before timestamptz)
RETURNS SETOF text LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp SET lock_timeout = '2s' AS $$
DECLARE
  p record;
BEGIN
  IF ended_before IS NULL OR ended_before > now() THEN
    RAISE EXCEPTION 'sluice.drop_history_partitions: ended_before must be a time in the past' USING ERRCODE = '22023';
  END IF;
  FOR p IN SELECT * FROM sluice.history_partitions() h
           WHERE NOT h.is_default AND h.range_to IS NOT NULL AND h.range_to <= ended_before LOOP
    EXECUTE format('DROP TABLE sluice.%I', p.partition);
    RETURN NEXT p.partition;
  END LOOP;
END $$;

REVOKE EXECUTE ON FUNCTION sluice.drop_history_partitions(timestamptz) FROM PUBLIC;
