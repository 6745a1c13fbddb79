// Sluice: the producer side. Enqueue inside the caller's transaction, look
// jobs up, cancel, retry and replay them, and migrate the schema.
import type pg from 'pg';
import type { Logger } from 'pino';
import type { z } from 'zod';
import { MAX_PAYLOAD_BYTES_DEFAULT, enqueueOptionsSchema, parseOptions } from './config.js';
import { openPool, type ConnectionOptions } from './connection.js';
import { JobNotFoundError, PayloadTooLargeError, UnknownJobError, ValidationError } from './errors.js';
import { toQueryable, type Executor, type Queryable } from './executor.js';
import { parsePayload, type JobDefinition } from './job.js';
import { defaultLogger } from './logger.js';
import { migrate, type MigrateOptions } from './migrate.js';
import type { JobErrorEntry } from './schema.js';
import { deadReplay } from './sql/dead-jobs.js';
import { jobTypeUpsertMany } from './sql/job-types.js';
import { jobCancel, jobEnqueueMany, jobGet, jobRetryNow } from './sql/jobs.js';
import { translateDbError } from './db-errors.js';
import { Schedules } from './schedules.js';

export interface SluiceOptions extends ConnectionOptions {
  /** Job definitions enqueue may name by string. */
  jobs?: readonly JobDefinition[];
  logger?: Logger;
  /** Largest payload accepted, in bytes of its JSON text. Default 1 MiB. */
  maxPayloadBytes?: number;
}

export interface EnqueueOptions {
  /** The caller's transaction or connection: the job commits or rolls back with it. */
  tx?: Executor;
  /** When the job may run. Exclusive with delayMs. */
  runAt?: Date;
  /** Milliseconds from now until the job may run. Exclusive with runAt. */
  delayMs?: number;
  priority?: number;
  maxAttempts?: number;
  /** Time limit of each attempt in milliseconds; overrides the job definition's. */
  timeoutMs?: number;
  /** While a live job has this key in the queue, enqueue returns that job's id instead. */
  uniqueKey?: string;
  tags?: string[];
}

export type EnqueueManyOptions = Omit<EnqueueOptions, 'uniqueKey'>;

export type JobState = 'scheduled' | 'available' | 'running' | 'completed' | 'cancelled' | 'dropped' | 'dead';

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
  createdAt: Date;
  runAt: Date;
  attemptedAt: Date | null;
  finishedAt: Date | null;
  lockedBy: string | null;
}

type AnyJob = JobDefinition<z.ZodType>;

export class Sluice {
  readonly pool: pg.Pool;
  readonly logger: Logger;
  private readonly ownsPool: boolean;
  private readonly jobsByName = new Map<string, AnyJob>();
  private readonly maxPayloadBytes: number;
  /** Cron schedules: add, list, enable, disable, remove, runNow. */
  readonly schedules: Schedules;

  constructor(options: SluiceOptions = {}) {
    this.logger = options.logger ?? defaultLogger();
    const { pool, owned } = openPool(options, this.logger);
    this.pool = pool;
    this.ownsPool = owned;
    this.maxPayloadBytes = options.maxPayloadBytes ?? MAX_PAYLOAD_BYTES_DEFAULT;
    if (!Number.isInteger(this.maxPayloadBytes) || this.maxPayloadBytes < 1) {
      throw new ValidationError('maxPayloadBytes', 'must be a positive integer');
    }
    for (const job of options.jobs ?? []) this.jobsByName.set(job.name, job);
    this.schedules = new Schedules(this.pool);
  }

  /** Applies sluice's migrations; see migrate(). */
  async migrate(options?: MigrateOptions): Promise<void> {
    await migrate(this.pool, options);
  }

  /** Writes the defaults of the registered jobs so `sluice.enqueue(...)` in SQL uses them. */
  async registerJobs(options: { tx?: Executor } = {}): Promise<void> {
    await jobTypeUpsertMany(this.db(options.tx), [...this.jobsByName.values()]);
  }

  /** Enqueues one job; returns its id. Validates the payload first: a bad one writes nothing. */
  async enqueue<S extends z.ZodType>(
    job: JobDefinition<S> | string,
    payload: z.input<S>,
    options: EnqueueOptions = {},
  ): Promise<number> {
    const [id] = await this.insert(job, [payload], options, options.uniqueKey ?? null);
    return id!;
  }

  /** Enqueues many jobs of one kind in one statement; returns their ids in order. */
  async enqueueMany<S extends z.ZodType>(
    job: JobDefinition<S> | string,
    payloads: readonly z.input<S>[],
    options: EnqueueManyOptions = {},
  ): Promise<number[]> {
    if (!Array.isArray(payloads)) throw new ValidationError('payloads', 'must be an array');
    return this.insert(job, payloads, options, null);
  }

