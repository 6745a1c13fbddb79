// Worker options: their types, documented defaults, and validation.
import type { Logger } from 'pino';
import {
  ABORT_GRACE_MS_DEFAULT,
  CONCURRENCY_DEFAULT,
  HEARTBEAT_INTERVAL_MS_DEFAULT,
  MAX_PENDING_ACKS_DEFAULT,
  MAX_RESULT_BYTES_DEFAULT,
  POLL_INTERVAL_MS_DEFAULT,
  SHUTDOWN_TIMEOUT_MS_DEFAULT,
  START_TIMEOUT_MS_DEFAULT,
  WORKER_DEAD_AFTER_MS_DEFAULT,
  nameSchema,
  parseOptions,
  workerOptionsSchema,
} from '../config.js';
import type { ConnectionOptions } from '../connection.js';
import { OptionsConflictError, ValidationError } from '../errors.js';
import type { JobDefinition, JobRegistration, Middleware } from '../job.js';
import { scheduleByName, type ScheduleDefinition } from '../schedule.js';

export interface Subscription {
  topic: string;
  /** The job each published event becomes for this subscriber. */
  job: JobDefinition;
}

export interface WorkerOptions extends ConnectionOptions {
  /** What this worker runs: `myJob.handle(fn)` for each job. */
  handlers: JobRegistration[];
  /** Handlers running at once in this process. Default 10. */
  concurrency?: number;
  /** Queues to claim from; their weights (sluice.queues.weight) share the slots. Default: the queues of the handlers. */
  queues?: string[];
  /**
   * Jobs claimed ahead of free slots. Default: adaptive (worker/prefetch.ts):
   * enough to keep the slots busy for 100 ms at the jobs' measured run time,
   * at least concurrency, at most 10 × concurrency and 1000.
   */
  prefetch?: number;
  /**
   * Poll for jobs this often when no notification arrives. Default 1000 ms.
   * While LISTEN works and claims find nothing, the wait doubles up to 30 s.
   */
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
  /**
   * Heartbeat period; must be below workerDeadAfterMs / 2, so one late beat
   * never lets a live worker's leases lapse. Default 5000 ms, or a third of
   * workerDeadAfterMs when that is shorter.
   */
  heartbeatIntervalMs?: number;
  /** On stop(), how long running jobs may finish before they are released. Default 30000 ms. */
  shutdownTimeoutMs?: number;
  /**
   * While the database cannot be reached, start() retries (with a growing
   * pause, each try logged at warn) for this long, then rejects with
   * DatabaseUnavailableError. Default: no limit; stop() ends the retries.
   */
  startTimeoutMs?: number;
  /** After a job's signal fires (timeout, cancel), how long its handler may wind down before its slot is freed. Default 1000 ms. */
  abortGraceMs?: number;
  /** Largest handler result stored, in bytes of JSON; larger results are not stored. Default 65536. */
  maxResultBytes?: number;
  /** Run around every handler, in order (see also worker.use()). */
  middleware?: Middleware[];
  /** Cron schedules this service declares; upserted on start without resetting their history. */
  schedules?: ScheduleDefinition[];
  /**
   * What to do with schedules this worker's `service` declared in code
   * earlier (an earlier deploy) but none of its workers declares now:
   * 'report' logs them, 'remove' deletes them, at start and whenever a
   * worker of the service stops (or, dead, is forgotten after an hour). In a
   * rolling deploy, what the pods of the other version still declare is kept
   * until the last of them is gone. Schedules of other services are left
   * alone. Default 'report'.
   */
  undeclaredSchedules?: 'report' | 'remove';
  /**
   * Run the cron scheduler in this worker while it is the maintenance leader.
   * Default true. A leader with false fires no cron: keep it the same in every process.
   */
  runScheduler?: boolean;
  /** Topics this service subscribes to; each published event becomes one job per subscriber. */
  subscriptions?: Subscription[];
  /**
   * The service this worker belongs to: its label in sluice.workers, and the
   * owner of the schedules it declares. Give each worker pool that declares
   * its own schedules its own service. Default none (all workers without a
   * service count as one).
   */
  service?: string;
  logger?: Logger;
}

export interface ResolvedWorkerOptions {
  concurrency: number;
  queues: string[];
  /** null: adaptive (worker/prefetch.ts). */
  prefetch: number | null;
  pollIntervalMs: number;
  workerDeadAfterMs: number;
  maxRssBytes: number | null;
  maxPendingAcks: number;
  heartbeatIntervalMs: number;
  shutdownTimeoutMs: number;
  startTimeoutMs: number;
  abortGraceMs: number;
  maxResultBytes: number;
  service: string | null;
  registrations: Map<string, JobRegistration>;
  middleware: Middleware[];
  schedules: ScheduleDefinition[];
  undeclaredSchedules: 'report' | 'remove';
  runScheduler: boolean;
  subscriptions: Subscription[];
}

