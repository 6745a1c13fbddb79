-- These four functions changed signature or result type here: CREATE OR
-- REPLACE cannot do that, so the old versions are dropped; their current
-- definitions live in drizzle/functions/jobs/.
DROP FUNCTION IF EXISTS sluice.claim(text[], integer[], text, integer);
--> statement-breakpoint
DROP FUNCTION IF EXISTS sluice.job_complete_many(bigint[], integer[], jsonb[], integer[]);
--> statement-breakpoint
DROP FUNCTION IF EXISTS sluice.job_fail_many(bigint[], integer[], jsonb[], boolean[], integer[], integer[]);
--> statement-breakpoint
DROP FUNCTION IF EXISTS sluice.job_progress(bigint, integer, integer, text);
