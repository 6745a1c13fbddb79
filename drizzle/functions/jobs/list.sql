-- Jobs wherever they are (live, history, dead), newest id first, for
-- operators. Keyset pagination: pass the last id of a page as before_id.
-- Payloads are left out on purpose; read one job to see its payload.
--
-- Lease: none. Locks: none (reads).
CREATE OR REPLACE FUNCTION sluice.job_list(
  queue_name text DEFAULT NULL, job_state text DEFAULT NULL, job_name text DEFAULT NULL,
  before_id bigint DEFAULT NULL, page_size integer DEFAULT 50
) RETURNS TABLE (id bigint, queue text, name text, state text, priority smallint, attempt integer,
  max_attempts integer, run_at timestamptz, created_at timestamptz, attempted_at timestamptz,
  finished_at timestamptz, locked_by text, reason text, last_error text)
LANGUAGE plpgsql STABLE AS $$
#variable_conflict use_column
BEGIN
  IF page_size IS NULL OR page_size NOT BETWEEN 1 AND 10000 THEN
    RAISE EXCEPTION 'sluice.job_list: page_size must be between 1 and 10000' USING ERRCODE = '22023';
  END IF;
  IF job_state IS NOT NULL AND job_state NOT IN
     ('waiting', 'scheduled', 'available', 'running', 'completed', 'cancelled', 'dropped', 'dead') THEN
    RAISE EXCEPTION 'sluice.job_list: unknown state' USING ERRCODE = '22023';
  END IF;
  RETURN QUERY
  SELECT * FROM (
    (SELECT j.id, j.queue, j.name, j.state, j.priority, j.attempt, j.max_attempts, j.run_at, j.created_at,
       j.attempted_at, NULL::timestamptz, j.locked_by, NULL::text, left(j.errors->-1->>'message', 200)
     FROM sluice.jobs j
     WHERE (job_state IS NULL OR j.state = job_state)
       AND (job_state IS NULL OR job_state IN ('waiting', 'scheduled', 'available', 'running'))
       AND (queue_name IS NULL OR j.queue = queue_name) AND (job_name IS NULL OR j.name = job_name)
       AND (before_id IS NULL OR j.id < before_id)
     ORDER BY j.id DESC LIMIT page_size)
    UNION ALL
    (SELECT h.id, h.queue, h.name, h.state, h.priority, h.attempt, h.max_attempts, h.run_at, h.created_at,
       h.attempted_at, h.finished_at, NULL, NULL, left(h.errors->-1->>'message', 200)
     FROM sluice.job_history h
     WHERE (job_state IS NULL OR h.state = job_state)
       AND (job_state IS NULL OR job_state IN ('completed', 'cancelled', 'dropped'))
       AND (queue_name IS NULL OR h.queue = queue_name) AND (job_name IS NULL OR h.name = job_name)
       AND (before_id IS NULL OR h.id < before_id)
     ORDER BY h.id DESC LIMIT page_size)
    UNION ALL
    (SELECT d.id, d.queue, d.name, 'dead', d.priority, d.attempt, d.max_attempts, d.run_at, d.created_at,
       d.attempted_at, d.died_at, NULL, d.reason, left(d.errors->-1->>'message', 200)
     FROM sluice.dead_jobs d
     WHERE (job_state IS NULL OR job_state = 'dead')
       AND (queue_name IS NULL OR d.queue = queue_name) AND (job_name IS NULL OR d.name = job_name)
       AND (before_id IS NULL OR d.id < before_id)
     ORDER BY d.id DESC LIMIT page_size)
  ) x
  ORDER BY 1 DESC LIMIT page_size;
END $$;
