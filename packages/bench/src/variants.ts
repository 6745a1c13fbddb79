// The configurations compared. Plain data, so the parent can describe a run
// without loading the peer libraries; the adapters read `options`.
import type { SystemKey } from './systems/types.js';

export interface Variant {
  key: string;
  system: SystemKey;
  label: string;
  /** Why this configuration, for the report. */
  note: string;
  options: Record<string, unknown>;
  /** Polls so slowly that a drain is stopped after a time cap and reports the rate over what it did. */
  drainCapped?: boolean;
  /** Jobs run before timing starts. */
  warmupJobs?: number;
  /** The sluice variant a peer's ratio is taken against: best with best, defaults with defaults. */
  pairedWith?: string;
}

export interface Tuning {
  sluiceConcurrency: number;
  sluicePrefetch: number;
  sluicePoolSize: number;
}

// Picked by a sweep of concurrency/prefetch on a quiet machine (50,000-job drains,
// three each: 100/100 25-27k jobs/s, 50/400 27-29k, 200/400 26-34k, 100/400 32-40k,
// 100/1000 37-40k); `pnpm bench --only drain --systems sluice --sluice-concurrency C
// --sluice-prefetch P` repeats it.
export const TUNING_DEFAULT: Tuning = { sluiceConcurrency: 100, sluicePrefetch: 1000, sluicePoolSize: 4 };

export function variants(t: Tuning): Variant[] {
  return [
    {
      key: 'sluice',
      system: 'sluice',
      label: 'sluice (tuned)',
      note: 'concurrency, prefetch and pool size tuned on this machine',
      options: { concurrency: t.sluiceConcurrency, prefetch: t.sluicePrefetch, poolSize: t.sluicePoolSize },
    },
    {
      // graphile-worker deletes finished jobs; sluice's like-for-like setting is a
      // queue that keeps no history (completion is a plain DELETE).
      key: 'sluice-nohistory',
      system: 'sluice',
      label: 'sluice (tuned, no history)',
      note: 'the tuned worker on a queue configured with keepHistory: false, as graphile-worker keeps none',
      options: {
        concurrency: t.sluiceConcurrency,
        prefetch: t.sluicePrefetch,
        poolSize: t.sluicePoolSize,
        queueSettings: { keepHistory: false },
      },
    },
    {
      key: 'sluice-default',
      system: 'sluice',
      label: 'sluice (defaults)',
      note: 'createWorker() defaults: concurrency 10, adaptive prefetch (10 to 100), pool 4',
      options: {},
    },
    {
      key: 'graphile',
      system: 'graphile',
      label: 'graphile-worker (batching)',
      // The configuration of graphile-worker's own performance page
      // (worker.graphile.org/docs/performance).
      note: 'the config of its performance docs: local queue, batched completions',
      pairedWith: 'sluice-nohistory',
      options: {
        concurrency: 24,
        maxPoolSize: 25,
        localQueue: { size: 500 },
        completeJobBatchDelay: 0,
        failJobBatchDelay: 0,
      },
    },
    {
      key: 'graphile-default',
      system: 'graphile',
      label: 'graphile-worker (defaults)',
      // Its default concurrency is 1, which no one runs in production; give
      // it sluice's default so the two defaults compare like for like.
      note: 'library defaults (no local queue, no batching) with concurrency 10',
      pairedWith: 'sluice-default',
      options: { concurrency: 10 },
    },
    {
      key: 'pgboss',
      system: 'pgboss',
      label: 'pg-boss (batch fetch)',
      note: 'work() with batchSize, several local workers, burst polling, LISTEN/NOTIFY',
      pairedWith: 'sluice',
      options: {
        batchSize: 100,
        localConcurrency: 4,
        burstWhenBatchFull: true,
        pollingIntervalSeconds: 0.5,
        useListenNotify: true,
        max: 10,
      },
    },
    {
      key: 'bare',
      system: 'bare',
      label: 'bare client, history',
      note: 'the least a Node client can do (src/systems/bare.ts): minimal table, 2 connections, SKIP LOCKED claims of 500, one DELETE → history INSERT per batch, no handler work',
      pairedWith: 'sluice',
      options: { history: true },
    },
    {
      key: 'bare-nohistory',
      system: 'bare',
      label: 'bare client, no history',
      note: 'the same bare client finishing each batch with one DELETE',
      pairedWith: 'sluice-nohistory',
      options: { history: false },
    },
    {
      key: 'pgboss-default',
      system: 'pgboss',
      label: 'pg-boss (defaults)',
      // work() with no options fetches one job and then sleeps out its 2 s
      // polling interval, so a full drain would take hours: time-capped.
      note: 'work() with no options: one job per 2 s poll; time-capped',
      pairedWith: 'sluice-default',
      options: {},
      drainCapped: true,
      warmupJobs: 1,
    },
  ];
}

export function variantByKey(t: Tuning, key: string): Variant {
  const v = variants(t).find((x) => x.key === key);
  if (!v) throw new Error(`unknown variant ${key}`);
  return v;
}

/** Enqueue depends only on the producer: one variant per system. pg-boss's
 * plain queue, since NOTIFY on insert is a cost only listening configs need. */
export const ENQUEUE_VARIANTS = ['sluice', 'graphile', 'pgboss-default'];

/** Latency compares each system's best configuration. */
export const LATENCY_VARIANTS = ['sluice', 'graphile', 'pgboss'];

/** The soak runs sluice, and the bare client as the floor of its memory on the same Node. */
export const SOAK_VARIANTS = ['sluice', 'bare'];
