-- Evaluates the queue alerts (queues/alerts.sql) and records the change in
-- sluice.alert_states, the alerts reported firing: a new alert's row is
-- inserted, a cleared alert's row deleted. Returns every alert active now
-- (state 'active'), and the inserted rows ('firing') and deleted ones
-- ('resolved', with the value, threshold and message the alert fired with):
-- those are the changes to report, and no other call returns them, whichever
-- process makes it. The alert watcher of the maintenance leader calls it
-- (services/alert-watcher.ts), so a new leader carries on from the reports of
-- the old one.
--
-- Lease: none. Locks: a transaction advisory lock (key "slualt") before the
-- evaluation, then the row locks of its INSERT and DELETE. The INSERT and
-- DELETE alone keep two overlapping calls from both reporting a change, but a
-- call whose snapshot predates a concurrent resolve would insert the row again
-- once that resolve commits, and report firing an alert already cleared. With
-- the lock, calls run one after another, and each evaluates with a snapshot
-- taken after the previous one committed (the function is VOLATILE: each
-- statement takes a new snapshot).
CREATE OR REPLACE FUNCTION sluice.alert_sync(dead_after_ms integer DEFAULT 15000)
RETURNS TABLE (state text, queue text, alert text, value float8, threshold float8, message text)
LANGUAGE sql VOLATILE AS $$
  SELECT pg_advisory_xact_lock(126909662981236);

  WITH active AS (
    SELECT a.queue, a.alert, a.value, a.threshold, a.message FROM sluice.queue_alerts(dead_after_ms) a
  ), resolved AS (
    DELETE FROM sluice.alert_states s
    WHERE NOT EXISTS (SELECT 1 FROM active a WHERE a.queue = s.queue AND a.alert = s.alert)
    RETURNING s.queue, s.alert, s.value, s.threshold, s.message
  ), firing AS (
    INSERT INTO sluice.alert_states AS s (queue, alert, value, threshold, message)
    SELECT a.queue, a.alert, a.value, a.threshold, a.message FROM active a
    ON CONFLICT (queue, alert) DO NOTHING
    RETURNING s.queue, s.alert, s.value, s.threshold, s.message
  )
  SELECT 'active', a.* FROM active a
  UNION ALL SELECT 'firing', f.* FROM firing f
  UNION ALL SELECT 'resolved', r.* FROM resolved r
  ORDER BY 2, 3
$$;
