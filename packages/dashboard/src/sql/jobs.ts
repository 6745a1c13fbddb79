// The jobs list and the job detail. Jobs live in three tables (sluice.jobs,
// sluice.job_history, sluice.dead_jobs) that share one id sequence, so one
// keyset (id descending) pages across all three, each part walking its
// table's id index backwards and stopping after a page.
//
// A filter no index serves (queue, job name, tag text) could make that walk
// read a whole table of millions of rows to fill one page. Such a page is
// bounded instead: it searches at most `window` ids below the cursor, and
// says where it stopped so the next page goes on from there. A state filter
// alone only selects the table (and the partial state indexes serve the live
// states), so it is never bounded.
import type { Queryable } from 'sluice';

export const LIVE_STATES = ['waiting', 'scheduled', 'available', 'running'] as const;
export const HISTORY_STATES = ['completed', 'cancelled', 'dropped'] as const;
export const ALL_STATES = [...LIVE_STATES, ...HISTORY_STATES, 'dead'] as const;
export type ListState = (typeof ALL_STATES)[number];

export interface JobFilter {
  queue: string | null;
  state: ListState | null;
  name: string | null;
  /** Text to look for in the job's tags (case-insensitive substring). */
  tag: string | null;
  /** Exact job id (a search for a number). */
  id: number | null;
  /** Jobs running on this worker: few rows, read through the partial index of running jobs. */
  worker: string | null;
}

export interface JobListRow {
  id: number;
  queue: string;
  name: string;
  state: string;
  priority: number;
  attempt: number;
  maxAttempts: number;
  tags: string[];
  createdAt: Date;
  runAt: Date;
  finishedAt: Date | null;
  lockedBy: string | null;
  reason: string | null;
  lastError: string | null;
}

export interface JobListPage {
  rows: JobListRow[];
  /** Cursor of the next page, or null at the end. */
  nextBefore: number | null;
  /** Set when the page was bounded: it searched ids from `searchedDownTo` up to the cursor. */
  searchedDownTo: number | null;
}

/** True when some filter is one that no index serves, so the page must be bounded. */
export function needsWindow(f: JobFilter): boolean {
  return f.id === null && f.worker === null && (f.queue !== null || f.name !== null || f.tag !== null);
}

