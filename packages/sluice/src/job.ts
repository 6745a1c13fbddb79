// defineJob: a job's name, queue, payload schema and retry policy, and the
// typed handler a worker runs for it.
import type { Logger } from 'pino';
import { z } from 'zod';
import {
  BACKOFF_BASE_MS_DEFAULT,
  BACKOFF_FACTOR_DEFAULT,
  BACKOFF_JITTER_DEFAULT,
  BACKOFF_MAX_MS_DEFAULT,
  MAX_ATTEMPTS_DEFAULT,
  PRIORITY_DEFAULT,
  QUEUE_DEFAULT,
  backoffSchema,
  jobOptionsSchema,
  parseOptions,
  priorityValue,
  type PriorityName,
  type BackoffFunction,
  type BackoffPolicy,
} from './config.js';
import { PayloadValidationError, ValidationError } from './errors.js';

export interface ResolvedBackoff {
  kind: 'fixed' | 'exponential';
  baseMs: number;
  factor: number;
  maxMs: number;
  jitter: number;
}

export interface JobInfo {
  id: number;
  name: string;
  queue: string;
  attempt: number;
  maxAttempts: number;
  createdAt: Date;
}

export interface JobContext {
  job: JobInfo;
  /** Fires when the job times out, is cancelled, loses its lease or the worker stops; a handler should stop work. */
  signal: AbortSignal;
  logger: Logger;
  /**
   * Records progress (0-100) and a short message on the job row. Writes are
   * throttled and fenced: once the attempt no longer holds the job, the write
   * is refused and `signal` fires.
   */
  progress(pct: number, message?: string): Promise<void>;
}

/** Context a middleware sees: the job context plus the validated payload. */
export interface MiddlewareContext extends JobContext {
  payload: unknown;
}

/** Runs around every handler, in the order registered; call next() to go on, return its result. */
export type Middleware = (ctx: MiddlewareContext, next: () => Promise<unknown>) => Promise<unknown>;

export type JobHandler<P> = (payload: P, ctx: JobContext) => Promise<unknown> | unknown;

export interface DefineJobOptions<S extends z.ZodType> {
  name: string;
  schema: S;
  /** Queue the job goes to. Default "default". */
  queue?: string;
  /** Attempts before the dead-letter queue. Default 25. */
  maxAttempts?: number;
  /** Retry delay policy, or a function of the attempt number returning milliseconds. */
  backoff?: BackoffPolicy | BackoffFunction;
  /** Per-attempt time limit in milliseconds. Default none. */
  timeoutMs?: number;
  /** Higher runs first: a number or critical (20), high (10), normal (0), low (-10). Default normal. */
  priority?: number | PriorityName;
}

export interface JobDefinition<S extends z.ZodType = z.ZodType> {
  readonly name: string;
  readonly queue: string;
  readonly schema: S;
  readonly maxAttempts: number;
  readonly backoff: ResolvedBackoff;
  readonly backoffFunction?: BackoffFunction;
  readonly timeoutMs?: number;
  readonly priority: number;
  /** Pairs this job with the function a worker runs for it. */
  handle(handler: JobHandler<z.output<S>>): JobRegistration;
}

export interface JobRegistration {
  job: JobDefinition;
  handler: JobHandler<unknown>;
}

export function defineJob<S extends z.ZodType>(options: DefineJobOptions<S>): JobDefinition<S> {
  if (typeof options !== 'object' || options === null) throw new ValidationError('defineJob', 'expected an options object');
  const { schema, backoff, ...rest } = options;
  const checked = parseOptions(jobOptionsSchema, rest, 'defineJob');
  if (!(schema instanceof z.ZodType)) {
    throw new PayloadValidationError(checked.name, [{ path: 'schema', message: 'must be a zod schema' }]);
  }
  const policy = typeof backoff === 'function' || backoff === undefined ? undefined : parseOptions(backoffSchema, backoff, 'defineJob.backoff');
  const definition: JobDefinition<S> = {
    name: checked.name,
    queue: checked.queue ?? QUEUE_DEFAULT,
    schema,
    maxAttempts: checked.maxAttempts ?? MAX_ATTEMPTS_DEFAULT,
    backoff: {
      kind: policy?.kind ?? 'exponential',
      baseMs: policy?.baseMs ?? BACKOFF_BASE_MS_DEFAULT,
      factor: policy?.factor ?? BACKOFF_FACTOR_DEFAULT,
      maxMs: policy?.maxMs ?? BACKOFF_MAX_MS_DEFAULT,
      jitter: policy?.jitter ?? BACKOFF_JITTER_DEFAULT,
    },
    ...(typeof backoff === 'function' ? { backoffFunction: backoff } : {}),
    ...(checked.timeoutMs !== undefined ? { timeoutMs: checked.timeoutMs } : {}),
    priority: checked.priority === undefined ? PRIORITY_DEFAULT : priorityValue(checked.priority),
    handle(handler) {
      return { job: definition as JobDefinition, handler: handler as JobHandler<unknown> };
    },
  };
  return definition;
}

/** Validates a payload against the job's schema; errors name the field, never its value. */
export function parsePayload<S extends z.ZodType>(job: JobDefinition<S>, payload: unknown): z.output<S> {
  const result = job.schema.safeParse(payload);
  if (result.success) return result.data;
  throw new PayloadValidationError(
    job.name,
    result.error.issues.map((i) => ({ path: i.path.map(String).join('.'), message: i.message })),
  );
}
