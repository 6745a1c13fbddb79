// Runtime SQL for the per-name job defaults used by SQL enqueue.
import type { Queryable } from '../executor.js';
import type { JobDefinition } from '../job.js';

/**
 * Writes the defaults of these job definitions, so SQL enqueue matches TS
 * enqueue. A row that already says the same is not touched: an upsert would
 * lock it until the caller commits, and every other writer of that job type
 * (a batch with the same callback, a worker starting) would wait for that
 * transaction.
 */
export async function jobTypeUpsertMany(db: Queryable, jobs: readonly JobDefinition[]): Promise<void> {
  if (jobs.length === 0) return;
  await db.query({
    name: 'sluice_job_type_upsert_many',
    text: `
      INSERT INTO sluice.job_types AS t (name, queue, priority, max_attempts, backoff_kind, backoff_base_ms,
        backoff_factor, backoff_max_ms, backoff_jitter, timeout_ms)
      SELECT * FROM unnest($1::text[], $2::text[], $3::smallint[], $4::integer[], $5::text[], $6::integer[],
        $7::real[], $8::integer[], $9::real[], $10::integer[])
        AS v (name, queue, priority, max_attempts, backoff_kind, backoff_base_ms, backoff_factor, backoff_max_ms,
              backoff_jitter, timeout_ms)
      WHERE NOT EXISTS (
        SELECT 1 FROM sluice.job_types x WHERE x.name = v.name
          AND (x.queue, x.priority, x.max_attempts, x.backoff_kind, x.backoff_base_ms, x.backoff_factor,
               x.backoff_max_ms, x.backoff_jitter, x.timeout_ms)
          IS NOT DISTINCT FROM (v.queue, v.priority, v.max_attempts, v.backoff_kind, v.backoff_base_ms,
               v.backoff_factor, v.backoff_max_ms, v.backoff_jitter, v.timeout_ms))
      ON CONFLICT (name) DO UPDATE SET queue = excluded.queue, priority = excluded.priority,
        max_attempts = excluded.max_attempts, backoff_kind = excluded.backoff_kind,
        backoff_base_ms = excluded.backoff_base_ms, backoff_factor = excluded.backoff_factor,
        backoff_max_ms = excluded.backoff_max_ms, backoff_jitter = excluded.backoff_jitter,
        timeout_ms = excluded.timeout_ms, updated_at = now()
      WHERE (t.queue, t.priority, t.max_attempts, t.backoff_kind, t.backoff_base_ms, t.backoff_factor,
             t.backoff_max_ms, t.backoff_jitter, t.timeout_ms)
        IS DISTINCT FROM (excluded.queue, excluded.priority, excluded.max_attempts, excluded.backoff_kind,
             excluded.backoff_base_ms, excluded.backoff_factor, excluded.backoff_max_ms,
             excluded.backoff_jitter, excluded.timeout_ms)`,
    values: [
      jobs.map((j) => j.name),
      jobs.map((j) => j.queue),
      jobs.map((j) => j.priority),
      jobs.map((j) => j.maxAttempts),
      jobs.map((j) => j.backoff.kind),
      jobs.map((j) => j.backoff.baseMs),
      jobs.map((j) => j.backoff.factor),
      jobs.map((j) => j.backoff.maxMs),
      jobs.map((j) => j.backoff.jitter),
      jobs.map((j) => j.timeoutMs ?? null),
    ],
  });
}