  private async insert(
    jobOrName: AnyJob | string,
    payloads: readonly unknown[],
    options: EnqueueOptions,
    uniqueKey: string | null,
  ): Promise<number[]> {
    const job = this.resolveJob(jobOrName);
    const opts = parseOptions(enqueueOptionsSchema, options, 'options');
    if (opts.runAt && opts.delayMs !== undefined) {
      throw new ValidationError('options.delayMs', 'give runAt or delayMs, not both');
    }
    const parsed = payloads.map((p) => {
      const value = parsePayload(job, p);
      const size = Buffer.byteLength(JSON.stringify(value ?? null));
      if (size > this.maxPayloadBytes) throw new PayloadTooLargeError(job.name, size, this.maxPayloadBytes);
      return value;
    });
    if (parsed.length === 0) return [];
    const runAt = opts.runAt ?? (opts.delayMs !== undefined ? new Date(Date.now() + opts.delayMs) : null);
    try {
      return await jobEnqueueMany(this.db(opts.tx as Executor | undefined), {
        name: job.name,
        payloads: parsed,
        queue: job.queue,
        runAt,
        priority: opts.priority ?? job.priority,
        maxAttempts: opts.maxAttempts ?? job.maxAttempts,
        timeoutMs: opts.timeoutMs ?? job.timeoutMs ?? null,
        backoff: job.backoff,
        uniqueKeys: uniqueKey === null ? null : [uniqueKey],
        tags: opts.tags ?? null,
      });
    } catch (err) {
      throw translateDbError(err);
    }
  }

  private resolveJob(jobOrName: AnyJob | string): AnyJob {
    if (typeof jobOrName !== 'string') {
      if (!jobOrName || typeof jobOrName !== 'object' || typeof jobOrName.name !== 'string') {
        throw new ValidationError('job', 'expected a job definition from defineJob() or a registered job name');
      }
      return jobOrName;
    }
    const job = this.jobsByName.get(jobOrName);
    if (!job) throw new UnknownJobError(jobOrName);
    return job;
  }

  /** Where the job is now: live, finished or dead. Throws JobNotFoundError for an unknown id. */
  async getJob(id: number, options: { tx?: Executor } = {}): Promise<JobRecord> {
    const row = await jobGet(this.db(options.tx), checkId(id));
    if (!row) throw new JobNotFoundError([id]);
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
      createdAt: row.created_at,
      runAt: row.run_at,
      attemptedAt: row.attempted_at,
      finishedAt: row.finished_at,
      lockedBy: row.locked_by,
    };
  }

  /**
   * Cancels a live job and returns the state it was in. A running job's
   * handler gets its AbortSignal fired in whichever worker runs it, and its
   * late answer is refused. Throws JobNotFoundError when no live job has the id.
   */
  async cancel(id: number, options: { tx?: Executor } = {}): Promise<'scheduled' | 'available' | 'running'> {
    const state = await jobCancel(this.db(options.tx), checkId(id));
    if (state === null) throw new JobNotFoundError([id], 'live job');
    return state as 'scheduled' | 'available' | 'running';
  }

  /** Runs a job now: a dead job is replayed, a job waiting for its retry is made available. */
  async retry(id: number, options: { tx?: Executor } = {}): Promise<void> {
    const db = this.db(options.tx);
    if (await jobRetryNow(db, checkId(id))) return;
    const job = await jobGet(db, id);
    if (job?.state === 'dead') {
      await this.replayDead([id], options);
      return;
    }
    throw new JobNotFoundError([id], 'dead or retry-waiting job');
  }

  /** Puts dead jobs back in their queues with a fresh attempt budget. Nothing is replayed unless every id is dead. */
  async replayDead(ids: readonly number[], options: { tx?: Executor } = {}): Promise<number[]> {
    if (!Array.isArray(ids) || ids.length === 0) throw new ValidationError('ids', 'must be a non-empty array of job ids');
    ids.forEach((id) => checkId(id));
    try {
      return await deadReplay(this.db(options.tx), [...ids]);
    } catch (err) {
      throw translateDbError(err);
    }
  }

  /** Ends the pool if sluice created it. */
  async close(): Promise<void> {
    if (this.ownsPool) await this.pool.end();
  }

  private db(tx: Executor | undefined): Queryable {
    return tx === undefined ? this.pool : toQueryable(tx);
  }
}

function checkId(id: unknown): number {
  if (typeof id !== 'number' || !Number.isSafeInteger(id) || id < 1) {
    throw new ValidationError('id', 'must be a positive integer job id');
  }
  return id;
}

export function createSluice(options: SluiceOptions = {}): Sluice {
  return new Sluice(options);
}