function sources(state: ListState | null, worker: string | null): { live: boolean; history: boolean; dead: boolean } {
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
    name: 'sluice_dashboard_id_ceiling',
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
    NULL::timestamptz AS finished_at, j.locked_by, NULL::text AS reason, left(j.errors->-1->>'message', 300) AS last_error
  FROM top JOIN sluice.jobs j ON j.id = top.id WHERE top.src = 'live'
  UNION ALL
  SELECT h.id, h.queue, h.name, h.state, h.priority, h.attempt, h.max_attempts, h.tags, h.created_at, h.run_at,
    h.finished_at, NULL, NULL, left(h.errors->-1->>'message', 300)
  FROM top JOIN sluice.job_history h ON h.id = top.id WHERE top.src = 'history'
  UNION ALL
  SELECT d.id, d.queue, d.name, 'dead', d.priority, d.attempt, d.max_attempts, d.tags, d.created_at, d.run_at,
    d.died_at, NULL, d.reason, left(d.errors->-1->>'message', 300)
  FROM top JOIN sluice.dead_jobs d ON d.id = top.id WHERE top.src = 'dead'
  ORDER BY 1 DESC`;

interface RawListRow {
  id: string;
  queue: string;
  name: string;
  state: string;
  priority: number;
  attempt: number;
  max_attempts: number;
  tags: string[];
  created_at: Date;
  run_at: Date;
  finished_at: Date | null;
  locked_by: string | null;
  reason: string | null;
  last_error: string | null;
}

export async function jobListPage(
  db: Queryable,
  f: JobFilter,
  cursor: { before: number | null; pageSize: number; window: number },
): Promise<JobListPage> {
  const src = sources(f.state, f.worker);
  const windowed = needsWindow(f);
  let before = cursor.before;
  let floor: number | null = null;
  if (windowed) {
    before ??= await idCeiling(db);
    floor = Math.max(before - cursor.window, 1);
  }
  // Unnamed on purpose: each page is planned with its own values, so a state
  // filter reaches its partial index (a generic plan could not prove it applies).
  const { rows } = await db.query<RawListRow>({
    text: LIST_SQL,
    values: [src.live, src.history, src.dead, before, floor, f.state === 'dead' ? null : f.state, f.queue, f.name, f.tag, f.id, cursor.pageSize, f.worker],
  });
  const list = rows.map(
    (r): JobListRow => ({
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
      finishedAt: r.finished_at,
      lockedBy: r.locked_by,
      reason: r.reason,
      lastError: r.last_error,
    }),
  );
  if (list.length === cursor.pageSize) {
    return { rows: list, nextBefore: list.at(-1)!.id, searchedDownTo: null };
  }
  if (floor !== null && floor > 1) return { rows: list, nextBefore: floor, searchedDownTo: floor };
  return { rows: list, nextBefore: null, searchedDownTo: null };
}

export interface JobErrorView {
  attempt: number;
  at: string;
  kind: string;
  name: string;
  message: string;
  stack?: string;
}

export interface JobDetail {
  id: number;
  queue: string;
  name: string;
  state: string;
  priority: number;
  attempt: number;
  maxAttempts: number;
  tags: string[];
  uniqueKey: string | null;
  groupKey: string | null;
  batchId: number | null;
  dependsOn: number[] | null;
  timeoutMs: number | null;
  progress: number | null;
  progressMessage: string | null;
  lockedBy: string | null;
  lockedUntil: Date | null;
  reason: string | null;
  createdAt: Date;
  runAt: Date;
  attemptedAt: Date | null;
  finishedAt: Date | null;
  errors: JobErrorView[];
  /** Undefined when the viewer may not see payloads: it is then never read from the database. */
  payload?: unknown;
  result?: unknown;
}

/**
 * One job wherever it is. Payload and result are selected only when they
 * may be shown, and stack traces are stripped in SQL when they may not, so
 * hidden data never leaves the database.
 */
export async function jobDetail(db: Queryable, id: number, show: { payloads: boolean; stackTraces: boolean }): Promise<JobDetail | null> {
  const { rows } = await db.query<Record<string, unknown>>({
    name: 'sluice_dashboard_job_detail',
    text: `
      WITH x AS (
        SELECT id, queue, name, state, priority, attempt, max_attempts, tags, unique_key, group_key, batch_id, depends_on,
          timeout_ms, progress, progress_message, locked_by, locked_until, NULL::text AS reason, created_at, run_at,
          attempted_at, NULL::timestamptz AS finished_at, errors, payload, NULL::jsonb AS result
        FROM sluice.jobs WHERE id = $1
        UNION ALL
        SELECT id, queue, name, state, priority, attempt, max_attempts, tags, unique_key, NULL, batch_id, NULL,
          NULL, NULL, NULL, NULL, NULL, NULL, created_at, run_at, attempted_at, finished_at, errors, payload, result
        FROM sluice.job_history WHERE id = $1
        UNION ALL
        SELECT id, queue, name, 'dead', priority, attempt, max_attempts, tags, unique_key, group_key, batch_id, NULL,
          timeout_ms, NULL, NULL, NULL, NULL, reason, created_at, run_at, attempted_at, died_at, errors, payload, NULL
        FROM sluice.dead_jobs WHERE id = $1
        LIMIT 1
      )
      SELECT id, queue, name, state, priority, attempt, max_attempts, tags, unique_key, group_key, batch_id, depends_on,
        timeout_ms, progress, progress_message, locked_by, locked_until, reason, created_at, run_at, attempted_at, finished_at,
        CASE WHEN $3::boolean THEN errors
             ELSE coalesce((SELECT jsonb_agg(e - 'stack' ORDER BY o) FROM jsonb_array_elements(errors) WITH ORDINALITY AS a(e, o)), '[]'::jsonb)
        END AS errors,
        CASE WHEN $2::boolean THEN payload END AS payload,
        CASE WHEN $2::boolean THEN result END AS result
      FROM x`,
    values: [id, show.payloads, show.stackTraces],
  });
  const r = rows[0];
  if (!r) return null;
  const detail: JobDetail = {
    id: Number(r.id),
    queue: r.queue as string,
    name: r.name as string,
    state: r.state as string,
    priority: r.priority as number,
    attempt: r.attempt as number,
    maxAttempts: r.max_attempts as number,
    tags: r.tags as string[],
    uniqueKey: r.unique_key as string | null,
    groupKey: r.group_key as string | null,
    batchId: r.batch_id === null ? null : Number(r.batch_id),
    dependsOn: r.depends_on === null ? null : (r.depends_on as string[]).map(Number),
    timeoutMs: r.timeout_ms as number | null,
    progress: r.progress as number | null,
    progressMessage: r.progress_message as string | null,
    lockedBy: r.locked_by as string | null,
    lockedUntil: r.locked_until as Date | null,
    reason: r.reason as string | null,
    createdAt: r.created_at as Date,
    runAt: r.run_at as Date,
    attemptedAt: r.attempted_at as Date | null,
    finishedAt: r.finished_at as Date | null,
    errors: Array.isArray(r.errors) ? (r.errors as JobErrorView[]) : [],
  };
  if (show.payloads) {
    detail.payload = r.payload;
    detail.result = r.result;
  }
  return detail;
}
