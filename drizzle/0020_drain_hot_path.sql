-- sluice.wait_ms returns double precision instead of numeric: numeric
-- arithmetic once per completed job was about a tenth of a completion's
-- cost. jobs/wait-ms.sql re-creates it; the callers (jobs/complete.sql,
-- jobs/fail.sql) are plpgsql and resolve it by name.
DROP FUNCTION IF EXISTS sluice.wait_ms(timestamptz, integer);
