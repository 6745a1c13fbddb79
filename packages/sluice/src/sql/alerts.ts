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

export interface AlertTransitions {
  /** Alerts active now. */
  active: ActiveAlert[];
  /** Active now and not reported before: reported firing by this call. */
  firing: ActiveAlert[];
  /** Reported firing before and no longer active, as they were when they fired: reported resolved by this call. */
  resolved: ActiveAlert[];
}

type TransitionRow = ActiveAlert & { state: 'active' | 'firing' | 'resolved' };

/**
 * Evaluates the alerts and records the change in sluice.alert_states
 * (queues/alert-sync.sql): the alerts it returns as firing or resolved are the
 * changes to report, returned by this call only, whichever process makes the
 * next one.
 */
export async function alertStateSync(db: Queryable, deadAfterMs: number): Promise<AlertTransitions> {
  const { rows } = await db.query<TransitionRow>({
    name: 'sluice_alert_state_sync',
    text: `SELECT state, queue, alert, value, threshold, message FROM sluice.alert_sync($1)`,
    values: [deadAfterMs],
  });
  const out: AlertTransitions = { active: [], firing: [], resolved: [] };
  for (const { state, ...r } of rows) out[state].push({ ...r, value: Number(r.value), threshold: Number(r.threshold) });
  return out;
}
