// Starts worker processes of one system for the production scenarios and
// stops them again; peers run on Node 22 like in the main bench.
import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { nodeFor } from '../spawn.js';
import type { SystemKey } from '../systems/types.js';

const SCRIPT = fileURLToPath(new URL('./process.ts', import.meta.url));
const TSX_LOADER = import.meta.resolve('tsx');
/** Waiting for READY: a base plus a share per process, since many start at once on a few cores. */
const READY_TIMEOUT_MS = 120_000;
const READY_TIMEOUT_PER_PROCESS_MS = 3_000;

export interface WorkerProcess {
  child: ChildProcess;
  lines: string[];
}

function start(system: SystemKey, url: string, mode: string, extra: string[] = []): WorkerProcess {
  const args = ['--import', TSX_LOADER, SCRIPT, system, url, mode, ...extra];
  const child = spawn(nodeFor(system), args, {
    env: { ...process.env, SLUICE_LOG_LEVEL: process.env.SLUICE_LOG_LEVEL ?? 'warn' },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const lines: string[] = [];
  createInterface({ input: child.stdout! }).on('line', (l) => lines.push(l));
  return { child, lines };
}

function exited(child: ChildProcess): Promise<number | null> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve(child.exitCode);
  return new Promise((resolve) => child.once('exit', (code) => resolve(code)));
}

/** Creates the system's schema from a process on the right Node. */
export async function installIn(system: SystemKey, url: string): Promise<void> {
  const p = start(system, url, 'install');
  const code = await exited(p.child);
  if (code !== 0) throw new Error(`${system} install exited with ${code}`);
}

/** `options` may differ per process (i from 0): a record file each, say. */
/** `url` too may differ per process: an application_name each, say. */
export async function startWorkers(
  system: SystemKey,
  url: string | ((i: number) => string),
  n: number,
  options?: Record<string, unknown> | ((i: number) => Record<string, unknown>),
): Promise<WorkerProcess[]> {
  const optionsOf = (i: number) => (typeof options === 'function' ? options(i) : options);
  const urlOf = (i: number) => (typeof url === 'function' ? url(i) : url);
  const procs = Array.from({ length: n }, (_, i) => {
    const o = optionsOf(i);
    return start(system, urlOf(i), 'run', o ? [JSON.stringify(o)] : []);
  });
  const timeoutMs = READY_TIMEOUT_MS + n * READY_TIMEOUT_PER_PROCESS_MS;
  const deadline = Date.now() + timeoutMs;
  while (!procs.every((p) => p.lines.includes('READY'))) {
    const dead = procs.find((p) => p.child.exitCode !== null);
    if (dead) throw new Error(`${system} worker exited with ${dead.child.exitCode} before READY`);
    if (Date.now() > deadline) throw new Error(`${system} workers not READY within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 100));
  }
  return procs;
}

export interface Produced {
  offered: number;
  tookS: number;
  callP50Ms: number;
  callP99Ms: number;
  /** Calls that failed and were sent again (the producer's retry option). */
  failedCalls: number;
  /** The job numbers of those calls: a call that failed after its commit enqueued its jobs twice. */
  retriedJobs: Set<number>;
}

/**
 * Enqueues at `rate` a second for `seconds` (rate × seconds jobs), from a
 * process of the system's Node, one bulk call per tick with the jobs due by
 * then; resolves with the count and the seconds until the last call returned
 * (longer than `seconds` when the producer fell behind), and the median and
 * 99th percentile of one call's time (its commit).
 */
export async function produce(system: SystemKey, url: string, rate: number, seconds: number): Promise<Produced> {
  const p = startProducer(system, url, rate, seconds);
  const done = await p.produced;
  await p.exited;
  return done;
}

export interface RunningProducer {
  produced: Promise<Produced>;
  exited: Promise<void>;
  /** With `hold`: closes the producer's connections once it has produced. */
  release(): void;
}

/** A producer as above; with `hold` it keeps its connections open after producing until release(). */
export function startProducer(system: SystemKey, url: string, rate: number, seconds: number, options: Record<string, unknown> = {}, hold = false): RunningProducer {
  const p = start(system, url, 'produce', [String(rate), String(seconds), JSON.stringify({ ...options, hold })]);
  const ended = exited(p.child).then((code) => {
    if (code !== 0) throw new Error(`${system} producer exited with ${code}`);
  });
  // Read by produce() or by the caller; never an unhandled rejection meanwhile.
  ended.catch(() => {});
  const produced = (async () => {
    for (;;) {
      const line = p.lines.find((l) => l.startsWith('PRODUCED '));
      if (line) {
        const [, offered, tookS, callP50Ms, callP99Ms, failedCalls, ranges] = line.split(' ');
        return {
          offered: Number(offered),
          tookS: Number(tookS),
          callP50Ms: Number(callP50Ms),
          callP99Ms: Number(callP99Ms),
          failedCalls: Number(failedCalls ?? 0),
          retriedJobs: jobNumbers(ranges),
        };
      }
      if (p.child.exitCode !== null) throw new Error(`${system} producer exited with ${p.child.exitCode}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  })();
  return { produced, exited: ended, release: () => p.child.kill('SIGTERM') };
}

function jobNumbers(ranges: string | undefined): Set<number> {
  const out = new Set<number>();
  if (!ranges || ranges === '-') return out;
  for (const range of ranges.split(',')) {
    const [from, to] = range.split('-').map(Number);
    for (let i = from!; i <= to!; i++) out.add(i);
  }
  return out;
}

/** Asks a worker process to write what it recorded, and waits until it has. */
export async function dumpRecord(p: WorkerProcess): Promise<void> {
  const before = p.lines.filter((l) => l === 'DUMPED').length;
  p.child.kill('SIGUSR2');
  const deadline = Date.now() + 60_000;
  while (p.lines.filter((l) => l === 'DUMPED').length === before) {
    if (Date.now() > deadline) throw new Error('worker did not write its record');
    await new Promise((r) => setTimeout(r, 50));
  }
}

export async function stopWorkers(procs: WorkerProcess[]): Promise<void> {
  await Promise.all(
    procs.map(async (p) => {
      const kill = setTimeout(() => p.child.kill('SIGKILL'), 15_000);
      p.child.kill('SIGTERM');
      await exited(p.child);
      clearTimeout(kill);
    }),
  );
}
