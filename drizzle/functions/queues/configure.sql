-- Changes a queue's settings (creating the queue if needed). Only the keys
-- present in `settings` change; a JSON null removes a limit; an unknown key or
-- a bad value raises 22023 and changes nothing. Wakes the queue's workers, as
-- a resumed or widened queue may have claimable work right now.
--
-- Lease: none. Locks: the row lock of the UPDATE on the queue's row.
CREATE OR REPLACE FUNCTION sluice.queue_configure(queue_name text, settings jsonb)
RETURNS void LANGUAGE plpgsql AS $$
DECLARE
  unknown text;
BEGIN
  PERFORM sluice.check_name('queue', queue_name);
  SELECT k INTO unknown FROM jsonb_object_keys(settings) k
  WHERE k NOT IN ('paused', 'concurrency', 'group_concurrency', 'rate_limit_count', 'rate_limit_interval_ms',
    'max_depth', 'overflow', 'weight', 'aging_after_ms', 'unique_window_ms', 'keep_history', 'retention_ms',
    'alert_max_depth', 'alert_max_wait_ms', 'alert_max_error_rate', 'alert_no_worker')
  LIMIT 1;
  IF unknown IS NOT NULL THEN
    RAISE EXCEPTION 'sluice.queue_configure: unknown setting %', unknown USING ERRCODE = '22023';
  END IF;
  INSERT INTO sluice.queues (name) VALUES (queue_name) ON CONFLICT DO NOTHING;
  UPDATE sluice.queues q SET
    paused = CASE WHEN settings ? 'paused' THEN (settings->>'paused')::boolean ELSE q.paused END,
    concurrency = CASE WHEN settings ? 'concurrency' THEN (settings->>'concurrency')::integer ELSE q.concurrency END,
    group_concurrency = CASE WHEN settings ? 'group_concurrency' THEN (settings->>'group_concurrency')::integer ELSE q.group_concurrency END,
    rate_limit_count = CASE WHEN settings ? 'rate_limit_count' THEN (settings->>'rate_limit_count')::integer ELSE q.rate_limit_count END,
    rate_limit_interval_ms = CASE WHEN settings ? 'rate_limit_interval_ms' THEN (settings->>'rate_limit_interval_ms')::integer ELSE q.rate_limit_interval_ms END,
    max_depth = CASE WHEN settings ? 'max_depth' THEN (settings->>'max_depth')::integer ELSE q.max_depth END,
    overflow = CASE WHEN settings ? 'overflow' THEN settings->>'overflow' ELSE q.overflow END,
    weight = CASE WHEN settings ? 'weight' THEN (settings->>'weight')::integer ELSE q.weight END,
    aging_after_ms = CASE WHEN settings ? 'aging_after_ms' THEN (settings->>'aging_after_ms')::integer ELSE q.aging_after_ms END,
    unique_window_ms = CASE WHEN settings ? 'unique_window_ms' THEN (settings->>'unique_window_ms')::integer ELSE q.unique_window_ms END,
    keep_history = CASE WHEN settings ? 'keep_history' THEN (settings->>'keep_history')::boolean ELSE q.keep_history END,
    retention_ms = CASE WHEN settings ? 'retention_ms' THEN (settings->>'retention_ms')::bigint ELSE q.retention_ms END,
    alert_max_depth = CASE WHEN settings ? 'alert_max_depth' THEN (settings->>'alert_max_depth')::integer ELSE q.alert_max_depth END,
    alert_max_wait_ms = CASE WHEN settings ? 'alert_max_wait_ms' THEN (settings->>'alert_max_wait_ms')::integer ELSE q.alert_max_wait_ms END,
    alert_max_error_rate = CASE WHEN settings ? 'alert_max_error_rate' THEN (settings->>'alert_max_error_rate')::real ELSE q.alert_max_error_rate END,
    alert_no_worker = CASE WHEN settings ? 'alert_no_worker' THEN (settings->>'alert_no_worker')::boolean ELSE q.alert_no_worker END
  WHERE q.name = queue_name;
  -- A resumed or widened queue may have claimable work right now.
  PERFORM pg_notify('sluice_jobs', queue_name);
END $$;
