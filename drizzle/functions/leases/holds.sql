-- FROM 0012_hot_path.sql
-- Whether the claim that holds a row is the one `lease` names. A NULL lease
-- (a caller from SQL that has none) names any claim.
CREATE OR REPLACE FUNCTION sluice.lease_holds(attempted_at timestamptz, lease bigint) RETURNS boolean
LANGUAGE sql STABLE AS $$ SELECT lease IS NULL OR attempted_at = timestamptz 'epoch' + lease * interval '1 microsecond' $$;
