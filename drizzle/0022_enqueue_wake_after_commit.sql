-- sluice.enqueue_many takes wake_after_commit (the caller wakes the workers
-- after its commit); drizzle/functions/jobs/enqueue-many.sql creates the new one.
DROP FUNCTION IF EXISTS sluice.enqueue_many(text, jsonb, text, timestamptz, integer, integer, integer, jsonb, text[], text[], text[], bigint[], text, bigint, integer, integer, boolean);
