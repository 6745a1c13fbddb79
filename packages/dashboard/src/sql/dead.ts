// Dead-letter actions the core client has no call for: purge by ids or by
// queue (sluice.dead_purge), and the ids of a queue's dead jobs to replay.
import type { Queryable } from 'sluice';

export async function deadPurgeIds(db: Queryable, ids: number[]): Promise<number> {
  const { rows } = await db.query<{ n: string }>({
    name: 'sluice_dashboard_dead_purge_ids',
    text: `SELECT sluice.dead_purge(ids => $1::bigint[]) AS n`,
    values: [ids],
  });
  return Number(rows[0]?.n ?? 0);
}

/** Every dead job of the queue (and job name, when given), for good. */
export async function deadPurgeWhere(db: Queryable, queue: string, name: string | null): Promise<number> {
  const { rows } = await db.query<{ n: string }>({
    name: 'sluice_dashboard_dead_purge_where',
    text: `SELECT sluice.dead_purge(queue_name => $1, job_name => $2, died_before => 'infinity') AS n`,
    values: [queue, name],
  });
  return Number(rows[0]?.n ?? 0);
}

/** Ids of a queue's dead jobs, oldest first, at most `limit`. */
export async function deadIdsOfQueue(db: Queryable, queue: string, name: string | null, limit: number): Promise<number[]> {
  const { rows } = await db.query<{ id: string }>({
    name: 'sluice_dashboard_dead_ids_of_queue',
    text: `SELECT id FROM sluice.dead_jobs WHERE queue = $1 AND ($2::text IS NULL OR name = $2) ORDER BY id LIMIT $3`,
    values: [queue, name, limit],
  });
  return rows.map((r) => Number(r.id));
}
