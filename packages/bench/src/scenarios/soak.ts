// Soak: N jobs through one sluice worker in a process of its own, as a user
// runs it: plain node on sluice's build (dist/, built first when missing or
// older than src/), with nothing of the bench's in it (src/soak-worker.mjs).
// The bench seeds and counts from this process. The worker's RSS is read from
// /proc/<pid>/status every second (start, after the first 10% of jobs, half,
// peak, end); the worker reports its JS heap once a second on stdout. Dead
// tuples left in sluice.jobs are read once the worker has stopped.
// The bare system runs the same way in src/soak-bare-worker.mjs (the bench's
// bare node-postgres client, history kept, on bare.jobs seeded alike), as the
// floor any Node worker reaches on this Node with these flags: the report
// sets sluice's figures beside it.
// BENCH_SOAK_NODE_FLAGS (space-separated) are passed to that node; the
// environment (MALLOC_ARENA_MAX, ...) is inherited.
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { freshDatabase, queryOnce, settle } from '../db.js';
import { SCHEMA } from '../systems/queries.js';
import type { SystemAdapter } from '../systems/types.js';
import type { Variant } from '../variants.js';
import { remainingCounter, sleep } from './common.js';
import { sluiceDist } from './sluice-build.js';
import { seedBareSql, seedSql } from './sqlseed.js';

export interface SoakSample {
  jobs: number;
  seconds: number;
  jobsPerSecond: number;
  rssStartMB: number;
  rssWarmMB: number;
  rssHalfMB: number;
  rssPeakMB: number;
  rssEndMB: number;
  /** VmHWM: the kernel's high-water mark of the worker's RSS, start-up included. */
  rssHwmMB: number;
  heapStartMB: number;
  heapEndMB: number;
  externalEndMB: number;
  deadTuples: number;
  liveTuples: number;
  autovacuums: number;
  tableMB: number;
}

const MB = 1024 * 1024;
const WORKER = fileURLToPath(new URL('../soak-worker.mjs', import.meta.url));
const BARE_WORKER = fileURLToPath(new URL('../soak-bare-worker.mjs', import.meta.url));

/** VmRSS and VmHWM of a process, in MB (0 when it is gone). */
function procMemory(pid: number): { rss: number; hwm: number } {
  try {
    const s = readFileSync(`/proc/${pid}/status`, 'utf8');
    const kb = (key: string) => Number(new RegExp(`^${key}:\\s+(\\d+) kB`, 'm').exec(s)?.[1] ?? 0);
    return { rss: kb('VmRSS') / 1024, hwm: kb('VmHWM') / 1024 };
  } catch {
    return { rss: 0, hwm: 0 };
  }
}

export function soakNodeFlags(): string[] {
  return (process.env.BENCH_SOAK_NODE_FLAGS ?? '').split(/\s+/).filter(Boolean);
}

