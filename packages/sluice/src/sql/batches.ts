// Runtime SQL for batches: the batch row, and the job type of its callback.
import type { Queryable } from '../executor.js';
import type { JobDefinition } from '../job.js';

/** Creates the batch row its members are enqueued with (batches/create.sql); returns its id. */
export async function batchCreate(db: Queryable, total: number, callbackName: string | null, callbackPayloadJson: string): Promise<number> {
  const { rows } = await db.query<{ id: string }>({
    name: 'sluice_batch_create',
    text: 'SELECT sluice.batch_create($1, $2, $3::jsonb) AS id',
    values: [total, callbackName, callbackPayloadJson],
  });
  return Number(rows[0]!.id);
}

/**
 * Writes the callback's job type (its queue, priority, retry policy and time
 * limit), as a worker declares the jobs it runs: the callback is enqueued
 * in SQL by the last member's end (jobs/after-finish.sql), by name, and
 * sluice.enqueue takes those from sluice.job_types, or it would go to the
 * queue "default". A row that already says the same is not touched (an
 * upsert would lock it until the caller commits, and every batch with this
 * callback would wait for that transaction).
 */
export async function batchCallbackTypeSave(db: Queryable, job: JobDefinition): Promise<void> {
  await db.query({
    name: 'sluice_batch_callback_type_save',
    text: `
      WITH v (name, queue, priority, max_attempts, backoff_kind, backoff_base_ms, backoff_factor, backoff_max_ms,
              backoff_jitter, timeout_ms) AS (
        VALUES ($1::text, $2::text, $3::smallint, $4::integer, $5::text, $6::integer, $7::real, $8::integer, $9::real, $10::integer)
      )
      INSERT INTO sluice.job_types AS t (name, queue, priority, max_attempts, backoff_kind, backoff_base_ms,
        backoff_factor, backoff_max_ms, backoff_jitter, timeout_ms)
      SELECT * FROM v
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
      job.name,
      job.queue,
      job.priority,
      job.maxAttempts,
      job.backoff.kind,
      job.backoff.baseMs,
      job.backoff.factor,
      job.backoff.maxMs,
      job.backoff.jitter,
      job.timeoutMs ?? null,
    ],
  });
}
