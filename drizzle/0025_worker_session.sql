-- Each worker records the server process of its LISTEN session, so that the
-- rescuer can tell a worker whose process died (its session ended at once,
-- the sockets closed) from one that is only slow to beat, and rescue its
-- jobs within seconds instead of after their leases (jobs/rescue-expired.sql
-- gains the argument and drops its old signature in one transaction).
ALTER TABLE "sluice"."workers" ADD COLUMN "session_pid" integer;--> statement-breakpoint
ALTER TABLE "sluice"."workers" ADD COLUMN "session_lost_at" timestamp with time zone;
