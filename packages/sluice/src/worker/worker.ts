// Worker: claims batches of jobs into a local prefetch buffer, runs up to
// `concurrency` handlers at once, and acknowledges results in batches.
import { EventEmitter } from 'node:events';
import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import type pg from 'pg';
import type { Logger } from 'pino';
import {
  ABORT_GRACE_MS_DEFAULT,
  CONCURRENCY_DEFAULT,
  HEARTBEAT_INTERVAL_MS_DEFAULT,
  RESCUE_BATCH_SIZE_DEFAULT,
  WORKER_DEAD_AFTER_MS_DEFAULT,
  WORKER_FORGET_AFTER_MS_DEFAULT,
  MAX_PENDING_ACKS_DEFAULT,
  POLL_INTERVAL_MS_DEFAULT,
  PROMOTE_BATCH_SIZE_DEFAULT,
  SHUTDOWN_TIMEOUT_MS_DEFAULT,
  parseOptions,
  workerOptionsSchema,
} from '../config.js';
import { openPool, type ConnectionOptions } from '../connection.js';
import { CancelledError, ValidationError, WorkerStateError } from '../errors.js';
import type { JobRegistration } from '../job.js';
import { defaultLogger } from '../logger.js';
import { Promoter } from '../services/promoter.js';
import { Rescuer } from '../services/rescuer.js';
import { Scheduler } from '../services/scheduler.js';
import { MISFIRE_GRACE_MS_DEFAULT, nextFireAfter, type ScheduleDefinition } from '../schedule.js';
import { cronCodeDeclaredNames, cronRemove, cronSaveMany } from '../sql/cron.js';
import { jobTypeUpsertMany } from '../sql/job-types.js';
import { jobReleaseMany, type ClaimedJobRow } from '../sql/jobs.js';
import { workerDeregister, workerRegister } from '../sql/workers.js';
import { SLUICE_VERSION } from '../version.js';
import { Completer, type Ack, type AckResult } from './completer.js';
import { Fetcher } from './fetcher.js';
import { Heartbeat } from './heartbeat.js';
import { CANCEL_CHANNEL, CRON_CHANNEL, JOBS_CHANNEL, Notifier, SCHEDULED_CHANNEL } from './notifier.js';
import { runJob, type RunningJob } from './run-job.js';

export interface WorkerOptions extends ConnectionOptions {
  /** What this worker runs: `myJob.handle(fn)` for each job. */
  handlers: JobRegistration[];
  /** Handlers running at once in this process. Default 10. */
  concurrency?: number;
  /** Queues to claim from. Default: the queues of the handlers. */
  queues?: string[];
  /** Jobs claimed ahead of free slots. Default: equal to concurrency. */
  prefetch?: number;
  /** Poll for jobs this often when no notification arrives. Default 1000 ms. */
  pollIntervalMs?: number;
  /**
   * A worker silent for this long is dead and its jobs are rescued; also the
   * lease of each claim, renewed by the heartbeat. Default 15000 ms.
   */
  workerDeadAfterMs?: number;
  /** Stop claiming while the process's resident memory is above this. Default: no limit. */
  maxRssBytes?: number;
  /** Unwritten acknowledgements at which new jobs stop starting. Default 1000. */
  maxPendingAcks?: number;
  /** Heartbeat period. Default 5000 ms. */
  heartbeatIntervalMs?: number;
  /** On stop(), how long running jobs may finish before they are released. Default 30000 ms. */
  shutdownTimeoutMs?: number;
  /** After a job's signal fires (timeout, cancel), how long its handler may wind down before its slot is freed. Default 1000 ms. */
  abortGraceMs?: number;
  /** Cron schedules this service declares; upserted on start without resetting their history. */
  schedules?: ScheduleDefinition[];
  /**
   * What to do with schedules declared in code by an earlier deploy but not
   * by this worker: 'report' logs them, 'remove' deletes them. Default 'report'.
   */
  undeclaredSchedules?: 'report' | 'remove';
  /** Run the cron scheduler in this worker. Default true; any number of workers may. */
  runScheduler?: boolean;
  /** A label for this process in sluice.workers. */
  service?: string;
  logger?: Logger;
}

export interface JobEvent {
  id: number;
  name: string;
  queue: string;
  attempt: number;
  result: AckResult;
}

