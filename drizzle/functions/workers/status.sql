-- Every registered worker with whether it is alive: alive while its heartbeat
-- is younger than dead_after_ms (the workers' workerDeadAfterMs; 15 s by
-- default), and how many jobs it runs.
--
-- Lease: none. Locks: none (reads).
CREATE OR REPLACE FUNCTION sluice.worker_status(dead_after_ms integer DEFAULT 15000)
RETURNS TABLE (id text, service text, host text, pid integer, queues text[], concurrency integer, version text,
  started_at timestamptz, heartbeat_at timestamptz, alive boolean, running bigint)
LANGUAGE sql STABLE AS $$
  SELECT w.id, w.service, w.host, w.pid, w.queues, w.concurrency, w.version, w.started_at, w.heartbeat_at,
    w.heartbeat_at > now() - make_interval(secs => dead_after_ms / 1000.0),
    (SELECT count(*) FROM sluice.jobs j WHERE j.state = 'running' AND j.locked_by = w.id)
  FROM sluice.workers w
$$;
