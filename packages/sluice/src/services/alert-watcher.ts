// Evaluates the queue alerts in SQL on an interval and reports changes: an
// alert that appears is logged as a warning and reported as 'firing', one
// that clears is logged and reported as 'resolved'. Each process watching
// reports the alerts it sees, so several workers report the same alert; a
// notifier should key on (queue, alert).
import type { Logger } from 'pino';
import type { Queryable } from '../executor.js';
import { alertListActive, type ActiveAlert } from '../sql/alerts.js';
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

export class AlertWatcher extends Service {
  private active = new Map<string, ActiveAlert>();

  constructor(
    private readonly db: Queryable,
    private readonly options: AlertWatcherOptions,
    logger: Logger,
  ) {
    super('alert-watcher', logger);
  }

  /** The alerts seen active at the last evaluation. */
  get current(): ActiveAlert[] {
    return [...this.active.values()];
  }

  protected async tick(): Promise<number> {
    const now = await alertListActive(this.db, this.options.workerDeadAfterMs);
    const next = new Map(now.map((a) => [`${a.queue}\u0000${a.alert}`, a]));
    for (const [key, alert] of next) {
      if (this.active.has(key)) continue;
      this.logger.warn({ queue: alert.queue, alert: alert.alert, value: alert.value, threshold: alert.threshold }, alert.message);
      this.report({ ...alert, state: 'firing' });
    }
    for (const [key, alert] of this.active) {
      if (next.has(key)) continue;
      this.logger.info({ queue: alert.queue, alert: alert.alert }, `alert resolved: ${alert.message}`);
      this.report({ ...alert, state: 'resolved' });
    }
    this.active = next;
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
