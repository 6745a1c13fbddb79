// Runtime SQL for queues.
import type { Queryable } from '../executor.js';

/** Settings as stored (snake_case keys); see sluice.queue_configure. */
export type QueueSettingsRow = Partial<{
  paused: boolean;
  concurrency: number | null;
  group_concurrency: number | null;
  rate_limit_count: number | null;
  rate_limit_interval_ms: number | null;
  max_depth: number | null;
  overflow: 'reject' | 'block' | 'drop_oldest' | 'drop_newest';
  weight: number;
  aging_after_ms: number | null;
  unique_window_ms: number | null;
  keep_history: boolean;
  retention_ms: number;
  alert_max_depth: number | null;
  alert_max_wait_ms: number | null;
  alert_max_error_rate: number | null;
  alert_no_worker: boolean;
}>;

export async function queueConfigure(db: Queryable, queue: string, settings: QueueSettingsRow): Promise<void> {
  await db.query({
    name: 'sluice_queue_configure',
    text: `SELECT sluice.queue_configure($1, $2::jsonb)`,
    values: [queue, JSON.stringify(settings)],
  });
}

/** What a worker's claims need to know of its queues: their weights (1 for a queue with no row yet), and which have a concurrency, group or rate limit. */
export interface QueueClaimSettings {
  weights: Map<string, number>;
  limited: Set<string>;
}

export async function queueClaimSettings(db: Queryable, queues: string[]): Promise<QueueClaimSettings> {
  const { rows } = await db.query<{ name: string; weight: number; limited: boolean }>({
    name: 'sluice_queue_claim_settings',
    text: `SELECT name, weight,
                  (concurrency IS NOT NULL OR group_concurrency IS NOT NULL OR rate_limit_count IS NOT NULL) AS limited
           FROM sluice.queues WHERE name = ANY($1::text[])`,
    values: [queues],
  });
  const weights = new Map(queues.map((q) => [q, 1]));
  const limited = new Set<string>();
  for (const r of rows) {
    weights.set(r.name, r.weight);
    if (r.limited) limited.add(r.name);
  }
  return { weights, limited };
}

/**
 * max_depth of those of `queues` that refuse or block when full (overflow
 * reject or block); the rest have none. Read before a write of several
 * statements (a flow, a batch), so one that can never fit fails at once.
 */
export async function queueRefusingDepths(db: Queryable, queues: readonly string[]): Promise<Map<string, number>> {
  const { rows } = await db.query<{ name: string; max_depth: number }>({
    name: 'sluice_queue_refusing_depths',
    text: `SELECT name, max_depth FROM sluice.queues
           WHERE name = ANY($1::text[]) AND max_depth IS NOT NULL AND overflow IN ('reject', 'block')`,
    values: [[...queues]],
  });
  return new Map(rows.map((r) => [r.name, r.max_depth]));
}
