-- FROM 0004_cron_notify.sql
-- Any change to a schedule (from a worker, the CLI or plain SQL) wakes the
-- schedulers so they recompute how long to sleep. One notification per
-- statement, never per row.
CREATE OR REPLACE FUNCTION sluice.cron_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  PERFORM pg_notify('sluice_cron', '');
  RETURN NULL;
END $$;

DROP TRIGGER IF EXISTS cron_schedules_changed ON sluice.cron_schedules;
CREATE TRIGGER cron_schedules_changed
AFTER INSERT OR UPDATE OR DELETE ON sluice.cron_schedules
FOR EACH STATEMENT EXECUTE FUNCTION sluice.cron_changed();
