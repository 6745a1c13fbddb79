// Named errors. Messages say which field or id was wrong and why; they never
// carry payload contents.
import { UNSTORABLE_CHARS } from './json-text.js';
import { safeMessage, safeStack, safeString } from './log-safety.js';

export class SluiceError extends Error {
  override name = 'SluiceError';
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
  }
}

/** An option or argument failed validation. `field` names it. */
export class ValidationError extends SluiceError {
  override name = 'ValidationError';
  constructor(
    readonly field: string,
    reason: string,
    options?: { cause?: unknown },
  ) {
    super(`${field}: ${reason}`, options);
  }
}

/** Options that are each valid but cannot work together. `fields` names every one involved. */
export class OptionsConflictError extends ValidationError {
  override name = 'OptionsConflictError';
  constructor(
    readonly fields: readonly string[],
    reason: string,
  ) {
    super(fields.join(' + '), reason);
  }
}

/** A payload failed its job's zod schema. `issues` holds paths and reasons, not values. */
export class PayloadValidationError extends SluiceError {
  override name = 'PayloadValidationError';
  constructor(
    readonly jobName: string,
    readonly issues: { path: string; message: string }[],
    options?: { cause?: unknown },
  ) {
    super(
      `payload for job "${jobName}" is invalid: ${issues.map((i) => `${i.path || '(root)'}: ${i.message}`).join('; ')}`,
      options,
    );
  }
}

/** A job's schema does not come from zod 4, the version sluice validates with. */
export class UnsupportedSchemaError extends ValidationError {
  override name = 'UnsupportedSchemaError';
  constructor(
    readonly jobName: string,
    field: 'schema' | 'result',
    found: string,
  ) {
    super(field, `job "${jobName}" has ${found}; sluice needs a zod 4 schema (zod@^4, imported from "zod" or "zod/mini")`);
  }
}

/** A handler returned a value that fails its job's result schema. `issues` holds paths and reasons, not values. */
export class ResultValidationError extends SluiceError {
  override name = 'ResultValidationError';
  constructor(
    readonly jobName: string,
    readonly issues: { path: string; message: string }[],
  ) {
    super(`result of job "${jobName}" is invalid: ${issues.map((i) => `${i.path || '(root)'}: ${i.message}`).join('; ')}`);
  }
}

export class PayloadTooLargeError extends SluiceError {
  override name = 'PayloadTooLargeError';
  constructor(
    readonly jobName: string,
    readonly sizeBytes: number,
    readonly limitBytes: number,
  ) {
    super(`payload for job "${jobName}" is ${sizeBytes} bytes, over the ${limitBytes}-byte limit`);
  }
}

export class UnknownJobError extends SluiceError {
  override name = 'UnknownJobError';
  /** `where`: 'sluice.job_types' when the database has no job type of that name. */
  constructor(
    readonly jobName: string,
    where?: 'sluice.job_types',
    options?: { cause?: unknown },
  ) {
    super(
      where
        ? `no job named "${jobName}" in ${where}: start a worker that handles it, or call sluice.registerJobs(), before naming it`
        : `no job named "${jobName}" is registered`,
      options,
    );
  }
}

export class JobNotFoundError extends SluiceError {
  override name = 'JobNotFoundError';
  constructor(
    readonly ids: readonly number[],
    where = 'job',
    options?: { cause?: unknown },
  ) {
    super(`no ${where} with id ${ids.join(', ')}`, options);
  }
}

/** Thrown by a handler to fail a job at once, without further retries. */
export class PermanentError extends SluiceError {
  override name = 'PermanentError';
}

/** A handler ran past its job's timeoutMs. */
export class TimeoutError extends SluiceError {
  override name = 'TimeoutError';
  constructor(readonly timeoutMs: number) {
    super(`handler did not finish within ${timeoutMs} ms`);
  }
}

