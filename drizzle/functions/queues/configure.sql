-- Changes a queue's settings (creating the queue if needed). Only the keys
-- present in `settings` change; a JSON null removes a limit; an unknown key or
-- a bad value raises 22023 naming the key and changes nothing. The ranges are
-- those of queueSettingsSchema (packages/sluice/src/config.ts), so a setting
-- SQL accepts is one the client accepts and reads back. Wakes the queue's
-- workers, as a resumed or widened queue may have claimable work right now;
-- on a pause, tells them on sluice_pause to hand back what they buffered.
--
-- Lease: none. Locks: the row lock of the UPDATE on the queue's row.
CREATE OR REPLACE FUNCTION sluice.queue_configure(queue_name text, settings jsonb)
RETURNS void LANGUAGE plpgsql AS $$
DECLARE
  bad record;
BEGIN
  PERFORM sluice.check_name('queue', queue_name);
  IF settings IS NULL OR jsonb_typeof(settings) <> 'object' THEN
    RAISE EXCEPTION 'sluice.queue_configure: settings must be a JSON object' USING ERRCODE = '22023';
  END IF;
  -- kind: bool, int (whole, lo..hi), rate (0, or 0.000001..1), overflow (one of the policies).
  SELECT s.key, spec.kind, spec.rule INTO bad
  FROM jsonb_each(settings) s
  LEFT JOIN (VALUES
    ('paused', 'bool', NULL::numeric, NULL::numeric, false, 'true or false'),
    ('concurrency', 'int', 1, 1000000, true, 'an integer from 1 to 1000000, or null'),
    ('group_concurrency', 'int', 1, 1000000, true, 'an integer from 1 to 1000000, or null'),
    ('rate_limit_count', 'int', 1, 1000000000, true, 'an integer from 1 to 1000000000, or null'),
    ('rate_limit_interval_ms', 'int', 1, 2147483647, true, 'an integer from 1 to 2147483647, or null'),
    ('max_depth', 'int', 1, 2000000000, true, 'an integer from 1 to 2000000000, or null'),
    ('overflow', 'overflow', NULL, NULL, false, 'one of reject, block, drop_oldest, drop_newest'),
    ('weight', 'int', 1, 1000000, false, 'an integer from 1 to 1000000'),
    ('aging_after_ms', 'int', 1, 2147483647, true, 'an integer from 1 to 2147483647, or null'),
    ('unique_window_ms', 'int', 1, 2147483647, true, 'an integer from 1 to 2147483647, or null'),
    ('keep_history', 'bool', NULL, NULL, false, 'true or false'),
    -- RETENTION_MS_MAX: 100 years.
    ('retention_ms', 'int', 0, 3155760000000, false, 'an integer from 0 to 3155760000000'),
    ('alert_max_depth', 'int', 1, 2000000000, true, 'an integer from 1 to 2000000000, or null'),
    ('alert_max_wait_ms', 'int', 1, 2147483647, true, 'an integer from 1 to 2147483647, or null'),
    -- Stored as real: a rate under about 1e-38 would not fit, and none that small means anything.
    ('alert_max_error_rate', 'rate', 0, 1, true, 'a number from 0 to 1 (0, or at least 0.000001), or null'),
    ('alert_no_worker', 'bool', NULL, NULL, false, 'true or false')
  ) spec(key, kind, lo, hi, nullable, rule) ON spec.key = s.key
  WHERE spec.key IS NULL OR CASE jsonb_typeof(s.value)
    WHEN 'null' THEN NOT spec.nullable
    WHEN 'boolean' THEN spec.kind <> 'bool'
    WHEN 'string' THEN spec.kind <> 'overflow' OR (s.value #>> '{}') NOT IN ('reject', 'block', 'drop_oldest', 'drop_newest')
    WHEN 'number' THEN spec.kind NOT IN ('int', 'rate')
      OR s.value::numeric NOT BETWEEN spec.lo AND spec.hi
      OR (spec.kind = 'int' AND s.value::numeric <> trunc(s.value::numeric))
      OR (spec.kind = 'rate' AND s.value::numeric > 0 AND s.value::numeric < 0.000001)
    ELSE true
  END
  ORDER BY s.key
  LIMIT 1;
  IF bad.key IS NOT NULL AND bad.kind IS NULL THEN
    RAISE EXCEPTION 'sluice.queue_configure: unknown setting %', bad.key USING ERRCODE = '22023';
  ELSIF bad.key IS NOT NULL THEN
    RAISE EXCEPTION 'sluice.queue_configure: % must be %', bad.key, bad.rule USING ERRCODE = '22023';
  END IF;
  -- Half a rate limit has no meaning (and the table's check refuses it).
  IF (settings ? 'rate_limit_count') <> (settings ? 'rate_limit_interval_ms')
     OR (settings->'rate_limit_count' = 'null') <> (settings->'rate_limit_interval_ms' = 'null') THEN
    RAISE EXCEPTION 'sluice.queue_configure: rate_limit_count and rate_limit_interval_ms must be given together, both numbers or both null'
      USING ERRCODE = '22023';
  END IF;
  INSERT INTO sluice.queues (name) VALUES (queue_name) ON CONFLICT DO NOTHING;
  -- Numbers go through numeric: 5.0 is a whole number that '5.0'::integer would refuse.
  UPDATE sluice.queues q SET
    paused = CASE WHEN settings ? 'paused' THEN (settings->>'paused')::boolean ELSE q.paused END,
    concurrency = CASE WHEN settings ? 'concurrency' THEN (settings->>'concurrency')::numeric::integer ELSE q.concurrency END,
    group_concurrency = CASE WHEN settings ? 'group_concurrency' THEN (settings->>'group_concurrency')::numeric::integer ELSE q.group_concurrency END,
    rate_limit_count = CASE WHEN settings ? 'rate_limit_count' THEN (settings->>'rate_limit_count')::numeric::integer ELSE q.rate_limit_count END,
    rate_limit_interval_ms = CASE WHEN settings ? 'rate_limit_interval_ms' THEN (settings->>'rate_limit_interval_ms')::numeric::integer ELSE q.rate_limit_interval_ms END,
    max_depth = CASE WHEN settings ? 'max_depth' THEN (settings->>'max_depth')::numeric::integer ELSE q.max_depth END,
    overflow = CASE WHEN settings ? 'overflow' THEN settings->>'overflow' ELSE q.overflow END,
    weight = CASE WHEN settings ? 'weight' THEN (settings->>'weight')::numeric::integer ELSE q.weight END,
    aging_after_ms = CASE WHEN settings ? 'aging_after_ms' THEN (settings->>'aging_after_ms')::numeric::integer ELSE q.aging_after_ms END,
    unique_window_ms = CASE WHEN settings ? 'unique_window_ms' THEN (settings->>'unique_window_ms')::numeric::integer ELSE q.unique_window_ms END,
    keep_history = CASE WHEN settings ? 'keep_history' THEN (settings->>'keep_history')::boolean ELSE q.keep_history END,
    retention_ms = CASE WHEN settings ? 'retention_ms' THEN (settings->>'retention_ms')::numeric::bigint ELSE q.retention_ms END,
    alert_max_depth = CASE WHEN settings ? 'alert_max_depth' THEN (settings->>'alert_max_depth')::numeric::integer ELSE q.alert_max_depth END,
    alert_max_wait_ms = CASE WHEN settings ? 'alert_max_wait_ms' THEN (settings->>'alert_max_wait_ms')::numeric::integer ELSE q.alert_max_wait_ms END,
    alert_max_error_rate = CASE WHEN settings ? 'alert_max_error_rate' THEN (settings->>'alert_max_error_rate')::real ELSE q.alert_max_error_rate END,
    alert_no_worker = CASE WHEN settings ? 'alert_no_worker' THEN (settings->>'alert_no_worker')::boolean ELSE q.alert_no_worker END
  WHERE q.name = queue_name;
  -- A resumed or widened queue may have claimable work right now. On
  -- sluice_rewind too: a limited queue's claims take jobs out of order (groups
  -- take turns), so a job a limit held back may lie behind where its workers'
  -- claims resume once the limit is gone (jobs/claim.sql).
  PERFORM pg_notify('sluice_jobs', queue_name);
  PERFORM pg_notify('sluice_rewind', queue_name);
  -- A paused one must start nothing its workers already claimed: they hand
  -- their buffered jobs back once their next beat confirms the pause (a
  -- notice is only a hint; a lost one waits for their regular beat).
  IF (settings->>'paused')::boolean THEN
    PERFORM pg_notify('sluice_pause', queue_name);
  END IF;
END $$;
