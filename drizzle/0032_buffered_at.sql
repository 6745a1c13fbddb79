-- When a beat last found the job claimed and not yet started: a rescue gives
-- back the attempt of a job its lost worker never started (functions/jobs/rescue-expired.sql).
ALTER TABLE "sluice"."jobs" ADD COLUMN "buffered_at" timestamp with time zone;