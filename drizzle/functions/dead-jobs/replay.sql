-- Puts dead jobs back in their queues with a fresh attempt budget, under their
-- own ids. All ids must exist, or nothing is replayed. Returns the ids.
--
-- Guarantees: all or nothing; a replayed job whose unique key a live job has
-- taken since, or an older job replayed with it, still runs, without the key.
-- Lease: none. Locks: the row locks of the DELETE from dead_jobs.
CREATE OR REPLACE FUNCTION sluice.dead_replay(ids bigint[])
RETURNS SETOF bigint LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
  missing bigint[];
  q text;
BEGIN
  SELECT array_agg(x) INTO missing
  FROM (SELECT DISTINCT unnest(ids) AS x) w
  WHERE NOT EXISTS (SELECT 1 FROM sluice.dead_jobs d WHERE d.id = w.x);
  IF missing IS NOT NULL THEN
    RAISE EXCEPTION 'sluice.dead_replay: no dead job with id %', array_to_string(missing, ', ')
      USING ERRCODE = 'P0002';
  END IF;
  RETURN QUERY
  WITH d AS (
    DELETE FROM sluice.dead_jobs WHERE dead_jobs.id = ANY(ids) RETURNING *
  ), ins AS (
    INSERT INTO sluice.jobs (
      id, queue, name, payload, priority, run_at, attempt, max_attempts, backoff_kind, backoff_base_ms,
      backoff_factor, backoff_max_ms, backoff_jitter, timeout_ms, state, unique_key, group_key, batch_id, tags,
      errors, created_at)
    SELECT d.id, d.queue, d.name, d.payload, d.priority, now(), 0, d.max_attempts, d.backoff_kind,
      d.backoff_base_ms, d.backoff_factor, d.backoff_max_ms, d.backoff_jitter, d.timeout_ms, 'available',
      -- A live job may have taken the unique key since, or two dead jobs of
      -- this replay hold it (the key was free again once the first died): the
      -- oldest keeps it if it is free, the others run without it.
      CASE WHEN d.key_rank > 1 OR EXISTS (SELECT 1 FROM sluice.jobs j WHERE j.queue = d.queue AND j.unique_key = d.unique_key)
           THEN NULL ELSE d.unique_key END,
      d.group_key, NULL, d.tags, d.errors, d.created_at
    FROM (SELECT d.*, row_number() OVER (PARTITION BY d.queue, d.unique_key ORDER BY d.id) AS key_rank FROM d) d
    RETURNING jobs.id
  )
  SELECT ins.id FROM ins;
  FOR q IN SELECT DISTINCT j.queue FROM sluice.jobs j WHERE j.id = ANY(ids) LOOP
    PERFORM pg_notify('sluice_jobs', q);
    PERFORM pg_notify('sluice_rewind', q);
  END LOOP;
END $$;
