DROP INDEX "sluice"."job_history_id_idx";--> statement-breakpoint
DROP INDEX "sluice"."jobs_claim_idx";--> statement-breakpoint
DROP INDEX "sluice"."jobs_group_claim_idx";--> statement-breakpoint
CREATE INDEX "jobs_waiting_idx" ON "sluice"."jobs" USING btree ("id") WHERE state = 'waiting';--> statement-breakpoint
CREATE INDEX "jobs_claim_idx" ON "sluice"."jobs" USING btree ("queue","priority" DESC NULLS FIRST,"run_at","id") WHERE state = 'available';--> statement-breakpoint
CREATE INDEX "jobs_group_claim_idx" ON "sluice"."jobs" USING btree ("queue","group_key","priority" DESC NULLS FIRST,"run_at","id") WHERE state = 'available' AND group_key IS NOT NULL;