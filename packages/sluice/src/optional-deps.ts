// Libraries only optional features use, loaded at first use rather than when
// `sluice` is imported: a worker process that never serves /metrics or
// evaluates a cron expression never loads them. Both are CommonJS-only
// packages, so require() gives the very module an `import` would (no second
// copy), and the features that use them stay synchronous.
import { createRequire } from 'node:module';
import type * as CronParser from 'cron-parser';
import type * as PromClient from 'prom-client';

const require = createRequire(import.meta.url);
let prom: typeof PromClient | undefined;
let cron: typeof CronParser | undefined;

/** prom-client (metrics: DatabaseMetrics, observeWorker, a worker's metricsPort). */
export function promClient(): typeof PromClient {
  return (prom ??= require('prom-client') as typeof PromClient);
}

/** cron-parser (schedules and cron expressions). */
export function cronParser(): typeof CronParser {
  return (cron ??= require('cron-parser') as typeof CronParser);
}
