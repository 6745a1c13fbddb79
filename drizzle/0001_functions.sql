-- Table settings and the default history partition. The functions and views
-- this migration once created live in drizzle/functions/, one file each.

-- A queue table is churned (insert, update, delete) all day: vacuum it early
-- and often so dead tuples never pile up in the claim index.
ALTER TABLE sluice.jobs SET (
  autovacuum_vacuum_scale_factor = 0.01,
  autovacuum_vacuum_threshold = 1000,
  autovacuum_analyze_scale_factor = 0.02,
  autovacuum_vacuum_cost_delay = 0,
  fillfactor = 80
);
--> statement-breakpoint
CREATE TABLE sluice.job_history_default PARTITION OF sluice.job_history DEFAULT;
