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
import type { ClaimedJobRow } from '../sql/job-leases.js';
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

/**
 * The context a handler sees. A class, so the accessors live once on the
 * prototype instead of being made for every job (a worker starts thousands a
 * second); the logger, the signal and the progress writer are made on first
 * use, since most jobs never log, listen or report progress.
 */
class RunContext implements MiddlewareContext {
  private jobLogger: Logger | undefined;
  private replacedSignal: AbortSignal | undefined;
  progressWriter: ReturnType<typeof progressReporter> | undefined;

  constructor(
    readonly job: MiddlewareContext['job'],
    readonly payload: unknown,
    private readonly running: RunningJob,
    private readonly env: RunJobEnv,
  ) {}

  log(): Logger {
    const { job } = this;
    return (this.jobLogger ??= this.env.logger.child({ jobId: job.id, job: job.name, queue: job.queue, attempt: job.attempt }));
  }

  // Middleware may replace either (a child logger with a trace id, a
  // combined signal); getters alone would make that assignment throw.
  get signal(): AbortSignal {
    return this.replacedSignal ?? this.running.abort.signal;
  }

  set signal(value: AbortSignal) {
    this.replacedSignal = value;
  }

  get logger(): Logger {
    return this.log();
  }

  set logger(value: Logger) {
    this.jobLogger = value;
  }

  progress(pct: number, message?: string): Promise<void> {
    this.progressWriter ??= progressReporter(this.env.db, this.running, this.env.workerId, this.log());
    return this.progressWriter.report(pct, message);
  }
}

function isThenable(value: unknown): value is PromiseLike<unknown> {
  return value !== null && (typeof value === 'object' || typeof value === 'function') && typeof (value as PromiseLike<unknown>).then === 'function';
}

export async function runJob(
  row: ClaimedJobRow,
  running: RunningJob,
  registration: JobRegistration | undefined,
  env: RunJobEnv,
): Promise<Ack> {
  const { id, attempt, abort } = running;
  let ctx: RunContext | undefined;
  const log = () => ctx?.log() ?? env.logger.child({ jobId: id, job: row.name, queue: row.queue, attempt });
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
    const context = (ctx = new RunContext(
      { id, name: row.name, queue: row.queue, attempt, maxAttempts: row.max_attempts, createdAt: row.created_at },
      payload,
      running,
      env,
    ));
    const work =
      env.middleware.length === 0
        ? registration.handler(payload, context)
        : compose(env.middleware, context, async () => registration.handler(payload, context));
    // Once aborted (timeout, cancel, shutdown) the handler gets a grace period
    // to wind down; after it the slot is freed whether the handler listened or
    // not, and whatever it answers later is never applied. A handler that
    // answered synchronously has nothing left to wait for.
    const value = !isThenable(work)
      ? work
      : await new Promise<unknown>((resolve, reject) => {
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
    // A name without a handler here is not permanent: during a rolling
    // deploy, workers of the older code claim job types that only the newer
    // code handles; the retries (with backoff) reach a worker that does.
    const permanent = err instanceof PermanentError || err instanceof PayloadValidationError || err instanceof ResultValidationError;
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
      // A backoff function that throws must not take the failure with it:
      // the job type's stored backoff decides instead, as for a non-number.
      try {
        const ms = Number(custom(attempt, err));
        retryDelayMs = Number.isFinite(ms) ? Math.min(Math.max(Math.round(ms), 0), 2_147_483_647) : null;
      } catch (backoffErr) {
        log().warn({ err: serializeError(backoffErr) }, "the job type's backoff function threw; its stored backoff applies");
      }
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
    ctx?.progressWriter?.dispose();
  }
}
