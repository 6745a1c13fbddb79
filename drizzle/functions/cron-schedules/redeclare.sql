-- Gives each schedule of sluice.redeclarable_schedules (of one service when
-- only_service, NULL naming the workers without a service) the definition
-- found there, and returns the schedules it changed.
--
-- Why: every worker writes its code schedules at its start, so in a rolling
-- deploy an old pod restarted after new ones had started put the old
-- expression back, and it stayed after the rollout, until a new pod happened
-- to start. A stored definition that some known worker still declares is left
-- as it is (while both versions run, the last started one's stays); once the
-- last worker declaring it is gone (it stopped, or the leader forgot it), the
-- definition of the latest started declarer takes its place.
--
-- Guarantees: only code schedules change, and only to a definition a known
-- worker of their service declares. The rows are locked first, in name order
-- (declarations take them in that order too: sql/cron.ts cronSaveMany), and
-- judged again by the UPDATE's own, later snapshot, so a declaration or an
-- operator's save that committed in between is not written over. The
-- operator's enabled/disabled choice is kept, as a declaration keeps it (one
-- the scheduler disabled as unreadable is enabled again); a changed
-- expression or zone sets next_run_at to NULL, which the scheduler computes
-- from now (nothing is fired for the gap). Nothing to change: no write, so no
-- notification on sluice_cron either.
-- Lease: none.
-- Locks: FOR UPDATE on the schedules it changes, waiting at most lock_timeout
-- for a scheduler firing them (the caller tries again at its next occasion).
CREATE OR REPLACE FUNCTION sluice.redeclare_schedules(only_service boolean DEFAULT false, of_service text DEFAULT NULL)
RETURNS TABLE (name text, service text)
LANGUAGE plpgsql SET lock_timeout = '2s' AS $$
#variable_conflict use_column
DECLARE
  names text[];
BEGIN
  names := ARRAY(
    SELECT c.name FROM sluice.cron_schedules c
    WHERE c.name IN (SELECT r.name FROM sluice.redeclarable_schedules() r
                     WHERE NOT only_service OR r.service IS NOT DISTINCT FROM of_service)
    ORDER BY c.name
    FOR UPDATE);
  IF cardinality(names) = 0 THEN
    RETURN;
  END IF;
  RETURN QUERY
  UPDATE sluice.cron_schedules c SET
    cron = r.definition->>'cron', timezone = r.definition->>'timezone', job_name = r.definition->>'job_name',
    payload = r.definition->'payload', misfire = r.definition->>'misfire', run_all_cap = (r.definition->>'run_all_cap')::integer,
    job_options = CASE WHEN jsonb_typeof(r.definition->'job_options') = 'null' THEN NULL ELSE r.definition->'job_options' END,
    last_error = NULL, fail_count = 0, retry_at = NULL, updated_at = now(),
    enabled = c.enabled OR (NOT c.enabled AND c.last_error IS NOT NULL AND c.retry_at IS NULL),
    next_run_at = CASE WHEN (c.cron, c.timezone) IS DISTINCT FROM (r.definition->>'cron', r.definition->>'timezone')
                         OR (NOT c.enabled AND c.last_error IS NOT NULL AND c.retry_at IS NULL)
                       THEN NULL ELSE c.next_run_at END
  FROM sluice.redeclarable_schedules() r
  WHERE c.name = r.name AND c.name = ANY (names)
  RETURNING c.name, c.service;
END $$;
