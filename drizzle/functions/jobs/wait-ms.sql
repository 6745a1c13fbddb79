-- FROM 0012_hot_path.sql
-- How long a finished job waited between due and start, for the metrics:
-- the time since run_at less the handler's own run time.
CREATE OR REPLACE FUNCTION sluice.wait_ms(run_at timestamptz, run_ms integer) RETURNS numeric
LANGUAGE sql STABLE AS $$ SELECT greatest(0, extract(epoch FROM now() - run_at)::numeric * 1000 - coalesce(run_ms, 0)) $$;
