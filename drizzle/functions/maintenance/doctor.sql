-- The doctor's checks, one row each: 'ok' or 'warn' with what to do.
--   dead_tuples     a sluice table whose dead rows outnumber a fifth of its live ones (and 10,000)
--   bloat           a table estimated more than half empty space and over 8 MB
--   partitions      a day from today to today + 2 with no history partition, or rows in the default one
--   long_xact       a transaction (or prepared transaction, or replication slot) older than long_xact_ms
--                   holding back the xmin horizon, so vacuum cannot remove dead rows
--
-- Lease: none. Locks: none (reads statistics and the catalog).
CREATE OR REPLACE FUNCTION sluice.doctor(long_xact_ms integer DEFAULT 300000)
RETURNS TABLE (check_name text, status text, subject text, value float8, detail text)
LANGUAGE plpgsql STABLE AS $$
#variable_conflict use_column
DECLARE
  r record;
  found_any boolean;
  block float8 := current_setting('block_size')::float8;
  horizon interval := make_interval(secs => long_xact_ms / 1000.0);
BEGIN
  found_any := false;
  FOR r IN SELECT t.relname::text AS rel, t.n_dead_tup, t.n_live_tup, t.last_autovacuum
           FROM pg_stat_user_tables t WHERE t.schemaname = 'sluice'
             AND t.n_dead_tup > 10000 AND t.n_dead_tup > 0.2 * t.n_live_tup ORDER BY t.n_dead_tup DESC LOOP
    found_any := true;
    RETURN QUERY SELECT 'dead_tuples', 'warn', 'sluice.' || r.rel, r.n_dead_tup::float8,
      format('%s dead rows beside %s live (last autovacuum %s): look for a long transaction below, or run VACUUM sluice.%I',
             r.n_dead_tup, r.n_live_tup, coalesce(r.last_autovacuum::text, 'never'), r.rel);
  END LOOP;
  IF NOT found_any THEN
    RETURN QUERY SELECT 'dead_tuples', 'ok', 'sluice', 0::float8, 'no table carries many dead rows';
  END IF;

  found_any := false;
  FOR r IN
    WITH widths AS (
      SELECT s.tablename, sum(s.avg_width) AS width FROM pg_stats s WHERE s.schemaname = 'sluice' GROUP BY 1
    )
    SELECT c.relname::text AS rel, c.relpages::float8 * block AS actual_bytes,
      ceil(c.reltuples * (w.width + 28) / (block * coalesce(
        (SELECT option_value::float8 FROM pg_options_to_table(c.reloptions) WHERE option_name = 'fillfactor'), 100) / 100))
        * block AS expected_bytes
    FROM pg_class c JOIN widths w ON w.tablename = c.relname
    WHERE c.relnamespace = 'sluice'::regnamespace AND c.relkind = 'r' AND c.reltuples >= 0
  LOOP
    IF r.actual_bytes > 8 * 1024 * 1024 AND r.expected_bytes < 0.5 * r.actual_bytes THEN
      found_any := true;
      RETURN QUERY SELECT 'bloat', 'warn', 'sluice.' || r.rel, 1 - r.expected_bytes / r.actual_bytes,
        format('about %s of %s is free space: VACUUM makes it reusable; pg_repack or VACUUM FULL (locks) gives it back',
               pg_size_pretty((r.actual_bytes - r.expected_bytes)::bigint), pg_size_pretty(r.actual_bytes::bigint));
    END IF;
  END LOOP;
  IF NOT found_any THEN
    RETURN QUERY SELECT 'bloat', 'ok', 'sluice', 0::float8, 'no table is mostly empty space (estimate from statistics)';
  END IF;

  found_any := false;
  FOR r IN SELECT d::date AS day FROM generate_series((now() AT TIME ZONE 'UTC')::date,
             (now() AT TIME ZONE 'UTC')::date + 2, interval '1 day') AS d
           WHERE NOT EXISTS (SELECT 1 FROM sluice.history_partitions() p
             WHERE NOT p.is_default AND p.range_from <= (d::date::timestamp AT TIME ZONE 'UTC')
               AND p.range_to > (d::date::timestamp AT TIME ZONE 'UTC')) LOOP
    found_any := true;
    RETURN QUERY SELECT 'partitions', 'warn', 'sluice.job_history', 0::float8,
      format('no partition for %s: its rows go to the default partition; run `sluice prune` (or keep a worker running)', r.day);
  END LOOP;
  IF EXISTS (SELECT 1 FROM sluice.job_history_default LIMIT 1) THEN
    found_any := true;
    RETURN QUERY SELECT 'partitions', 'warn', 'sluice.job_history_default',
      (SELECT count(*) FROM (SELECT 1 FROM sluice.job_history_default LIMIT 100000) x)::float8,
      'rows in the default partition are deleted row by row by retention instead of dropped with their day';
  END IF;
  IF NOT found_any THEN
    RETURN QUERY SELECT 'partitions', 'ok', 'sluice.job_history', 0::float8, 'partitions exist for today and the next 2 days';
  END IF;

  found_any := false;
  FOR r IN SELECT a.pid, a.usename::text AS who, a.state AS st, a.datname::text AS db,
             extract(epoch FROM now() - coalesce(a.xact_start, a.backend_start))::float8 AS secs
           FROM pg_stat_activity a
           WHERE a.backend_xmin IS NOT NULL AND a.pid <> pg_backend_pid()
             AND coalesce(a.xact_start, a.backend_start) < now() - horizon
           ORDER BY a.xact_start LOOP
    found_any := true;
    RETURN QUERY SELECT 'long_xact', 'warn', format('pid %s (%s, db %s)', r.pid, coalesce(r.who, '?'), coalesce(r.db, '?')), r.secs,
      format('%s transaction open for %s s holds back vacuum: end it, or SELECT pg_terminate_backend(%s)',
             coalesce(r.st, 'a'), round(r.secs), r.pid);
  END LOOP;
  FOR r IN SELECT p.gid, extract(epoch FROM now() - p.prepared)::float8 AS secs FROM pg_prepared_xacts p
           WHERE p.prepared < now() - horizon LOOP
    found_any := true;
    RETURN QUERY SELECT 'long_xact', 'warn', 'prepared transaction ' || r.gid, r.secs,
      format('prepared %s s ago and never committed: COMMIT PREPARED or ROLLBACK PREPARED %L', round(r.secs), r.gid);
  END LOOP;
  FOR r IN SELECT s.slot_name::text AS slot FROM pg_replication_slots s
           WHERE NOT s.active AND (s.xmin IS NOT NULL OR s.catalog_xmin IS NOT NULL) LOOP
    found_any := true;
    RETURN QUERY SELECT 'long_xact', 'warn', 'replication slot ' || r.slot, 0::float8,
      format('inactive slot keeps old rows alive: drop it with SELECT pg_drop_replication_slot(%L) if unused', r.slot);
  END LOOP;
  IF NOT found_any THEN
    RETURN QUERY SELECT 'long_xact', 'ok', 'cluster', 0::float8,
      format('nothing older than %s s holds back vacuum (sessions of other users are visible with pg_read_all_stats)', long_xact_ms / 1000);
  END IF;
END $$;
