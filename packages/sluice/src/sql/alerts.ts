// Runtime SQL for alerts: thresholds live on sluice.queues, the evaluation
// is sluice.queue_alerts (drizzle/functions/queues/alerts.sql).
import type { Queryable } from '../executor.js';

export type AlertKind = 'depth' | 'wait' | 'error_rate' | 'no_worker';

export interface ActiveAlert {
  queue: string;
  alert: AlertKind;
  value: number;
  threshold: number;
  message: string;
}

/** Alerts active now, one per queue and crossed threshold. */
export async function alertListActive(db: Queryable, deadAfterMs: number): Promise<ActiveAlert[]> {
  const { rows } = await db.query<ActiveAlert>({
    name: 'sluice_alert_list_active',
    text: `SELECT queue, alert, value, threshold, message FROM sluice.queue_alerts($1) ORDER BY queue, alert`,
    values: [deadAfterMs],
  });
  return rows.map((r) => ({ ...r, value: Number(r.value), threshold: Number(r.threshold) }));
}
