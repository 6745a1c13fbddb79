// Runtime SQL for operators' listings (`sluice jobs list`, the dashboard):
// jobs wherever they are (live, history, dead), newest first, by
// sluice.job_list (drizzle/functions/jobs/list.sql), one keyset over the
// three tables.
//
// A filter no index serves (queue, job name, tag text, a history state)
// could make that walk read a whole table of millions of rows to fill one
// page. A caller that must answer fast (a web page) gives `searchWindow`: the
// page then searches at most that many ids below the cursor, and says where
// it stopped so the next page goes on from there. Never bounded: a live state
// alone (the partial state indexes serve it), 'dead' alone (every row of
// dead_jobs matches), and the dead jobs of one queue (dead_jobs_queue_idx
// finds them, so the dead-letter page of a queue lists them all however many
// newer ids other queues used).
import { ValidationError } from '../errors.js';
import type { Queryable } from '../executor.js';
import type { JobState } from '../job-record.js';

/** Every state a job can be listed in, in the order of its life. */
export const JOB_STATES: readonly JobState[] = ['waiting', 'scheduled', 'available', 'running', 'completed', 'cancelled', 'dropped', 'dead'];

export interface JobListFilter {
  queue?: string | null;
  state?: JobState | null;
  name?: string | null;
  /** Text to look for in the job's tags (case-insensitive substring). */
  tag?: string | null;
  /** Exact job id. */
  id?: number | null;
  /** Jobs running on this worker: few rows, read through the partial index of running jobs. */
  worker?: string | null;
  /** Keyset cursor: only jobs with a smaller id (the previous page's `nextBefore`). */
  beforeId?: number | null;
  /** Jobs per page, 1 to 10,000. */
  limit: number;
  /** Ids a page searches at most when a filter no index serves is given; omitted: no bound. */
  searchWindow?: number | null;
}

/** A job as a listing shows it; no payload (read the one job for that). */
export interface JobListItem {
  id: number;
  queue: string;
  name: string;
  state: JobState;
  priority: number;
  attempt: number;
  maxAttempts: number;
  tags: string[];
  createdAt: Date;
  runAt: Date;
  attemptedAt: Date | null;
  /** When it completed, was cancelled or dropped, or died. */
  finishedAt: Date | null;
  lockedBy: string | null;
  /** Why a dead job died. */
  reason: string | null;
  /** The latest error's message, cut at 300 characters. */
  lastError: string | null;
}

export interface JobListPage {
  jobs: JobListItem[];
  /** Cursor of the next page, or null at the end. */
  nextBefore: number | null;
  /** Set when the page was bounded: it searched ids from `searchedDownTo` up to the cursor. */
  searchedDownTo: number | null;
}

/** One past the highest id in use: where a bounded search starts. */
async function idCeiling(db: Queryable): Promise<number> {
  const { rows } = await db.query<{ top: string | null }>({
    name: 'sluice_job_id_ceiling',
    text: `SELECT greatest((SELECT max(id) FROM sluice.jobs), (SELECT max(id) FROM sluice.job_history),
             (SELECT max(id) FROM sluice.dead_jobs)) AS top`,
  });
  return Number(rows[0]?.top ?? 0) + 1;
}

interface ListRow {
  id: string;
  queue: string;
  name: string;
  state: JobState;
  priority: number;
  attempt: number;
  max_attempts: number;
  tags: string[];
  created_at: Date;
  run_at: Date;
  attempted_at: Date | null;
  finished_at: Date | null;
  locked_by: string | null;
  reason: string | null;
  last_error: string | null;
}

/** States kept in sluice.job_history, which has no index on state: among millions of completed jobs a few cancelled ones are rare matches. */
const HISTORY_STATES: ReadonlySet<JobState> = new Set(['completed', 'cancelled', 'dropped']);

/** True when a filter no index serves is given, so a bounded page applies its window. */
function needsWindow(f: JobListFilter): boolean {
  if ((f.id ?? null) !== null || (f.worker ?? null) !== null) return false;
  const state = f.state ?? null;
  const queue = f.queue ?? null;
  const name = f.name ?? null;
  const tag = f.tag ?? null;
  if (state === 'dead' && queue !== null && tag === null) return false;
  return queue !== null || name !== null || tag !== null || (state !== null && HISTORY_STATES.has(state));
}

/** One page of jobs matching every given filter, newest id first. */
export async function jobList(db: Queryable, f: JobListFilter): Promise<JobListPage> {
  if (!Number.isInteger(f.limit) || f.limit < 1 || f.limit > 10_000) throw new ValidationError('limit', 'must be an integer from 1 to 10000');
  if (f.searchWindow != null && !(Number.isInteger(f.searchWindow) && f.searchWindow > 0)) throw new ValidationError('searchWindow', 'must be a positive integer');
  const state = f.state ?? null;
  let before = f.beforeId ?? null;
  let floor: number | null = null;
  if (f.searchWindow != null && needsWindow(f)) {
    before ??= await idCeiling(db);
    floor = Math.max(before - f.searchWindow, 1);
  }
  const { rows } = await db.query<ListRow>({
    name: 'sluice_job_list',
    text: `SELECT * FROM sluice.job_list(queue_name => $1, job_state => $2, job_name => $3, before_id => $4, page_size => $5,
             tag_text => $6, job_id => $7, worker_id => $8, min_id => $9)`,
    values: [f.queue ?? null, state, f.name ?? null, before, f.limit, f.tag ?? null, f.id ?? null, f.worker ?? null, floor],
  });
  const jobs = rows.map(
    (r): JobListItem => ({
      id: Number(r.id),
      queue: r.queue,
      name: r.name,
      state: r.state,
      priority: r.priority,
      attempt: r.attempt,
      maxAttempts: r.max_attempts,
      tags: r.tags,
      createdAt: r.created_at,
      runAt: r.run_at,
      attemptedAt: r.attempted_at,
      finishedAt: r.finished_at,
      lockedBy: r.locked_by,
      reason: r.reason,
      lastError: r.last_error,
    }),
  );
  if (jobs.length === f.limit) return { jobs, nextBefore: jobs.at(-1)!.id, searchedDownTo: null };
  if (floor !== null && floor > 1) return { jobs, nextBefore: floor, searchedDownTo: floor };
  return { jobs, nextBefore: null, searchedDownTo: null };
}
