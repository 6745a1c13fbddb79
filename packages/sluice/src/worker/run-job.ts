// Runs one claimed job's handler: validates the payload again (a row written
// by raw SQL may not match the schema), runs the middleware chain around the
// handler, enforces the timeout through the handler's AbortSignal, and turns
// the outcome into an acknowledgement.
import type { Logger } from 'pino';
import { PayloadValidationError, PermanentError, ResultValidationError, TimeoutError, UnknownJobError, serializeError } from '../errors.js';
import type { Queryable } from '../executor.js';
import { jsonText } from '../json-text.js';
import { parsePayload, parseResult, type JobRegistration, type Middleware, type MiddlewareContext } from '../job.js';
import type { JobErrorEntry } from '../job-record.js';
import type { ClaimedJobRow } from '../sql/jobs.js';
import type { Ack } from './completer.js';
import type { JobAbort } from './job-abort.js';
import { progressReporter } from './progress.js';

export interface RunningJob {
  id: number;
  attempt: number;
  /** The claim's lease token, presented with every write. */
  lease: number;
  abort: JobAbort;
}

export interface RunJobEnv {
  db: Queryable;
  workerId: string;
  logger: Logger;
  abortGraceMs: number;
  maxResultBytes: number;
  middleware: readonly Middleware[];
}

function compose(middleware: readonly Middleware[], ctx: MiddlewareContext, handler: () => Promise<unknown>): Promise<unknown> {
  const step = (i: number): Promise<unknown> => {
    const mw = middleware[i];
    if (!mw) return handler();
    let called = false;
    return mw(ctx, () => {
      if (called) return Promise.reject(new Error('middleware called next() twice'));
      called = true;
      return step(i + 1);
    });
  };
  return step(0);
}

/**
 * The result as stored: JSON text, or null when absent, over the size limit,
 * or not storable as it is (a NaN, a function, ...). The handler's work is
 * done, so an unstorable result costs the result (with a warning naming
 * where and why), never a retry of the job.
 */
function storedResult(value: unknown, maxBytes: number, log: () => Logger): string | null {
  if (value === undefined) return null;
  const text = jsonText(value);
  if (typeof text !== 'string') {
    log().warn({ path: text.path, reason: text.reason }, 'job result cannot be stored as JSON as it is; not stored');
    return null;
  }
  const size = Buffer.byteLength(text);
  if (size > maxBytes) {
    log().warn({ sizeBytes: size, maxResultBytes: maxBytes }, 'job result over maxResultBytes; not stored');
    return null;
  }
  return text;
}

export async function runJob(
  row: ClaimedJobRow,
  running: RunningJob,
  registration: JobRegistration | undefined,
  env: RunJobEnv,
): Promise<Ack> {
  const { id, attempt, abort } = running;
  // The child logger and the progress writer are made on first use: most
  // jobs never log or report progress, and a worker starts thousands a second.
  let jobLogger: Logger | undefined;
  const log = () => (jobLogger ??= env.logger.child({ jobId: id, job: row.name, queue: row.queue, attempt }));
  let progress: ReturnType<typeof progressReporter> | undefined;
  let signal: AbortSignal | undefined;
  const started = performance.now();
  let timer: NodeJS.Timeout | undefined;
  let grace: NodeJS.Timeout | undefined;
  const base = { id, attempt, lease: running.lease, name: row.name, queue: row.queue };
  try {
    if (!registration) throw new UnknownJobError(row.name);
    const payload = parsePayload(registration.job, row.payload);
    const timeoutMs = row.timeout_ms ?? registration.job.timeoutMs;
    if (timeoutMs) {
      timer = setTimeout(() => abort.abort(new TimeoutError(timeoutMs)), timeoutMs);
    }
    const ctx: MiddlewareContext = {
      job: { id, name: row.name, queue: row.queue, attempt, maxAttempts: row.max_attempts, createdAt: row.created_at },
      // Middleware may replace either (a child logger with a trace id, a
      // combined signal); getters alone would make that assignment throw.
      get signal() {
        return signal ?? abort.signal;
      },
      set signal(value: AbortSignal) {
        signal = value;
      },
      get logger() {
        return log();
      },
      set logger(value: Logger) {
        jobLogger = value;
      },
      progress: (pct, message) => (progress ??= progressReporter(env.db, running, env.workerId, log())).report(pct, message),
      payload,
    };
    const work = Promise.resolve().then(() =>
      env.middleware.length === 0
        ? registration.handler(payload, ctx)
        : compose(env.middleware, ctx, async () => registration.handler(payload, ctx)),
    );
    // Once aborted (timeout, cancel, shutdown) the handler gets a grace period
    // to wind down; after it the slot is freed whether the handler listened or
    // not, and whatever it answers later is never applied.
    const value = await new Promise<unknown>((resolve, reject) => {
      work.then(resolve, reject);
      abort.onAbort((reason) => {
        grace = setTimeout(() => reject(reason), env.abortGraceMs);
      });
    });
    if (abort.aborted) throw abort.reason;
    const runMs = Math.round(performance.now() - started);
    if (env.logger.isLevelEnabled('debug')) log().debug({ durationMs: runMs }, 'job completed');
    const result = parseResult(registration.job, value);
    return { kind: 'complete', ...base, runMs, result: storedResult(result, env.maxResultBytes, log) };
  } catch (thrown) {
    // An aborted attempt failed because of why it was aborted, whatever the
    // handler threw on its way out.
    const err = abort.aborted ? abort.reason : thrown;
    const runMs = Math.round(performance.now() - started);
    const permanent =
      err instanceof PermanentError ||
      err instanceof PayloadValidationError ||
      err instanceof ResultValidationError ||
      err instanceof UnknownJobError;
    const kind: JobErrorEntry['kind'] = err instanceof TimeoutError ? 'timeout' : 'error';
    // A failure that will be retried is routine; one that ends the job is not.
    const final = permanent || attempt >= row.max_attempts;
    log()[final ? 'warn' : 'info'](
      { durationMs: runMs, err: serializeError(err), permanent, final },
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
      ...base,
      runMs,
      permanent,
      retryDelayMs,
      error: { attempt, at: new Date().toISOString(), kind, ...serializeError(err) },
    };
  } finally {
    if (timer) clearTimeout(timer);
    if (grace) clearTimeout(grace);
    progress?.dispose();
  }
}
