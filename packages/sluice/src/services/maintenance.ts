// Retention: keeps history partitions created ahead, drops the ones every
// queue's retention has passed, deletes rows of queues with a shorter
// retention, and purges old metrics. Dead jobs are kept until purged.
// Any number of processes may run it: an advisory lock lets one at a time do
// each step, and the others skip it.
import type pg from 'pg';
import type { Logger } from 'pino';
import { z } from 'zod';
import { RETENTION_MS_MAX, parseOptions } from '../config.js';
import {
  historyCreatePartitions,
  historyDropExpiredPartitions,
  historyPrune,
  metricsPrune,
} from '../sql/maintenance.js';
import type { Queryable } from '../executor.js';
import { poolTransactions, type OwnTransactions } from '../transaction.js';
import { Service } from './service.js';

/** How often a worker runs maintenance. */
export const MAINTENANCE_INTERVAL_MS_DEFAULT = 3_600_000;
/** Days of history partitions kept created ahead of today. */
export const PARTITIONS_AHEAD_DAYS_DEFAULT = 7;
/** Per-minute metrics older than this are deleted (14 days). */
export const METRICS_RETENTION_MS_DEFAULT = 14 * 24 * 3_600_000;
/** Rows deleted per statement, so no delete holds locks for long. */
export const PRUNE_BATCH_SIZE_DEFAULT = 10_000;
/**
 * Statements per table per round, so one round never holds the maintenance
 * lock and the database for long. A round that stops here with rows left
 * reports a backlog, and the service runs the next one after
 * MAINTENANCE_BACKLOG_DELAY_MS instead of its interval.
 */
const MAX_BATCHES_PER_RUN = 100;
/**
 * Pause between rounds while a backlog is left (1 s): other work gets the
 * database between two capped rounds, and pruning goes on at the pace of its
 * deletes instead of one capped round an interval (an hour).
 */
export const MAINTENANCE_BACKLOG_DELAY_MS = 1_000;
// "sluimt" in ASCII: shared by every sluice process, apart from the migration lock.
const MAINTENANCE_LOCK_KEY = 0x736c75696d74;

export interface MaintenanceOptions {
  /** Days of history partitions to keep created ahead, 0 to 366. Default 7. */
  partitionsAheadDays?: number;
  /** Metrics older than this many milliseconds are deleted, at most 100 years. Default 14 days. */
  metricsRetentionMs?: number;
  /** Rows deleted per statement, 1 to 1,000,000. Default 10,000. */
  batchSize?: number;
}

// Checked before the first step: a value a later step cannot use (a retention
// reaching before year 1) must not fail the round after partitions were made.
const maintenanceOptionsSchema = z.strictObject({
  // sluice.create_history_partitions takes 0..366.
  partitionsAheadDays: z.number().int().min(0).max(366).optional(),
  metricsRetentionMs: z.number().int().min(1).max(RETENTION_MS_MAX).optional(),
  batchSize: z.number().int().min(1).max(1_000_000).optional(),
});

export interface MaintenanceReport {
  /** False when another process held the maintenance lock; nothing was done. */
  ran: boolean;
  partitionsCreated: number;
  partitionsDropped: string[];
  historyRowsDeleted: number;
  metricsRowsDeleted: number;
  /**
   * True when the history or metrics pruning stopped at its cap per round
   * with rows left: run another round (the Maintenance service does so
   * after MAINTENANCE_BACKLOG_DELAY_MS).
   */
  backlog: boolean;
}

/** One round of maintenance, each step its own short transaction. Bad options: ValidationError, nothing done. */
export async function runMaintenance(pool: pg.Pool, maintenanceOptions: MaintenanceOptions = {}): Promise<MaintenanceReport> {
  return maintenanceRound(poolTransactions(pool), maintenanceOptions);
}

