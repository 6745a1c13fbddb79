-- The fence: whether the claim that holds a row is the one `lease` names
-- (leases/token.sql). Completion, failure and progress (jobs/complete.sql,
-- jobs/fail.sql, jobs/progress.sql) check it together with the attempt and the
-- worker id. A NULL lease (a caller from SQL that has none) names any claim.
-- Plain SQL, inlined into the statements that use it.
CREATE OR REPLACE FUNCTION sluice.lease_holds(attempted_at timestamptz, lease bigint) RETURNS boolean
LANGUAGE sql STABLE AS $$ SELECT lease IS NULL OR attempted_at = timestamptz 'epoch' + lease * interval '1 microsecond' $$;
