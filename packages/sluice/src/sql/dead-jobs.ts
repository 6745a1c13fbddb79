// Runtime SQL for the dead-letter queue.
import type { Queryable } from '../executor.js';
import type { JobErrorEntry } from '../schema.js';

/** Puts dead jobs back in their queues; all ids must exist (see sluice.dead_replay). */
export async function deadReplay(db: Queryable, ids: number[]): Promise<number[]> {
  const { rows } = await db.query<{ id: string }>({
    name: 'sluice_dead_replay',
    text: `SELECT id FROM sluice.dead_replay($1::bigint[]) AS id`,
    values: [ids],
  });
  return rows.map((r) => Number(r.id));
}

/** The job type of each of these dead jobs, locked until the transaction ends; absent ids are missing. */
export async function deadLockNames(db: Queryable, ids: number[]): Promise<Map<number, string>> {
  const { rows } = await db.query<{ id: string; name: string }>({
    name: 'sluice_dead_lock_names',
    text: `SELECT id, name FROM sluice.dead_jobs WHERE id = ANY($1::bigint[]) FOR UPDATE`,
    values: [ids],
  });
  return new Map(rows.map((r) => [Number(r.id), r.name]));
}

export interface DeadJobRow {
  id: string;
  queue: string;
  name: string;
  attempt: number;
  reason: string;
  errors: JobErrorEntry[];
  died_at: Date;
}

export async function deadList(db: Queryable, a: { queue: string | null; limit: number }): Promise<DeadJobRow[]> {
  const { rows } = await db.query<DeadJobRow>({
    name: 'sluice_dead_list',
    text: `SELECT id, queue, name, attempt, reason, errors, died_at FROM sluice.dead_jobs
           WHERE ($1::text IS NULL OR queue = $1) ORDER BY died_at DESC, id DESC LIMIT $2`,
    values: [a.queue, a.limit],
  });
  return rows;
}
