-- Jobs wherever they are (live, history, dead), newest id first, for
-- operators (`sluice jobs list`, the dashboard). Keyset pagination: pass the
-- last id of a page as before_id. Payloads are left out on purpose; read one
-- job to see its payload.
--
-- The three tables share one id sequence, so one keyset pages across all
-- three, each part walking its table's id index backwards and stopping after
-- a page; a part whose table the state rules out is cut by its first
-- condition before it reads anything. Filters: tag_text is a case-insensitive
-- substring of one tag (matched in the tags joined by a unit separator, which
-- no search text holds, so a match never spans two tags); job_id one id;
-- worker_id the jobs running on that worker (through the partial index of
-- running jobs); min_id bounds the walk below (a caller paging with filters no
-- index serves passes the end of its search window).
--
-- The query runs through EXECUTE, so each call is planned with its own
-- values: a state filter reaches its partial index, which a cached generic
-- plan could not prove it may use.
--
-- Lease: none. Locks: none (reads).
CREATE OR REPLACE FUNCTION sluice.job_list(
  queue_name text DEFAULT NULL, job_state text DEFAULT NULL, job_name text DEFAULT NULL,
  before_id bigint DEFAULT NULL, page_size integer DEFAULT 50,
  tag_text text DEFAULT NULL, job_id bigint DEFAULT NULL, worker_id text DEFAULT NULL, min_id bigint DEFAULT NULL
) RETURNS TABLE (id bigint, queue text, name text, state text, priority smallint, attempt integer,
  max_attempts integer, run_at timestamptz, created_at timestamptz, attempted_at timestamptz,
  finished_at timestamptz, locked_by text, reason text, last_error text, tags text[])
LANGUAGE plpgsql STABLE AS $$
DECLARE
  live boolean := job_state IS NULL OR job_state IN ('waiting', 'scheduled', 'available', 'running');
  history boolean := worker_id IS NULL AND (job_state IS NULL OR job_state IN ('completed', 'cancelled', 'dropped'));
  dead boolean := worker_id IS NULL AND (job_state IS NULL OR job_state = 'dead');
BEGIN
  IF page_size IS NULL OR page_size NOT BETWEEN 1 AND 10000 THEN
    RAISE EXCEPTION 'sluice.job_list: page_size must be between 1 and 10000' USING ERRCODE = '22023';
  END IF;
  IF job_state IS NOT NULL AND job_state NOT IN
     ('waiting', 'scheduled', 'available', 'running', 'completed', 'cancelled', 'dropped', 'dead') THEN
    RAISE EXCEPTION 'sluice.job_list: unknown state' USING ERRCODE = '22023';
  END IF;
  RETURN QUERY EXECUTE $q$
    WITH page AS (
      (SELECT j.id, 'live' AS src FROM sluice.jobs j
       WHERE $1 AND ($4::bigint IS NULL OR j.id < $4) AND ($5::bigint IS NULL OR j.id >= $5)
         AND ($6::text IS NULL OR j.state = $6) AND ($7::text IS NULL OR j.queue = $7) AND ($8::text IS NULL OR j.name = $8)
         AND ($9::text IS NULL OR strpos(lower(array_to_string(j.tags, E'\x1f')), lower($9)) > 0)
         AND ($10::bigint IS NULL OR j.id = $10)
         AND ($12::text IS NULL OR (j.state = 'running' AND j.locked_by = $12))
       ORDER BY j.id DESC LIMIT $11)
      UNION ALL
      (SELECT h.id, 'history' FROM sluice.job_history h
       WHERE $2 AND ($4::bigint IS NULL OR h.id < $4) AND ($5::bigint IS NULL OR h.id >= $5)
         AND ($6::text IS NULL OR h.state = $6) AND ($7::text IS NULL OR h.queue = $7) AND ($8::text IS NULL OR h.name = $8)
         AND ($9::text IS NULL OR strpos(lower(array_to_string(h.tags, E'\x1f')), lower($9)) > 0)
         AND ($10::bigint IS NULL OR h.id = $10)
       ORDER BY h.id DESC LIMIT $11)
      UNION ALL
      (SELECT d.id, 'dead' FROM sluice.dead_jobs d
       WHERE $3 AND ($4::bigint IS NULL OR d.id < $4) AND ($5::bigint IS NULL OR d.id >= $5)
         AND ($7::text IS NULL OR d.queue = $7) AND ($8::text IS NULL OR d.name = $8)
         AND ($9::text IS NULL OR strpos(lower(array_to_string(d.tags, E'\x1f')), lower($9)) > 0)
         AND ($10::bigint IS NULL OR d.id = $10)
       ORDER BY d.id DESC LIMIT $11)
    ), top AS (
      SELECT * FROM page ORDER BY id DESC LIMIT $11
    )
    SELECT j.id, j.queue, j.name, j.state, j.priority, j.attempt, j.max_attempts, j.run_at, j.created_at,
      j.attempted_at, NULL::timestamptz, j.locked_by, NULL::text, left(j.errors->-1->>'message', 300), j.tags
    FROM top JOIN sluice.jobs j ON j.id = top.id WHERE top.src = 'live'
    UNION ALL
    SELECT h.id, h.queue, h.name, h.state, h.priority, h.attempt, h.max_attempts, h.run_at, h.created_at,
      h.attempted_at, h.finished_at, NULL, NULL, left(h.errors->-1->>'message', 300), h.tags
    FROM top JOIN sluice.job_history h ON h.id = top.id WHERE top.src = 'history'
    UNION ALL
    SELECT d.id, d.queue, d.name, 'dead', d.priority, d.attempt, d.max_attempts, d.run_at, d.created_at,
      d.attempted_at, d.died_at, NULL, d.reason, left(d.errors->-1->>'message', 300), d.tags
    FROM top JOIN sluice.dead_jobs d ON d.id = top.id WHERE top.src = 'dead'
    ORDER BY 1 DESC$q$
  USING live, history, dead, before_id, min_id, job_state, queue_name, job_name, tag_text, job_id, page_size, worker_id;
END $$;
