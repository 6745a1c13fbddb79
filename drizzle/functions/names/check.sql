-- FROM 0013_enqueue_fast.sql
CREATE OR REPLACE FUNCTION sluice.check_name(kind text, value text)
RETURNS void LANGUAGE plpgsql IMMUTABLE AS $$
BEGIN
  IF value IS NULL OR length(value) > 128 OR value !~ '^[A-Za-z0-9][A-Za-z0-9._:-]*$' THEN
    RAISE EXCEPTION 'sluice: invalid % name: must match ^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$', kind
      USING ERRCODE = '22023';
  END IF;
END $$;
