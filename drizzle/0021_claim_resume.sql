-- sluice.claim takes where each queue's claim may resume (after the last job
-- its caller claimed); drizzle/functions/jobs/claim.sql creates the new one.
DROP FUNCTION IF EXISTS sluice.claim(text[], integer[], text, integer);
