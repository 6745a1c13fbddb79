-- FROM 0006_operations.sql
CREATE OR REPLACE VIEW sluice.active_alerts AS SELECT * FROM sluice.queue_alerts();
