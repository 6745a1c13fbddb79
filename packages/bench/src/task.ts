// What the parent asks a child process to measure, and what comes back.
import type { Tuning } from './variants.js';

export type ScenarioKey =
  | 'drain'
  | 'enqueue-one'
  | 'enqueue-many'
  | 'ceiling'
  | 'latency'
  | 'backlog'
  | 'external'
  | 'cpu'
  | 'soak'
  | 'resume'
  | 'cron-cluster'
  | 'aging';

export interface Task {
  scenario: ScenarioKey;
  /** Variant key; the ceiling has none (it is sluice's SQL alone). */
  variant?: string;
  tuning: Tuning;
  reps: number;
  /** Jobs to run; resume: resumes measured per repetition. */
  jobs: number;
  /** Ceiling: jobs claimed per loop iteration. */
  batch?: number;
  /** Drain of a capped variant: seconds from the first job after which it stops. */
  capSeconds?: number;
  /** Latency: jobs enqueued per second, for how long, after how long a warm-up. Cron cluster: how long the schedulers run. */
  rate?: number;
  seconds?: number;
  warmupSeconds?: number;
  /** Backlog: jobs already in the table before the drain of `jobs`. */
  backlog?: number;
  /** External: pgbench clients. CPU: worker processes. */
  clients?: number;
  processes?: number;
}

export type Sample = Record<string, number | boolean>;

export type TaskResult =
  | { ok: true; samples: Sample[]; libraryVersion: string; node: string }
  | { ok: false; error: string };
