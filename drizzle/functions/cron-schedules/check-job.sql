-- A schedule written without its job's options (job_options NULL: added by
-- job name from SQL, the CLI or TypeScript) takes the job's queue and retries
-- from sluice.job_types at each fire. A name missing there would fire into
-- queue 'default' with default retries, so such a row is refused, with a
-- message naming the job. Schedules built from a job definition carry
-- job_options and are not checked.
-- Guarantees: no enabled or disabled schedule row names, by name only, a job
-- that sluice.job_types did not know when the row was written.
-- Locks: none beyond the row being written.
CREATE OR REPLACE FUNCTION sluice.cron_check_job() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF NEW.job_options IS NULL AND NOT EXISTS (SELECT 1 FROM sluice.job_types t WHERE t.name = NEW.job_name) THEN
    RAISE EXCEPTION 'sluice.cron_schedules: no job named "%" in sluice.job_types', NEW.job_name
      USING ERRCODE = 'foreign_key_violation',
            HINT = 'start a worker that handles the job, or call registerJobs(), before scheduling it by name; or set job_options';
  END IF;
  RETURN NEW;
END $$;

DROP TRIGGER IF EXISTS cron_schedules_check_job ON sluice.cron_schedules;
CREATE TRIGGER cron_schedules_check_job
BEFORE INSERT OR UPDATE OF job_name, job_options ON sluice.cron_schedules
FOR EACH ROW EXECUTE FUNCTION sluice.cron_check_job();
