// Backlog: the drain rate of the next `jobs` jobs when `backlog` jobs are
// already in sluice.jobs (half available, half scheduled a day ahead),
// against the same drain from a table holding only those jobs, in the same
// process; and how long `SELECT * FROM sluice.queue_stats` takes on the backlog.
import pg from 'pg';
import { freshDatabase, settle } from '../db.js';
import { percentile } from '../stats.js';
import type { SystemAdapter } from '../systems/types.js';
import type { Variant } from '../variants.js';
import { remainingCounter, seed, sleep, waitDrained } from './common.js';
import { seedSql } from './sqlseed.js';

export interface BacklogSample {
  backlog: number;
  scheduled: number;
  jobs: number;
  emptyJobsPerSecond: number;
  backlogJobsPerSecond: number;
  /** backlog rate ÷ empty-table rate. */
  ratio: number;
  queueStatsMs: number;
  queueStatsMaxMs: number;
  buildSeconds: number;
}

const QUEUE_STATS_RUNS = 7;

async function warmUp(sys: SystemAdapter, variant: Variant, url: string): Promise<void> {
  const producer = await sys.producer(url, variant.options);
  const counter = await remainingCounter(url, sys.remainingSql);
  try {
    await seed(producer, 1_000, -1_000);
    let warmed = 0;
    const w = await sys.startWorker(url, variant.options, () => void warmed++);
    const t = performance.now();
    const ok = await waitDrained(() => warmed, 1_000, counter.count, () => t + 60_000);
    await w.stop();
    if (!ok) throw new Error('warm-up did not finish in 60 s');
  } finally {
    await counter.close();
    await producer.close();
  }
}

/**
 * jobs/s from the first handler call to the `jobs`-th. Both the empty-table
 * and the backlog drain are timed this way (the backlog never empties, so
 * "until the table is empty" cannot be the end of either).
 */
async function timedDrain(sys: SystemAdapter, variant: Variant, url: string, jobs: number): Promise<number> {
  let seen = 0;
  let t0 = 0;
  let t1 = 0;
  const worker = await sys.startWorker(url, variant.options, () => {
    if (seen === 0) t0 = performance.now();
    if (++seen === jobs) t1 = performance.now();
  });
  const deadline = performance.now() + 300_000;
  try {
    while (!t1) {
      if (performance.now() > deadline) throw new Error(`drain of ${jobs} did not finish in 300 s`);
      await sleep(5);
    }
  } finally {
    await worker.stop();
  }
  return (jobs - 1) / ((t1 - t0) / 1000);
}

export async function backlog(sys: SystemAdapter, variant: Variant, backlogJobs: number, jobs: number): Promise<BacklogSample> {
  // Empty table: only the jobs to drain.
  const emptyUrl = await freshDatabase(sys.key, (u) => sys.install(u));
  await warmUp(sys, variant, emptyUrl);
  await seedSql(emptyUrl, jobs);
  await settle(emptyUrl);
  const emptyRate = await timedDrain(sys, variant, emptyUrl, jobs);

  // Backlog: every other chunk of 50,000 scheduled a day ahead, the rest available.
  const url = await freshDatabase(sys.key, (u) => sys.install(u));
  await warmUp(sys, variant, url);
  const b0 = performance.now();
  const { scheduled } = await seedSql(url, backlogJobs, { scheduledChunks: (k) => k % 2 === 1 });
  const buildSeconds = (performance.now() - b0) / 1000;
  if (backlogJobs - scheduled < jobs * 1.1) throw new Error('backlog has too few available jobs for the drain');
  await settle(url);

  const client = new pg.Client({ connectionString: url });
  await client.connect();
  const times: number[] = [];
  try {
    await client.query('SELECT * FROM sluice.queue_stats'); // first call plans and loads the catalog cache
    for (let i = 0; i < QUEUE_STATS_RUNS; i++) {
      const t = performance.now();
      await client.query('SELECT * FROM sluice.queue_stats');
      times.push(performance.now() - t);
    }
  } finally {
    await client.end();
  }
  times.sort((a, b) => a - b);
  const backlogRate = await timedDrain(sys, variant, url, jobs);
  return {
    backlog: backlogJobs,
    scheduled,
    jobs,
    emptyJobsPerSecond: emptyRate,
    backlogJobsPerSecond: backlogRate,
    ratio: backlogRate / emptyRate,
    queueStatsMs: percentile(times, 50),
    queueStatsMaxMs: times[times.length - 1]!,
    buildSeconds,
  };
}
