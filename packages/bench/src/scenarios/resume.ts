// Resume: how soon a worker runs a job once its queue is resumed. The worker
// polls once an hour, so only the resume's notification can wake it. Each
// sample pauses the queue, enqueues one job (the worker looks and finds the
// queue paused), resumes it with sluice.queue_configure, and takes the time
// from the resume (the database's clock in that statement) to the job's claim
// (its attempted_at, the same clock).
import { createSluice, createWorker, defineJob } from 'sluice';
import { z } from 'zod';
import { freshDatabase } from '../db.js';
import { percentile } from '../stats.js';
import type { SystemAdapter } from '../systems/types.js';
import { sleep } from './common.js';

export interface ResumeSample {
  samples: number;
  p50: number;
  p95: number;
  max: number;
}

const QUEUE = 'bench.resume';
const POLL_MS = 3_600_000;
/** Time for the enqueue's notification to reach the worker, and waitFor's mark the row, before the resume. */
const SETTLE_MS = 100;

const resumeJob = defineJob({ name: 'bench.resume', queue: QUEUE, schema: z.object({ i: z.number() }) });

export async function resume(sys: SystemAdapter, samples: number): Promise<ResumeSample> {
  const url = await freshDatabase(sys.key, (u) => sys.install(u));
  const sluice = createSluice({ connectionString: url, poolSize: 2 });
  const worker = createWorker({ connectionString: url, handlers: [resumeJob.handle(() => {})], pollIntervalMs: POLL_MS, runScheduler: false });
  await worker.start();
  const lags: number[] = [];
  try {
    for (let i = 0; i < samples; i++) {
      await sluice.queues.pause(QUEUE);
      const id = await sluice.enqueue(resumeJob, { i });
      // waitFor marks the job's row (so its end is announced): done before the
      // resume, or the claim it wakes could skip the row while it is locked.
      const finished = sluice.waitFor(id, { timeoutMs: 60_000 });
      await sleep(SETTLE_MS);
      const { rows } = await sluice.pool.query<{ at: Date }>(
        `SELECT clock_timestamp() AS at, sluice.queue_configure($1, '{"paused": false}')`,
        [QUEUE],
      );
      await finished;
      const job = await sluice.getJob(id);
      lags.push(job.attemptedAt!.getTime() - rows[0]!.at.getTime());
    }
  } finally {
    await worker.stop();
    await sluice.close();
  }
  lags.sort((a, b) => a - b);
  return { samples, p50: percentile(lags, 50), p95: percentile(lags, 95), max: lags.at(-1)! };
}
