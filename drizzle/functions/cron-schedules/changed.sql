-- Any change to a schedule (from a worker, the CLI or plain SQL) wakes the
-- schedulers on sluice_cron so they recompute how long to sleep: the trigger
-- function and its statement-level trigger on sluice.cron_schedules. One
-- notification per statement, never per row.
--
-- The cron claim itself (which scheduler fires a due schedule) is TypeScript:
-- packages/sluice/src/sql/cron.ts.
-- Locks: none of its own; re-applying this file re-creates the trigger, which
-- locks sluice.cron_schedules for that moment.
CREATE OR REPLACE FUNCTION sluice.cron_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  PERFORM pg_notify('sluice_cron', '');
  RETURN NULL;
END $$;

DROP TRIGGER IF EXISTS cron_schedules_changed ON sluice.cron_schedules;
CREATE TRIGGER cron_schedules_changed
AFTER INSERT OR UPDATE OR DELETE ON sluice.cron_schedules
FOR EACH STATEMENT EXECUTE FUNCTION sluice.cron_changed();