export async function soak(sys: SystemAdapter, variant: Variant, jobs: number): Promise<SoakSample> {
  if (sys.key !== 'sluice' && sys.key !== 'bare') throw new Error('soak scenario runs sluice and the bare client only');
  const entry = sys.key === 'sluice' ? sluiceDist() : undefined;
  const url = await freshDatabase(sys.key, (u) => sys.install(u));
  await (sys.key === 'sluice' ? seedSql(url, jobs) : seedBareSql(url, jobs));
  await settle(url);
  const counter = await remainingCounter(url, sys.remainingSql);
  const env: NodeJS.ProcessEnv = { ...process.env, SLUICE_LOG_LEVEL: process.env.SLUICE_LOG_LEVEL ?? 'warn' };
  delete env.NODE_OPTIONS;
  const args = entry ? [WORKER, entry, url, JSON.stringify(variant.options)] : [BARE_WORKER, url];
  const child = spawn(process.execPath, [...soakNodeFlags(), ...args], {
    stdio: ['ignore', 'pipe', 'inherit'],
    env,
  });
  let exited = false;
  child.on('exit', () => (exited = true));
  // The worker's last report: jobs handled, heapUsed, heapTotal, external, arrayBuffers.
  let last: number[] | undefined;
  let buf = '';
  child.stdout.setEncoding('utf8').on('data', (d: string) => {
    buf += d;
    const lines = buf.split('\n');
    buf = lines.pop()!;
    const line = lines.at(-1);
    if (line) last = line.split(' ').map(Number);
  });
  const seen = () => last?.[0] ?? 0;
  const mem = () => procMemory(child.pid!).rss;
  try {
    while (!last) {
      if (exited) throw new Error('soak worker exited before it started');
      await sleep(10);
    }
    const t0 = performance.now();
    const rssStart = mem();
    const heapStart = last[1]! / MB;
    let peak = rssStart;
    let warm = 0;
    let half = 0;
    let nextTenth = 1;
    const deadline = t0 + 3_600_000;
    let nextSample = t0 + 1_000;
    // Done once the worker has handled every job and the database holds none:
    // an acknowledgement still in a client-side batch does not count.
    for (;;) {
      if (exited) throw new Error('soak worker exited');
      if (performance.now() > deadline) throw new Error('soak did not finish in an hour');
      if (seen() >= jobs && (await counter.count()) === 0) break;
      await sleep(Math.max(1, Math.min(50, nextSample - performance.now())));
      if (performance.now() < nextSample) continue;
      nextSample += 1_000;
      const r = mem();
      peak = Math.max(peak, r);
      if (!warm && seen() >= jobs / 10) warm = r;
      if (!half && seen() >= jobs / 2) half = r;
      if (seen() >= (jobs * nextTenth) / 10) {
        const [n, heap, heapTotal, ext, ab] = last.map((x) => x / MB);
        console.error(
          `[soak ${sys.key}] ${Math.round(n! * MB)} jobs: rss ${r.toFixed(1)} MB, heap used ${heap!.toFixed(1)} of ${heapTotal!.toFixed(1)}, external ${ext!.toFixed(1)}, arrayBuffers ${ab!.toFixed(1)}`,
        );
        nextTenth = Math.floor((seen() * 10) / jobs) + 1;
      }
    }
    const t1 = performance.now();
    const end = procMemory(child.pid!);
    // Let one more report arrive so the heap figure is from after the last job.
    const before = last;
    for (let i = 0; i < 30 && last === before; i++) await sleep(50);
    const [, heapEnd, , externalEnd] = last;
    child.kill('SIGTERM');
    const t = performance.now();
    while (!exited && performance.now() - t < 30_000) await sleep(50);
    if (!exited) throw new Error('soak worker did not stop within 30 s of SIGTERM');
    // Backends report their table statistics when they exit; give them a moment.
    await sleep(1_500);
    const [s] = await queryOnce<{ dead: number; live: number; av: number; mb: number }>(
      url,
      `SELECT n_dead_tup::int AS dead, n_live_tup::int AS live, autovacuum_count::int AS av,
              pg_total_relation_size(relid)::float8 / 1048576 AS mb
       FROM pg_stat_user_tables WHERE schemaname = $1 AND relname = 'jobs'`,
      [SCHEMA[sys.key]],
    );
    return {
      jobs,
      seconds: (t1 - t0) / 1000,
      jobsPerSecond: jobs / ((t1 - t0) / 1000),
      rssStartMB: rssStart,
      rssWarmMB: warm || end.rss,
      rssHalfMB: half || end.rss,
      rssPeakMB: Math.max(peak, end.rss),
      rssEndMB: end.rss,
      rssHwmMB: end.hwm,
      heapStartMB: heapStart,
      heapEndMB: heapEnd! / MB,
      externalEndMB: externalEnd! / MB,
      deadTuples: s!.dead,
      liveTuples: s!.live,
      autovacuums: s!.av,
      tableMB: s!.mb,
    };
  } finally {
    if (!exited) child.kill('SIGKILL');
    await counter.close();
  }
}
