// Enqueue: rows/s from one producer, either one job per transaction (as a
// request handler would) or bulk calls of 1,000 jobs.
import { freshDatabase, settle } from '../db.js';
import type { SystemAdapter } from '../systems/types.js';
import type { Variant } from '../variants.js';
import { BATCH, payloads, seed } from './common.js';

export type EnqueueMode = 'one' | 'many';

export interface EnqueueSample {
  jobs: number;
  seconds: number;
  rowsPerSecond: number;
}

const WARMUP_ONE = 200;
const WARMUP_MANY = 2 * BATCH;

export async function enqueue(sys: SystemAdapter, variant: Variant, mode: EnqueueMode, jobs: number): Promise<EnqueueSample> {
  const url = await freshDatabase(sys.key, (u) => sys.install(u));
  // The producer never has two calls in flight, so one connection does the
  // work; sluice refuses a pool of one (LISTEN for waitFor would hold it), so 2.
  const producer = await sys.producer(url, { ...variant.options, poolSize: 2 });
  try {
    if (mode === 'one') {
      for (const p of payloads(-WARMUP_ONE, WARMUP_ONE)) await producer.enqueueOne(p);
    } else {
      await seed(producer, WARMUP_MANY, -WARMUP_MANY);
    }
    await settle(url);
    // Payloads are built before the clock starts: they are the caller's cost, not the queue's.
    let t0: number;
    if (mode === 'one') {
      const work = payloads(0, jobs);
      t0 = performance.now();
      for (const p of work) await producer.enqueueOne(p);
    } else {
      const work = chunk(payloads(0, jobs), BATCH);
      t0 = performance.now();
      for (const batch of work) await producer.enqueueMany(batch);
    }
    const seconds = (performance.now() - t0) / 1000;
    return { jobs, seconds, rowsPerSecond: jobs / seconds };
  } finally {
    await producer.close();
  }
}

function chunk<T>(items: T[], size: number): T[][] {
  const out: T[][] = [];
  for (let k = 0; k < items.length; k += size) out.push(items.slice(k, k + size));
  return out;
}
