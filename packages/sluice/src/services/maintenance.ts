// Retention: keeps history partitions created ahead, drops the ones every
// queue's retention has passed, deletes rows of queues with a shorter
// retention, and purges old metrics. Dead jobs are kept until purged.
// Any number of processes may run it: a session advisory lock lets one at a
// time do the work, and the others skip that round.
import type pg from 'pg';
import type { Logger } from 'pino';
import {
  historyCreatePartitions,
  historyDropExpiredPartitions,
  historyPrune,
  metricsPrune,
} from '../sql/maintenance.js';
import { Service } from './service.js';

/** How often a worker runs maintenance. */
export const MAINTENANCE_INTERVAL_MS_DEFAULT = 3_600_000;
/** Days of history partitions kept created ahead of today. */
export const PARTITIONS_AHEAD_DAYS_DEFAULT = 7;
/** Per-minute metrics older than this are deleted (14 days). */
export const METRICS_RETENTION_MS_DEFAULT = 14 * 24 * 3_600_000;
/** Rows deleted per statement, so no delete holds locks for long. */
export const PRUNE_BATCH_SIZE_DEFAULT = 10_000;
/** Statements per table per round; the rest waits for the next round. */
const MAX_BATCHES_PER_RUN = 100;
// "sluimt" in ASCII: shared by every sluice process, apart from the migration lock.
const MAINTENANCE_LOCK_KEY = 0x736c75696d74;

export interface MaintenanceOptions {
  /** Days of history partitions to keep created ahead. Default 7. */
  partitionsAheadDays?: number;
  /** Metrics older than this many milliseconds are deleted. Default 14 days. */
  metricsRetentionMs?: number;
  /** Rows deleted per statement. Default 10,000. */
  batchSize?: number;
}

export interface MaintenanceReport {
  /** False when another process held the maintenance lock; nothing was done. */
  ran: boolean;
  partitionsCreated: number;
  partitionsDropped: string[];
  historyRowsDeleted: number;
  metricsRowsDeleted: number;
}

/** One round of maintenance on a connection of the pool. */
export async function runMaintenance(pool: pg.Pool, options: MaintenanceOptions = {}): Promise<MaintenanceReport> {
  const report: MaintenanceReport = { ran: false, partitionsCreated: 0, partitionsDropped: [], historyRowsDeleted: 0, metricsRowsDeleted: 0 };
  const batchSize = options.batchSize ?? PRUNE_BATCH_SIZE_DEFAULT;
  const client = await pool.connect();
  try {
    const { rows } = await client.query<{ locked: boolean }>('SELECT pg_try_advisory_lock($1) AS locked', [MAINTENANCE_LOCK_KEY]);
    if (!rows[0]?.locked) return report;
    try {
      report.ran = true;
      // Each step is its own short transaction: a drop must not keep the
      // history table locked while rows are being deleted.
      report.partitionsCreated = await historyCreatePartitions(client, options.partitionsAheadDays ?? PARTITIONS_AHEAD_DAYS_DEFAULT);
      report.partitionsDropped = await historyDropExpiredPartitions(client);
      report.historyRowsDeleted = await drain(() => historyPrune(client, batchSize), batchSize);
      const metricsBefore = new Date(Date.now() - (options.metricsRetentionMs ?? METRICS_RETENTION_MS_DEFAULT));
      report.metricsRowsDeleted = await drain(() => metricsPrune(client, metricsBefore, batchSize), batchSize);
    } finally {
      await client.query('SELECT pg_advisory_unlock($1)', [MAINTENANCE_LOCK_KEY]);
    }
    return report;
  } finally {
    client.release();
  }
}

async function drain(step: () => Promise<number>, batchSize: number): Promise<number> {
  let total = 0;
  for (let i = 0; i < MAX_BATCHES_PER_RUN; i++) {
    const n = await step();
    total += n;
    if (n < batchSize) break;
  }
  return total;
}

export class Maintenance extends Service {
  constructor(
    private readonly pool: pg.Pool,
    private readonly options: MaintenanceOptions & { intervalMs: number },
    logger: Logger,
  ) {
    super('maintenance', logger);
  }

  protected async tick(): Promise<number> {
    const report = await runMaintenance(this.pool, this.options);
    if (report.ran && (report.partitionsCreated || report.partitionsDropped.length || report.historyRowsDeleted || report.metricsRowsDeleted)) {
      this.logger.info({ ...report }, 'maintenance: retention applied');
    }
    return this.options.intervalMs;
  }

  protected override errorDelayMs(): number {
    // A drop that met a busy table (lock timeout) is retried soon, not in an hour.
    return Math.min(60_000, this.options.intervalMs);
  }
}
