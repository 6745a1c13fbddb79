// CPU-bound handlers: `sluice worker --processes 2` (the CLI, a supervisor
// and two worker processes) runs jobs that hash for ~5 ms each. CPU time of
// the worker processes and of the database's backends for this database,
// over the wall time from the first finished job to the last, as % of the
// machine's cores.
import { spawn } from 'node:child_process';
import { cpus } from 'node:os';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { freshDatabase, settle } from '../db.js';
import { cpuDelta, cpuSeconds, machineJiffies, processTree } from '../procstat.js';
import type { SystemAdapter } from '../systems/types.js';
import { sleep } from './common.js';
import { seedSql } from './sqlseed.js';

export interface CpuSample {
  jobs: number;
  processes: number;
  seconds: number;
  jobsPerSecond: number;
  /** CPU seconds ÷ wall seconds ÷ cores, in %. */
  workerCpuPct: number;
  dbCpuPct: number;
  totalCpuPct: number;
  /** Whole machine, everyone's processes included: how contended the cores were. */
  machineBusyPct: number;
}

const CLI = fileURLToPath(new URL('../../../sluice/bin/sluice.js', import.meta.url));
const HANDLERS = fileURLToPath(new URL('../cpu-handlers.ts', import.meta.url));

export async function cpu(sys: SystemAdapter, jobs: number, processes: number): Promise<CpuSample> {
  if (sys.key !== 'sluice') throw new Error('cpu scenario runs sluice only');
  const url = await freshDatabase(sys.key, (u) => sys.install(u));
  await seedSql(url, jobs, { name: 'bench.cpu' });
  await settle(url);
  const db = new URL(url).pathname.slice(1);
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  const remaining = async () => (await client.query<{ n: number }>('SELECT count(*)::int AS n FROM sluice.jobs')).rows[0]!.n;
  const backends = async () =>
    (
      await client.query<{ pid: number }>('SELECT pid FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()', [db])
    ).rows.map((r) => r.pid);
  const child = spawn(
    process.execPath,
    [CLI, 'worker', HANDLERS, '--processes', String(processes), '--concurrency', '4', '--database-url', url],
    { stdio: ['ignore', 'ignore', 'inherit'], env: { ...process.env, SLUICE_LOG_LEVEL: 'warn' } },
  );
  let exited = false;
  child.on('exit', () => (exited = true));
  try {
    const deadline = performance.now() + 300_000;
    // Window starts at the first finished job: process start-up (loading tsx, connecting) is not handler work.
    while ((await remaining()) >= jobs) {
      if (exited) throw new Error('sluice worker exited');
      if (performance.now() > deadline) throw new Error('no job finished');
      await sleep(20);
    }
    const w0 = cpuSeconds(processTree(child.pid!));
    const d0 = cpuSeconds(await backends());
    const m0 = machineJiffies();
    const t0 = performance.now();
    const left0 = await remaining();
    let left = jobs;
    let dPids = new Set(d0.keys());
    while ((left = await remaining()) > 0) {
      if (exited) throw new Error('sluice worker exited');
      if (performance.now() > deadline) throw new Error(`${left} jobs left after 300 s`);
      for (const p of await backends()) dPids.add(p);
      await sleep(50);
    }
    const t1 = performance.now();
    const w1 = cpuSeconds(processTree(child.pid!));
    for (const p of await backends()) dPids.add(p);
    const d1 = cpuSeconds(dPids);
    const m1 = machineJiffies();
    const wall = (t1 - t0) / 1000;
    const cores = cpus().length;
    const pct = (s: number) => (s / wall / cores) * 100;
    const workerCpu = cpuDelta(w0, w1);
    const dbCpu = cpuDelta(d0, d1);
    return {
      jobs,
      processes,
      seconds: wall,
      jobsPerSecond: left0 / wall,
      workerCpuPct: pct(workerCpu),
      dbCpuPct: pct(dbCpu),
      totalCpuPct: pct(workerCpu + dbCpu),
      machineBusyPct: ((m1.busy - m0.busy) / (m1.total - m0.total)) * 100,
    };
  } finally {
    if (!exited) {
      child.kill('SIGTERM');
      const t = performance.now();
      while (!exited && performance.now() - t < 15_000) await sleep(50);
      if (!exited) child.kill('SIGKILL');
    }
    await client.end();
  }
}
