// ctx.progress(): throttled, fenced writes of a job's progress. At most one
// write per interval per job; the latest value always lands. A refused write
// means the attempt lost its job, so the handler's signal is fired.
import type { Logger } from 'pino';
import { LeaseLostError, ValidationError } from '../errors.js';
import { STORABLE_TEXT_RULE } from '../config.js';
import type { Queryable } from '../executor.js';
import { unstorable } from '../json-text.js';
import { jobProgress } from '../sql/job-leases.js';
import type { JobAbort } from './job-abort.js';
import { monotonicMs } from '../clock.js';

/** Minimum time between two progress writes of one job. */
export const PROGRESS_INTERVAL_MS = 250;

export function progressReporter(
  db: Queryable,
  job: { id: number; attempt: number; lease: number; abort: JobAbort },
  workerId: string,
  logger: Logger,
): { report: (pct: number, message?: string) => Promise<void>; dispose: () => void } {
  let lastWriteAt = -Infinity;
  let pending: { pct: number; message: string | null } | null = null;
  let timer: NodeJS.Timeout | null = null;
  let inFlight: Promise<void> = Promise.resolve();
  let settle: (() => void) | null = null;

  const write = async () => {
    timer = null;
    const value = pending;
    pending = null;
    if (!value || job.abort.aborted) return;
    lastWriteAt = monotonicMs();
    try {
      const ok = await jobProgress(db, { id: job.id, attempt: job.attempt, lease: job.lease, ...value, workerId });
      if (!ok) {
        logger.warn({ jobId: job.id, attempt: job.attempt }, 'progress refused: the attempt no longer holds the job');
        job.abort.abort(new LeaseLostError(job.id, job.attempt));
      }
    } catch (err) {
      logger.warn({ jobId: job.id, err }, 'progress write failed');
    }
  };

  const report = (pct: number, message?: string): Promise<void> => {
    if (typeof pct !== 'number' || !Number.isFinite(pct) || pct < 0 || pct > 100) {
      return Promise.reject(new ValidationError('progress.pct', 'must be a number from 0 to 100'));
    }
    if (message !== undefined && typeof message !== 'string') {
      return Promise.reject(new ValidationError('progress.message', 'must be a string'));
    }
    if (message !== undefined && unstorable(message)) return Promise.reject(new ValidationError('progress.message', STORABLE_TEXT_RULE));
    pending = { pct: Math.round(pct), message: message ?? null };
    if (timer) return inFlight;
    const wait = Math.max(0, lastWriteAt + PROGRESS_INTERVAL_MS - monotonicMs());
    inFlight = new Promise<void>((resolve) => {
      settle = resolve;
      timer = setTimeout(() => void write().then(resolve), wait);
    });
    return inFlight;
  };
  // After the attempt ends a pending write would only be refused: drop it,
  // and let anyone still awaiting it go on.
  const dispose = () => {
    if (timer) clearTimeout(timer);
    timer = null;
    pending = null;
    settle?.();
  };
  return { report, dispose };
}
