-- The alerts reported firing, kept where every worker sees them: the leader's
-- alert watcher reports an alert firing when it inserts its row and resolved
-- when it deletes it (functions/queues/alert-sync.sql), so the firing and the
-- resolved report of one alert are made once whichever leader makes them.
-- Before this table the state was the leader's memory, lost at a handover.
CREATE TABLE "sluice"."alert_states" (
	"queue" text NOT NULL,
	"alert" text NOT NULL,
	"value" double precision NOT NULL,
	"threshold" double precision NOT NULL,
	"message" text NOT NULL,
	"firing_since" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "alert_states_queue_alert_pk" PRIMARY KEY("queue","alert")
);
