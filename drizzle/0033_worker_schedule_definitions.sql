-- What each worker declares of its code schedules, so that a definition no
-- known worker declares any more is replaced (functions/cron-schedules/redeclare.sql).
ALTER TABLE "sluice"."workers" ADD COLUMN "schedule_definitions" jsonb;