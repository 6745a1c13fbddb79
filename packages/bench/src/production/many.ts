// Many processes: P worker processes of concurrency C start on an empty
// database and report READY; a warm-up of W jobs goes through them first, not
// counted (as the drains exclude theirs: each new session's first claim and
// first acknowledgement plan their statements, some 10-20 ms of server CPU,
// which 150 sessions pay once each and a long-running worker never again);
// then a producer enqueues J jobs at a fixed rate
// (one bulk call every 10 ms, so each call announces rate/100 jobs to every
// listening process), and the workers run them until none is left. Reported:
// runs per job number (each exactly once), jobs per process, the database
// server's CPU per job, and the processes' statements, claims and the
// claims that returned nothing. The same jobs at the same rate to one process of a large
// concurrency is the baseline for the CPU per job.
//
// The database CPU is the whole server's (postmaster, every backend, the
// ones that exited meanwhile, the background writers), less the producer's
// and the harness's own backends: run it against a server nothing else uses
// (BENCH_DATABASE_URL), with max_connections for P processes' pools.
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { cpuSeconds, treeCpuSeconds } from '../procstat.js';
import { percentile } from '../stats.js';
import { REMAINING_SQL } from '../systems/queries.js';
import type { SystemKey } from '../systems/types.js';
import { dropProductionDatabase, freshProductionDatabase } from './database.js';
import { dumpRecord, startProducer, startWorkers, stopWorkers } from './spawn-workers.js';

const PRODUCER_APP = 'sluice_bench_producer';
const POLL_MS = 500;

export interface ManyShape {
  processes: number;
  concurrency: number;
  jobs: number;
  rate: number;
  /** From the first enqueue: a system still draining then is stopped, and what it left is reported. */
  capSeconds: number;
  /** sluice only: options beyond the concurrency (--sluice-prefetch). */
  sluiceOptions?: Record<string, number>;
  /** Run through the workers at the same rate before the clock starts; not counted (0: none). */
  warmupJobs: number;
}

export interface ManyResult extends ManyShape {
  system: SystemKey;
  options: Record<string, unknown>;
  /** From the first enqueue until no job was left, or the cap. */
  seconds: number;
  /** Jobs not finished at the cap (0: drained). */
  left: number;
  ranOnce: number;
  ranTwiceOrMore: number;
  neverRan: number;
  perProcess: { min: number; median: number; max: number };
  dbCpuUsPerJob: number;
  statements: number;
  claims: number;
  emptyClaims: number;
  loadAverage: number;
}

/** Each system's options for a concurrency of C in one process (its defaults otherwise). */
export function workerOptionsFor(system: SystemKey, concurrency: number): Record<string, unknown> {
  if (system === 'pgboss') {
    // work() with no options fetches one job per 2 s poll; this is its
    // documented way to C jobs at once, woken by NOTIFY.
    const batchSize = Math.max(1, Math.floor(concurrency / 4));
    return { batchSize, localConcurrency: Math.ceil(concurrency / batchSize), burstWhenBatchFull: true, pollingIntervalSeconds: 0.5, useListenNotify: true };
  }
  return { concurrency };
}

/** The producer must enqueue where the workers listen (pg-boss: the queue created with notify). */
export function producerOptionsFor(system: SystemKey): Record<string, unknown> {
  return system === 'pgboss' ? { useListenNotify: true } : {};
}

function withApplicationName(url: string, name: string): string {
  const u = new URL(url);
  u.searchParams.set('application_name', name);
  return u.toString();
}

interface ProcessRecord {
  ran: number[];
  claims: { statements: number; claims: number; empty: number } | null;
}

/** Until the system's queue holds no unfinished job (the warm-up's end). */
async function drained(observer: pg.Client, system: SystemKey, capSeconds: number): Promise<void> {
  const deadline = performance.now() + capSeconds * 1000;
  while ((await observer.query<{ n: number }>(REMAINING_SQL[system])).rows[0]!.n > 0) {
    if (performance.now() > deadline) throw new Error(`${system} did not drain its warm-up within ${capSeconds} s`);
    await new Promise((r) => setTimeout(r, POLL_MS));
  }
}

async function backendPids(c: pg.Client, where: string, values: unknown[]): Promise<number[]> {
  const { rows } = await c.query<{ pid: number }>(`SELECT pid FROM pg_stat_activity WHERE ${where}`, values);
  return rows.map((r) => r.pid);
}

