// Sluice: the producer side. Enqueue inside the caller's transaction (one job,
// many, a batch, a flow, an event), look jobs up and wait for them, cancel,
// retry and replay them, manage queues and schedules, and migrate.
import type pg from 'pg';
import type { Logger } from 'pino';
import { ClientListener } from './client-listener.js';
import { MAX_PAYLOAD_BYTES_DEFAULT, checkName } from './config.js';
import { openListenPool, openPool, openReadPool, type ConnectionOptions, type OwnedPool } from './connection.js';
import { translateDbError } from './db-errors.js';
import { buildEnqueueArgs, type EnqueueBuild, type EnqueueManyOptions, type EnqueueOptions } from './enqueue-options.js';
import { JobNotFoundError, PayloadTooLargeError, UnknownJobError, ValidationError } from './errors.js';
import { toQueryable, type Executor, type Queryable } from './executor.js';
import { orderFlow, parentIds, type CheckedSteps, type FlowIds, type FlowStep } from './flow.js';
import { type AnyJob, type JobId, type JobPayload, type JobResult, type NameOf, type Resolve } from './job.js';
import { jsonText } from './json-text.js';
import { toJobRecord, type JobRecord } from './job-record.js';
import { sluiceLogger } from './logger.js';
import { MIGRATIONS_FOLDER_DEFAULT, migrate, type MigrateOptions, type MigrateResult } from './migrate.js';
import { Queues } from './queue-admin.js';
import { RoomWaiter } from './room-waiter.js';
import { requireMigrated } from './schema-version.js';
import { Schedules } from './schedules.js';
import { deadReplay } from './sql/dead-jobs.js';
import { jobTypeUpsertMany } from './sql/job-types.js';
import { jobCancel, jobEnqueueMany, jobGet, jobRetryNow, jobWakeWorkers } from './sql/jobs.js';
import { eventPublish } from './sql/subscriptions.js';
import { inTransaction } from './transaction.js';
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
    this.logger = sluiceLogger(options.logger);
    const { pool, owned } = openPool(options, this.logger);
    this.pool = pool;
    this.ownsPool = owned;
    const read = openReadPool(options, pool, this.logger);
    this.readPool = read.pool;
    this.ownsReadPool = read.owned;
    this.maxPayloadBytes = options.maxPayloadBytes ?? MAX_PAYLOAD_BYTES_DEFAULT;
    if (!Number.isInteger(this.maxPayloadBytes) || this.maxPayloadBytes < 1) {
      throw new ValidationError('maxPayloadBytes', 'must be a positive integer');
    }
    for (const job of options.jobs ?? []) this.jobsByName.set(job.name, job);
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
    if (!this.schemaReady) await this.checkSchema(options?.tx);
    await jobTypeUpsertMany(this.db(options?.tx), [...this.jobsByName.values()]);
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
    const attempt = () => jobEnqueueMany(db, { ...args, wakeAfterCommit });
    let ids: number[];
    try {
      // A full queue that blocks answers null: wait for room, all the batch or nothing.
      ids = (await attempt()) ?? (await this.room.retry(job.queue, blockTimeoutMs, attempt));
    } catch (err) {
      throw translateDbError(err);
    }
    // Not awaited: the jobs are committed when this returns, and the caller
    // need not wait another round trip for a hint.
    if (wakeAfterCommit && ids.length > 0) {
      const wake = this.wakeWorkers(ids).finally(() => this.pendingWakes.delete(wake));
      this.pendingWakes.add(wake);
    }
    this.waiter.noteEnqueued(ids);
    return ids;
  }

  /** The jobs are committed: a wake-up that fails costs latency (the workers' poll finds them), never the enqueue. */
  private async wakeWorkers(ids: number[]): Promise<void> {
    try {
      await jobWakeWorkers(this.pool, ids);
    } catch (err) {
      this.logger.warn({ err, jobs: ids.length }, 'could not wake the workers after an enqueue; they find the jobs at their next poll');
    }
  }

  /**
   * Enqueues a batch (chunked, one statement per job kind and chunk) with a
   * row in sluice.batches counting its members' outcomes; when all have
   * finished, the onComplete job runs with the counts.
   */
  async enqueueBatch(items: readonly BatchItem[], options: BatchOptions = {}): Promise<{ batchId: number; ids: number[] }> {
    if (!Array.isArray(items) || items.length === 0) throw new ValidationError('items', 'must be a non-empty array');
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
    const callback = options?.onComplete ? this.resolveJob(options?.onComplete.job) : null;
    const callbackPayload = options?.onComplete?.payload ?? {};
    if (typeof callbackPayload !== 'object' || callbackPayload === null || Array.isArray(callbackPayload)) {
      throw new ValidationError('onComplete.payload', 'must be an object');
    }
    const callbackJson = checkedJson('onComplete.payload', callbackPayload);
    // Enqueued by the last member's completion: refused there, it would fail
    // that completion each time it is tried, so it is held to the limit now.
    const callbackBytes = Buffer.byteLength(callbackJson);
    if (callback && callbackBytes > this.maxPayloadBytes) throw new PayloadTooLargeError(callback.name, callbackBytes, this.maxPayloadBytes);
    if (!this.schemaReady) await this.checkSchema(options?.tx);
    return inTransaction(this.pool, options?.tx, async (db) => {
      const { rows } = await db.query<{ id: string }>({
        name: 'sluice_batch_create',
        text: 'SELECT sluice.batch_create($1, $2, $3::jsonb) AS id',
        values: [items.length, callback?.name ?? null, callbackJson],
      });
      const batchId = Number(rows[0]!.id);
      const ids = new Array<number>(resolved.length);
      for (const { job, indexes, built } of chunks) {
        const chunkIds = await this.send(job, { ...built, args: { ...built.args, batchId }, tx: db });
        indexes.forEach((i, k) => (ids[i] = chunkIds[k]!));
      }
      return { batchId, ids };
    });
  }

  /**
   * Enqueues a small DAG in one transaction; returns each step's job id by
   * key. Each step's payload is typed by its job, `after` by the step keys.
   */
  async flow<const T extends readonly FlowStep<JobRef<Jobs>>[]>(
    steps: T & CheckedSteps<Jobs, T>,
    options: { tx?: Executor } = {},
  ): Promise<FlowIds<Jobs, T>> {
    const ordered = orderFlow(steps as readonly FlowStep[]);
    const resolved = ordered.map((step) => ({ step, job: this.resolveJob(step.job) }));
    // Every step is checked in full (schema, JSON, size, options) before
    // anything is written, every job resolved first so an unknown job is
    // reported before any step's bad payload. The statements checked are the
    // ones sent.
    const prepared = resolved.map(({ step, job }) => ({
      step,
      job,
      built: buildEnqueueArgs(job, [step.payload], step.options ?? {}, this.maxPayloadBytes, { many: false }),
    }));
    if (!this.schemaReady) await this.checkSchema(options?.tx);
    return inTransaction(this.pool, options?.tx, async (db) => {
      const ids: Record<string, number> = {};
      for (const { step, job, built } of prepared) {
        const dependsOn = parentIds(step, ids);
        const args = dependsOn.length ? { ...built.args, dependsOn } : built.args;
        const [id] = await this.send(job, { ...built, args, tx: db });
        ids[step.key] = id!;
      }
      return ids as FlowIds<Jobs, T>;
    });
  }

  /**
   * Publishes an event: one job per subscriber of the topic (each its own job
   * name and retry policy), in the caller's transaction. Sequential delivery
   * runs the subscribers one after another. Returns the jobs' ids.
   */
  async publish(topic: string, payload: unknown, options: { tx?: Executor; sequential?: boolean } = {}): Promise<number[]> {
    checkName('topic', topic);
    const text = checkedJson('payload', payload);
    const size = Buffer.byteLength(text);
    if (size > this.maxPayloadBytes) throw new ValidationError('payload', `is ${size} bytes, over the ${this.maxPayloadBytes}-byte limit`);
    if (!this.schemaReady) await this.checkSchema(options?.tx);
    try {
      return await eventPublish(this.db(options?.tx), topic, text, options?.sequential ?? false);
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
    if (!this.schemaReady) await this.checkSchema(options?.tx);
    const row = await jobGet(this.db(options?.tx), checkId(id));
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
    const timeoutMs = options?.timeoutMs ?? WAIT_FOR_TIMEOUT_MS_DEFAULT;
    // setTimeout fires at once for anything over 2^31 - 1 ms.
    if (!Number.isInteger(timeoutMs) || timeoutMs < 1 || timeoutMs > 2_147_483_647) {
      throw new ValidationError('options.timeoutMs', 'must be an integer from 1 to 2147483647');
    }
    if (!this.schemaReady) await this.ready();
    return (await this.waiter.waitFor(id, timeoutMs)) as R;
  }

  /**
   * Cancels a live job and returns the state it was in. A running job's
   * handler gets its AbortSignal fired in whichever worker runs it, and its
   * late answer is refused. Throws JobNotFoundError when no live job has the id.
   */
  async cancel(id: number, options: { tx?: Executor } = {}): Promise<'waiting' | 'scheduled' | 'available' | 'running'> {
    if (!this.schemaReady) await this.checkSchema(options?.tx);
    const state = await jobCancel(this.db(options?.tx), checkId(id));
    if (state === null) throw new JobNotFoundError([id], 'live job');
    return state as 'waiting' | 'scheduled' | 'available' | 'running';
  }

  /** Runs a job now: a dead job is replayed, a job waiting for its retry is made available. */
  async retry(id: number, options: { tx?: Executor } = {}): Promise<void> {
    if (!this.schemaReady) await this.checkSchema(options?.tx);
    const db = this.db(options?.tx);
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
    if (!this.schemaReady) await this.checkSchema(options?.tx);
    try {
      return await deadReplay(this.db(options?.tx), [...ids]);
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

function checkId(id: unknown): number {
  if (typeof id !== 'number' || !Number.isSafeInteger(id) || id < 1) {
    throw new ValidationError('id', 'must be a positive integer job id');
  }
  return id;
}

export function createSluice<Jobs extends readonly AnyJob[] = readonly AnyJob[]>(options: SluiceOptions<Jobs> = {}): Sluice<Jobs> {
  return new Sluice(options);
}
