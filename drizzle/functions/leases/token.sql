-- The lease token of a claim: its time (attempted_at) in epoch microseconds.
-- sluice.claim returns it (jobs/claim.sql); every later write of the run
-- presents it, and sluice.lease_holds (leases/holds.sql) checks it. Plain SQL,
-- inlined into the statements that use it.
--
-- Guarantees: two claims of the same job never share a token (each claim sets
-- attempted_at = now() of its own transaction), so a claim lost in a crash and
-- made again with the same attempt number still fences the first run out.
CREATE OR REPLACE FUNCTION sluice.lease_token(attempted_at timestamptz) RETURNS bigint
LANGUAGE sql STABLE AS $$ SELECT (extract(epoch FROM attempted_at) * 1000000)::bigint $$;