export function resolveWorkerOptions(options: WorkerOptions): ResolvedWorkerOptions {
  const {
    handlers, logger: _logger, pool: _pool, connectionString: _cs, poolSize: _ps, poolMode: _pm, listenConnectionString: _lcs, readConnectionString: _rcs, readPool: _rp,
    schedules, undeclaredSchedules, runScheduler, middleware, subscriptions, ...rest
  } = options ?? ({} as WorkerOptions);
  const opts = parseOptions(workerOptionsSchema, rest, 'createWorker');
  if (!Array.isArray(handlers) || handlers.length === 0) {
    throw new ValidationError('createWorker.handlers', 'must be a non-empty array of job.handle(fn) registrations');
  }
  const registrations = new Map<string, JobRegistration>();
  for (const [i, reg] of handlers.entries()) {
    if (!reg?.job?.name || typeof reg.handler !== 'function') {
      throw new ValidationError(`createWorker.handlers.${i}`, 'expected job.handle(fn)');
    }
    // The later one would silently replace the earlier.
    if (registrations.has(reg.job.name)) {
      throw new ValidationError(`createWorker.handlers.${i}`, `a second handler for job "${reg.job.name}": give each job one handler`);
    }
    registrations.set(reg.job.name, reg);
  }
  if (schedules !== undefined && (!Array.isArray(schedules) || schedules.some((s) => typeof s?.cron !== 'string' || typeof s?.jobName !== 'string'))) {
    throw new ValidationError('createWorker.schedules', 'must be an array of schedule({...}) definitions');
  }
  // A definition written by hand rather than by schedule() is held to the
  // same rules: one the worker stored unchecked would fail every fire.
  const checkedSchedules = (schedules ?? []).map((s, i) => {
    try {
      return scheduleByName(s);
    } catch (err) {
      if (err instanceof ValidationError && !(err instanceof OptionsConflictError) && err.field.startsWith('schedule')) {
        throw new ValidationError(`createWorker.schedules.${i}${err.field.slice('schedule'.length)}`, err.message.slice(err.field.length + 2), { cause: err });
      }
      throw err;
    }
  });
  // One statement upserts them all: PostgreSQL refuses a name twice (21000) only at start(), and one would be lost.
  const firstByName = new Map<string, number>();
  for (const [i, s] of checkedSchedules.entries()) {
    const first = firstByName.get(s.name);
    if (first !== undefined) {
      throw new ValidationError(`createWorker.schedules.${i}.name`, `"${s.name}" is also the name of schedules.${first}: give each schedule its own name`);
    }
    firstByName.set(s.name, i);
  }
  if (undeclaredSchedules !== undefined && undeclaredSchedules !== 'report' && undeclaredSchedules !== 'remove') {
    throw new ValidationError('createWorker.undeclaredSchedules', "must be 'report' or 'remove'");
  }
  if (middleware !== undefined && (!Array.isArray(middleware) || middleware.some((m) => typeof m !== 'function'))) {
    throw new ValidationError('createWorker.middleware', 'must be an array of functions (ctx, next) => ...');
  }
  if (runScheduler !== undefined && typeof runScheduler !== 'boolean') {
    throw new ValidationError('createWorker.runScheduler', 'must be true or false');
  }
  if (subscriptions !== undefined && !Array.isArray(subscriptions)) {
    throw new ValidationError('createWorker.subscriptions', 'must be an array of { topic, job }');
  }
  for (const [i, s] of (subscriptions ?? []).entries()) {
    if (!nameSchema.safeParse(s?.topic).success) throw new ValidationError(`createWorker.subscriptions.${i}.topic`, 'must be a valid name');
    if (!s?.job?.name) throw new ValidationError(`createWorker.subscriptions.${i}.job`, 'expected a job definition');
  }
  const concurrency = opts.concurrency ?? CONCURRENCY_DEFAULT;
  const workerDeadAfterMs = opts.workerDeadAfterMs ?? WORKER_DEAD_AFTER_MS_DEFAULT;
  const heartbeatIntervalMs = opts.heartbeatIntervalMs ?? Math.min(HEARTBEAT_INTERVAL_MS_DEFAULT, Math.floor(workerDeadAfterMs / 3));
  if (heartbeatIntervalMs * 2 >= workerDeadAfterMs) {
    throw new OptionsConflictError(
      ['createWorker.heartbeatIntervalMs', 'createWorker.workerDeadAfterMs'],
      `a heartbeat every ${heartbeatIntervalMs} ms must be below half of workerDeadAfterMs (${workerDeadAfterMs} ms), or one late beat lets the rescuer take jobs from a live worker`,
    );
  }
  return {
    concurrency,
    queues: opts.queues ?? [...new Set(handlers.map((h) => h.job.queue))],
    prefetch: opts.prefetch ?? null,
    pollIntervalMs: opts.pollIntervalMs ?? POLL_INTERVAL_MS_DEFAULT,
    workerDeadAfterMs,
    maxRssBytes: opts.maxRssBytes ?? null,
    maxPendingAcks: opts.maxPendingAcks ?? MAX_PENDING_ACKS_DEFAULT,
    heartbeatIntervalMs,
    shutdownTimeoutMs: opts.shutdownTimeoutMs ?? SHUTDOWN_TIMEOUT_MS_DEFAULT,
    startTimeoutMs: opts.startTimeoutMs ?? START_TIMEOUT_MS_DEFAULT,
    abortGraceMs: opts.abortGraceMs ?? ABORT_GRACE_MS_DEFAULT,
    maxResultBytes: opts.maxResultBytes ?? MAX_RESULT_BYTES_DEFAULT,
    service: opts.service ?? null,
    registrations,
    middleware: [...(middleware ?? [])],
    schedules: checkedSchedules,
    undeclaredSchedules: undeclaredSchedules ?? 'report',
    runScheduler: runScheduler ?? true,
    subscriptions: [...(subscriptions ?? [])],
  };
}
