// Runtime SQL for queues.
import type { Queryable } from '../executor.js';

export interface QueueStatsRow {
  queue: string;
  paused: boolean;
  scheduled: string;
  available: string;
  running: string;
  dead: string;
  oldest_wait_seconds: number | null;
}

export async function queueStats(db: Queryable): Promise<QueueStatsRow[]> {
  const { rows } = await db.query<QueueStatsRow>({
    name: 'sluice_queue_stats',
    text: `SELECT queue, paused, scheduled, available, running, dead, oldest_wait_seconds
           FROM sluice.queue_stats ORDER BY queue`,
  });
  return rows;
}

export async function queueSetPaused(db: Queryable, queue: string, paused: boolean): Promise<void> {
  await db.query({
    name: 'sluice_queue_set_paused',
    text: `WITH q AS (
             INSERT INTO sluice.queues (name, paused) VALUES ($1, $2)
             ON CONFLICT (name) DO UPDATE SET paused = excluded.paused
           )
           SELECT pg_notify('sluice_jobs', $1) WHERE NOT $2`,
    values: [queue, paused],
  });
}
