-- View: exact job counts per (queue, name, state), dead jobs as state 'dead'.
-- Scans the tables: for a large backlog use sluice.job_depth (jobs/depth.sql).
CREATE OR REPLACE VIEW sluice.job_counts AS
SELECT queue, name, state, count(*) AS jobs FROM sluice.jobs GROUP BY queue, name, state
UNION ALL
SELECT queue, name, 'dead', count(*) FROM sluice.dead_jobs GROUP BY queue, name;
