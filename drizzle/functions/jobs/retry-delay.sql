-- The delay before a failed job's next attempt: fixed, or base * factor^(attempt
-- - 1), capped at max_ms, spread by +/- jitter. The exponent is capped so a
-- large attempt number cannot overflow; jitter spreads retries of jobs that
-- failed together. Used by jobs/fail.sql when the worker passes no delay.
--
-- Guarantees: 0 <= result <= max_ms.
-- Lease: none. Locks: none.
CREATE OR REPLACE FUNCTION sluice.retry_delay_ms(
  attempt integer, kind text, base_ms integer, factor real, max_ms integer, jitter real
) RETURNS bigint LANGUAGE sql VOLATILE AS $$
  SELECT least(
    max_ms::float8,
    greatest(0, CASE WHEN kind = 'fixed' THEN base_ms::float8
                     ELSE base_ms * power(factor::float8, least(greatest(attempt - 1, 0), 60)) END)
      * (1 + jitter * (2 * random() - 1))
  )::bigint
$$;
