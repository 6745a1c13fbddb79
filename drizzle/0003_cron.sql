ALTER TABLE "sluice"."cron_schedules" ALTER COLUMN "next_run_at" DROP NOT NULL;--> statement-breakpoint
ALTER TABLE "sluice"."cron_schedules" ADD COLUMN "run_all_cap" integer DEFAULT 100 NOT NULL;--> statement-breakpoint
ALTER TABLE "sluice"."cron_schedules" ADD COLUMN "last_error" text;--> statement-breakpoint
ALTER TABLE "sluice"."cron_schedules" ADD COLUMN "declared_in" text DEFAULT 'sql' NOT NULL;--> statement-breakpoint
ALTER TABLE "sluice"."cron_schedules" ADD CONSTRAINT "cron_schedules_job_name_check" CHECK (job_name ~ '^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$');--> statement-breakpoint
ALTER TABLE "sluice"."cron_schedules" ADD CONSTRAINT "cron_schedules_run_all_cap_check" CHECK (run_all_cap BETWEEN 1 AND 10000);--> statement-breakpoint
ALTER TABLE "sluice"."cron_schedules" ADD CONSTRAINT "cron_schedules_declared_in_check" CHECK (declared_in IN ('code', 'sql'));