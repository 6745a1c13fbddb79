-- Gives each code schedule whose stored definition no known worker of its
-- service declares any more the definition of the known worker of that
-- service that started last among those declaring its name (of one service
-- when only_service, NULL naming the workers without a service), and returns
-- the schedules it changed.
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
-- worker of their service declares; a name also declared by a known worker
-- that did not record its definitions (schedule_definitions NULL: an older
-- version) is left alone. The operator's enabled/disabled choice is kept, as
-- a declaration keeps it (one the scheduler disabled as unreadable is enabled
-- again); a changed expression or zone sets next_run_at to NULL, which the
-- scheduler computes from now (nothing is fired for the gap).
-- Lease: none.
-- Locks: row locks on the schedules it changes, waiting at most lock_timeout
-- for a scheduler firing them (the caller tries again at its next occasion).
CREATE OR REPLACE FUNCTION sluice.redeclare_schedules(only_service boolean DEFAULT false, of_service text DEFAULT NULL)
RETURNS TABLE (name text, service text)
LANGUAGE sql SET lock_timeout = '2s' AS $$
  WITH declared AS (
    SELECT w.id, w.service, w.started_at, d AS def
    FROM sluice.workers w, jsonb_array_elements(w.schedule_definitions) d
    WHERE jsonb_typeof(w.schedule_definitions) = 'array'
  ),
  latest AS (
    SELECT DISTINCT ON (x.service, x.def->>'name') x.service, x.def
    FROM declared x
    ORDER BY x.service, x.def->>'name', x.started_at DESC, x.id DESC
  ),
  stale AS (
    SELECT c.name, l.def
    FROM sluice.cron_schedules c
    JOIN latest l ON l.service IS NOT DISTINCT FROM c.service AND l.def->>'name' = c.name
    WHERE c.declared_in = 'code'
      AND (NOT only_service OR c.service IS NOT DISTINCT FROM of_service)
      AND NOT EXISTS (
        SELECT 1 FROM declared x
        WHERE x.service IS NOT DISTINCT FROM c.service
          AND x.def = jsonb_build_object('name', c.name, 'cron', c.cron, 'timezone', c.timezone, 'job_name', c.job_name,
            'payload', c.payload, 'misfire', c.misfire, 'run_all_cap', c.run_all_cap, 'job_options', c.job_options))
      AND NOT EXISTS (
        SELECT 1 FROM sluice.workers w
        WHERE w.service IS NOT DISTINCT FROM c.service AND w.schedule_definitions IS NULL
          AND (w.schedules IS NULL OR c.name = ANY (w.schedules)))
  )
  UPDATE sluice.cron_schedules c SET
    cron = s.def->>'cron', timezone = s.def->>'timezone', job_name = s.def->>'job_name', payload = s.def->'payload',
    misfire = s.def->>'misfire', run_all_cap = (s.def->>'run_all_cap')::integer,
    job_options = CASE WHEN jsonb_typeof(s.def->'job_options') = 'null' THEN NULL ELSE s.def->'job_options' END,
    last_error = NULL, fail_count = 0, retry_at = NULL, updated_at = now(),
    enabled = c.enabled OR (NOT c.enabled AND c.last_error IS NOT NULL AND c.retry_at IS NULL),
    next_run_at = CASE WHEN (c.cron, c.timezone) IS DISTINCT FROM (s.def->>'cron', s.def->>'timezone')
                         OR (NOT c.enabled AND c.last_error IS NOT NULL AND c.retry_at IS NULL)
                       THEN NULL ELSE c.next_run_at END
  FROM stale s
  WHERE c.name = s.name
  RETURNING c.name, c.service
$$;
