// What the harness asks each system's tables, kept apart from the adapters so
// a process that must not load a peer library (it may need a newer Node) can
// ask too.
import type { SystemKey } from './types.js';

/** Counts jobs not finished yet (waiting or running); zero means drained. */
export const REMAINING_SQL: Record<SystemKey, string> = {
  sluice: 'SELECT count(*)::int AS n FROM sluice.jobs',
  graphile: 'SELECT count(*)::int AS n FROM graphile_worker._private_jobs',
  pgboss: `SELECT count(*)::int AS n FROM pgboss.job WHERE state IN ('created', 'retry', 'active')`,
  bare: 'SELECT count(*)::int AS n FROM bare.jobs',
};

/** The schema holding each system's tables. */
export const SCHEMA: Record<SystemKey, string> = { sluice: 'sluice', graphile: 'graphile_worker', pgboss: 'pgboss', bare: 'bare' };
