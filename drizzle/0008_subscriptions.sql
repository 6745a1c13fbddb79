CREATE TABLE "sluice"."subscriptions" (
	"topic" text NOT NULL,
	"job_name" text NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "subscriptions_topic_job_name_pk" PRIMARY KEY("topic","job_name"),
	CONSTRAINT "subscriptions_topic_check" CHECK (topic ~ '^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$'),
	CONSTRAINT "subscriptions_job_name_check" CHECK (job_name ~ '^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$')
);
