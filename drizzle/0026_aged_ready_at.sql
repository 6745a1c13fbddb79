-- Aging raises a waiting job's priority and moves its run_at later, so that
-- the claim index keeps serving the order; ready_at keeps when the job first
-- became due, so its wait (oldest waiting, the wait metrics and alert, the
-- run_at its history row keeps) is counted from there (jobs/age-priorities.sql).
-- The index holds only aged jobs that wait: few, and one probe answers a
-- queue's oldest among them (queues/oldest-waiting-at.sql).
ALTER TABLE "sluice"."jobs" ADD COLUMN "ready_at" timestamp with time zone;--> statement-breakpoint
CREATE INDEX "jobs_aged_idx" ON "sluice"."jobs" USING btree ("queue","ready_at") WHERE state = 'available' AND ready_at IS NOT NULL;