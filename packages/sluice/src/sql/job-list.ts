// Runtime SQL for operators' listings (`sluice jobs list`, the dashboard):
// jobs wherever they are (live, history, dead), newest first. The three
// tables share one id sequence, so one keyset (id descending) pages across
// all three, each part walking its table's id index backwards and stopping
// after a page.
//
// A filter no index serves (queue, job name, tag text) could make that walk
// read a whole table of millions of rows to fill one page. A caller that
// must answer fast (a web page) gives `searchWindow`: the page then searches
// at most that many ids below the cursor, and says where it stopped so the
// next page goes on from there. A state filter alone only selects the table
// (and the partial state indexes serve the live states), so it is never
// bounded.
import { ValidationError } from '../errors.js';
import type { Queryable } from '../executor.js';
import type { JobState } from '../job-record.js';

const LIVE_STATES = ['waiting', 'scheduled', 'available', 'running'] as const;
const HISTORY_STATES = ['completed', 'cancelled', 'dropped'] as const;
/** Every state a job can be listed in, in the order of its life. */
export const JOB_STATES: readonly JobState[] = [...LIVE_STATES, ...HISTORY_STATES, 'dead'];

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

function sources(state: JobState | null, worker: string | null): { live: boolean; history: boolean; dead: boolean } {
  if (worker !== null) return { live: state === null || state === 'running', history: false, dead: false };
  if (state === null) return { live: true, history: true, dead: true };
  return {
    live: (LIVE_STATES as readonly string[]).includes(state),
    history: (HISTORY_STATES as readonly string[]).includes(state),
    dead: state === 'dead',
  };
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

// Each part filters by the same parameters; a part whose table the state
// rules out is cut by its first condition before it reads anything. Tag text
// is matched in the tags joined by a unit separator (which no search text
// holds, so a match never spans two tags): one function call per row
// instead of a subquery over unnest().
const LIST_SQL = `
  WITH page AS (
    (SELECT j.id, 'live' AS src FROM sluice.jobs j
     WHERE $1::boolean AND ($4::bigint IS NULL OR j.id < $4) AND ($5::bigint IS NULL OR j.id >= $5)
       AND ($6::text IS NULL OR j.state = $6) AND ($7::text IS NULL OR j.queue = $7) AND ($8::text IS NULL OR j.name = $8)
       AND ($9::text IS NULL OR strpos(lower(array_to_string(j.tags, E'\\x1f')), lower($9)) > 0)
       AND ($10::bigint IS NULL OR j.id = $10)
       AND ($12::text IS NULL OR (j.state = 'running' AND j.locked_by = $12))
     ORDER BY j.id DESC LIMIT $11)
    UNION ALL
    (SELECT h.id, 'history' FROM sluice.job_history h
     WHERE $2::boolean AND ($4::bigint IS NULL OR h.id < $4) AND ($5::bigint IS NULL OR h.id >= $5)
       AND ($6::text IS NULL OR h.state = $6) AND ($7::text IS NULL OR h.queue = $7) AND ($8::text IS NULL OR h.name = $8)
       AND ($9::text IS NULL OR strpos(lower(array_to_string(h.tags, E'\\x1f')), lower($9)) > 0)
       AND ($10::bigint IS NULL OR h.id = $10)
     ORDER BY h.id DESC LIMIT $11)
    UNION ALL
    (SELECT d.id, 'dead' FROM sluice.dead_jobs d
     WHERE $3::boolean AND ($4::bigint IS NULL OR d.id < $4) AND ($5::bigint IS NULL OR d.id >= $5)
       AND ($7::text IS NULL OR d.queue = $7) AND ($8::text IS NULL OR d.name = $8)
       AND ($9::text IS NULL OR strpos(lower(array_to_string(d.tags, E'\\x1f')), lower($9)) > 0)
       AND ($10::bigint IS NULL OR d.id = $10)
     ORDER BY d.id DESC LIMIT $11)
  ), top AS (
    SELECT * FROM page ORDER BY id DESC LIMIT $11
  )
  SELECT j.id, j.queue, j.name, j.state, j.priority, j.attempt, j.max_attempts, j.tags, j.created_at, j.run_at,
    j.attempted_at, NULL::timestamptz AS finished_at, j.locked_by, NULL::text AS reason, left(j.errors->-1->>'message', 300) AS last_error
  FROM top JOIN sluice.jobs j ON j.id = top.id WHERE top.src = 'live'
  UNION ALL
  SELECT h.id, h.queue, h.name, h.state, h.priority, h.attempt, h.max_attempts, h.tags, h.created_at, h.run_at,
    h.attempted_at, h.finished_at, NULL, NULL, left(h.errors->-1->>'message', 300)
  FROM top JOIN sluice.job_history h ON h.id = top.id WHERE top.src = 'history'
  UNION ALL
  SELECT d.id, d.queue, d.name, 'dead', d.priority, d.attempt, d.max_attempts, d.tags, d.created_at, d.run_at,
    d.attempted_at, d.died_at, NULL, d.reason, left(d.errors->-1->>'message', 300)
  FROM top JOIN sluice.dead_jobs d ON d.id = top.id WHERE top.src = 'dead'
  ORDER BY 1 DESC`;

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

/** True when a filter no index serves is given, so a bounded page applies its window. */
function needsWindow(f: JobListFilter): boolean {
  return (f.id ?? null) === null && (f.worker ?? null) === null && ((f.queue ?? null) !== null || (f.name ?? null) !== null || (f.tag ?? null) !== null);
}

/** One page of jobs matching every given filter, newest id first. */
export async function jobList(db: Queryable, f: JobListFilter): Promise<JobListPage> {
  if (!Number.isInteger(f.limit) || f.limit < 1 || f.limit > 10_000) throw new ValidationError('limit', 'must be an integer from 1 to 10000');
  if (f.searchWindow != null && !(Number.isInteger(f.searchWindow) && f.searchWindow > 0)) throw new ValidationError('searchWindow', 'must be a positive integer');
  const state = f.state ?? null;
  const worker = f.worker ?? null;
  const src = sources(state, worker);
  let before = f.beforeId ?? null;
  let floor: number | null = null;
  if (f.searchWindow != null && needsWindow(f)) {
    before ??= await idCeiling(db);
    floor = Math.max(before - f.searchWindow, 1);
  }
  // Unnamed on purpose: each page is planned with its own values, so a state
  // filter reaches its partial index (a generic plan could not prove it applies).
  const { rows } = await db.query<ListRow>({
    text: LIST_SQL,
    values: [src.live, src.history, src.dead, before, floor, state === 'dead' ? null : state, f.queue ?? null, f.name ?? null, f.tag ?? null, f.id ?? null, f.limit, worker],
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
