// Sluice: the producer side. Enqueue inside the caller's transaction (one job,
// many, a batch, a flow, an event), look jobs up and wait for them, cancel,
// retry and replay them, manage queues and schedules, and migrate.
import type pg from 'pg';
import type { Logger } from 'pino';
import { z } from 'zod';
import { callOptions, txOptionsSchema } from './call-options.js';
import { ClientListener } from './client-listener.js';
import { MAX_PAYLOAD_BYTES_DEFAULT, checkName, parseOptions } from './config.js';
import { openListenPool, openPool, openReadPool, type ConnectionOptions, type OwnedPool } from './connection.js';
import { translateDbError } from './db-errors.js';
import { buildEnqueueArgs, type EnqueueBuild, type EnqueueManyOptions, type EnqueueOptions } from './enqueue-options.js';
import { JobNotFoundError, PayloadTooLargeError, UnknownJobError, ValidationError } from './errors.js';
import { toQueryable, type Executor, type Queryable } from './executor.js';
import { inStep, orderFlow, parentIds, type CheckedSteps, type FlowIds, type FlowStep } from './flow.js';
import { parsePayload, type AnyJob, type JobId, type JobPayload, type JobResult, type NameOf, type Resolve } from './job.js';
import { jsonText } from './json-text.js';
import { toJobRecord, type JobRecord } from './job-record.js';
import { sluiceLogger } from './logger.js';
import { MIGRATIONS_FOLDER_DEFAULT, migrate, type MigrateOptions, type MigrateResult } from './migrate.js';
import { Queues } from './queue-admin.js';
import { refuseWhatCannotFit } from './queue-room.js';
import { RoomWaiter } from './room-waiter.js';
import { requireMigrated } from './schema-version.js';
import { Schedules } from './schedules.js';
import { batchCallbackTypeSave, batchCreate } from './sql/batches.js';
import { deadReplay } from './sql/dead-jobs.js';
import { jobTypeUpsertMany } from './sql/job-types.js';
import { jobCancel, jobEnqueueManyInTransaction, jobGet, jobRetryNow, jobWakeWorkers } from './sql/jobs.js';
import { eventPublish } from './sql/subscriptions.js';
import { commitsOnReturn, inTransaction } from './transaction.js';
import { FinishWaiter } from './wait-for.js';

export type { EnqueueOptions, EnqueueManyOptions } from './enqueue-options.js';
export type { JobRecord, JobState } from './job-record.js';

/** Rows per statement when a batch is enqueued. */
export const BATCH_CHUNK_SIZE = 1_000;
/** How long waitFor() waits by default. */
export const WAIT_FOR_TIMEOUT_MS_DEFAULT = 30_000;

export interface SluiceOptions<Jobs extends readonly AnyJob[] = readonly AnyJob[]> extends ConnectionOptions {
  /** Job definitions enqueue may name by string; the names and payloads are typed from them. */
  jobs?: Jobs;
  logger?: Logger;
  /** Largest payload accepted, in bytes of its JSON text. Default 1 MiB. */
  maxPayloadBytes?: number;
}

export interface BatchItem {
  job: AnyJob | string;
  payload: unknown;
}

export interface BatchOptions {
  tx?: Executor;
  /** Runs once every member has finished, with { batchId, total, completed, dead, cancelled } merged into its payload. */
  onComplete?: { job: AnyJob | string; payload?: Record<string, unknown> };
}

// Each option's value is checked where it is used (connection.ts, the
// constructor); this catches a key that is not an option at all.
const sluiceOptionsSchema = z.strictObject({
  pool: z.unknown().optional(),
  connectionString: z.unknown().optional(),
  poolSize: z.unknown().optional(),
  poolMode: z.unknown().optional(),
  listenConnectionString: z.unknown().optional(),
  readConnectionString: z.unknown().optional(),
  readPool: z.unknown().optional(),
  jobs: z.unknown().optional(),
  logger: z.unknown().optional(),
  maxPayloadBytes: z.unknown().optional(),
} satisfies Record<keyof SluiceOptions, unknown>);

