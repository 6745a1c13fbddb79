-- Publishes an event: one job per subscriber of the topic, in the caller's
-- transaction. Sequential delivery chains the subscribers' jobs with
-- depends_on, in subscription order. Returns the job ids.
--
-- Guarantees: all subscribers' jobs or none, committed with the caller's work.
-- Lease: none. Locks: those of sluice.enqueue_many (jobs/enqueue-many.sql).
CREATE OR REPLACE FUNCTION sluice.publish(topic text, payload jsonb DEFAULT '{}'::jsonb, sequential boolean DEFAULT false)
RETURNS SETOF bigint LANGUAGE plpgsql AS $$
DECLARE
  s record;
  prev bigint;
  new_id bigint;
BEGIN
  PERFORM sluice.check_name('topic', topic);
  FOR s IN SELECT sub.job_name FROM sluice.subscriptions sub WHERE sub.topic = publish.topic ORDER BY sub.created_at, sub.job_name LOOP
    new_id := sluice.enqueue(s.job_name, payload,
      depends_on => CASE WHEN sequential AND prev IS NOT NULL THEN ARRAY[prev] END);
    prev := new_id;
    RETURN NEXT new_id;
  END LOOP;
END $$;
