// Queue settings as the queues page shows them (limits and alert thresholds).
import type { Queryable } from 'sluice/admin';

export interface QueueLimitsRow {
  name: string;
  paused: boolean;
  concurrency: number | null;
  group_concurrency: number | null;
  rate_limit_count: number | null;
  rate_limit_interval_ms: number | null;
  max_depth: number | null;
  overflow: string;
  weight: number;
}

export async function queueLimitsAll(db: Queryable): Promise<QueueLimitsRow[]> {
  const { rows } = await db.query<QueueLimitsRow>({
    name: 'sluice_dashboard_queue_limits_all',
    text: `SELECT name, paused, concurrency, group_concurrency, rate_limit_count, rate_limit_interval_ms, max_depth, overflow, weight
           FROM sluice.queues ORDER BY name`,
  });
  return rows;
}

export async function queueExists(db: Queryable, name: string): Promise<boolean> {
  const { rows } = await db.query({
    name: 'sluice_dashboard_queue_exists',
    text: `SELECT 1 FROM sluice.queues WHERE name = $1`,
    values: [name],
  });
  return rows.length > 0;
}

/** Queue names for the filter menus (sluice.queues is one row per queue: small). */
export async function queueNames(db: Queryable): Promise<string[]> {
  const { rows } = await db.query<{ name: string }>({
    name: 'sluice_dashboard_queue_names',
    text: `SELECT name FROM sluice.queues ORDER BY name`,
  });
  return rows.map((r) => r.name);
}