const waitForOptionsSchema = z.strictObject({
  // setTimeout fires at once for anything over 2^31 - 1 ms.
  timeoutMs: z.number().int().min(1).max(2_147_483_647).optional(),
});

const publishOptionsSchema = z.strictObject({ tx: z.any().optional(), sequential: z.boolean().optional() });

const batchOptionsSchema = z.strictObject({
  tx: z.any().optional(),
  // job and payload are checked by resolveJob and the callback's schema.
  onComplete: z.strictObject({ job: z.any(), payload: z.any().optional() }).optional(),
});

/** A job as enqueue takes it: a definition, or the name of one the client was given. */
export type JobRef<Jobs extends readonly AnyJob[]> = AnyJob | NameOf<Jobs>;

/**
 * The producer side. `Jobs` is the list given as `jobs`: enqueue by name is
 * typed from it (an unknown name does not compile).
 */
export class Sluice<Jobs extends readonly AnyJob[] = readonly AnyJob[]> {
  readonly pool: pg.Pool;
  /** For reads that may trail the primary (stats, lists, metrics): the replica of readConnectionString, else `pool`. */
  readonly readPool: pg.Pool;
  private readonly ownsReadPool: boolean;
  readonly logger: Logger;
  /** Cron schedules: add, list, enable, disable, remove, runNow. */
  readonly schedules: Schedules;
  /** Queue settings: pause, resume, configure (limits, weights, alerts), stats. */
  readonly queues: Queues;
  private readonly ownsPool: boolean;
  private readonly jobsByName = new Map<string, AnyJob>();
  private readonly maxPayloadBytes: number;
  private readonly waiter: FinishWaiter;
  private readonly room: RoomWaiter;
  private readonly listener: ClientListener;
  private readonly listenPool: OwnedPool | null;
  /** Wake-ups sent after an enqueue's commit and not yet answered; close() lets them finish. */
  private readonly pendingWakes = new Set<Promise<void>>();
  /** Set once the schema was found migrated: later calls skip the check. */
  private schemaReady = false;
  private schemaCheck: Promise<void> | null = null;

  constructor(options: SluiceOptions<Jobs> = {}) {
    // Every option is checked before a pool is opened: one refused after it
    // would leave a pool nobody can end.
    options = parseOptions(sluiceOptionsSchema, options, 'options') as SluiceOptions<Jobs>;
    this.logger = sluiceLogger(options.logger);
    this.maxPayloadBytes = options.maxPayloadBytes ?? MAX_PAYLOAD_BYTES_DEFAULT;
    if (!Number.isInteger(this.maxPayloadBytes) || this.maxPayloadBytes < 1) {
      throw new ValidationError('maxPayloadBytes', 'must be a positive integer');
    }
    for (const job of checkJobs(options.jobs)) this.jobsByName.set(job.name, job);
    const { pool, owned } = openPool(options, this.logger);
    this.pool = pool;
    this.ownsPool = owned;
    const read = openReadPool(options, pool, this.logger);
    this.readPool = read.pool;
    this.ownsReadPool = read.owned;
    // Their queries wait for the schema check like every other call.
    const checkedPool: Queryable = { query: async (config) => (await this.ready(), this.pool.query(config)) };
    this.schedules = new Schedules(checkedPool);
    this.queues = new Queues(checkedPool, this.readPool);
    // One session for both waiters: a session each could take a small pool's
    // every connection and leave none for the statements they wait on.
    this.listenPool = openListenPool(options, this.pool, this.logger);
    this.listener = new ClientListener(this.listenPool?.pool ?? null, this.logger);
    this.waiter = new FinishWaiter(this.pool, this.listener, this.logger);
    this.room = new RoomWaiter(this.listener);
  }

  /** Applies sluice's migrations; see migrate(). */
  async migrate(options?: MigrateOptions): Promise<MigrateResult> {
    const result = await migrate(this.pool, options);
    this.schemaCheck = null;
    return result;
  }