/** The job was cancelled while its handler ran; the handler's signal fires with this. */
export class CancelledError extends SluiceError {
  override name = 'CancelledError';
  constructor(readonly jobId: number) {
    super(`job ${jobId} was cancelled`);
  }
}

/** The attempt no longer holds its job (rescued, cancelled or timed out elsewhere); its writes are refused. */
export class LeaseLostError extends SluiceError {
  override name = 'LeaseLostError';
  constructor(
    readonly jobId: number,
    readonly attempt: number,
  ) {
    super(`job ${jobId} attempt ${attempt} no longer holds the job`);
  }
}

/** A waited-for job ended without completing (dead or dropped). `cause` holds its last error. */
export class JobFailedError extends SluiceError {
  override name = 'JobFailedError';
  constructor(
    readonly jobId: number,
    readonly state: string,
    options?: { cause?: unknown },
  ) {
    super(`job ${jobId} ended ${state}`, options);
  }
}

/** waitFor gave up before the job finished. */
export class WaitTimeoutError extends SluiceError {
  override name = 'WaitTimeoutError';
  constructor(
    readonly jobId: number,
    readonly timeoutMs: number,
  ) {
    super(`job ${jobId} did not finish within ${timeoutMs} ms`);
  }
}

/**
 * The queue is at its maxDepth: its overflow policy is reject, or block and no
 * room came within blockTimeoutMs (`waitedMs`), or the batch is larger than
 * maxDepth. Nothing was written.
 */
export class QueueFullError extends SluiceError {
  override name = 'QueueFullError';
  readonly waitedMs: number | undefined;
  constructor(readonly queue: string, options?: { cause?: unknown; waitedMs?: number; why?: string }) {
    const waited = options?.waitedMs !== undefined ? ` (waited ${options.waitedMs} ms for room)` : '';
    super(`queue "${queue}" is full${waited}${options?.why ? `: ${options.why}` : ''}`, options);
    this.waitedMs = options?.waitedMs;
  }
}

/**
 * A statement that counts before it writes ran under an isolation level other
 * than READ COMMITTED: a claim (any worker session), or an enqueue into a
 * queue with a maxDepth. Under REPEATABLE READ or SERIALIZABLE it would count
 * in a snapshot taken before it waited for the queue's lock, and run a limited
 * queue over its limit or a bounded one over its depth. Nothing was written.
 * `level` is the transaction's level, as PostgreSQL names it.
 */
export class IsolationLevelError extends SluiceError {
  override name = 'IsolationLevelError';
  constructor(
    readonly level: string,
    readonly what: string,
    options?: { cause?: unknown },
  ) {
    super(
      `${what} needs READ COMMITTED, and this transaction is ${level}: set default_transaction_isolation to 'read committed' for the role or database (ALTER ROLE ... SET default_transaction_isolation = 'read committed'), or run it in a READ COMMITTED transaction`,
      options,
    );
  }
}

/** A job to depend on ended without completing, so the new job could never run. */
export class DependencyError extends SluiceError {
  override name = 'DependencyError';
}

/** A dead job that a replay refused, and the parent in its way: dead (and not replayed with it), cancelled or dropped. */
export interface BlockedReplay {
  jobId: number;
  parentId: number;
  parentState: 'dead' | 'cancelled' | 'dropped';
}

/**
 * Dead jobs asked to be replayed depend on a job that ended without completing
 * and is not replayed with them, so they could never run. Nothing was
 * replayed. `blocked` holds the first ten such jobs with their parents, of
 * `count` in all. Replay a dead parent with its children, purge a job that
 * should not run, or purge a dead parent to run its children without it.
 */
export class ReplayDependencyError extends DependencyError {
  override name = 'ReplayDependencyError';
  constructor(
    readonly blocked: readonly BlockedReplay[],
    readonly count: number,
    options?: { cause?: unknown },
  ) {
    const list = blocked.map((b) => `job ${b.jobId} on ${b.parentState} job ${b.parentId}`).join('; ');
    const more = count > blocked.length ? `; and ${count - blocked.length} more` : '';
    super(
      `nothing was replayed: ${count} job(s) depend on a job that ended without completing and is not replayed with them (${list}${more}). ` +
        'Replay a dead parent with its children, purge a job that should not run, or purge a dead parent to run its children without it',
      options,
    );
  }
}

