// Starts one child per task on the Node its system needs, and collects the
// result. A child that dies is a failed task, never a hung bench.
import { fork } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { node22Path } from './node22.js';
import type { SystemKey } from './systems/types.js';
import type { Task, TaskResult } from './task.js';

const CHILD = fileURLToPath(new URL('./child.ts', import.meta.url));
const TSX_LOADER = import.meta.resolve('tsx');

/**
 * Every system runs on the same Node, 22 or newer (the peers need it), so a
 * ratio compares the libraries, not two V8s.
 */
export function nodeFor(_system: SystemKey): string {
  return node22Path();
}

export function runChild(system: SystemKey, task: Task, timeoutMs: number): Promise<TaskResult> {
  return new Promise((resolve) => {
    const child = fork(CHILD, [JSON.stringify(task)], {
      execPath: nodeFor(system),
      execArgv: ['--import', TSX_LOADER],
      env: { ...process.env, SLUICE_LOG_LEVEL: process.env.SLUICE_LOG_LEVEL ?? 'warn' },
      // Children write to our stderr: stdout carries only the report.
      stdio: ['ignore', 2, 2, 'ipc'],
    });
    let result: TaskResult | undefined;
    const timer = setTimeout(() => {
      result ??= { ok: false, error: `timed out after ${Math.round(timeoutMs / 1000)} s` };
      child.kill('SIGKILL');
    }, timeoutMs);
    child.on('message', (m) => (result ??= m as TaskResult));
    child.on('exit', (code, signal) => {
      clearTimeout(timer);
      resolve(result ?? { ok: false, error: `child exited with ${signal ?? code} before reporting` });
    });
  });
}