  /**
   * Resolves once the database schema is migrated as far as this sluice
   * needs; rejects with SchemaNotMigratedError (run `sluice migrate`)
   * otherwise. Every call checks it before its first query, once per client.
   */
  async ready(): Promise<void> {
    if (this.schemaReady) return;
    this.schemaCheck ??= requireMigrated(this.pool, MIGRATIONS_FOLDER_DEFAULT).then(
      () => void (this.schemaReady = true),
      (err: unknown) => {
        // Checked again on the next call: someone may run the migrations meanwhile.
        this.schemaCheck = null;
        throw err;
      },
    );
    await this.schemaCheck;
  }

  /**
   * The check before a call's first query, on the caller's connection when
   * it gave one: behind a pooler the transaction may hold the last server
   * connection, and a check on another one would wait for it forever.
   */
  private async checkSchema(tx: Executor | undefined): Promise<void> {
    if (tx === undefined) return this.ready();
    await requireMigrated(toQueryable(tx), MIGRATIONS_FOLDER_DEFAULT);
    this.schemaReady = true;
  }

  /** Writes the defaults of the registered jobs so `sluice.enqueue(...)` in SQL uses them. */
  async registerJobs(options: { tx?: Executor } = {}): Promise<void> {
    const { tx } = callOptions(txOptionsSchema, options);
    if (!this.schemaReady) await this.checkSchema(tx);
    await jobTypeUpsertMany(this.db(tx), [...this.jobsByName.values()]);
  }

  /** Enqueues one job; returns its id. Validates the payload first: a bad one writes nothing. */
  async enqueue<J extends JobRef<Jobs>>(
    job: J,
    payload: JobPayload<Resolve<Jobs, J>>,
    options: EnqueueOptions = {},
  ): Promise<JobId<JobResult<Resolve<Jobs, J>>>> {
    const [id] = await this.insert(this.resolveJob(job), [payload], options ?? {}, false);
    return id!;
  }

  /** Enqueues many jobs of one kind in one statement; returns their ids in order. */
  async enqueueMany<J extends JobRef<Jobs>>(
    job: J,
    payloads: readonly JobPayload<Resolve<Jobs, J>>[],
    options: EnqueueManyOptions = {},
  ): Promise<JobId<JobResult<Resolve<Jobs, J>>>[]> {
    if (!Array.isArray(payloads)) throw new ValidationError('payloads', 'must be an array');
    return this.insert(this.resolveJob(job), payloads, options ?? {}, true);
  }

  private async insert(
    job: AnyJob,
    payloads: readonly unknown[],
    options: EnqueueOptions | EnqueueManyOptions,
    many: boolean,
  ): Promise<number[]> {
    const built = buildEnqueueArgs(job, payloads, options, this.maxPayloadBytes, { many });
    if (payloads.length === 0) return [];
    return this.send(job, built);
  }

  /** Sends an enqueue statement already checked by buildEnqueueArgs. */
  private async send(job: AnyJob, { args, tx, blockTimeoutMs }: EnqueueBuild): Promise<number[]> {
    if (!this.schemaReady) await this.checkSchema(tx);
    const db = this.db(tx);
    // A statement that is its own transaction wakes the workers after its
    // commit rather than from inside it (jobs/wake-workers.sql says why).
    const wakeAfterCommit = tx === undefined;
    const attempt = async () => {
      const written = await jobEnqueueManyInTransaction(db, { ...args, wakeAfterCommit });
      return written.ids === null ? null : { ids: written.ids, xid: written.xid };
    };
    let written: { ids: number[]; xid: string | null };
    try {
      // A full queue that blocks answers null: wait for room, all the batch or nothing.
      written = (await attempt()) ?? (await this.room.retry(job.queue, blockTimeoutMs, attempt));
    } catch (err) {
      throw translateDbError(err);
    }
    const { ids } = written;
    // Not awaited: the jobs are committed when this returns, and the caller
    // need not wait another round trip for a hint.
    if (wakeAfterCommit && ids.length > 0) {
      const wake = this.wakeWorkers(ids).finally(() => this.pendingWakes.delete(wake));
      this.pendingWakes.add(wake);
    }
    // waitFor takes a missing row of a job noted here for a completion (in a
    // queue that keeps no history): in the caller's transaction, only once
    // that transaction is known to have committed.
    if (commitsOnReturn(tx)) this.waiter.noteEnqueued(ids);
    else if (written.xid !== null) this.waiter.noteEnqueued(ids, written.xid);
    return ids;
  }

