// Cron cluster: three workers, each running the scheduler, share a schedule
// firing every second; one stops halfway. How late each fire time is
// enqueued (created_at - run_at) and started (attempted_at - run_at), all on
// the database's clock. The exactly-once rule itself is test/cron-cluster.test.ts.
import { createSluice, createWorker, defineJob, schedule, type Worker } from 'sluice';
import { z } from 'zod';
import { freshDatabase } from '../db.js';
import { percentile } from '../stats.js';
import type { SystemAdapter } from '../systems/types.js';
import { sleep } from './common.js';

export interface CronClusterSample {
  fires: number;
  enqueueP50: number;
  enqueueP95: number;
  enqueueMax: number;
  startP50: number;
  startP95: number;
  startMax: number;
}

const WORKERS = 3;
const tickJob = defineJob({ name: 'bench.tick', queue: 'bench.ticks', schema: z.object({}) });
const tickSchedule = schedule({ name: 'bench-tick', cron: '* * * * * *', job: tickJob, misfire: 'run_all' });

export async function cronCluster(sys: SystemAdapter, seconds: number): Promise<CronClusterSample> {
  const url = await freshDatabase(sys.key, (u) => sys.install(u));
  const workers: Worker[] = [];
  for (let i = 0; i < WORKERS; i++) {
    workers.push(
      createWorker({
        connectionString: url,
        poolSize: 2,
        handlers: [tickJob.handle(() => {})],
        schedules: [tickSchedule],
        pollIntervalMs: 500,
        heartbeatIntervalMs: 500,
        workerDeadAfterMs: 2_000,
      }),
    );
  }
  const sluice = createSluice({ connectionString: url, poolSize: 2 });
  try {
    await Promise.all(workers.map((w) => w.start()));
    await sleep((seconds * 1000) / 2);
    await workers[0]!.stop();
    await sleep((seconds * 1000) / 2);
    const { rows } = await sluice.pool.query<{ enqueue_ms: number; start_ms: number | null }>(
      `SELECT extract(epoch FROM created_at - run_at) * 1000 AS enqueue_ms, extract(epoch FROM attempted_at - run_at) * 1000 AS start_ms
       FROM (SELECT created_at, run_at, attempted_at FROM sluice.jobs WHERE name = 'bench.tick'
             UNION ALL SELECT created_at, run_at, attempted_at FROM sluice.job_history WHERE name = 'bench.tick') t`,
    );
    const enqueue = rows.map((r) => Number(r.enqueue_ms)).sort((a, b) => a - b);
    const start = rows.filter((r) => r.start_ms !== null).map((r) => Number(r.start_ms)).sort((a, b) => a - b);
    return {
      fires: rows.length,
      enqueueP50: percentile(enqueue, 50),
      enqueueP95: percentile(enqueue, 95),
      enqueueMax: enqueue.at(-1)!,
      startP50: percentile(start, 50),
      startP95: percentile(start, 95),
      startMax: start.at(-1)!,
    };
  } finally {
    await Promise.all(workers.map((w) => w.stop()));
    await sluice.close();
  }
}
