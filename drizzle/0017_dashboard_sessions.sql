CREATE TABLE "sluice"."dashboard_sessions" (
	"id" text PRIMARY KEY NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"expires_at" timestamp with time zone NOT NULL
);
--> statement-breakpoint
CREATE INDEX "dashboard_sessions_expires_at_idx" ON "sluice"."dashboard_sessions" USING btree ("expires_at");