export class Worker extends EventEmitter<{ job: [JobEvent]; stopped: [] }> {
  readonly id = `${hostname()}:${process.pid}:${randomUUID().slice(0, 8)}`;
  readonly concurrency: number;
  readonly queues: string[];
  private readonly logger: Logger;
  private readonly pool: pg.Pool;
  private readonly ownsPool: boolean;
  private readonly registrations = new Map<string, JobRegistration>();
  private readonly options: Required<Pick<WorkerOptions, 'pollIntervalMs' | 'workerDeadAfterMs' | 'maxPendingAcks' | 'heartbeatIntervalMs' | 'shutdownTimeoutMs' | 'prefetch' | 'abortGraceMs'>> & { service: string | null; maxRssBytes: number | null };
  private readonly buffer: ClaimedJobRow[] = [];
  private readonly running = new Map<number, RunningJob & { done: Promise<void>; released: boolean }>();
  private readonly completer: Completer;
  private readonly fetcher: Fetcher;
  private readonly promoter: Promoter;
  private readonly heartbeat: Heartbeat;
  private readonly rescuer: Rescuer;
  private readonly scheduler: Scheduler | null;
  private readonly schedules: ScheduleDefinition[];
  private readonly undeclaredSchedules: 'report' | 'remove';
  private overMemory = false;
  private readonly notifier: Notifier;
  private state: 'new' | 'started' | 'stopping' | 'stopped' = 'new';

  constructor(options: WorkerOptions) {
    super();
    const { handlers, logger, pool, connectionString, poolSize, schedules, undeclaredSchedules, runScheduler, ...rest } =
      options ?? ({} as WorkerOptions);
    const opts = parseOptions(workerOptionsSchema, rest, 'createWorker');
    if (!Array.isArray(handlers) || handlers.length === 0) {
      throw new ValidationError('createWorker.handlers', 'must be a non-empty array of job.handle(fn) registrations');
    }
    for (const [i, reg] of handlers.entries()) {
      if (!reg?.job?.name || typeof reg.handler !== 'function') {
        throw new ValidationError(`createWorker.handlers.${i}`, 'expected job.handle(fn)');
      }
      this.registrations.set(reg.job.name, reg);
    }
    this.logger = (logger ?? defaultLogger()).child({ workerId: this.id });
    this.concurrency = opts.concurrency ?? CONCURRENCY_DEFAULT;
    this.queues = opts.queues ?? [...new Set(handlers.map((h) => h.job.queue))];
    this.options = {
      pollIntervalMs: opts.pollIntervalMs ?? POLL_INTERVAL_MS_DEFAULT,
      workerDeadAfterMs: opts.workerDeadAfterMs ?? WORKER_DEAD_AFTER_MS_DEFAULT,
      maxRssBytes: opts.maxRssBytes ?? null,
      maxPendingAcks: opts.maxPendingAcks ?? MAX_PENDING_ACKS_DEFAULT,
      heartbeatIntervalMs: opts.heartbeatIntervalMs ?? HEARTBEAT_INTERVAL_MS_DEFAULT,
      shutdownTimeoutMs: opts.shutdownTimeoutMs ?? SHUTDOWN_TIMEOUT_MS_DEFAULT,
      prefetch: opts.prefetch ?? this.concurrency,
      abortGraceMs: opts.abortGraceMs ?? ABORT_GRACE_MS_DEFAULT,
      service: opts.service ?? null,
    };
    const opened = openPool({ pool, connectionString, poolSize }, this.logger);
    this.pool = opened.pool;
    this.ownsPool = opened.owned;
    this.completer = new Completer(this.pool, this.logger, (ack, result) => this.acknowledged(ack, result));
    this.fetcher = new Fetcher(
      this.pool,
      {
        queues: this.queues,
        workerId: this.id,
        leaseMs: this.options.workerDeadAfterMs,
        pollIntervalMs: this.options.pollIntervalMs,
        lowWater: Math.floor(this.options.prefetch / 2),
        room: () => this.room(),
        bufferedCount: () => this.buffer.length,
        accept: (rows) => this.accept(rows),
      },
      this.logger,
    );
    this.promoter = new Promoter(
      this.pool,
      { batchSize: PROMOTE_BATCH_SIZE_DEFAULT, maxSleepMs: this.options.pollIntervalMs },
      this.logger,
    );
    this.heartbeat = new Heartbeat(this.pool, this.id, this.options.heartbeatIntervalMs, this.options.workerDeadAfterMs, this.logger);
    this.rescuer = new Rescuer(
      this.pool,
      {
        intervalMs: Math.max(100, Math.floor(this.options.workerDeadAfterMs / 3)),
        batchSize: RESCUE_BATCH_SIZE_DEFAULT,
        forgetAfterMs: WORKER_FORGET_AFTER_MS_DEFAULT,
      },
      this.logger,
    );
    this.schedules = schedules ?? [];
    if (!Array.isArray(this.schedules) || this.schedules.some((s) => typeof s?.cron !== 'string' || typeof s?.jobName !== 'string')) {
      throw new ValidationError('createWorker.schedules', 'must be an array of schedule({...}) definitions');
    }
    if (undeclaredSchedules !== undefined && undeclaredSchedules !== 'report' && undeclaredSchedules !== 'remove') {
      throw new ValidationError('createWorker.undeclaredSchedules', "must be 'report' or 'remove'");
    }
    this.undeclaredSchedules = undeclaredSchedules ?? 'report';
    this.scheduler =
      runScheduler === false
        ? null
        : new Scheduler(this.pool, { maxSleepMs: this.options.pollIntervalMs, misfireGraceMs: MISFIRE_GRACE_MS_DEFAULT }, this.logger);
    this.notifier = new Notifier(
      this.pool,
      [JOBS_CHANNEL, SCHEDULED_CHANNEL, CANCEL_CHANNEL, CRON_CHANNEL],
      {
        onNotification: (channel, payload) => {
          if (channel === SCHEDULED_CHANNEL) this.promoter.wake();
          else if (channel === CANCEL_CHANNEL) this.cancelLocal(Number(payload));
          else if (channel === CRON_CHANNEL) this.scheduler?.wake();
          else if (this.queues.includes(payload)) this.fetcher.notified();
        },
        onConnected: () => this.fetcher.notified(),
      },
      this.logger,
    );
  }

