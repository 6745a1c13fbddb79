// Runtime SQL for the dead-letter queue.
import type { Queryable } from '../executor.js';

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

export interface DeadFilter {
  queue?: string | null;
  name?: string | null;
  /** Only jobs that died more than this many milliseconds ago (by the database's clock). */
  olderThanMs?: number | null;
  ids?: number[] | null;
  /** Every dead job (combined with nothing else). */
  all?: boolean;
}

/** Deletes dead jobs matching every given filter (at least one, or `all`, is required). */
export async function deadPurge(db: Queryable, f: DeadFilter): Promise<number> {
  const { rows } = await db.query<{ n: string }>({
    name: 'sluice_dead_purge',
    text: `SELECT sluice.dead_purge($1, $2,
             CASE WHEN $5::boolean THEN 'infinity'::timestamptz
                  WHEN $3::bigint IS NULL THEN NULL
                  ELSE now() - $3::bigint * interval '1 millisecond' END,
             $4::bigint[]) AS n`,
    values: [f.queue ?? null, f.name ?? null, f.olderThanMs ?? null, f.ids ?? null, f.all ?? false],
  });
  return Number(rows[0]?.n ?? 0);
}

/** Ids of dead jobs matching the filters, oldest first, at most `limit`. */
export async function deadIdsWhere(db: Queryable, f: { queue: string | null; name: string | null; limit: number }): Promise<number[]> {
  const { rows } = await db.query<{ id: string }>({
    name: 'sluice_dead_ids_where',
    text: `SELECT id FROM sluice.dead_jobs WHERE ($1::text IS NULL OR queue = $1) AND ($2::text IS NULL OR name = $2)
           ORDER BY id LIMIT $3`,
    values: [f.queue, f.name, f.limit],
  });
  return rows.map((r) => Number(r.id));
}