  /** The jobs are committed: a wake-up that fails costs latency (the workers' poll, or their periodic rewind, finds them), never the enqueue. */
  private async wakeWorkers(ids: number[]): Promise<void> {
    try {
      await jobWakeWorkers(this.pool, ids);
    } catch (err) {
      this.logger.warn({ err, jobs: ids.length }, 'could not wake the workers after an enqueue; they find the jobs at their next poll, or their next rewind of the queue (within 10 s)');
    }
  }

  /**
   * Enqueues a batch (chunked, one statement per job kind and chunk) with a
   * row in sluice.batches counting its members' outcomes; when all have
   * finished, the onComplete job runs with the counts.
   */
  async enqueueBatch(items: readonly BatchItem[], options: BatchOptions = {}): Promise<{ batchId: number; ids: number[] }> {
    if (!Array.isArray(items) || items.length === 0) throw new ValidationError('items', 'must be a non-empty array');
    const { tx, onComplete } = callOptions(batchOptionsSchema, options);
    const resolved = items.map((item, i) => {
      if (!item || typeof item !== 'object') throw new ValidationError(`items.${i}`, 'expected { job, payload }');
      return { job: this.resolveJob(item.job), payload: item.payload };
    });
    const byJob = new Map<AnyJob, number[]>();
    resolved.forEach((r, i) => {
      const indexes = byJob.get(r.job);
      if (indexes) indexes.push(i);
      else byJob.set(r.job, [i]);
    });
    // Every member is checked in full (schema, JSON, size) before the batch
    // row is written: one refused while sending would leave that row and the
    // chunks before it in a transaction the caller may still commit, a batch
    // that never completes. The statements checked are the ones sent.
    const chunks: { indexes: number[]; built: EnqueueBuild; job: AnyJob }[] = [];
    for (const [job, all] of byJob) {
      for (let start = 0; start < all.length; start += BATCH_CHUNK_SIZE) {
        const indexes = all.slice(start, start + BATCH_CHUNK_SIZE);
        const built = buildEnqueueArgs(job, indexes.map((i) => resolved[i]!.payload), {}, this.maxPayloadBytes, { many: true });
        chunks.push({ job, indexes, built });
      }
    }
    const callback = onComplete ? this.resolveJob(onComplete.job) : null;
    const callbackPayload: unknown = onComplete?.payload ?? {};
    if (typeof callbackPayload !== 'object' || callbackPayload === null || Array.isArray(callbackPayload)) {
      throw new ValidationError('onComplete.payload', 'must be an object');
    }
    const callbackJson = checkedJson('onComplete.payload', callbackPayload);
    if (callback) {
      // Enqueued by the last member's end: refused there, it would fail that
      // member's completion each time it is tried (or die unrun), so it is
      // held now to the limit and to its job's schema, with the counts
      // jobs/after-finish.sql adds to it.
      const callbackBytes = Buffer.byteLength(callbackJson);
      if (callbackBytes > this.maxPayloadBytes) throw new PayloadTooLargeError(callback.name, callbackBytes, this.maxPayloadBytes);
      const total = items.length;
      parsePayload(callback, { ...callbackPayload, batchId: 1, total, completed: total, dead: 0, cancelled: 0 });
    }
    if (!this.schemaReady) await this.checkSchema(tx);
    const result = await inTransaction(this.pool, tx, async (db) => {
      await refuseWhatCannotFit(db, chunks.map((c) => ({ queue: c.job.queue, rows: c.indexes.length })));
      if (callback) await batchCallbackTypeSave(db, callback);
      const batchId = await batchCreate(db, items.length, callback?.name ?? null, callbackJson);
      const ids = new Array<number>(resolved.length);
      for (const { job, indexes, built } of chunks) {
        const chunkIds = await this.send(job, { ...built, args: { ...built.args, batchId }, tx: db });
        indexes.forEach((i, k) => (ids[i] = chunkIds[k]!));
      }
      return { batchId, ids };
    });
    if (commitsOnReturn(tx)) this.waiter.noteEnqueued(result.ids);
    return result;
  }