  /** Registers the worker and starts claiming. */
  async start(): Promise<void> {
    if (this.state !== 'new') throw new WorkerStateError(`worker is ${this.state}; create a new one to start again`);
    this.state = 'started';
    await jobTypeUpsertMany(this.pool, [...this.registrations.values()].map((r) => r.job));
    await workerRegister(this.pool, {
      id: this.id,
      service: this.options.service,
      host: hostname(),
      pid: process.pid,
      queues: this.queues,
      concurrency: this.concurrency,
      version: SLUICE_VERSION,
    });
    await this.declareSchedules();
    await this.notifier.start();
    this.heartbeat.start();
    this.promoter.start();
    this.rescuer.start();
    this.scheduler?.start();
    this.fetcher.start();
    this.logger.info({ queues: this.queues, concurrency: this.concurrency }, 'worker started');
  }

  /**
   * Stops claiming, lets running jobs finish for up to shutdownTimeoutMs,
   * writes every pending acknowledgement, gives unstarted and unfinished jobs
   * back to their queues at once, and deregisters.
   */
  async stop(): Promise<void> {
    if (this.state !== 'started') return;
    this.state = 'stopping';
    await Promise.all([this.fetcher.stop(), this.promoter.stop(), this.rescuer.stop(), this.scheduler?.stop(), this.notifier.stop()]);
    const unstarted = this.buffer.splice(0);
    if (unstarted.length) {
      await jobReleaseMany(this.pool, unstarted.map((r) => Number(r.id)), unstarted.map((r) => r.attempt));
    }
    await this.waitForRunning(this.options.shutdownTimeoutMs);
    const unfinished = [...this.running.values()];
    for (const job of unfinished) {
      job.released = true;
      job.controller.abort(new WorkerStateError('worker is shutting down'));
    }
    await this.completer.flush();
    if (unfinished.length) {
      await jobReleaseMany(this.pool, unfinished.map((j) => j.id), unfinished.map((j) => j.attempt));
      this.logger.warn({ jobs: unfinished.length }, 'released jobs still running at shutdown');
    }
    await this.heartbeat.stop();
    await workerDeregister(this.pool, this.id);
    this.state = 'stopped';
    if (this.ownsPool) await this.pool.end();
    this.logger.info('worker stopped');
    this.emit('stopped');
  }

