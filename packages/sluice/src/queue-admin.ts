// Queue settings from TypeScript: pause, resume, limits, weights, alerts.
import { callOptions, txOptionsSchema } from './call-options.js';
import { parseOptions, checkName, queueSettingsSchema, type QueueSettings } from './config.js';
import type { Executor, Queryable } from './executor.js';
import { toQueryable } from './executor.js';
import { queueStatsAll, type QueueStats } from './sql/metrics.js';
import { queueConfigure, type QueueSettingsRow } from './sql/queues.js';

function toRow(s: QueueSettings): QueueSettingsRow {
  const row: QueueSettingsRow = {};
  if (s.paused !== undefined) row.paused = s.paused;
  if (s.concurrency !== undefined) row.concurrency = s.concurrency;
  if (s.groupConcurrency !== undefined) row.group_concurrency = s.groupConcurrency;
  if (s.rateLimit !== undefined) {
    row.rate_limit_count = s.rateLimit?.count ?? null;
    row.rate_limit_interval_ms = s.rateLimit?.intervalMs ?? null;
  }
  if (s.maxDepth !== undefined) row.max_depth = s.maxDepth;
  if (s.overflow !== undefined) row.overflow = s.overflow;
  if (s.weight !== undefined) row.weight = s.weight;
  if (s.agingAfterMs !== undefined) row.aging_after_ms = s.agingAfterMs;
  if (s.uniqueWindowMs !== undefined) row.unique_window_ms = s.uniqueWindowMs;
  if (s.keepHistory !== undefined) row.keep_history = s.keepHistory;
  if (s.retentionMs !== undefined) row.retention_ms = s.retentionMs;
  if (s.alertMaxDepth !== undefined) row.alert_max_depth = s.alertMaxDepth;
  if (s.alertMaxWaitMs !== undefined) row.alert_max_wait_ms = s.alertMaxWaitMs;
  if (s.alertMaxErrorRate !== undefined) row.alert_max_error_rate = s.alertMaxErrorRate;
  if (s.alertNoWorker !== undefined) row.alert_no_worker = s.alertNoWorker;
  return row;
}

export class Queues {
  constructor(
    private readonly db: Queryable,
    /** Where stats are read: a replica when one is configured. */
    private readonly readDb: Queryable = db,
  ) {}

  /** Changes only the settings given; null removes a limit. Creates the queue if needed. */
  async configure(name: string, settings: QueueSettings, options: { tx?: Executor } = {}): Promise<void> {
    checkName('queue', name);
    const parsed = parseOptions(queueSettingsSchema, settings, 'settings');
    const { tx } = callOptions(txOptionsSchema, options);
    await queueConfigure(tx ? toQueryable(tx) : this.db, name, toRow(parsed));
  }

  /** Running jobs finish; no new claims until resume(). */
  pause(name: string, options: { tx?: Executor } = {}): Promise<void> {
    return this.configure(name, { paused: true }, options);
  }

  /** Wakes workers at once (NOTIFY). */
  resume(name: string, options: { tx?: Executor } = {}): Promise<void> {
    return this.configure(name, { paused: false }, options);
  }

  /** Depth, throughput and latency of every queue; see sluice.queue_stats. */
  stats(): Promise<QueueStats[]> {
    return queueStatsAll(this.readDb);
  }
}
