-- The code schedules whose stored definition no known worker of their
-- service declares any more, each with the definition of the known worker of
-- that service that started last among those declaring its name: what
-- sluice.redeclare_schedules (cron-schedules/redeclare.sql) gives them.
-- Known workers are rows of sluice.workers, as for sluice.undeclared_schedules;
-- each records what it declares in schedule_definitions, as
-- packages/sluice/src/sql/cron.ts declaredSchedule writes it, compared here
-- with the stored columns as jsonb. A name also declared by a known worker
-- that did not record its definitions (NULL: an older release) is left out.
--
-- Lease: none. Locks: none (reads).
CREATE OR REPLACE FUNCTION sluice.redeclarable_schedules()
RETURNS TABLE (name text, service text, definition jsonb)
LANGUAGE sql STABLE AS $$
  WITH declared AS (
    SELECT w.id, w.service, w.started_at, d AS def
    FROM sluice.workers w, jsonb_array_elements(w.schedule_definitions) d
    WHERE jsonb_typeof(w.schedule_definitions) = 'array'
  ),
  latest AS (
    SELECT DISTINCT ON (x.service, x.def->>'name') x.service, x.def
    FROM declared x
    ORDER BY x.service, x.def->>'name', x.started_at DESC, x.id DESC
  )
  SELECT c.name, c.service, l.def
  FROM sluice.cron_schedules c
  JOIN latest l ON l.service IS NOT DISTINCT FROM c.service AND l.def->>'name' = c.name
  WHERE c.declared_in = 'code'
    AND NOT EXISTS (
      SELECT 1 FROM declared x
      WHERE x.service IS NOT DISTINCT FROM c.service
        AND x.def = jsonb_build_object('name', c.name, 'cron', c.cron, 'timezone', c.timezone, 'job_name', c.job_name,
          'payload', c.payload, 'misfire', c.misfire, 'run_all_cap', c.run_all_cap, 'job_options', c.job_options))
    AND NOT EXISTS (
      SELECT 1 FROM sluice.workers w
      WHERE w.service IS NOT DISTINCT FROM c.service AND w.schedule_definitions IS NULL
        AND (w.schedules IS NULL OR c.name = ANY (w.schedules)))
$$;
