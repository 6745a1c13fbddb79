-- The rate limit becomes a sliding log (sluice.claim): three arrays on the queue row replace
-- the fixed window's start and count.
ALTER TABLE "sluice"."queues" ADD COLUMN "rate_log_first_us" bigint[] DEFAULT '{}' NOT NULL;--> statement-breakpoint
ALTER TABLE "sluice"."queues" ADD COLUMN "rate_log_last_us" bigint[] DEFAULT '{}' NOT NULL;--> statement-breakpoint
ALTER TABLE "sluice"."queues" ADD COLUMN "rate_log_taken" integer[] DEFAULT '{}' NOT NULL;--> statement-breakpoint
ALTER TABLE "sluice"."queues" DROP COLUMN "rate_window_started_at";--> statement-breakpoint
ALTER TABLE "sluice"."queues" DROP COLUMN "rate_window_used";
