-- The delay before a failed job's next attempt: fixed (base_ms), or base *
-- factor^(attempt - 1) capped at max_ms; spread by +/- jitter. The exponent is
-- capped so a large attempt number cannot overflow; jitter spreads retries of
-- jobs that failed together, also at the cap: a delay at max_ms is spread
-- below it (capping after the jitter made every retry past the cap land at
-- max_ms exactly). max_ms does not cap a fixed delay: its default (1 h) would
-- silently shorten a fixed backoff of hours. Used by jobs/fail.sql when the
-- worker passes no delay.
--
-- Guarantees: 0 <= result; result <= max_ms for an exponential backoff;
-- within base_ms +/- jitter for a fixed one.
-- Lease: none. Locks: none.
CREATE OR REPLACE FUNCTION sluice.retry_delay_ms(
  attempt integer, kind text, base_ms integer, factor real, max_ms integer, jitter real
) RETURNS bigint LANGUAGE sql VOLATILE AS $$
  SELECT greatest(0, CASE
    WHEN kind = 'fixed' THEN base_ms * (1 + jitter * (2 * random() - 1))
    WHEN d.raw >= max_ms THEN max_ms * (1 - jitter * random())
    ELSE least(max_ms, d.raw * (1 + jitter * (2 * random() - 1)))
  END)::bigint
  FROM (SELECT base_ms * power(factor::float8, least(greatest(attempt - 1, 0), 60)) AS raw) d
$$;
