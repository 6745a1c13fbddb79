// Runs N worker processes for CPU-bound handlers (one Node thread each) and
// restarts any that crash, backing off when one keeps dying young. A child
// that refuses its arguments or configuration would refuse them again on
// every restart: the supervisor then stops the others and gives up.
import { spawn, type ChildProcess } from 'node:child_process';
import type { Logger } from 'pino';
import { monotonicMs } from './clock.js';

/** A child that lived shorter than this counts as crashing young: its restart waits longer. */
const YOUNG_MS = 10_000;
const RESTART_MIN_MS = 200;
const RESTART_MAX_MS = 30_000;
/** The CLI's exit code for bad arguments (cli/usage.ts EXIT_USAGE): a restart would fail the same way. */
export const CHILD_EXIT_REFUSED = 2;

export interface SupervisorOptions {
  /** How many children to keep running. */
  processes: number;
  /** Script each child runs with the current Node (and its flags). */
  script: string;
  args: string[];
  /**
   * Extra environment for each child, on top of this process's. Secrets go
   * here, never in args: any local user can read a command line (ps).
   */
  env?: NodeJS.ProcessEnv;
  logger: Logger;
  /** How long stop() waits for children after SIGTERM before SIGKILL. Default 35000 ms. */
  stopTimeoutMs?: number;
}

interface Slot {
  child: ChildProcess | null;
  startedAt: number;
  restartDelayMs: number;
  timer: NodeJS.Timeout | null;
}

export class Supervisor {
  private readonly slots: Slot[] = [];
  private stopping = false;
  private giveUp!: (code: number) => void;
  /**
   * Resolves with the child's exit code once a child exited with
   * CHILD_EXIT_REFUSED and the other children are stopped. Never resolves
   * while the children run or crash otherwise.
   */
  readonly gaveUp: Promise<number> = new Promise((resolve) => (this.giveUp = resolve));

  constructor(private readonly options: SupervisorOptions) {}

  start(): void {
    for (let i = 0; i < this.options.processes; i++) {
      const slot: Slot = { child: null, startedAt: 0, restartDelayMs: RESTART_MIN_MS, timer: null };
      this.slots.push(slot);
      this.launch(slot, i);
    }
  }

  get pids(): number[] {
    return this.slots.map((s) => s.child?.pid).filter((p): p is number => p !== undefined);
  }

  private launch(slot: Slot, index: number): void {
    const child = spawn(process.execPath, [...process.execArgv, this.options.script, ...this.options.args], {
      stdio: ['ignore', 'inherit', 'inherit'],
      env: this.options.env ? { ...process.env, ...this.options.env } : process.env,
    });
    slot.child = child;
    slot.startedAt = monotonicMs();
    this.options.logger.info({ child: index, pid: child.pid }, 'worker process started');
    child.once('exit', (code, signal) => {
      slot.child = null;
      if (this.stopping) return;
      if (code === CHILD_EXIT_REFUSED) {
        this.options.logger.error({ child: index, code }, 'worker process refused its arguments or configuration; stopping the others, not restarting');
        void this.stop().then(() => this.giveUp(code));
        return;
      }
      const young = monotonicMs() - slot.startedAt < YOUNG_MS;
      slot.restartDelayMs = young ? Math.min(slot.restartDelayMs * 2, RESTART_MAX_MS) : RESTART_MIN_MS;
      this.options.logger.warn({ child: index, code, signal, restartInMs: slot.restartDelayMs }, 'worker process exited; restarting');
      slot.timer = setTimeout(() => {
        slot.timer = null;
        if (!this.stopping) this.launch(slot, index);
      }, slot.restartDelayMs);
    });
  }

  /** SIGTERM to every child (each stops gracefully), SIGKILL after stopTimeoutMs. */
  async stop(): Promise<void> {
    this.stopping = true;
    const exits = this.slots.map((slot) => {
      if (slot.timer) clearTimeout(slot.timer);
      const child = slot.child;
      if (!child) return Promise.resolve();
      return new Promise<void>((resolve) => {
        const kill = setTimeout(() => child.kill('SIGKILL'), this.options.stopTimeoutMs ?? 35_000);
        child.once('exit', () => {
          clearTimeout(kill);
          resolve();
        });
        child.kill('SIGTERM');
      });
    });
    await Promise.all(exits);
  }

  /** Second signal: no more waiting. */
  kill(): void {
    this.stopping = true;
    for (const slot of this.slots) slot.child?.kill('SIGKILL');
  }
}