/** runMaintenance in the transactions given (a worker's: through its connection guard). */
async function maintenanceRound(transaction: OwnTransactions, maintenanceOptions: MaintenanceOptions): Promise<MaintenanceReport> {
  const options = parseOptions(maintenanceOptionsSchema, maintenanceOptions, 'maintenance');
  const report: MaintenanceReport = { ran: false, partitionsCreated: 0, partitionsDropped: [], historyRowsDeleted: 0, metricsRowsDeleted: 0, backlog: false };
  const batchSize = options.batchSize ?? PRUNE_BATCH_SIZE_DEFAULT;
  const metricsBefore = new Date(Date.now() - (options.metricsRetentionMs ?? METRICS_RETENTION_MS_DEFAULT));
  // Each step runs whatever the others did: a partition creation or drop that
  // cannot take the history table's lock (a long report, pg_dump) must not
  // hold back the row pruning and the metrics. The first failure is thrown
  // at the end.
  let failure: unknown;
  const step = async <T>(run: () => Promise<T>, fallback: T): Promise<T> => {
    try {
      return await run();
    } catch (err) {
      failure ??= err;
      return fallback;
    }
  };
  // A creation that failed (a lock timeout on the history table) does not hold back the rest either.
  const created = await step(() => locked(transaction, (c) => historyCreatePartitions(c, options.partitionsAheadDays ?? PARTITIONS_AHEAD_DAYS_DEFAULT)), 0);
  if (created === undefined) return report;
  report.ran = true;
  report.partitionsCreated = created;
  report.partitionsDropped = (await step(() => locked(transaction, (c) => historyDropExpiredPartitions(c)), undefined)) ?? [];
  const nothing: Drained = { total: 0, more: false };
  const history = await step(() => drain(() => locked(transaction, (c) => historyPrune(c, batchSize)), batchSize), nothing);
  const metrics = await step(() => drain(() => locked(transaction, (c) => metricsPrune(c, metricsBefore, batchSize)), batchSize), nothing);
  report.historyRowsDeleted = history.total;
  report.metricsRowsDeleted = metrics.total;
  report.backlog = history.more || metrics.more;
  if (failure !== undefined) throw failure;
  return report;
}

/**
 * Runs one step in a transaction holding the maintenance lock, or returns
 * undefined when another process holds it. The lock is transaction-scoped so
 * it also works through PgBouncer in transaction mode, and a drop never
 * holds the history table while rows are deleted.
 */
async function locked<T>(transaction: OwnTransactions, step: (client: Queryable) => Promise<T>): Promise<T | undefined> {
  return transaction(async (client) => {
    const { rows } = await client.query<{ locked: boolean }>({
      text: 'SELECT pg_try_advisory_xact_lock($1) AS locked',
      values: [MAINTENANCE_LOCK_KEY],
    });
    // Another process holds it: nothing to do, and an empty transaction to commit.
    if (!rows[0]?.locked) return undefined;
    return step(client);
  });
}

interface Drained {
  total: number;
  /** Stopped at MAX_BATCHES_PER_RUN after a full batch: rows are likely left. */
  more: boolean;
}

async function drain(step: () => Promise<number | undefined>, batchSize: number): Promise<Drained> {
  let total = 0;
  for (let i = 0; i < MAX_BATCHES_PER_RUN; i++) {
    const n = await step();
    // Another process took over the lock: it carries on.
    if (n === undefined) return { total, more: false };
    total += n;
    if (n < batchSize) return { total, more: false };
  }
  return { total, more: true };
}

export class Maintenance extends Service {
  private readonly transaction: OwnTransactions;

  constructor(
    /** A pool, or the transactions to run in (a worker's, through its connection guard). */
    db: pg.Pool | OwnTransactions,
    private readonly options: MaintenanceOptions & { intervalMs: number },
    logger: Logger,
  ) {
    super('maintenance', logger);
    this.transaction = typeof db === 'function' ? db : poolTransactions(db);
  }

  protected async tick(): Promise<number> {
    const { intervalMs: _intervalMs, ...options } = this.options;
    const report = await maintenanceRound(this.transaction, options);
    if (report.ran && (report.partitionsCreated || report.partitionsDropped.length || report.historyRowsDeleted || report.metricsRowsDeleted)) {
      this.logger.info({ ...report }, 'maintenance: retention applied');
    }
    // A capped round with rows left: the next one soon, or a fast queue's
    // history outgrows one capped round an interval and never catches up.
    return report.backlog ? Math.min(MAINTENANCE_BACKLOG_DELAY_MS, this.options.intervalMs) : this.options.intervalMs;
  }

  protected override errorDelayMs(): number {
    // A drop that met a busy table (lock timeout) is retried soon, not in an hour.
    return Math.min(60_000, this.options.intervalMs);
  }
}
