-- View: the live workers of sluice.worker_status (workers/status.sql).
CREATE OR REPLACE VIEW sluice.workers_alive AS
SELECT * FROM sluice.worker_status() WHERE alive;
