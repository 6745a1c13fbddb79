-- Each session counts into a row of its own (its server process id), not into one
-- of 64 shared by every session whose pid falls in the same shard: two producers
-- whose open transactions had enqueued into two queues in opposite orders
-- deadlocked there, and a producer's open transaction held up the
-- acknowledgements of a worker session sharing its shard (functions/metrics/add.sql).
ALTER TABLE "sluice"."metrics_minutely" ALTER COLUMN "shard" SET DATA TYPE integer;