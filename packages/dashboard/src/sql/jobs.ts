// One job wherever it is (sluice.jobs, sluice.job_history or sluice.dead_jobs),
// as the job page shows it. The list of jobs is sluice/admin's jobList.
import type { Queryable } from 'sluice/admin';

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