  /**
   * Enqueues a small DAG in one transaction; returns each step's job id by
   * key. Each step's payload is typed by its job, `after` by the step keys.
   */
  async flow<const T extends readonly FlowStep<JobRef<Jobs>>[]>(
    steps: T & CheckedSteps<Jobs, T>,
    options: { tx?: Executor } = {},
  ): Promise<FlowIds<Jobs, T>> {
    const { tx } = callOptions(txOptionsSchema, options);
    const ordered = orderFlow(steps as readonly FlowStep[]);
    const resolved = ordered.map(({ step, index }) => ({ step, index, job: this.resolveJob(step.job) }));
    // Every step is checked in full (schema, JSON, size, options) before
    // anything is written, every job resolved first so an unknown job is
    // reported before any step's bad payload. The statements checked are the
    // ones sent.
    const prepared = resolved.map(({ step, index, job }) => {
      try {
        return { step, job, built: buildEnqueueArgs(job, [step.payload], step.options ?? {}, this.maxPayloadBytes, { many: false }) };
      } catch (err) {
        throw inStep(err, index);
      }
    });
    if (!this.schemaReady) await this.checkSchema(tx);
    const flowIds = await inTransaction(this.pool, tx, async (db) => {
      // A step with a unique key may add no job (a live one stands in).
      await refuseWhatCannotFit(db, prepared.map((p) => ({ queue: p.job.queue, rows: p.built.args.uniqueKeys ? 0 : 1 })));
      const ids: Record<string, number> = {};
      for (const { step, job, built } of prepared) {
        const dependsOn = parentIds(step, ids);
        const args = dependsOn.length ? { ...built.args, dependsOn } : built.args;
        const [id] = await this.send(job, { ...built, args, tx: db });
        ids[step.key] = id!;
      }
      return ids;
    });
    if (commitsOnReturn(tx)) this.waiter.noteEnqueued(Object.values(flowIds));
    return flowIds as FlowIds<Jobs, T>;
  }

