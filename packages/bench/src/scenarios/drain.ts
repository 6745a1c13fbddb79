// Drain: N jobs already queued, one worker process, no-op handlers; jobs/s
// from the first handler call until the database holds no unfinished job.
import { freshDatabase, settle } from '../db.js';
import type { SystemAdapter } from '../systems/types.js';
import type { Variant } from '../variants.js';
import { remainingCounter, seed, waitDrained } from './common.js';

export interface DrainSample {
  jobs: number;
  seconds: number;
  jobsPerSecond: number;
  /** False when the cap ended the run first: the rate covers `jobs` only. */
  complete: boolean;
}

const WARMUP_JOBS = 1_000;
const TIMEOUT_S = 300;

export async function drain(sys: SystemAdapter, variant: Variant, jobs: number, capSeconds?: number): Promise<DrainSample> {
  const url = await freshDatabase(sys.key, (u) => sys.install(u));
  const producer = await sys.producer(url, variant.options);
  const counter = await remainingCounter(url, sys.remainingSql);
  try {
    // Warm-up in the same process: JIT, module loading, prepared statements.
    const warmup = variant.warmupJobs ?? WARMUP_JOBS;
    await seed(producer, warmup, -warmup);
    let warmed = 0;
    const w0 = await sys.startWorker(url, variant.options, () => void warmed++);
    const warmStart = performance.now();
    const warmedUp = await waitDrained(() => warmed, warmup, counter.count, () => warmStart + 60_000);
    await w0.stop();
    if (!warmedUp) throw new Error(`warm-up of ${warmup} jobs did not finish in 60 s`);

    await seed(producer, jobs);
    await settle(url);

    let seen = 0;
    let t0 = 0;
    const capS = capSeconds ?? TIMEOUT_S;
    const startedAt = performance.now();
    const worker = await sys.startWorker(url, variant.options, () => {
      if (seen++ === 0) t0 = performance.now();
    });
    // The cap counts from the first job; the first job itself must come within a minute.
    const deadline = () => (t0 ? t0 + capS * 1000 : startedAt + 60_000);
    const complete = await waitDrained(() => seen, jobs, counter.count, deadline);
    const t1 = performance.now();
    const left = complete ? 0 : await counter.count();
    await worker.stop();
    if (!t0) throw new Error('no job started within 60 s');
    if (!complete && capSeconds === undefined) throw new Error(`drain did not finish in ${capS} s`);
    const done = jobs - left;
    const seconds = (t1 - t0) / 1000;
    return { jobs: done, seconds, jobsPerSecond: done / seconds, complete };
  } finally {
    await counter.close();
    await producer.close();
  }
}
