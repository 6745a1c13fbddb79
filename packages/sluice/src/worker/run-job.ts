// Runs one claimed job's handler: validates the payload again (a row written
// by raw SQL may not match the schema), enforces the timeout through the
// handler's AbortSignal, and turns the result into an acknowledgement.
import type { Logger } from 'pino';
import { PayloadValidationError, PermanentError, TimeoutError, UnknownJobError, serializeError } from '../errors.js';
import { parsePayload, type JobRegistration } from '../job.js';
import type { JobErrorEntry } from '../schema.js';
import type { ClaimedJobRow } from '../sql/jobs.js';
import type { Ack } from './completer.js';

export interface RunningJob {
  id: number;
  attempt: number;
  controller: AbortController;
}

export async function runJob(
  row: ClaimedJobRow,
  running: RunningJob,
  registration: JobRegistration | undefined,
  logger: Logger,
  abortGraceMs: number,
): Promise<Ack> {
  const { id, attempt } = running;
  const jobLogger = logger.child({ jobId: id, job: row.name, queue: row.queue, attempt });
  const started = performance.now();
  let timer: NodeJS.Timeout | undefined;
  let grace: NodeJS.Timeout | undefined;
  try {
    if (!registration) throw new UnknownJobError(row.name);
    const payload = parsePayload(registration.job, row.payload);
    const timeoutMs = row.timeout_ms ?? registration.job.timeoutMs;
    const signal = running.controller.signal;
    if (timeoutMs) {
      timer = setTimeout(() => running.controller.abort(new TimeoutError(timeoutMs)), timeoutMs);
    }
    const work = Promise.resolve().then(() =>
      registration.handler(payload, {
        job: {
          id,
          name: row.name,
          queue: row.queue,
          attempt,
          maxAttempts: row.max_attempts,
          createdAt: row.created_at,
        },
        signal,
        logger: jobLogger,
      }),
    );
    // Once aborted (timeout, cancel, shutdown) the handler gets a grace period
    // to wind down; after it the slot is freed whether the handler listened or
    // not, and whatever it answers later is never applied.
    const abandoned = new Promise<never>((_, reject) => {
      const onAbort = () => {
        grace = setTimeout(() => reject(signal.reason), abortGraceMs);
      };
      if (signal.aborted) onAbort();
      else signal.addEventListener('abort', onAbort, { once: true });
    });
    abandoned.catch(() => {});
    await Promise.race([work, abandoned]);
    if (signal.aborted) throw signal.reason;
    jobLogger.debug({ durationMs: Math.round(performance.now() - started) }, 'job completed');
    return { kind: 'complete', id, attempt, name: row.name, queue: row.queue };
  } catch (thrown) {
    // An aborted attempt failed because of why it was aborted, whatever the
    // handler threw on its way out.
    const err = running.controller.signal.aborted ? running.controller.signal.reason : thrown;
    const permanent =
      err instanceof PermanentError || err instanceof PayloadValidationError || err instanceof UnknownJobError;
    const kind: JobErrorEntry['kind'] = err instanceof TimeoutError ? 'timeout' : 'error';
    // A failure that will be retried is routine; one that ends the job is not.
    const final = permanent || attempt >= row.max_attempts;
    jobLogger[final ? 'warn' : 'info'](
      { durationMs: Math.round(performance.now() - started), err: serializeError(err), permanent, final },
      final ? 'job failed for good' : 'job attempt failed; will retry',
    );
    const custom = registration?.job.backoffFunction;
    let retryDelayMs: number | null = null;
    if (custom && !permanent) {
      const ms = Number(custom(attempt, err));
      retryDelayMs = Number.isFinite(ms) ? Math.min(Math.max(Math.round(ms), 0), 2_147_483_647) : null;
    }
    return {
      kind: 'fail',
      id,
      attempt,
      name: row.name,
      queue: row.queue,
      permanent,
      retryDelayMs,
      error: { attempt, at: new Date().toISOString(), kind, ...serializeError(err) },
    };
  } finally {
    if (timer) clearTimeout(timer);
    if (grace) clearTimeout(grace);
  }
}
