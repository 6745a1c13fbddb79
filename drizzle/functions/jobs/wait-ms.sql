-- How long a finished job waited between due and start, for the metrics: the
-- time since run_at less the handler's own run time. Plain SQL, inlined into
-- the statements that use it (jobs/complete.sql, jobs/fail.sql).
--
-- Lease: none. Locks: none.
CREATE OR REPLACE FUNCTION sluice.wait_ms(run_at timestamptz, run_ms integer) RETURNS numeric
LANGUAGE sql STABLE AS $$ SELECT greatest(0, extract(epoch FROM now() - run_at)::numeric * 1000 - coalesce(run_ms, 0)) $$;