  /**
   * Publishes an event: one job per subscriber of the topic (each its own job
   * name and retry policy), in the caller's transaction. Sequential delivery
   * runs the subscribers one after another. Returns the jobs' ids.
   */
  async publish(topic: string, payload: unknown, options: { tx?: Executor; sequential?: boolean } = {}): Promise<number[]> {
    checkName('topic', topic);
    const { tx, sequential } = callOptions(publishOptionsSchema, options);
    const text = checkedJson('payload', payload);
    const size = Buffer.byteLength(text);
    if (size > this.maxPayloadBytes) throw new ValidationError('payload', `is ${size} bytes, over the ${this.maxPayloadBytes}-byte limit`);
    if (!this.schemaReady) await this.checkSchema(tx);
    try {
      return await eventPublish(this.db(tx), topic, text, sequential ?? false);
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
    const { tx } = callOptions(txOptionsSchema, options);
    if (!this.schemaReady) await this.checkSchema(tx);
    const row = await jobGet(this.db(tx), checkId(id));
    if (!row) throw new JobNotFoundError([id]);
    return toJobRecord(row);
  }

  /**
   * Resolves with the job's result when it completes (told by NOTIFY), or
   * rejects: JobFailedError (dead or dropped), CancelledError,
   * WaitTimeoutError after timeoutMs (default 30000).
   */
  async waitFor<R = unknown>(id: JobId<R>, options: { timeoutMs?: number } = {}): Promise<R> {
    checkId(id);
    const timeoutMs = callOptions(waitForOptionsSchema, options).timeoutMs ?? WAIT_FOR_TIMEOUT_MS_DEFAULT;
    if (!this.schemaReady) await this.ready();
    return (await this.waiter.waitFor(id, timeoutMs)) as R;
  }

  /**
   * Cancels a live job and returns the state it was in. A running job's
   * handler gets its AbortSignal fired in whichever worker runs it, and its
   * late answer is refused. Throws JobNotFoundError when no live job has the id.
   */
  async cancel(id: number, options: { tx?: Executor } = {}): Promise<'waiting' | 'scheduled' | 'available' | 'running'> {
    const { tx } = callOptions(txOptionsSchema, options);
    if (!this.schemaReady) await this.checkSchema(tx);
    const state = await jobCancel(this.db(tx), checkId(id));
    if (state === null) throw new JobNotFoundError([id], 'live job');
    return state as 'waiting' | 'scheduled' | 'available' | 'running';
  }

  /** Runs a job now: a dead job is replayed, a job waiting for its retry is made available. */
  async retry(id: number, options: { tx?: Executor } = {}): Promise<void> {
    const { tx } = callOptions(txOptionsSchema, options);
    if (!this.schemaReady) await this.checkSchema(tx);
    const db = this.db(tx);
    if (await jobRetryNow(db, checkId(id))) return;
    const job = await jobGet(db, id);
    if (job?.state === 'dead') {
      await this.replayDead([id], { tx });
      return;
    }
    throw new JobNotFoundError([id], 'dead or retry-waiting job');
  }

  /** Puts dead jobs back in their queues with a fresh attempt budget. Nothing is replayed unless every id is dead. */
  async replayDead(ids: readonly number[], options: { tx?: Executor } = {}): Promise<number[]> {
    if (!Array.isArray(ids) || ids.length === 0) throw new ValidationError('ids', 'must be a non-empty array of job ids');
    ids.forEach((id) => checkId(id));
    const { tx } = callOptions(txOptionsSchema, options);
    if (!this.schemaReady) await this.checkSchema(tx);
    try {
      return await deadReplay(this.db(tx), [...ids]);
    } catch (err) {
      throw translateDbError(err);
    }
  }

  /** Gives back the LISTEN session (waitFor, enqueues waiting for room) and ends the pools sluice created. */
  async close(): Promise<void> {
    await Promise.all(this.pendingWakes);
    this.waiter.close();
    await this.listener.close();
    if (this.ownsPool) await this.pool.end();
    if (this.listenPool?.owned) await this.listenPool.pool.end();
    if (this.ownsReadPool) await this.readPool.end();
  }

  private db(tx: Executor | undefined): Queryable {
    return tx === undefined ? this.pool : toQueryable(tx);
  }
}

/** The value's JSON text; a ValidationError naming the field inside `field` when JSON cannot carry it as it is. */
function checkedJson(field: string, value: unknown): string {
  const text = jsonText(value);
  if (typeof text !== 'string') throw new ValidationError(text.path ? `${field}.${text.path}` : field, text.reason);
  return text;
}

/** The `jobs` option: job definitions (from defineJob), each a name enqueue may use. */
function checkJobs(jobs: unknown): readonly AnyJob[] {
  if (jobs === undefined) return [];
  if (!Array.isArray(jobs)) throw new ValidationError('jobs', 'must be an array of job definitions from defineJob()');
  jobs.forEach((job: unknown, i) => {
    const j = job as Partial<AnyJob> | null;
    if (typeof j !== 'object' || j === null || typeof j.name !== 'string' || typeof j.queue !== 'string') {
      throw new ValidationError(`jobs.${i}`, 'expected a job definition from defineJob()');
    }
  });
  return jobs as AnyJob[];
}

function checkId(id: unknown): number {
  if (typeof id !== 'number' || !Number.isSafeInteger(id) || id < 1) {
    throw new ValidationError('id', 'must be a positive integer job id');
  }
  return id;
}

export function createSluice<Jobs extends readonly AnyJob[] = readonly AnyJob[]>(options: SluiceOptions<Jobs> = {}): Sluice<Jobs> {
  return new Sluice(options);
}
