// What a worker runs for operators besides jobs: retention (Maintenance) and
// alert evaluation (AlertWatcher), which only the maintenance leader runs
// (they are `duties`), and, when asked for, a /metrics server in every
// process. Kept apart from the worker so its wiring there is a few calls.
import type pg from 'pg';
import type { Logger } from 'pino';
import { z } from 'zod';
import { parseOptions } from '../config.js';
import { promClient } from '../optional-deps.js';
import { DatabaseMetrics } from '../prometheus/database-metrics.js';
import { startMetricsServer, type MetricsServer } from '../prometheus/server.js';
import { observeWorker, type ObservedWorker } from '../prometheus/worker-metrics.js';
import { ALERT_CHECK_INTERVAL_MS_DEFAULT, AlertWatcher, type AlertEvent } from './alert-watcher.js';
import { MAINTENANCE_INTERVAL_MS_DEFAULT, Maintenance } from './maintenance.js';
import type { Service } from './service.js';
import type { DutyDb } from '../silent-connections.js';

export interface WorkerOperationsOptions {
  /** Serve Prometheus metrics on this port at GET /metrics. Default: no server. */
  metricsPort?: number;
  /** Evaluate the queue alerts this often; 0 turns alerting off. Default 30000 ms. */
  alertCheckIntervalMs?: number;
}

const schema = z.strictObject({
  metricsPort: z.number().int().min(0).max(65_535).optional(),
  alertCheckIntervalMs: z.number().int().min(0).max(86_400_000).optional(),
});

export function parseWorkerOperationsOptions(value: WorkerOperationsOptions): WorkerOperationsOptions {
  return parseOptions(schema, value, 'createWorker');
}

export class WorkerOperations {
  /** Started and stopped by whoever leads: one process per database. */
  readonly duties: Service[];
  private readonly maintenance: Maintenance;
  private readonly alerts: AlertWatcher | null;
  private server: MetricsServer | null = null;
  private detach: (() => void) | null = null;

  constructor(
    /** The primary: its transactions (maintenance) and its statements (alerts). */
    { db, transaction }: DutyDb,
    /** Where /metrics reads: a replica when one is configured. */
    private readonly readPool: pg.Pool,
    private readonly worker: ObservedWorker,
    private readonly options: WorkerOperationsOptions & { workerDeadAfterMs: number; onAlert: (e: AlertEvent) => void },
    private readonly logger: Logger,
  ) {
    this.maintenance = new Maintenance(transaction, { intervalMs: MAINTENANCE_INTERVAL_MS_DEFAULT }, logger);
    const alertMs = options.alertCheckIntervalMs ?? ALERT_CHECK_INTERVAL_MS_DEFAULT;
    this.alerts =
      alertMs === 0
        ? null
        : new AlertWatcher(db, { intervalMs: alertMs, workerDeadAfterMs: options.workerDeadAfterMs, onAlert: options.onAlert }, logger);
    this.duties = this.alerts ? [this.maintenance, this.alerts] : [this.maintenance];
  }

  async start(): Promise<void> {
    if (this.options.metricsPort !== undefined) {
      const { Registry, collectDefaultMetrics } = promClient();
      const registry = new Registry();
      collectDefaultMetrics({ register: registry });
      const db = new DatabaseMetrics(this.readPool, { registry, workerDeadAfterMs: this.options.workerDeadAfterMs });
      this.detach = observeWorker(this.worker, registry);
      this.server = await startMetricsServer({
        port: this.options.metricsPort,
        render: () => db.metrics(),
        contentType: registry.contentType,
        logger: this.logger,
      });
      this.logger.info({ port: this.server.port }, 'serving Prometheus metrics at /metrics');
    }
  }

  async stop(): Promise<void> {
    await this.server?.close();
    this.detach?.();
    this.server = null;
  }
}
