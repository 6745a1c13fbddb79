// Runtime SQL for operators' listings: jobs wherever they are (live,
// history, dead), newest first with keyset pagination; see sluice.job_list.
import type { Queryable } from '../executor.js';

export interface JobListFilter {
  queue?: string | null;
  state?: string | null;
  name?: string | null;
  /** Keyset cursor: only jobs with a smaller id (the last id of the previous page). */
  beforeId?: number | null;
  limit: number;
}

export interface JobListRow {
  id: number;
  queue: string;
  name: string;
  state: string;
  priority: number;
  attempt: number;
  max_attempts: number;
  run_at: Date;
  created_at: Date;
  attempted_at: Date | null;
  finished_at: Date | null;
  locked_by: string | null;
  reason: string | null;
  last_error: string | null;
}

export async function jobList(db: Queryable, f: JobListFilter): Promise<JobListRow[]> {
  const { rows } = await db.query<JobListRow & { id: string }>({
    name: 'sluice_job_list',
    text: `SELECT * FROM sluice.job_list($1, $2, $3, $4, $5)`,
    values: [f.queue ?? null, f.state ?? null, f.name ?? null, f.beforeId ?? null, f.limit],
  });
  return rows.map((r) => ({ ...r, id: Number(r.id) }));
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
