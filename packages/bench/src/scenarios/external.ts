// External client: pgbench calls sluice.enqueue(...) in SQL from a few
// clients for a fixed time while one sluice worker drains the queue.
// Sustained rate at both ends: pgbench's transactions/s and the worker's jobs/s
// over the same window.
import { spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freshDatabase, queryOnce, settle } from '../db.js';
import type { SystemAdapter } from '../systems/types.js';
import type { Variant } from '../variants.js';
import { remainingCounter, seed, sleep, waitDrained } from './common.js';

export interface ExternalSample {
  seconds: number;
  clients: number;
  pgbenchTps: number;
  pgbenchTransactions: number;
  workerJobsPerSecond: number;
  /** Jobs still queued when pgbench stopped: producer outran the worker by this much. */
  queuedAtEnd: number;
}

// The bench job's schema wants a number `i`; the queue is the worker's only one.
const SCRIPT = `SELECT sluice.enqueue('bench.noop', '{"i": 0}'::jsonb, queue => 'bench');\n`;

function runPgbench(url: string, script: string, clients: number, seconds: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const args = ['-n', '-f', script, '-c', String(clients), '-j', String(Math.min(clients, 2)), '-T', String(seconds), url];
    const p = spawn(process.env.BENCH_PGBENCH ?? 'pgbench', args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    p.stdout.on('data', (d) => (out += d));
    p.stderr.on('data', (d) => (err += d));
    p.on('error', reject);
    p.on('exit', (code) => (code === 0 ? resolve(out) : reject(new Error(`pgbench exited ${code}: ${err.slice(-2000)}`))));
  });
}

export async function external(sys: SystemAdapter, variant: Variant, seconds: number, clients: number): Promise<ExternalSample> {
  const url = await freshDatabase(sys.key, (u) => sys.install(u));
  const options = { ...variant.options, queues: ['bench'] };
  const dir = await mkdtemp(join(tmpdir(), 'sluice-bench-'));
  const script = join(dir, 'enqueue.sql');
  await writeFile(script, SCRIPT);
  const counter = await remainingCounter(url, sys.remainingSql);
  try {
    // Warm-up: the queue row exists, the worker's statements are prepared.
    await queryOnce(url, `SELECT sluice.enqueue('bench.noop', '{"i": 0}'::jsonb, queue => 'bench') FROM generate_series(1, 1000)`);
    let seen = 0;
    const worker = await sys.startWorker(url, options, () => void seen++);
    try {
      const w = performance.now();
      if (!(await waitDrained(() => seen, 1_000, counter.count, () => w + 60_000))) throw new Error('warm-up did not drain');
      await settle(url);
      const s0 = seen;
      const t0 = performance.now();
      const out = await runPgbench(url, script, clients, seconds);
      const t1 = performance.now();
      const s1 = seen;
      const queuedAtEnd = await counter.count();
      const tps = /tps = ([\d.]+) \((?:without|excluding)/.exec(out);
      const txns = /number of transactions actually processed: (\d+)/.exec(out);
      if (!tps || !txns) throw new Error(`cannot read pgbench output:\n${out}`);
      // Let the worker finish so the next repetition starts clean.
      const d = performance.now();
      await waitDrained(() => seen, 0, counter.count, () => d + 120_000);
      return {
        seconds: (t1 - t0) / 1000,
        clients,
        pgbenchTps: Number(tps[1]),
        pgbenchTransactions: Number(txns[1]),
        workerJobsPerSecond: (s1 - s0) / ((t1 - t0) / 1000),
        queuedAtEnd,
      };
    } finally {
      await worker.stop();
      await sleep(10);
    }
  } finally {
    await counter.close();
    await rm(dir, { recursive: true, force: true });
  }
}
