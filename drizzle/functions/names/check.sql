-- Raises 22023 ("invalid <kind> name") unless value is a valid sluice name:
-- 1-128 characters of A-Z a-z 0-9 . _ : -, starting with a letter or digit.
-- The same rule as the tables' CHECK constraints (NAME_CHECK in schema.ts),
-- written as an unbounded class plus a length bound: a counted repeat like
-- {0,127} makes PostgreSQL's regex engine build a large automaton, which
-- costs far more per row.
--
-- Lease: none. Locks: none.
CREATE OR REPLACE FUNCTION sluice.check_name(kind text, value text)
RETURNS void LANGUAGE plpgsql IMMUTABLE AS $$
BEGIN
  IF value IS NULL OR length(value) > 128 OR value !~ '^[A-Za-z0-9][A-Za-z0-9._:-]*$' THEN
    RAISE EXCEPTION 'sluice: invalid % name: must match ^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$', kind
      USING ERRCODE = '22023';
  END IF;
END $$;
