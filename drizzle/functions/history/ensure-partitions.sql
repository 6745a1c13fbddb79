-- Creates the day partitions of job_history from today to today + days_ahead
-- that are missing; returns how many. Runs as its caller: the runtime role
-- goes through sluice.create_history_partitions (history/create-partitions.sql).
-- Applying this file also creates this week's partitions, so a freshly
-- migrated database has them.
--
-- Guarantees: concurrent callers are safe (a partition another made first is
-- skipped); a day whose rows already sit in the default partition stays there,
-- nothing is lost.
-- Locks: CREATE TABLE ... PARTITION OF takes an ACCESS EXCLUSIVE lock on
-- job_history for the moment of the attach.
CREATE OR REPLACE FUNCTION sluice.ensure_history_partitions(days_ahead integer DEFAULT 7)
RETURNS integer LANGUAGE plpgsql AS $$
DECLARE
  day date;
  part text;
  created integer := 0;
BEGIN
  FOR i IN 0..days_ahead LOOP
    day := (now() AT TIME ZONE 'UTC')::date + i;
    part := 'job_history_' || to_char(day, 'YYYYMMDD');
    IF to_regclass('sluice.' || part) IS NULL THEN
      BEGIN
        EXECUTE format(
          'CREATE TABLE sluice.%I PARTITION OF sluice.job_history FOR VALUES FROM (%L) TO (%L)',
          part, day::timestamp AT TIME ZONE 'UTC', (day + 1)::timestamp AT TIME ZONE 'UTC');
        created := created + 1;
      EXCEPTION WHEN duplicate_table OR object_not_in_prerequisite_state OR check_violation THEN
        -- Another process made it first, or the default partition already
        -- holds rows of that day: the default keeps them, nothing is lost.
        NULL;
      END;
    END IF;
  END LOOP;
  RETURN created;
END $$;

SELECT sluice.ensure_history_partitions(7);
