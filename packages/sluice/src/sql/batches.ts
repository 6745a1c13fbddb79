// Runtime SQL for batches: the batch row, and the job type of its callback.
import type { Queryable } from '../executor.js';
import type { JobDefinition } from '../job.js';
import { jobTypeUpsertMany } from './job-types.js';

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
 * queue "default".
 */
export async function batchCallbackTypeSave(db: Queryable, job: JobDefinition): Promise<void> {
  await jobTypeUpsertMany(db, [job]);
}
