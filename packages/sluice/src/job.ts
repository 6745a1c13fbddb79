// defineJob: a job's name, queue, payload schema and retry policy, and the
// typed handler a worker runs for it.
import type { Logger } from 'pino';
import type { z } from 'zod';
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
import { PayloadValidationError, ResultValidationError, ValidationError } from './errors.js';
import { checkSchemaLibrary, safeParse, type Schema } from './zod-schema.js';

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

export type JobHandler<P, R = unknown> = (payload: P, ctx: JobContext) => Promise<R> | R;

/** What a compiler shows when a job's schema is not a zod 4 schema (say, one from zod 3). */
export type NeedsZod4 = 'sluice needs a zod 4 schema: zod@^4, imported from "zod" or "zod/mini"';

export interface DefineJobOptions<N extends string = string, S = Schema, R extends Schema | undefined = undefined> {
  name: N;
  /** A zod 4 schema for the payload. */
  schema: S extends Schema ? S : NeedsZod4;
  /**
   * A zod 4 schema for what the handler returns. The handler's return type is
   * checked against it, `waitFor` on the job's id is typed by it, and the
   * worker validates the value before storing it (a mismatch fails the job
   * with ResultValidationError). Keep it JSON-shaped: the result is stored as
   * JSON. Default none: the result is `unknown`.
   */
  result?: R;
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

/** `S`: the payload schema; `R`: the result schema (or undefined); `N`: the name. */
export interface JobDefinition<S extends Schema = Schema, R extends Schema | undefined = Schema | undefined, N extends string = string> {
  readonly name: N;
  readonly queue: string;
  readonly schema: S;
  /** The result schema, when the job declares one. */
  readonly result: R;
  readonly maxAttempts: number;
  readonly backoff: ResolvedBackoff;
  readonly backoffFunction?: BackoffFunction;
  readonly timeoutMs?: number;
  readonly priority: number;
  /** Pairs this job with the function a worker runs for it. */
  handle(handler: JobHandler<z.output<S>, R extends Schema ? z.input<R> : unknown>): JobRegistration;
}

declare const resultType: unique symbol;
/**
 * A job's id: a plain number at run time that remembers, for the compiler,
 * what the job's handler returns, so `waitFor(id)` is typed by it.
 */
export type JobId<R = unknown> = number & { readonly [resultType]?: R };

/** Any job definition, whatever its schemas and name. */
export type AnyJob = JobDefinition<Schema, Schema | undefined, string>;
/** What enqueue accepts as the payload of job J. */
export type JobPayload<J> = J extends JobDefinition<infer S, Schema | undefined, string> ? z.input<S> : never;
/** What waitFor resolves with for job J: its result schema's output, or unknown. */
export type JobResult<J> = J extends JobDefinition<Schema, infer R, string> ? (R extends Schema ? z.output<R> : unknown) : unknown;

/** Names of the jobs a client was given. */
export type NameOf<Jobs extends readonly AnyJob[]> = Jobs[number]['name'];
/** The job a client resolves a name to; any job when the client was given no typed list. */
export type Named<Jobs extends readonly AnyJob[], N> = string extends NameOf<Jobs> ? AnyJob : Extract<Jobs[number], { name: N }>;
/** A job given by definition or by name, as the definition. */
export type Resolve<Jobs extends readonly AnyJob[], J> = J extends string ? Named<Jobs, J> : J;

export interface JobRegistration {
  job: AnyJob;
  handler: JobHandler<unknown>;
}

export function defineJob<const N extends string, S, R extends Schema | undefined = undefined>(
  options: DefineJobOptions<N, S, R>,
): JobDefinition<S extends Schema ? S : never, R, N> {
  type Def = JobDefinition<S extends Schema ? S : never, R, N>;
  if (typeof options !== 'object' || options === null) throw new ValidationError('defineJob', 'expected an options object');
  const { schema, result, backoff, ...rest } = options;
  const checked = parseOptions(jobOptionsSchema, rest, 'defineJob');
  checkSchemaLibrary(checked.name, schema);
  if (result !== undefined) checkSchemaLibrary(checked.name, result, 'result');
  const policy = typeof backoff === 'function' || backoff === undefined ? undefined : parseOptions(backoffSchema, backoff, 'defineJob.backoff');
  const definition: Def = {
    name: checked.name as N,
    queue: checked.queue ?? QUEUE_DEFAULT,
    schema: schema as Def['schema'],
    result: result as R,
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
      return { job: definition as AnyJob, handler: handler as JobHandler<unknown> };
    },
  };
  return definition;
}

/** Validates a payload against the job's schema; errors name the field, never its value. */
export function parsePayload<S extends Schema>(job: JobDefinition<S>, payload: unknown): z.output<S> {
  const result = safeParse(job.schema, payload);
  if (result.success) return result.data;
  throw new PayloadValidationError(job.name, result.issues);
}

/**
 * The worker parses the stored JSON with the same schema. A schema whose
 * output, as JSON, does not pass it again (a transform that changes a type, a
 * z.date() whose Date is stored as text) would send every such job to the dead
 * jobs without running it: refused at enqueue instead, with nothing written.
 * Checked on every payload: a field only some payloads carry (an optional
 * z.date()) passes in one and fails in another. It costs 0.5-0.9 µs a small
 * payload, against 0.7-1.4 µs for the validation and serialization before it.
 */
export function checkStoredPayload(job: AnyJob, text: string): void {
  const result = safeParse(job.schema, JSON.parse(text));
  if (result.success) return;
  throw new PayloadValidationError(
    job.name,
    result.issues.map((i) => ({ path: i.path, message: `${i.message} in the payload as stored (the schema's output as JSON, which the worker parses again)` })),
  );
}

/** Validates a handler's result against the job's result schema, when it has one. */
export function parseResult(job: AnyJob, value: unknown): unknown {
  if (job.result === undefined) return value;
  const result = safeParse(job.result, value);
  if (result.success) return result.data;
  throw new ResultValidationError(job.name, result.issues);
}
