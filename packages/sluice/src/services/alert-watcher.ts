// Evaluates the queue alerts in SQL on an interval and reports changes: an
// alert that appears is logged as a warning and reported as 'firing', one
// that clears is logged and reported as 'resolved'. Which alerts were
// reported firing is kept in sluice.alert_states, not in this process, and
// the call that evaluates them also changes that table (sluice.alert_sync):
// a new leader reports resolved an alert its predecessor reported firing,
// and does not report firing again one that still is. Overlapping watchers
// (a handover, or every worker when none has a direct connection) report
// each change once between them.
import type { Logger } from 'pino';
import type { Queryable } from '../executor.js';
import { alertStateSync, type ActiveAlert } from '../sql/alerts.js';
import { Service } from './service.js';

/** How often a worker evaluates the alerts. */
export const ALERT_CHECK_INTERVAL_MS_DEFAULT = 30_000;

export interface AlertEvent extends ActiveAlert {
  state: 'firing' | 'resolved';
}

export interface AlertWatcherOptions {
  /** Milliseconds between evaluations. */
  intervalMs: number;
  /** A worker silent this long counts as dead for the no_worker alert. */
  workerDeadAfterMs: number;
  onAlert: (event: AlertEvent) => void;
}

/** `db` is the primary: each evaluation writes sluice.alert_states, which every watcher on the database shares. */
export class AlertWatcher extends Service {
  private active: ActiveAlert[] = [];

  constructor(
    private readonly db: Queryable,
    private readonly options: AlertWatcherOptions,
    logger: Logger,
  ) {
    super('alert-watcher', logger);
  }

  /** The alerts seen active at the last evaluation. */
  get current(): ActiveAlert[] {
    return [...this.active];
  }

  protected async tick(): Promise<number> {
    const { active, firing, resolved } = await alertStateSync(this.db, this.options.workerDeadAfterMs);
    for (const alert of firing) {
      this.logger.warn({ queue: alert.queue, alert: alert.alert, value: alert.value, threshold: alert.threshold }, alert.message);
      this.report({ ...alert, state: 'firing' });
    }
    for (const alert of resolved) {
      this.logger.info({ queue: alert.queue, alert: alert.alert }, `alert resolved: ${alert.message}`);
      this.report({ ...alert, state: 'resolved' });
    }
    this.active = active;
    return this.options.intervalMs;
  }

  private report(event: AlertEvent): void {
    try {
      this.options.onAlert(event);
    } catch (err) {
      // A throwing listener must not stop the evaluations.
      this.logger.warn({ err }, 'alert listener threw');
    }
  }
}
