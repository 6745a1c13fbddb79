-- Creates a batch row for `total` members, with the job to enqueue when all
-- have ended; the members are enqueued with its id. Returns the batch id.
--
-- Lease: none. Locks: none beyond the INSERT.
CREATE OR REPLACE FUNCTION sluice.batch_create(total integer, on_complete_job text DEFAULT NULL, on_complete_payload jsonb DEFAULT NULL)
RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
  new_id bigint;
BEGIN
  IF total IS NULL OR total < 1 THEN
    RAISE EXCEPTION 'sluice.batch_create: total must be at least 1' USING ERRCODE = '22023';
  END IF;
  IF on_complete_job IS NOT NULL THEN
    PERFORM sluice.check_name('job', on_complete_job);
    -- The callback is enqueued (sluice.enqueue, 1 MiB) by the completion of
    -- the batch's last member, with the counts added: over the limit there,
    -- it would fail that completion every time it is tried.
    IF octet_length((coalesce(on_complete_payload, '{}'::jsonb) || jsonb_build_object('batchId', 9223372036854775807,
         'total', total, 'completed', total, 'dead', total, 'cancelled', total))::text) > 1048576 THEN
      RAISE EXCEPTION 'sluice.batch_create: the onComplete payload is larger than 1048576 bytes' USING ERRCODE = '54000';
    END IF;
  END IF;
  INSERT INTO sluice.batches (total, on_complete_job, on_complete_payload)
  VALUES (total, on_complete_job, on_complete_payload) RETURNING id INTO new_id;
  RETURN new_id;
END $$;
