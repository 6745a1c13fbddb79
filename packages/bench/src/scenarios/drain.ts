// Drain: N jobs already queued, one worker process, no-op handlers; jobs/s
// from the first handler call until the database holds no unfinished job,
// and what each job cost: CPU of the worker process and of the database's
// backends (from /proc), and WAL written for it, enqueue and drain apart.
import { loadavg } from 'node:os';
import type pg from 'pg';
import { freshDatabase, settle } from '../db.js';
import { cpuDelta, cpuSeconds } from '../procstat.js';
import type { SystemAdapter } from '../systems/types.js';
import type { Variant } from '../variants.js';
import { walMark, walSince } from '../wal.js';
import { remainingCounter, seed, waitDrained } from './common.js';

export interface DrainSample {
  jobs: number;
  seconds: number;
  jobsPerSecond: number;
  /** False when the cap ended the run first: the rate covers `jobs` only. */
  complete: boolean;
  /** CPU µs per job over the timed drain: the worker's process, and the database backends serving it. */
  workerCpuUsPerJob: number;
  dbCpuUsPerJob: number;
  /** WAL bytes per job: written by the seeding (bulk enqueue), and by the drain (claims and finishes). */
  enqueueWalPerJob: number;
  drainWalPerJob: number;
  /** False when the WAL figures count every database on the server (pg_waldump not usable). */
  walIsolated: boolean;
  /** 1-minute load average when the drain ended. */
  loadAverage: number;
}

const WARMUP_JOBS = 1_000;
const TIMEOUT_S = 300;

async function backendPids(client: pg.Client): Promise<number[]> {
  const { rows } = await client.query<{ pid: number }>(
    'SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()',
  );
  return rows.map((r) => r.pid);
}

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

    const seedWal = await walMark(counter.client);
    await seed(producer, jobs);
    const enqueueWal = await walSince(counter.client, seedWal);
    await settle(url);

    let seen = 0;
    let t0 = 0;
    const capS = capSeconds ?? TIMEOUT_S;
    const drainWal = await walMark(counter.client);
    const db0 = cpuSeconds(await backendPids(counter.client));
    const cpu0 = process.cpuUsage();
    const startedAt = performance.now();
    const worker = await sys.startWorker(url, variant.options, () => {
      if (seen++ === 0) t0 = performance.now();
    });
    // The cap counts from the first job; the first job itself must come within a minute.
    const deadline = () => (t0 ? t0 + capS * 1000 : startedAt + 60_000);
    const complete = await waitDrained(() => seen, jobs, counter.count, deadline);
    const t1 = performance.now();
    const cpu1 = process.cpuUsage(cpu0);
    const db1 = cpuSeconds(await backendPids(counter.client));
    const left = complete ? 0 : await counter.count();
    const wal = await walSince(counter.client, drainWal);
    await worker.stop();
    if (!t0) throw new Error('no job started within 60 s');
    if (!complete && capSeconds === undefined) throw new Error(`drain did not finish in ${capS} s`);
    const done = jobs - left;
    const seconds = (t1 - t0) / 1000;
    // Backends present at the end only (opened by the worker) count whole; the counter's own is never listed.
    return {
      jobs: done,
      seconds,
      jobsPerSecond: done / seconds,
      complete,
      workerCpuUsPerJob: (cpu1.user + cpu1.system) / done,
      dbCpuUsPerJob: (cpuDelta(db0, db1) * 1e6) / done,
      enqueueWalPerJob: enqueueWal.bytes / jobs,
      drainWalPerJob: wal.bytes / done,
      walIsolated: enqueueWal.isolated && wal.isolated,
      loadAverage: loadavg()[0]!,
    };
  } finally {
    await counter.close();
    await producer.close();
  }
}
