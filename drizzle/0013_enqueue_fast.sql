-- Name checks: PostgreSQL's regex engine runs a counted repeat like {0,127}
-- as a large automaton: ~11 us per row for each of jobs' two name checks,
-- more than the heap and index inserts together. The same rule as an
-- unbounded class plus a length bound costs ~1 us. Every NAME_CHECK in
-- schema.ts changes with it, so the rule stays one expression everywhere.
ALTER TABLE "sluice"."jobs" DROP CONSTRAINT "jobs_name_check", DROP CONSTRAINT "jobs_queue_check",
  ADD CONSTRAINT "jobs_name_check" CHECK (name ~ '^[A-Za-z0-9][A-Za-z0-9._:-]*$' AND length(name) <= 128),
  ADD CONSTRAINT "jobs_queue_check" CHECK (queue ~ '^[A-Za-z0-9][A-Za-z0-9._:-]*$' AND length(queue) <= 128);
--> statement-breakpoint
ALTER TABLE "sluice"."queues" DROP CONSTRAINT "queues_name_check",
  ADD CONSTRAINT "queues_name_check" CHECK (name ~ '^[A-Za-z0-9][A-Za-z0-9._:-]*$' AND length(name) <= 128);
--> statement-breakpoint
ALTER TABLE "sluice"."job_types" DROP CONSTRAINT "job_types_name_check", DROP CONSTRAINT "job_types_queue_check",
  ADD CONSTRAINT "job_types_name_check" CHECK (name ~ '^[A-Za-z0-9][A-Za-z0-9._:-]*$' AND length(name) <= 128),
  ADD CONSTRAINT "job_types_queue_check" CHECK (queue ~ '^[A-Za-z0-9][A-Za-z0-9._:-]*$' AND length(queue) <= 128);
--> statement-breakpoint
ALTER TABLE "sluice"."cron_schedules" DROP CONSTRAINT "cron_schedules_name_check", DROP CONSTRAINT "cron_schedules_job_name_check",
  ADD CONSTRAINT "cron_schedules_name_check" CHECK (name ~ '^[A-Za-z0-9][A-Za-z0-9._:-]*$' AND length(name) <= 128),
  ADD CONSTRAINT "cron_schedules_job_name_check" CHECK (job_name ~ '^[A-Za-z0-9][A-Za-z0-9._:-]*$' AND length(job_name) <= 128);
--> statement-breakpoint
ALTER TABLE "sluice"."subscriptions" DROP CONSTRAINT "subscriptions_topic_check", DROP CONSTRAINT "subscriptions_job_name_check",
  ADD CONSTRAINT "subscriptions_topic_check" CHECK (topic ~ '^[A-Za-z0-9][A-Za-z0-9._:-]*$' AND length(topic) <= 128),
  ADD CONSTRAINT "subscriptions_job_name_check" CHECK (job_name ~ '^[A-Za-z0-9][A-Za-z0-9._:-]*$' AND length(job_name) <= 128);
