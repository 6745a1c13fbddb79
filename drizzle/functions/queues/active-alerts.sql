-- View: sluice.queue_alerts (queues/alerts.sql) with the default heartbeat
-- timeout.
CREATE OR REPLACE VIEW sluice.active_alerts AS SELECT * FROM sluice.queue_alerts();
