-- FROM 0006_operations.sql
CREATE OR REPLACE VIEW sluice.workers_alive AS
SELECT * FROM sluice.worker_status() WHERE alive;
