-- sluice.wait_ms returns double precision instead of numeric: numeric
-- arithmetic once per completed job was about a tenth of a completion's
-- cost. jobs/wait-ms.sql re-creates it; the callers (jobs/complete.sql,
-- jobs/fail.sql) are plpgsql and resolve it by name.
DROP FUNCTION IF EXISTS sluice.wait_ms(timestamptz, integer);
--> statement-breakpoint
-- Half of each page of sluice.jobs is left free at insert, so a claim's new
-- row version usually lands on the page of the old one (a smaller WAL record,
-- and no extra lock record for moving to another page), and the space of
-- finished jobs is pruned and reused in place. Measured: 1,080 → 994 WAL
-- bytes per job over a 50,000-job claim/complete loop. drizzle-kit has no
-- notation for storage parameters, hence this custom migration.
ALTER TABLE sluice.jobs SET (fillfactor = 50);
