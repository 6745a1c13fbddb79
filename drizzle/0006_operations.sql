-- Operations: planner statistics for depth estimates, and storage settings for
-- the tables updated in place. The functions and views for operators live in
-- drizzle/functions/ (docs/sql-reference.md lists them).

-- A row per (queue, name, state) combination in the planner's statistics, so
-- depth on a table of millions of rows is read from ANALYZE's sample instead
-- of a count(*) that would scan it.
CREATE STATISTICS sluice.jobs_queue_name_state_stats (mcv) ON queue, name, state FROM sluice.jobs;
--> statement-breakpoint
ALTER STATISTICS sluice.jobs_queue_name_state_stats SET STATISTICS 500;
--> statement-breakpoint
CREATE STATISTICS sluice.dead_jobs_queue_name_stats (mcv) ON queue, name FROM sluice.dead_jobs;
--> statement-breakpoint
-- Counters are updated in place every few seconds and workers heartbeat all
-- day: free space on each page lets those updates stay HOT (no index writes,
-- no bloat), and early vacuums keep the few live rows on few pages.
ALTER TABLE sluice.metrics_minutely SET (fillfactor = 70, autovacuum_vacuum_scale_factor = 0.05);
--> statement-breakpoint
ALTER TABLE sluice.workers SET (fillfactor = 50, autovacuum_vacuum_scale_factor = 0.05, autovacuum_vacuum_threshold = 100);
