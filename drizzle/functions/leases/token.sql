-- FROM 0012_hot_path.sql
-- Hot path, as the profile of a 50,000-job drain pointed (issue 8).
--
-- Claim: commits asynchronously (see the function), and the picked ids were
-- joined back to sluice.jobs; in the cached
-- generic plan of the plpgsql function that join became a hash join over a
-- sequential scan of the whole table, so every claim read every live job
-- (EXPLAIN ANALYZE, 50,000 queued: 24 ms of a 48 ms 1,000-job claim). The ids
-- now go in as an array, which is always a primary-key lookup.
-- A claim's lease token is its time (attempted_at) in epoch microseconds;
-- every write after the claim presents it. These two say it once; both are
-- plain SQL expressions, inlined into the statements that use them.
CREATE OR REPLACE FUNCTION sluice.lease_token(attempted_at timestamptz) RETURNS bigint
LANGUAGE sql STABLE AS $$ SELECT (extract(epoch FROM attempted_at) * 1000000)::bigint $$;
