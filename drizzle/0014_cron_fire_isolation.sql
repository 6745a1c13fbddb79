ALTER TABLE "sluice"."cron_schedules" ADD COLUMN "fail_count" integer DEFAULT 0 NOT NULL;--> statement-breakpoint
ALTER TABLE "sluice"."cron_schedules" ADD COLUMN "retry_at" timestamp with time zone;--> statement-breakpoint
ALTER TABLE "sluice"."cron_schedules" ADD COLUMN "job_options" jsonb;