/**
 * An enqueue's unique key is held by a live job of another name in the same
 * queue (unique keys are unique per queue). The holder's id is not returned:
 * it is not a job of the name asked for.
 */
export class UniqueKeyConflictError extends SluiceError {
  override name = 'UniqueKeyConflictError';
}

/** The database was migrated by a newer sluice than this one. */
export class SchemaTooNewError extends SluiceError {
  override name = 'SchemaTooNewError';
  constructor(
    readonly databaseMigrationAt: number,
    readonly knownMigrationAt: number,
  ) {
    super(
      `the database schema was migrated by a newer sluice (migration ${databaseMigrationAt} > ${knownMigrationAt}); upgrade sluice before running against it`,
    );
  }
}

export class MigrationError extends SluiceError {
  override name = 'MigrationError';
}

/**
 * The database has no sluice schema, or an older one than this sluice needs.
 * `databaseVersion`: migrations applied (null: none); `requiredVersion`: what
 * this sluice ships; `missing`, in the message: which migrations or SQL
 * function files are not in. The CLI exits with code 4 on it.
 */
export class SchemaNotMigratedError extends MigrationError {
  override name = 'SchemaNotMigratedError';
  constructor(
    readonly databaseVersion: number | null,
    readonly requiredVersion: number,
    missing?: string,
    options?: { cause?: unknown },
  ) {
    const state =
      databaseVersion === null
        ? 'is not installed'
        : missing && databaseVersion >= requiredVersion
          ? `is at version ${databaseVersion} but ${missing}`
          : `is at version ${databaseVersion}, this sluice needs ${requiredVersion}${missing ? ` (${missing})` : ''}`;
    super(`schema sluice ${state}: run \`sluice migrate\``, options);
  }
}

/** Something about the worker's own lifecycle was misused (start twice, ...). */
export class WorkerStateError extends SluiceError {
  override name = 'WorkerStateError';
}

/** No cron schedule has that name. */
export class ScheduleNotFoundError extends SluiceError {
  override name = 'ScheduleNotFoundError';
  constructor(readonly scheduleName: string) {
    super(`no schedule named "${scheduleName}"`);
  }
}

/** The Prometheus metrics server could not listen. */
export class MetricsServerError extends SluiceError {
  override name = 'MetricsServerError';
}

/** The HTTP API server could not listen. */
export class HttpApiServerError extends SluiceError {
  override name = 'HttpApiServerError';
}

/** worker.start() could not reach the database within its startTimeoutMs; `cause` is the last connection error. */
export class DatabaseUnavailableError extends SluiceError {
  override name = 'DatabaseUnavailableError';
  constructor(
    readonly timeoutMs: number,
    options?: { cause?: unknown },
  ) {
    super(`the database could not be reached within startTimeoutMs (${timeoutMs} ms)`, options);
  }
}

/** Error-like shape stored in a job's error history. */
export interface SerializedError {
  name: string;
  message: string;
  stack?: string;
}

/** Error text goes into jsonb, which refuses NUL and lone surrogates: those become U+FFFD. */
function storable(text: string): string {
  return text.replace(UNSTORABLE_CHARS, '\uFFFD');
}

/** The error as stored in a job's history: name, message and stack, with no quoted value (see safeMessage). */
export function serializeError(err: unknown): SerializedError {
  if (err instanceof Error) {
    const message = safeMessage(err);
    const stack = safeStack(err, message);
    return { name: storable(safeString(err.name)), message: storable(message), ...(stack ? { stack: storable(stack) } : {}) };
  }
  return { name: 'NonError', message: storable(safeString(err)) };
}
