-- The doctor's checks, one row each: 'ok' or 'warn' with what to do.
--   dead_tuples     a sluice table whose dead rows outnumber a fifth of its live ones (and 10,000)
--                   and that vacuum cannot clear: the xmin horizon is held back (see long_xact) or
--                   autovacuum is disabled on the table. Dead rows vacuum can remove (a burst just
--                   drained) are normal churn: the ok row names them, never a warning.
--   bloat           a table estimated more than half empty space and over 8 MB, judged only when
--                   its statistics are fresh (few rows changed since its last ANALYZE); a table
--                   with stale statistics is named in the ok row instead
--   partitions      a day from today to today + 2 with no history partition, or rows in the default one
--   long_xact       a transaction (or prepared transaction) in this database, or a replication slot,
--                   older than long_xact_ms holding back the xmin horizon, so vacuum cannot remove
--                   dead rows (sessions in other databases do not hold back this one's tables)
--
-- Lease: none. Locks: none (reads statistics and the catalog).
CREATE OR REPLACE FUNCTION sluice.doctor(long_xact_ms integer DEFAULT 300000)
RETURNS TABLE (check_name text, status text, subject text, value float8, detail text)
LANGUAGE plpgsql STABLE AS $$
#variable_conflict use_column
DECLARE
  r record;
  found_any boolean;
  held boolean;
  pending text;
  block float8 := current_setting('block_size')::float8;
  horizon interval := make_interval(secs => long_xact_ms / 1000.0);
BEGIN
  -- Dead rows are a problem only when vacuum cannot clear them; anything holding the
  -- xmin horizon back is what long_xact below lists.
  -- A transaction that wrote holds an xid and may show no xmin while idle: it holds vacuum back too.
  held := EXISTS (SELECT 1 FROM pg_stat_activity a WHERE (a.backend_xmin IS NOT NULL OR a.backend_xid IS NOT NULL) AND a.pid <> pg_backend_pid()
                    AND a.datname = current_database() AND coalesce(a.xact_start, a.backend_start) < now() - horizon)
       OR EXISTS (SELECT 1 FROM pg_prepared_xacts p WHERE p.database = current_database() AND p.prepared < now() - horizon)
       OR EXISTS (SELECT 1 FROM pg_replication_slots s WHERE NOT s.active AND (s.xmin IS NOT NULL OR s.catalog_xmin IS NOT NULL));
  found_any := false;
  pending := NULL;
  FOR r IN SELECT t.relname::text AS rel, t.n_dead_tup, t.n_live_tup,
             coalesce((SELECT o.option_value FROM pg_options_to_table(c.reloptions) o
                       WHERE o.option_name = 'autovacuum_enabled'), 'true')::boolean AS table_autovacuum
           FROM pg_stat_user_tables t JOIN pg_class c ON c.oid = t.relid WHERE t.schemaname = 'sluice'
             AND t.n_dead_tup > 10000 AND t.n_dead_tup > 0.2 * t.n_live_tup ORDER BY t.n_dead_tup DESC LOOP
    IF held THEN
      found_any := true;
      RETURN QUERY SELECT 'dead_tuples', 'warn', 'sluice.' || r.rel, r.n_dead_tup::float8,
        format('%s dead rows beside %s live that vacuum cannot remove while the horizon is held back: see long_xact',
               r.n_dead_tup, r.n_live_tup);
    ELSIF NOT r.table_autovacuum THEN
      found_any := true;
      RETURN QUERY SELECT 'dead_tuples', 'warn', 'sluice.' || r.rel, r.n_dead_tup::float8,
        format('%s dead rows beside %s live, and autovacuum is disabled on this table: run VACUUM sluice.%I, or ALTER TABLE sluice.%I RESET (autovacuum_enabled)',
               r.n_dead_tup, r.n_live_tup, r.rel, r.rel);
    ELSE
      pending := concat_ws(', ', pending, format('sluice.%s (%s)', r.rel, r.n_dead_tup));
    END IF;
  END LOOP;
  IF NOT found_any THEN
    RETURN QUERY SELECT 'dead_tuples', 'ok', 'sluice', 0::float8,
      CASE WHEN pending IS NULL THEN 'no table carries many dead rows'
           ELSE format('nothing holds dead rows back; vacuum can remove those of %s%s', pending,
                       CASE WHEN current_setting('autovacuum')::boolean THEN ' (autovacuum will)'
                            ELSE ', but autovacuum is off on this server: run VACUUM on them' END) END;
  END IF;

  found_any := false;
  pending := NULL;
  FOR r IN
    WITH widths AS (
      SELECT s.tablename, sum(s.avg_width) AS width FROM pg_stats s WHERE s.schemaname = 'sluice' GROUP BY 1
    )
    SELECT c.relname::text AS rel, pg_relation_size(c.oid)::float8 AS actual_bytes,
      ceil(c.reltuples * (w.width + 28) / (block * coalesce(
        (SELECT option_value::float8 FROM pg_options_to_table(c.reloptions) WHERE option_name = 'fillfactor'), 100) / 100))
        * block AS expected_bytes,
      -- reltuples and relpages are as of the last ANALYZE or VACUUM: after many changes
      -- since both, they describe a table that no longer exists.
      least(coalesce(t.n_mod_since_analyze, 0), coalesce(t.n_ins_since_vacuum + t.n_dead_tup, 0))
        > 0.2 * c.reltuples + 1000 AS stale,
      least(t.n_mod_since_analyze, t.n_ins_since_vacuum + t.n_dead_tup) AS changed
    FROM pg_class c JOIN widths w ON w.tablename = c.relname
    LEFT JOIN pg_stat_user_tables t ON t.relid = c.oid
    WHERE c.relnamespace = 'sluice'::regnamespace AND c.relkind = 'r' AND c.reltuples >= 0
  LOOP
    IF r.stale THEN
      pending := concat_ws(', ', pending, format('sluice.%s (%s rows changed since)', r.rel, r.changed));
    ELSIF r.actual_bytes > 8 * 1024 * 1024 AND r.expected_bytes < 0.5 * r.actual_bytes THEN
      found_any := true;
      RETURN QUERY SELECT 'bloat', 'warn', 'sluice.' || r.rel, 1 - r.expected_bytes / r.actual_bytes,
        format('about %s of %s is free space: VACUUM makes it reusable; pg_repack or VACUUM FULL (locks) gives it back',
               pg_size_pretty((r.actual_bytes - r.expected_bytes)::bigint), pg_size_pretty(r.actual_bytes::bigint));
    END IF;
  END LOOP;
  IF NOT found_any THEN
    RETURN QUERY SELECT 'bloat', 'ok', 'sluice', 0::float8,
      'no table is mostly empty space (estimate from statistics)' ||
      CASE WHEN pending IS NULL THEN ''
           ELSE format('; statistics are stale, so not judged: %s (ANALYZE them for a judgment)', pending) END;
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
           WHERE (a.backend_xmin IS NOT NULL OR a.backend_xid IS NOT NULL) AND a.pid <> pg_backend_pid()
             AND a.datname = current_database() AND coalesce(a.xact_start, a.backend_start) < now() - horizon
           ORDER BY coalesce(a.xact_start, a.backend_start) LOOP
    found_any := true;
    RETURN QUERY SELECT 'long_xact', 'warn', format('pid %s (%s, db %s)', r.pid, coalesce(r.who, '?'), coalesce(r.db, '?')), r.secs,
      format('%s transaction open for %s s holds back vacuum: end it, or SELECT pg_terminate_backend(%s)',
             coalesce(r.st, 'a'), round(r.secs), r.pid);
  END LOOP;
  FOR r IN SELECT p.gid, extract(epoch FROM now() - p.prepared)::float8 AS secs FROM pg_prepared_xacts p
           WHERE p.database = current_database() AND p.prepared < now() - horizon LOOP
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
