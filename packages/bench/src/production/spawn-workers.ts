// Starts worker processes of one system for the production scenarios and
// stops them again; peers run on Node 22 like in the main bench.
import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { nodeFor } from '../spawn.js';
import type { SystemKey } from '../systems/types.js';

const SCRIPT = fileURLToPath(new URL('./process.ts', import.meta.url));
const TSX_LOADER = import.meta.resolve('tsx');
const READY_TIMEOUT_MS = 120_000;

export interface WorkerProcess {
  child: ChildProcess;
  lines: string[];
}

function start(system: SystemKey, url: string, mode: string, options?: Record<string, unknown>): WorkerProcess {
  const args = ['--import', TSX_LOADER, SCRIPT, system, url, mode, ...(options ? [JSON.stringify(options)] : [])];
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

export async function startWorkers(system: SystemKey, url: string, n: number, options?: Record<string, unknown>): Promise<WorkerProcess[]> {
  const procs = Array.from({ length: n }, () => start(system, url, 'run', options));
  const deadline = Date.now() + READY_TIMEOUT_MS;
  while (!procs.every((p) => p.lines.includes('READY'))) {
    const dead = procs.find((p) => p.child.exitCode !== null);
    if (dead) throw new Error(`${system} worker exited with ${dead.child.exitCode} before READY`);
    if (Date.now() > deadline) throw new Error(`${system} workers not READY within ${READY_TIMEOUT_MS} ms`);
    await new Promise((r) => setTimeout(r, 100));
  }
  return procs;
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