export async function many(system: SystemKey, shape: ManyShape): Promise<ManyResult> {
  const url = await freshProductionDatabase(system);
  const database = new URL(url).pathname.slice(1);
  const dir = await mkdtemp(join(tmpdir(), 'sluice-bench-many-'));
  const recordFile = (i: number) => join(dir, `record-${i}.json`);
  const options = { ...workerOptionsFor(system, shape.concurrency), ...(system === 'sluice' ? shape.sluiceOptions : {}) };
  const observer = new pg.Client({ connectionString: url });
  await observer.connect();
  const procs = await startWorkers(system, url, shape.processes, (i) => ({ ...options, recordFile: recordFile(i), countClaims: true }));
  const records = async () => {
    const out: ProcessRecord[] = [];
    for (const [i, p] of procs.entries()) {
      await dumpRecord(p);
      out.push(JSON.parse(await readFile(recordFile(i), 'utf8')) as ProcessRecord);
    }
    return out;
  };
  try {
    let before: ProcessRecord[] | null = null;
    if (shape.warmupJobs > 0) {
      const warmup = startProducer(system, withApplicationName(url, PRODUCER_APP), shape.rate, shape.warmupJobs / shape.rate, producerOptionsFor(system));
      await warmup.produced;
      await warmup.exited;
      await drained(observer, system, shape.capSeconds);
      before = await records();
    }
    const { rows } = await observer.query<{ pid: number }>('SELECT pg_backend_pid() AS pid');
    const postmaster = Number((await readFile(`/proc/${rows[0]!.pid}/stat`, 'utf8')).split(') ')[1]!.split(' ')[1]);
    const maxConnections = Number((await observer.query<{ s: string }>('SHOW max_connections')).rows[0]!.s);
    const cpu0 = treeCpuSeconds(postmaster);
    const observerCpu0 = cpuSeconds([rows[0]!.pid]).get(rows[0]!.pid) ?? 0;
    const t0 = performance.now();
    const producer = startProducer(system, withApplicationName(url, PRODUCER_APP), shape.rate, shape.jobs / shape.rate, producerOptionsFor(system), true);
    // Unref'd: a run done before the cap must not keep the process alive until it.
    await Promise.race([producer.produced, new Promise((r) => setTimeout(r, shape.capSeconds * 1000).unref())]);
    const remaining = REMAINING_SQL[system];
    let left: number;
    for (;;) {
      left = (await observer.query<{ n: number }>(remaining)).rows[0]!.n;
      if (left === 0 || performance.now() - t0 > shape.capSeconds * 1000) break;
      const dead = procs.find((p) => p.child.exitCode !== null);
      if (dead) throw new Error(`${system} worker exited with ${dead.child.exitCode}`);
      await new Promise((r) => setTimeout(r, POLL_MS));
    }
    const seconds = (performance.now() - t0) / 1000;
    const excluded = await backendPids(observer, 'datname = $1 AND (application_name = $2 OR pid = pg_backend_pid())', [database, PRODUCER_APP]);
    const excludedCpu = [...cpuSeconds(excluded).values()].reduce((a, b) => a + b, 0) - observerCpu0;
    const dbCpu = treeCpuSeconds(postmaster) - cpu0 - excludedCpu;
    const loadAverage = loadavg()[0]!;
    producer.release();
    // Stopped at the cap while still producing, it exits by the signal: that is no failure here.
    await producer.exited.catch(() => {});
    if (maxConnections < shape.processes * 2) process.stderr.write(`(max_connections ${maxConnections} is low for ${shape.processes} processes)\n`);

    const runs = new Uint16Array(shape.jobs);
    const perProcess: number[] = [];
    let statements = 0;
    let claims = 0;
    let emptyClaims = 0;
    for (const [i, r] of (await records()).entries()) {
      // What the warm-up ran and counted comes first in each record.
      const b = before?.[i];
      const ran = r.ran.slice(b?.ran.length ?? 0);
      perProcess.push(ran.length);
      for (const n of ran) runs[n]! += 1;
      statements += (r.claims?.statements ?? 0) - (b?.claims?.statements ?? 0);
      claims += (r.claims?.claims ?? 0) - (b?.claims?.claims ?? 0);
      emptyClaims += (r.claims?.empty ?? 0) - (b?.claims?.empty ?? 0);
    }
    perProcess.sort((a, b) => a - b);
    return {
      system,
      options,
      ...shape,
      seconds,
      left,
      ranOnce: runs.filter((n) => n === 1).length,
      ranTwiceOrMore: runs.filter((n) => n > 1).length,
      neverRan: runs.filter((n) => n === 0).length,
      perProcess: { min: perProcess[0]!, median: percentile(perProcess, 50), max: perProcess[perProcess.length - 1]! },
      dbCpuUsPerJob: (dbCpu * 1e6) / Math.max(1, runs.filter((n) => n > 0).length),
      statements,
      claims,
      emptyClaims,
      loadAverage,
    };
  } finally {
    await observer.end();
    await stopWorkers(procs);
    await dropProductionDatabase(system);
    await rm(dir, { recursive: true, force: true });
  }
}
