-- Bounded queues get the block overflow policy: a producer waits for room.
-- sluice.enqueue_many gains the argument that lets a waiting caller learn
-- "full" without an error (jobs/enqueue-many.sql re-creates it).
ALTER TABLE "sluice"."queues" DROP CONSTRAINT "queues_overflow_check";--> statement-breakpoint
ALTER TABLE "sluice"."queues" ADD CONSTRAINT "queues_overflow_check" CHECK (overflow IN ('reject', 'block', 'drop_oldest', 'drop_newest'));--> statement-breakpoint
DROP FUNCTION IF EXISTS sluice.enqueue_many(text, jsonb, text, timestamptz, integer, integer, integer, jsonb, text[], text[], text[], bigint[], text, bigint, integer, integer);
