// Aging: how long a low-priority job waits while high-priority jobs keep
// arriving, in a queue with agingAfterMs. One worker slot drains the queue
// (a handler of HANDLER_MS); a feeder tops the high jobs up to FEED_DEPTH
// every FEED_EVERY_MS, so the queue never runs dry. From the low job's
// enqueue to its claim, on the database clock, and the priority it had aged
// to. (test/priorities-weights.test.ts proves the low job runs while high
// jobs still wait, and starves without aging.)
import { createSluice, createWorker, defineJob } from 'sluice';
import { z } from 'zod';
import { freshDatabase } from '../db.js';
import type { SystemAdapter } from '../systems/types.js';
import { sleep } from './common.js';

export interface AgingSample {
  agingAfterMs: number;
  waitMs: number;
  /** Priority when claimed (enqueued at -10, low). */
  priorityAtClaim: number;
  /** High jobs that ran between the low job's enqueue and its claim. */
  highJobsBefore: number;
}

const QUEUE = 'bench.aging';
const AGING_AFTER_MS = 100;
const HANDLER_MS = 10;
const FEED_DEPTH = 40;
const FEED_EVERY_MS = 20;
const TIMEOUT_MS = 120_000;

const agingJob = defineJob({ name: 'bench.aging', queue: QUEUE, schema: z.object({ kind: z.string() }) });

export async function aging(sys: SystemAdapter): Promise<AgingSample> {
  const url = await freshDatabase(sys.key, (u) => sys.install(u));
  const sluice = createSluice({ connectionString: url, poolSize: 2 });
  await sluice.queues.configure(QUEUE, { agingAfterMs: AGING_AFTER_MS });
  let feeding = true;
  const feeder = (async () => {
    while (feeding) {
      const { rows } = await sluice.pool.query<{ n: number }>(
        `SELECT count(*)::int AS n FROM sluice.jobs WHERE queue = $1 AND state = 'available' AND priority >= 10`,
        [QUEUE],
      );
      const missing = FEED_DEPTH - rows[0]!.n;
      if (missing > 0) await sluice.enqueueMany(agingJob, Array.from({ length: missing }, () => ({ kind: 'high' })), { priority: 'high' });
      await sleep(FEED_EVERY_MS);
    }
  })();
  const worker = createWorker({
    connectionString: url,
    handlers: [agingJob.handle(() => sleep(HANDLER_MS))],
    concurrency: 1,
    prefetch: 0,
    pollIntervalMs: 50,
    runScheduler: false,
  });
  try {
    await worker.start();
    // Once high jobs are waiting, the low one joins the queue.
    await sleep(200);
    const id = await sluice.enqueue(agingJob, { kind: 'low' }, { priority: 'low' });
    await sluice.waitFor(id, { timeoutMs: TIMEOUT_MS });
    const job = await sluice.getJob(id);
    const { rows } = await sluice.pool.query<{ n: number }>(
      `SELECT count(*)::int AS n FROM sluice.job_history WHERE queue = $1 AND payload->>'kind' = 'high'
         AND attempted_at > $2 AND attempted_at < $3`,
      [QUEUE, job.createdAt, job.attemptedAt],
    );
    return {
      agingAfterMs: AGING_AFTER_MS,
      waitMs: job.attemptedAt!.getTime() - job.createdAt.getTime(),
      priorityAtClaim: job.priority,
      highJobsBefore: rows[0]!.n,
    };
  } finally {
    feeding = false;
    await feeder;
    await worker.stop();
    await sluice.close();
  }
}
