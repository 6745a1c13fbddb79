-- A dead job keeps the parents it waited for and what it does when one dies,
-- so that a replay puts it back waiting for the parents that are still to
-- complete instead of running it at once (dead-jobs/replay.sql). Rows that
-- died before this migration have no parents recorded and replay as before.
ALTER TABLE "sluice"."dead_jobs" ADD COLUMN "depends_on" bigint[];--> statement-breakpoint
ALTER TABLE "sluice"."dead_jobs" ADD COLUMN "on_parent_dead" text DEFAULT 'dead' NOT NULL;--> statement-breakpoint
ALTER TABLE "sluice"."dead_jobs" ADD CONSTRAINT "dead_jobs_on_parent_dead_check" CHECK (on_parent_dead IN ('dead', 'cancel'));