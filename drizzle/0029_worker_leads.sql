-- Whether a worker held the maintenance leader's lock at its last beat on its
-- session: followers read the lock table, to end the session of a leader that
-- is gone, only while no worker with a fresh beat says it leads.
ALTER TABLE "sluice"."workers" ADD COLUMN "leads" boolean DEFAULT false NOT NULL;