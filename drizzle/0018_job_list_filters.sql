-- sluice.job_list takes the dashboard's filters (tag text, one id, a worker, a lower id bound)
-- and returns each job's tags; the new definition is drizzle/functions/jobs/list.sql.
DROP FUNCTION IF EXISTS sluice.job_list(text, text, text, bigint, integer);
