// Command line: `pnpm bench [--quick] [--only drain,enqueue,ceiling,latency,backlog,external,cpu,soak,resume,cron,aging]
// [--systems sluice,graphile,pgboss] [--reps n]` plus sluice tuning flags.
import { parseArgs } from 'node:util';
import type { SystemKey } from './systems/types.js';
import { TUNING_DEFAULT, type Tuning } from './variants.js';

export type Group = 'drain' | 'enqueue' | 'ceiling' | 'latency' | 'backlog' | 'external' | 'cpu' | 'soak' | 'resume' | 'cron' | 'aging';
const GROUPS: Group[] = ['drain', 'enqueue', 'ceiling', 'latency', 'backlog', 'external', 'cpu', 'soak', 'resume', 'cron', 'aging'];
/** Scenarios 4-10 take minutes each: --quick leaves them out unless --only names them. */
const LONG_GROUPS: Group[] = ['latency', 'backlog', 'external', 'cpu', 'soak', 'resume', 'cron', 'aging'];
const SYSTEMS: SystemKey[] = ['sluice', 'graphile', 'pgboss'];

export interface Options {
  quick: boolean;
  /** Only some scenarios or systems were asked for. */
  partial: boolean;
  reps: number;
  groups: Group[];
  systems: SystemKey[];
  tuning: Tuning;
  drainJobs: number;
  enqueueOneJobs: number;
  enqueueManyJobs: number;
  /** Time cap of drains whose configuration polls too slowly to finish. */
  drainCapSeconds: number;
  latencyRate: number;
  latencySeconds: number;
  latencyWarmupSeconds: number;
  backlogJobs: number;
  backlogDrainJobs: number;
  externalSeconds: number;
  externalClients: number;
  cpuJobs: number;
  cpuProcesses: number;
  soakJobs: number;
  resumeSamples: number;
  cronSeconds: number;
}

function list<T extends string>(value: string | undefined, allowed: T[], flag: string): T[] {
  if (value === undefined) return allowed;
  const items = value.split(',').map((s) => s.trim()) as T[];
  for (const item of items) {
    if (!allowed.includes(item)) throw new Error(`--${flag}: unknown "${item}"; expected ${allowed.join(', ')}`);
  }
  return items;
}

function positiveInt(value: string | undefined, fallback: number, flag: string): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) throw new Error(`--${flag} must be a positive integer`);
  return n;
}

export function parseOptions(argv: string[]): Options {
  const { values } = parseArgs({
    args: argv,
    options: {
      quick: { type: 'boolean', default: false },
      reps: { type: 'string' },
      only: { type: 'string' },
      systems: { type: 'string' },
      jobs: { type: 'string' },
      'sluice-concurrency': { type: 'string' },
      'sluice-prefetch': { type: 'string' },
      'sluice-pool-size': { type: 'string' },
    },
    strict: true,
  });
  const quick = values.quick ?? false;
  const reps = positiveInt(values.reps, 3, 'reps');
  if (reps < 3) console.error('note: fewer than 3 repetitions; medians will be thin');
  const drainJobs = positiveInt(values.jobs, quick ? 10_000 : 50_000, 'jobs');
  return {
    quick,
    partial: values.only !== undefined || values.systems !== undefined,
    reps,
    // Latency needs tens of seconds per system; --quick leaves it out unless asked for by --only.
    groups: values.only === undefined && quick ? GROUPS.filter((g) => !LONG_GROUPS.includes(g)) : list(values.only, GROUPS, 'only'),
    systems: list(values.systems, SYSTEMS, 'systems'),
    tuning: {
      sluiceConcurrency: positiveInt(values['sluice-concurrency'], TUNING_DEFAULT.sluiceConcurrency, 'sluice-concurrency'),
      sluicePrefetch: positiveInt(values['sluice-prefetch'], TUNING_DEFAULT.sluicePrefetch, 'sluice-prefetch'),
      sluicePoolSize: positiveInt(values['sluice-pool-size'], TUNING_DEFAULT.sluicePoolSize, 'sluice-pool-size'),
    },
    drainJobs,
    enqueueOneJobs: quick ? 1_000 : 10_000,
    enqueueManyJobs: drainJobs,
    drainCapSeconds: quick ? 4 : 10,
    latencyRate: 500,
    latencySeconds: quick ? 3 : 30,
    latencyWarmupSeconds: quick ? 1 : 2,
    backlogJobs: quick ? 200_000 : 1_000_000,
    backlogDrainJobs: quick ? 10_000 : 50_000,
    externalSeconds: quick ? 10 : 30,
    externalClients: 4,
    cpuJobs: quick ? 2_000 : 10_000,
    cpuProcesses: 2,
    soakJobs: quick ? 100_000 : 1_000_000,
    resumeSamples: quick ? 10 : 50,
    cronSeconds: quick ? 20 : 60,
  };
}
