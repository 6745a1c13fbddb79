-- An attempt ended by the rescuer counts as failed but has no wait or run
-- time; the averages need to know how many there were to leave them out of
-- their divisor. Rows written before keep 0 (what they were cannot be told).
-- sluice.metrics_add gains the argument: metrics/add.sql creates the new
-- signature and drops the old one in one transaction, so no enqueue meets
-- neither.
ALTER TABLE "sluice"."metrics_minutely" ADD COLUMN "rescued" bigint DEFAULT 0 NOT NULL;
