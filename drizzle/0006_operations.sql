-- Operations: metrics views, alerts, retention, roles support. (Filled in by the operations work.)
SELECT 1;
