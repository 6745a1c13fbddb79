// The shape getJob() returns, read from wherever the job is now.
import type { JobRow } from './sql/jobs.js';

/** One failed attempt, as kept in a job's errors column (jobs, job_history, dead_jobs). */
export interface JobErrorEntry {
  attempt: number;
  at: string;
  kind: 'error' | 'timeout' | 'crash' | 'cancelled';
  name: string;
  message: string;
  stack?: string;
  /** A crash before the attempt started (the job was claimed ahead): the attempt was given back. */
  unstarted?: true;
}

export type JobState = 'waiting' | 'scheduled' | 'available' | 'running' | 'completed' | 'cancelled' | 'dropped' | 'dead';

export interface JobRecord {
  id: number;
  name: string;
  queue: string;
  state: JobState;
  payload: unknown;
  priority: number;
  attempt: number;
  maxAttempts: number;
  errors: JobErrorEntry[];
  /** The handler's return value, once completed (null when none or too large). */
  result: unknown;
  progress: number | null;
  progressMessage: string | null;
  groupKey: string | null;
  batchId: number | null;
  dependsOn: number[] | null;
  createdAt: Date;
  runAt: Date;
  attemptedAt: Date | null;
  finishedAt: Date | null;
  lockedBy: string | null;
}

export function toJobRecord(row: JobRow): JobRecord {
  return {
    id: Number(row.id),
    name: row.name,
    queue: row.queue,
    state: row.state as JobState,
    payload: row.payload,
    priority: row.priority,
    attempt: row.attempt,
    maxAttempts: row.max_attempts,
    errors: row.errors,
    result: row.result ?? null,
    progress: row.progress,
    progressMessage: row.progress_message,
    groupKey: row.group_key,
    batchId: row.batch_id === null ? null : Number(row.batch_id),
    dependsOn: row.depends_on === null ? null : row.depends_on.map(Number),
    createdAt: row.created_at,
    runAt: row.run_at,
    attemptedAt: row.attempted_at,
    finishedAt: row.finished_at,
    lockedBy: row.locked_by,
  };
}
