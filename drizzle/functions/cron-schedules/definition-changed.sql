-- A schedule whose expression or time zone changed, or that was enabled, by
-- a statement that did not set next_run_at itself (plain SQL, say), would
-- keep the next run of its old definition: a yearly schedule changed to
-- hourly waited for January, and one enabled again caught up the whole span
-- it was disabled for. Its next_run_at becomes NULL, which the scheduler
-- takes as "the next fire after now" (packages/sluice/src/services/scheduler.ts).
-- sluice's own saves set next_run_at with the definition and are left alone.
--
-- Locks: none of its own; re-applying this file re-creates the trigger, which
-- locks sluice.cron_schedules for that moment.
CREATE OR REPLACE FUNCTION sluice.cron_definition_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  -- Enabled with a next run still ahead: nothing to catch up, and enable()
  -- may have set that same time.
  IF NEW.next_run_at IS NOT DISTINCT FROM OLD.next_run_at
     AND ((NEW.cron, NEW.timezone) IS DISTINCT FROM (OLD.cron, OLD.timezone)
          OR (NEW.enabled AND NOT OLD.enabled AND OLD.next_run_at <= clock_timestamp())) THEN
    NEW.next_run_at := NULL;
  END IF;
  RETURN NEW;
END $$;

DROP TRIGGER IF EXISTS cron_schedules_definition_changed ON sluice.cron_schedules;
CREATE TRIGGER cron_schedules_definition_changed
BEFORE UPDATE OF cron, timezone, enabled ON sluice.cron_schedules
FOR EACH ROW EXECUTE FUNCTION sluice.cron_definition_changed();
