// Soak: N jobs through one sluice worker in this process. RSS sampled every
// second (start, after the first 10% of jobs, peak, end), and the dead tuples
// left in sluice.jobs once the worker has stopped. Jobs are seeded in SQL, so
// the client never holds them.
import { freshDatabase, queryOnce, settle } from '../db.js';
import type { SystemAdapter } from '../systems/types.js';
import type { Variant } from '../variants.js';
import { remainingCounter, sleep, waitDrained } from './common.js';
import { seedSql } from './sqlseed.js';

export interface SoakSample {
  jobs: number;
  seconds: number;
  jobsPerSecond: number;
  rssStartMB: number;
  rssWarmMB: number;
  rssHalfMB: number;
  heapStartMB: number;
  rssPeakMB: number;
  rssEndMB: number;
  heapEndMB: number;
  deadTuples: number;
  liveTuples: number;
  autovacuums: number;
  tableMB: number;
}

const MB = 1024 * 1024;

export async function soak(sys: SystemAdapter, variant: Variant, jobs: number): Promise<SoakSample> {
  const url = await freshDatabase(sys.key, (u) => sys.install(u));
  await seedSql(url, jobs);
  await settle(url);
  const counter = await remainingCounter(url, sys.remainingSql);
  const rss = () => process.memoryUsage().rss / MB;
  let seen = 0;
  let peak = 0;
  let warm = 0;
  let half = 0;
  const sampler = setInterval(() => {
    const r = rss();
    peak = Math.max(peak, r);
    if (!warm && seen >= jobs / 10) warm = r;
    if (!half && seen >= jobs / 2) half = r;
  }, 1_000);
  try {
    const worker = await sys.startWorker(url, variant.options, () => void seen++);
    const rssStart = rss();
    const heapStart = process.memoryUsage().heapUsed / MB;
    peak = rssStart;
    const t0 = performance.now();
    const ok = await waitDrained(() => seen, jobs, counter.count, () => t0 + 3_600_000);
    const t1 = performance.now();
    const rssEnd = rss();
    peak = Math.max(peak, rssEnd);
    const heapEnd = process.memoryUsage().heapUsed / MB;
    await worker.stop();
    if (!ok) throw new Error('soak did not finish in an hour');
    // Backends report their table statistics when they exit; give them a moment.
    await sleep(1_500);
    const [t] = await queryOnce<{ dead: number; live: number; av: number; mb: number }>(
      url,
      `SELECT n_dead_tup::int AS dead, n_live_tup::int AS live, autovacuum_count::int AS av,
              pg_total_relation_size('sluice.jobs')::float8 / 1048576 AS mb
       FROM pg_stat_user_tables WHERE schemaname = 'sluice' AND relname = 'jobs'`,
    );
    return {
      jobs,
      seconds: (t1 - t0) / 1000,
      jobsPerSecond: jobs / ((t1 - t0) / 1000),
      rssStartMB: rssStart,
      rssWarmMB: warm || rssEnd,
      rssHalfMB: half || rssEnd,
      heapStartMB: heapStart,
      rssPeakMB: peak,
      rssEndMB: rssEnd,
      heapEndMB: heapEnd,
      deadTuples: t!.dead,
      liveTuples: t!.live,
      autovacuums: t!.av,
      tableMB: t!.mb,
    };
  } finally {
    clearInterval(sampler);
    await counter.close();
  }
}