  /** Jobs running plus jobs buffered: for tests and stats. */
  get load(): { running: number; buffered: number; pendingAcks: number } {
    return { running: this.running.size, buffered: this.buffer.length, pendingAcks: this.completer.pending };
  }

  private room(): number {
    if (this.state !== 'started' || this.memoryExceeded()) return 0;
    return this.concurrency + this.options.prefetch - this.running.size - this.buffer.length;
  }

  private async declareSchedules(): Promise<void> {
    const now = new Date();
    await cronSaveMany(this.pool, this.schedules, this.schedules.map((s) => nextFireAfter(s.cron, s.timezone, now)), 'code');
    const declared = new Set(this.schedules.map((s) => s.name));
    const undeclared = (await cronCodeDeclaredNames(this.pool)).filter((n) => !declared.has(n));
    if (undeclared.length === 0) return;
    if (this.undeclaredSchedules === 'remove') {
      for (const name of undeclared) await cronRemove(this.pool, name);
      this.logger.info({ schedules: undeclared }, 'removed schedules no longer declared in code');
    } else {
      this.logger.warn({ schedules: undeclared }, 'schedules declared in code earlier are not declared by this worker');
    }
  }

  private memoryExceeded(): boolean {
    const limit = this.options.maxRssBytes;
    if (limit === null) return false;
    const rss = process.memoryUsage.rss();
    const over = rss > limit;
    if (over !== this.overMemory) {
      this.overMemory = over;
      if (over) this.logger.warn({ rssBytes: rss, maxRssBytes: limit }, 'memory above maxRssBytes: not claiming new jobs');
      else this.logger.info({ rssBytes: rss, maxRssBytes: limit }, 'memory back under maxRssBytes: claiming again');
    }
    return over;
  }

  /** A job this process holds was cancelled: fire its signal and drop its answer. */
  private cancelLocal(id: number): void {
    const buffered = this.buffer.findIndex((r) => Number(r.id) === id);
    if (buffered >= 0) this.buffer.splice(buffered, 1);
    const running = this.running.get(id);
    if (!running) return;
    running.released = true;
    running.controller.abort(new CancelledError(id));
    this.logger.info({ jobId: id, attempt: running.attempt }, 'running job cancelled');
  }

  private accept(rows: ClaimedJobRow[]): void {
    this.buffer.push(...rows);
    this.dispatch();
  }

  private dispatch(): void {
    while (
      this.running.size < this.concurrency &&
      this.buffer.length > 0 &&
      this.completer.pending < this.options.maxPendingAcks &&
      this.state === 'started'
    ) {
      this.startJob(this.buffer.shift()!);
    }
    if (this.buffer.length <= Math.floor(this.options.prefetch / 2)) this.fetcher.lowOnWork();
  }

  private startJob(row: ClaimedJobRow): void {
    const id = Number(row.id);
    const controller = new AbortController();
    const entry = { id, attempt: row.attempt, controller, done: Promise.resolve(), released: false };
    entry.done = runJob(row, entry, this.registrations.get(row.name), this.logger, this.options.abortGraceMs).then((ack) => {
      this.running.delete(id);
      // Released at shutdown: the job is back in its queue, this answer is void.
      if (entry.released) return;
      this.completer.push(ack);
      this.dispatch();
    });
    this.running.set(id, entry);
  }

  private acknowledged(ack: Ack, result: AckResult): void {
    this.emit('job', { id: ack.id, attempt: ack.attempt, name: ack.name, queue: ack.queue, result });
    // A flushed batch may have been holding back new jobs.
    this.dispatch();
  }

  private async waitForRunning(timeoutMs: number): Promise<void> {
    if (this.running.size === 0) return;
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      Promise.all([...this.running.values()].map((j) => j.done)),
      new Promise((r) => (timer = setTimeout(r, timeoutMs))),
    ]);
    clearTimeout(timer);
  }
}

export function createWorker(options: WorkerOptions): Worker {
  return new Worker(options);
}
