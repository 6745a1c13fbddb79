-- An attempt ended by the rescuer counts as failed but has no wait or run
-- time; the averages need to know how many there were to leave them out of
-- their divisor. Rows written before keep 0 (what they were cannot be told).
-- sluice.metrics_add gains the argument: metrics/add.sql re-creates it.
ALTER TABLE "sluice"."metrics_minutely" ADD COLUMN "rescued" bigint DEFAULT 0 NOT NULL;--> statement-breakpoint
DROP FUNCTION IF EXISTS sluice.metrics_add(text, bigint, bigint, bigint, bigint, bigint, bigint, bigint, bigint, bigint, bigint);
