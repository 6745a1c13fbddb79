-- Enqueues one job: sluice.enqueue_many (jobs/enqueue-many.sql) with one
-- payload. Returns its id.
--
-- Guarantees, lease and locks: those of enqueue_many.
CREATE OR REPLACE FUNCTION sluice.enqueue(
  name text,
  payload jsonb DEFAULT '{}'::jsonb,
  queue text DEFAULT NULL,
  run_at timestamptz DEFAULT NULL,
  priority integer DEFAULT NULL,
  max_attempts integer DEFAULT NULL,
  timeout_ms integer DEFAULT NULL,
  backoff jsonb DEFAULT NULL,
  unique_key text DEFAULT NULL,
  tags text[] DEFAULT NULL,
  group_key text DEFAULT NULL,
  depends_on bigint[] DEFAULT NULL,
  on_parent_dead text DEFAULT 'dead',
  unique_window_ms integer DEFAULT NULL
) RETURNS bigint LANGUAGE sql AS $$
  SELECT sluice.enqueue_many(name, jsonb_build_array(coalesce(payload, 'null'::jsonb)), queue, run_at, priority,
    max_attempts, timeout_ms, backoff, CASE WHEN unique_key IS NULL THEN NULL ELSE ARRAY[unique_key] END, tags,
    CASE WHEN group_key IS NULL THEN NULL ELSE ARRAY[group_key] END, depends_on, on_parent_dead, NULL,
    unique_window_ms)
$$;
