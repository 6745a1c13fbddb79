-- What each worker declares of the cron schedules: a code schedule is removed
-- only while no known worker of its service declares it (a rolling deploy runs
-- two versions at once), functions/cron-schedules/undeclared.sql.
ALTER TABLE "sluice"."workers" ADD COLUMN "schedules" text[];--> statement-breakpoint
ALTER TABLE "sluice"."workers" ADD COLUMN "removes_undeclared_schedules" boolean DEFAULT false NOT NULL;