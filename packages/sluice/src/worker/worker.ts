// Worker: claims batches of jobs into a local prefetch buffer, runs up to
// `concurrency` handlers at once, and acknowledges results in batches. Every
// worker heartbeats; the database-wide duties (promoter, rescuer, ager, cron
// scheduler, retention, alerts) run only in the elected maintenance leader.
// Each is a small service on one shared lifecycle.
import { EventEmitter } from 'node:events';
import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import type pg from 'pg';
import type { Logger } from 'pino';
import { openListenPool, openPool, openReadPool, type OwnedPool } from '../connection.js';
import { CancelledError, LeaseLostError, ValidationError, WorkerStateError, serializeError } from '../errors.js';
import type { Queryable } from '../executor.js';
import { SilenceGuard, type DutyDb } from '../silent-connections.js';
import type { Middleware } from '../job.js';
import { sluiceLogger } from '../logger.js';
import { MIGRATIONS_FOLDER_DEFAULT } from '../migrate.js';
import { requireReadCommitted } from '../isolation.js';
import { requireMigrated } from '../schema-version.js';
import type { Scheduler } from '../services/scheduler.js';
import type { AlertEvent } from '../services/alert-watcher.js';
import { WorkerOperations, parseWorkerOperationsOptions, type WorkerOperationsOptions } from '../services/operations.js';
import type { Service } from '../services/service.js';
import { jobLeaseHolds, type ClaimedJobRow } from '../sql/job-leases.js';
import { workerDeregister, workerHeartbeat, workerWithdraw, type BeatAnswer } from '../sql/workers.js';
import { settleDeclaredSchedules } from '../undeclared-schedules.js';
import { Completer, type Ack, type AckResult } from './completer.js';
import { declareWorker, registerWorker, restoreSchedules } from './declarations.js';
import { createDuties } from './duties.js';
import { Fetcher } from './fetcher.js';
import { dutySlots, sharingSlots } from './duty-slots.js';
import { DUTY_GIVE_UP_MS, DUTY_STOP_GRACE_MS, beatGiveUpMs, statementGiveUpMs } from './give-up.js';
import { Heartbeat } from './heartbeat.js';
import { LEADER_CHANNEL, Leadership } from './leadership.js';
import { CANCEL_CHANNEL, CRON_CHANNEL, JOBS_CHANNEL, Notifier, PAUSE_CHANNEL, REWIND_CHANNEL, SCHEDULED_CHANNEL } from './notifier.js';
import { Prefetch } from './prefetch.js';
import { resolveWorkerOptions, type ResolvedWorkerOptions, type WorkerOptions as CoreWorkerOptions } from './options.js';
import { JobAbort } from './job-abort.js';
import { MemoryGuard } from './memory-guard.js';
import { runJob, type RunJobEnv, type RunningJob } from './run-job.js';
import { flushAcks, handBack, releaseClaims, waitForRunning } from './shutdown.js';
import { retryUntilReachable } from './start-retry.js';
import { WakeShare, parseAnnouncement } from './wake.js';

export type { Subscription } from './options.js';

/** The core options plus the operations ones: metricsPort, alertCheckIntervalMs. */
export type WorkerOptions = CoreWorkerOptions & WorkerOperationsOptions;

export interface JobEvent {
  id: number;
  name: string;
  queue: string;
  attempt: number;
  result: AckResult;
}

interface RunningEntry extends RunningJob {
  done: Promise<void>;
  /** performance.now() when its handler started. */
  startedAt: number;
  /** Given back (shutdown) or cancelled: its answer is void. */
  released: boolean;
}

export class Worker extends EventEmitter<{ job: [JobEvent]; alert: [AlertEvent]; leader: [boolean]; stopped: [] }> {
  readonly id = `${hostname()}:${process.pid}:${randomUUID().slice(0, 8)}`;
  readonly concurrency: number;
  readonly queues: string[];
  private readonly logger: Logger;
  /** The started_at of this worker's row, by the server's clock: kept if it must register again. */
  private registeredAt: string | null = null;
  private readonly pool: pg.Pool;
  /** The pool for claims and acknowledgements, each statement given up after statementGiveUpMs. */
  private readonly hotPool: Queryable;
  /** The pool for beats that cannot go on the LISTEN session, each given up after beatGiveUpMs. */
  private readonly beatPool: Queryable;
  private readonly silence: SilenceGuard;
  private readonly ownsPool: boolean;
  private readonly options: ResolvedWorkerOptions;
  private readonly buffer: ClaimedJobRow[] = [];
  /**
   * Buffered jobs of a paused queue not yet handed back: held (their leases
   * extended by each beat) and never started; handed back at each beat while
   * the queue stays paused, returned to the buffer once it is resumed.
   */
  private pausedBack: ClaimedJobRow[] = [];
  /**
   * Buffered jobs beyond what the prefetch keeps at the pace now measured
   * (Prefetch.holdMax), not yet handed back: held, never started, handed
   * back at each beat until that is written.
   */
  private surplusBack: ClaimedJobRow[] = [];
  /** The queues the last beat found paused: rows of them that a claim brings afterwards go to pausedBack. */
  private paused = new Set<string>();
  private readonly running = new Map<number, RunningEntry>();
  private readonly completer: Completer;
  private readonly fetcher: Fetcher;
  private readonly heartbeat: Heartbeat;
  private readonly scheduler: Scheduler | null;
  /** Database-wide duties: run by the leader, or by every worker when none can be elected. */
  private readonly duties: Service[];
  /** Null behind a transaction pooler with no direct connection: the worker polls. */
  private readonly notifier: Notifier | null;
  /** Null without a direct connection to hold the lock on: then every worker runs the duties. */
  private readonly leadership: Leadership | null;
  private readonly listenPool: OwnedPool | null;
  /** Where the /metrics server reads: a replica when one is configured. */
  private readonly readPool: OwnedPool;
  private readonly operations: WorkerOperations;
  private readonly runEnv: RunJobEnv;
  private readonly memory: MemoryGuard;
  /** Whether an announcement of new jobs is this process's to claim. */
  private readonly wake: WakeShare;
  private readonly prefetch: Prefetch;
  /** Fired by stop(): ends start()'s retries. */
  private readonly stopping = new AbortController();
  /** Closes the connections of the duties' statements still under way at a stop (DUTY_STOP_GRACE_MS). */
  private readonly dutyCut = new AbortController();
  private state: 'new' | 'started' | 'stopping' | 'stopped' = 'new';
  /** start()'s work while it runs: a stop() meanwhile waits for it, then takes down what it started. */
  private starting: Promise<void> | null = null;
  /** The one shutdown every stop() call waits for. */
  private stopped: Promise<void> | null = null;

  constructor(options: WorkerOptions) {
    super();
    const { metricsPort, alertCheckIntervalMs, ...core } = options ?? ({} as WorkerOptions);
    this.options = resolveWorkerOptions(core);
    const ops = parseWorkerOperationsOptions({ metricsPort, alertCheckIntervalMs });
    const o = this.options;
    this.logger = sluiceLogger(options.logger).child({ workerId: this.id });
    this.concurrency = o.concurrency;
    this.memory = new MemoryGuard(o.maxRssBytes, this.logger);
    this.queues = o.queues;
    this.prefetch = new Prefetch(o.prefetch, o.concurrency);
    this.wake = new WakeShare(this.queues, () => this.prefetch.capacity, o.workerDeadAfterMs);
    const connection = {
      pool: options.pool,
      connectionString: options.connectionString,
      poolSize: options.poolSize,
      poolMode: options.poolMode,
      listenConnectionString: options.listenConnectionString,
      readConnectionString: options.readConnectionString,
      readPool: options.readPool,
    };
    const opened = openPool(connection, this.logger);
    this.pool = opened.pool;
    this.ownsPool = opened.owned;
    // A connection that went silent without closing would hold a claim, an
    // acknowledgement or a beat for as long as TCP allows: the worker would
    // stop claiming, keep a finished job running forever, or let its leases
    // lapse; a leader's duty would hold its connection, and its duty, forever.
    // Such statements are given up (worker/give-up.ts) and retried on a fresh
    // connection. The handlers' statements keep no limit.
    const silence = new SilenceGuard(this.pool);
    this.silence = silence;
    this.hotPool = silence.limited(statementGiveUpMs(o.workerDeadAfterMs));
    this.beatPool = silence.limited(beatGiveUpMs(o.heartbeatIntervalMs, o.workerDeadAfterMs));
    this.listenPool = openListenPool(connection, this.pool, this.logger);
    // A leader frozen mid-transaction is deposed after a lease: by then the server has ended its transaction.
    const dutyDb: DutyDb = sharingSlots(
      {
        db: silence.limited(DUTY_GIVE_UP_MS, this.dutyCut.signal),
        transaction: silence.transactions(DUTY_GIVE_UP_MS, o.workerDeadAfterMs, this.dutyCut.signal),
      },
      dutySlots(this.pool.options.max, this.listenPool?.owned === false),
    );
    this.runEnv = {
      db: this.pool,
      workerId: this.id,
      logger: this.logger,
      abortGraceMs: o.abortGraceMs,
      maxResultBytes: o.maxResultBytes,
      middleware: o.middleware,
    };
    this.readPool = openReadPool(connection, this.pool, this.logger);
    this.operations = new WorkerOperations(
      dutyDb,
      this.readPool.pool,
      this,
      { ...ops, workerDeadAfterMs: o.workerDeadAfterMs, onAlert: (event) => this.emit('alert', event) },
      this.logger,
    );
    this.completer = new Completer(this.hotPool, this.id, this.logger, (ack, result) => this.acknowledged(ack, result));
    this.fetcher = new Fetcher(
      this.hotPool,
      {
        queues: this.queues,
        workerId: this.id,
        leaseMs: o.workerDeadAfterMs,
        pollIntervalMs: o.pollIntervalMs,
        lowWater: () => this.prefetch.lowWater,
        room: () => this.room(),
        freeSlots: () => this.freeSlots(),
        bufferedCount: () => this.buffer.length,
        accept: (rows, startNow) => this.accept(rows, startNow),
        heldIds: () => this.heldIds(this.unstarted().map((r) => r.id)),
      },
      this.logger,
    );
    this.heartbeat = new Heartbeat(
      () => this.beat(),
      () => this.leadership?.nextBeatMs(o.heartbeatIntervalMs) ?? o.heartbeatIntervalMs,
      this.logger,
    );
    const { all, promoter, scheduler } = createDuties(dutyDb, o, this.listenPool !== null, this.operations.duties, this.logger);
    this.duties = all;
    this.scheduler = scheduler;
    this.notifier = this.listenPool && new Notifier(
      this.listenPool.pool,
      [JOBS_CHANNEL, SCHEDULED_CHANNEL, CANCEL_CHANNEL, CRON_CHANNEL, LEADER_CHANNEL, REWIND_CHANNEL, PAUSE_CHANNEL],
      {
        onNotification: (channel, payload) => {
          if (channel === SCHEDULED_CHANNEL) promoter.wake();
          else if (channel === CANCEL_CHANNEL) void this.cancelNoticed(payload);
          else if (channel === CRON_CHANNEL) this.scheduler?.wake();
          else if (channel === LEADER_CHANNEL) this.heartbeat.wake();
          // A hint: the beat reads which queues are paused, and acts on that.
          // A claim in flight may bring jobs of it: the beat's answer diverts them.
          else if (channel === PAUSE_CHANNEL) {
            if (this.queues.includes(payload)) this.heartbeat.wake();
          }
          else if (channel === REWIND_CHANNEL) {
            if (this.queues.includes(payload)) {
              this.fetcher.rewind(payload);
              this.fetcher.notified();
            }
          }
          else {
            const announced = parseAnnouncement(payload);
            if (announced.runAtUs !== undefined && announced.key !== undefined) this.fetcher.announced(announced.queue, announced.runAtUs, announced.key);
            if (this.wake.claims(announced)) this.fetcher.notified(announced.queue);
          }
        },
        onConnected: () => {
          this.fetcher.rewind();
          this.fetcher.notified();
          // Also finds what the lost notices would have told: cancels, pauses.
          this.heartbeat.wake();
        },
        onDisconnected: () => {
          this.leadership?.sessionLost();
          // Through the pool at once: the beat clears the session this
          // worker recorded, before the rescuer takes its end for a death.
          this.heartbeat.wake();
        },
      },
      this.logger,
      // A session given up as stuck stays open until a beat lands elsewhere, a lease at most.
      o.workerDeadAfterMs,
    );
    this.leadership =
      this.notifier && new Leadership(this.beatPool, this.notifier, this.duties, o.workerDeadAfterMs, beatGiveUpMs(o.heartbeatIntervalMs, o.workerDeadAfterMs), (leader) => this.emitLeader(leader), this.logger);
    this.fetcher.listening = () => this.notifier?.connected ?? false;
  }

  /** True while this process is the database's maintenance leader (see docs/scaling.md). */
  get isLeader(): boolean {
    return this.leadership?.isLeader ?? false;
  }

  /** Adds a middleware around every handler; runs after those given as options, in order. */
  use(middleware: Middleware): this {
    if (typeof middleware !== 'function') throw new ValidationError('use', 'expected a function (ctx, next) => ...');
    if (this.state !== 'new') throw new WorkerStateError('middleware must be added before start()');
    this.options.middleware.push(middleware);
    return this;
  }

  /** Declares job types, schedules and subscriptions, registers the worker and starts claiming. */
  async start(): Promise<void> {
    if (this.state !== 'new') throw new WorkerStateError(`worker is ${this.state}; create a new one to start again`);
    this.state = 'started';
    this.starting = this.startServices();
    try {
      await this.starting;
    } catch (err) {
      // Leave nothing running behind a failed start (timers, connections, a port).
      await this.stop().catch(() => {});
      throw err;
    } finally {
      this.starting = null;
    }
    if (this.state === 'started') this.logger.info({ queues: this.queues, concurrency: this.concurrency }, 'worker started');
  }

  private async startServices(): Promise<void> {
    const o = this.options;
    // A worker started while its database restarts comes up by itself.
    await retryUntilReachable(
      async () => {
        await requireMigrated(this.pool, MIGRATIONS_FOLDER_DEFAULT);
        await requireReadCommitted(this.pool, "a worker's claims");
        this.registeredAt = await declareWorker(this.pool, o, this, this.logger);
      },
      { timeoutMs: o.startTimeoutMs, stopped: this.stopping.signal, logger: this.logger },
    );
    await this.notifier?.start();
    // A first beat before anything else runs, so a lone worker leads when start() returns.
    await this.beat();
    this.heartbeat.start();
    if (!this.leadership) {
      this.logger.info('no direct connection to elect a maintenance leader on: this worker runs the maintenance duties too');
      for (const duty of this.duties) duty.start();
    }
    this.fetcher.start();
    await this.operations.start();
  }

  /**
   * Stops claiming, lets running jobs finish for up to shutdownTimeoutMs,
   * writes every pending acknowledgement (a job that timed out before then
   * fails, after its abort grace), gives unstarted and unfinished jobs back
   * to their queues at once, and deregisters. With the database
   * unreachable it still ends (after shutdownTimeoutMs for the acks): the
   * leases of whatever it could not hand back lapse and the rescuer takes over.
   */
  stop(): Promise<void> {
    if (this.stopped) return this.stopped;
    if (this.state !== 'started') return Promise.resolve();
    this.state = 'stopping';
    this.stopping.abort();
    this.stopped = this.shutDown();
    return this.stopped;
  }

  private async shutDown(): Promise<void> {
    try {
      // A start() still under way would go on starting services (a LISTEN
      // session, timers) after this took them down; it ends soon, since
      // its retries watch the abort above.
      await this.starting?.catch(() => {});
      // Leadership is handed over on the LISTEN session at once (a follower
      // takes over while this one finishes its jobs), so that one closes after it.
      const duties = this.leadership ? [this.leadership.stop()] : this.duties.map((s) => s.stop());
      // Counted as a claimer, this worker would take a place in other
      // workers' wake windows until its jobs are settled.
      const withdrawn = workerWithdraw(this.hotPool, this.id).catch((err) =>
        this.logger.warn({ err }, 'could not withdraw from its queues; other workers count it as claiming until it stops'),
      );
      const cut = setTimeout(() => this.dutyCut.abort(), DUTY_STOP_GRACE_MS);
      await Promise.all([this.fetcher.stop(), this.operations.stop(), withdrawn, ...duties]).finally(() => clearTimeout(cut));
      // The LISTEN session stays open until the jobs are settled: its end is
      // how the rescuer learns of a dead process (sluice.workers.session_pid),
      // and a stopping worker still beats on it. Closed here, the recorded
      // session would have looked dead while the jobs ran on, and the rescuer
      // reran them elsewhere after its grace. Kept, a process killed in the
      // middle of its shutdown still has its jobs rescued at once; a cancel
      // notice still reaches a job it finishes.
      const unstarted = [...this.buffer.splice(0), ...this.pausedBack.splice(0), ...this.surplusBack.splice(0)];
      await releaseClaims(this.hotPool, this.id, unstarted, this.logger);
      await waitForRunning(this.running.values(), this.options.shutdownTimeoutMs);
      const left = [...this.running.values()];
      // A job aborted on its own before this point (its timeout, a lost
      // lease) already has its answer, the failure, and is only inside its
      // abort grace: handing it back would erase a failed attempt (no error
      // entry, the attempt not counted, the retry budget given back).
      // Its grace timer started before the wait below, so it settles first
      // and its acknowledgement goes out with the others.
      const decided = left.filter((job) => job.abort.aborted && !job.released);
      const unfinished = left.filter((job) => !decided.includes(job));
      for (const job of unfinished) {
        job.released = true;
        job.abort.abort(new WorkerStateError('worker is shutting down'));
      }
      await waitForRunning(decided, this.options.abortGraceMs);
      // One that still has not settled has a runner gone wrong: hand it back
      // as before rather than leave it to the rescuer.
      for (const job of decided) {
        if (this.running.get(job.id) !== job) continue;
        job.released = true;
        unfinished.push(job);
      }
      await flushAcks(this.completer, this.options.shutdownTimeoutMs, this.logger);
      if (unfinished.length) {
        await releaseClaims(this.hotPool, this.id, unfinished, this.logger);
        this.logger.warn({ jobs: unfinished.length }, 'released jobs still running at shutdown');
      }
    } finally {
      // Nothing is held any more, or its answer could not be written and its
      // lease is left to the rescuer anyway; the row goes next. The session
      // closes before the heartbeat is awaited: a beat stuck on a session
      // that went silent (a partition, a proxy that stopped forwarding) ends
      // only when its socket does.
      await this.notifier?.stop();
      await this.heartbeat.stop();
      if (await workerDeregister(this.hotPool, this.id).then(() => true, (err) => this.logger.warn({ err }, 'could not deregister'))) {
        await settleDeclaredSchedules(this.hotPool, this.logger, this.options.service).catch((err) =>
          this.logger.warn({ err }, 'could not settle the schedules this worker declared'),
        );
      }
      this.state = 'stopped';
      this.silence.detach();
      if (this.ownsPool) await this.pool.end().catch(() => {});
      if (this.listenPool?.owned) await this.listenPool.pool.end().catch(() => {});
      if (this.readPool.owned) await this.readPool.pool.end().catch(() => {});
      this.logger.info('worker stopped');
      this.emit('stopped');
    }
  }

  /** Jobs running plus jobs buffered: for tests and stats. */
  get load(): { running: number; buffered: number; pendingAcks: number } {
    return { running: this.running.size, buffered: this.buffer.length, pendingAcks: this.completer.pending };
  }

  private async beat(): Promise<void> {
    // The claims as the beat presents them: what it answers about a job is
    // acted on only while this same claim still runs or waits here.
    const claims = this.liveClaims();
    const heldBack = new Map([...this.pausedBack, ...this.surplusBack].map((r) => [r.id, r.lease]));
    const unstartedIds = this.unstarted().map((r) => r.id);
    const beat = {
      workerId: this.id,
      leaseMs: this.options.workerDeadAfterMs,
      heldIds: this.heldIds(unstartedIds),
      unstartedIds,
      queues: this.queues,
    };
    let answer: BeatAnswer;
    if (this.leadership) {
      const { peers, ...found } = await this.leadership.beat(beat);
      this.wake.update(peers);
      answer = found;
    } else {
      answer = await workerHeartbeat(this.beatPool, beat.workerId, beat.leaseMs, beat.heldIds, beat.queues, beat.unstartedIds);
    }
    // The beat landed: a session given up as stuck may close now, its end no longer taken for this process's death.
    this.notifier?.closeGivenUp();
    this.leasesLost(answer, claims);
    this.heldBackLost(answer, heldBack);
    await this.handBackPaused(answer.paused);
    await this.handBackSurplus();
    if (!answer.registered && !this.stopping.signal.aborted) {
      this.logger.warn('this worker had been forgotten (no beat reached the database for an hour); registering it again');
      await registerWorker(this.beatPool, this.options, this, this.registeredAt);
      // The round that forgot it may have removed the schedules only it declared.
      await restoreSchedules(this.beatPool, this.options);
    }
  }

  /**
   * A 'leader' listener's exception is its own: thrown inside a session loss
   * it stopped the LISTEN session from reconnecting, and inside stop() it
   * skipped the hand-back of the buffered jobs and the last acknowledgements.
   */
  private emitLeader(leader: boolean): void {
    try {
      this.emit('leader', leader);
    } catch (err) {
      this.logger.error({ err }, 'a leader event listener threw');
    }
  }

  /** Buffered (unstartedIds), running, and finished with the answer not yet written: every lease this worker keeps. */
  private heldIds(unstartedIds: number[]): number[] {
    return [...this.running.keys(), ...unstartedIds, ...this.completer.heldIds];
  }

  /** Claimed and held here, never started: buffered, or waiting to be handed back. */
  private unstarted(): ClaimedJobRow[] {
    return [...this.buffer, ...this.pausedBack, ...this.surplusBack];
  }

  /** Lease token per job running (not already dropped) or buffered here. */
  private liveClaims(): Map<number, number> {
    const claims = new Map<number, number>();
    for (const r of this.buffer) claims.set(r.id, r.lease);
    for (const [id, job] of this.running) if (!job.released) claims.set(id, job.lease);
    return claims;
  }

  /**
   * The beat could not extend these leases: the job was cancelled (its
   * notice lost while the LISTEN session was down, say), or rescued,
   * retried, sent to the dead jobs or completed by someone else; only a
   * cancel kept in history is reported as one (CancelledError), any other
   * loss as LeaseLostError. One this worker still runs or buffers under the
   * claim the beat presented is stopped as a cancel notice would stop it;
   * its answer would be refused anyway. A held job not here any more had its
   * answer written meanwhile, and is simply gone.
   */
  private leasesLost(answer: BeatAnswer, claims: Map<number, number>): void {
    if (answer.lost.length === 0) return;
    const cancelledIds = new Set(answer.cancelled);
    let dropped = false;
    for (const id of answer.lost) {
      const lease = claims.get(id);
      if (lease === undefined) continue;
      const running = this.running.get(id);
      const current = running ?? this.buffer.find((r) => r.id === id);
      if (!current || current.lease !== lease || running?.released) continue;
      const cancelled = cancelledIds.has(id);
      this.drop(id, (attempt) => (cancelled ? new CancelledError(id) : new LeaseLostError(id, attempt)));
      dropped = true;
      const fields = { jobId: id, attempt: current.attempt, running: running !== undefined };
      if (cancelled) this.logger.info(fields, 'job cancelled (found by the heartbeat)');
      else this.logger.warn(fields, 'job no longer held by this worker (found by the heartbeat); stopped');
    }
    if (dropped) this.dispatch();
  }

  /**
   * Jobs held for a hand-back that the beat could not extend are someone
   * else's now: a hand-back the client gave up on (a statement bound) may
   * have committed on the server all the same, and the job been claimed
   * again. Kept, a resumed queue would start it here a second time.
   */
  private heldBackLost(answer: BeatAnswer, presented: Map<number, number>): void {
    if (answer.lost.length === 0 || presented.size === 0) return;
    const lost = new Set(answer.lost.filter((id) => presented.has(id)));
    if (lost.size === 0) return;
    const kept = (r: ClaimedJobRow) => !(lost.has(r.id) && presented.get(r.id) === r.lease);
    this.pausedBack = this.pausedBack.filter(kept);
    this.surplusBack = this.surplusBack.filter(kept);
    this.logger.warn({ jobIds: [...lost].slice(0, 20) }, 'jobs held for a hand-back are no longer held by this worker (found by the heartbeat); let go');
  }

  /**
   * A paused queue starts nothing new: the jobs of it that wait in the
   * buffer go back to it, their attempt given back (they never ran). They
   * stay held until the hand-back is written: one that failed (a connection
   * given up) is tried again at the next beat, where before the jobs, out of
   * the buffer and no longer beaten for, were rescued as a crash, an attempt
   * spent. The hand-back goes on the beat's pool, whose bound leaves the next
   * beat time to land before the leases lapse.
   */
  private async handBackPaused(paused: string[]): Promise<void> {
    const queues = new Set(paused);
    this.paused = queues;
    // Out of the buffer before anything is dispatched: a queue resumed in the
    // same answer would otherwise start a job of one just paused.
    for (let i = this.buffer.length - 1; i >= 0; i--) {
      if (queues.has(this.buffer[i]!.queue)) this.pausedBack.push(...this.buffer.splice(i, 1));
    }
    // Resumed meanwhile: they start as any buffered job.
    const resumed = this.pausedBack.filter((r) => !queues.has(r.queue));
    if (resumed.length > 0) {
      this.pausedBack = this.pausedBack.filter((r) => queues.has(r.queue));
      this.buffer.unshift(...resumed);
      this.dispatch();
    }
    const back = [...this.pausedBack];
    if (await this.handBackHeld(back, 'queue paused: buffered jobs handed back')) this.pausedBack = this.pausedBack.filter((r) => !back.includes(r));
  }

  /**
   * Buffered jobs the slots would not start for a while at the pace now
   * measured (a burst claimed while the jobs ran fast) go back to their
   * queue, the last claimed first, their attempt given back, for workers with
   * free slots to run. Held until the hand-back is written; one that failed
   * is tried again at the next beat.
   */
  private async handBackSurplus(): Promise<void> {
    const now = performance.now();
    let busyForMs = this.running.size >= this.concurrency ? Infinity : 0;
    for (const job of this.running.values()) busyForMs = Math.min(busyForMs, now - job.startedAt);
    this.prefetch.slotsBusyFor(busyForMs);
    const surplus = this.buffer.length - this.prefetch.holdMax;
    if (surplus > 0) this.surplusBack.push(...this.buffer.splice(this.buffer.length - surplus));
    const back = [...this.surplusBack];
    if (await this.handBackHeld(back, 'jobs run slower than when they were claimed: buffered surplus handed back')) {
      this.surplusBack = this.surplusBack.filter((r) => !back.includes(r));
    }
  }

  /**
   * Hands back buffered jobs held out of the buffer, on the beat's pool,
   * whose bound leaves the next beat time to land before the leases lapse.
   * False when there were none, or the write failed: they stay held, and the
   * next beat tries again.
   */
  private async handBackHeld(back: ClaimedJobRow[], done: string): Promise<boolean> {
    if (back.length === 0) return false;
    let written = false;
    try {
      await handBack(this.beatPool, this.id, back);
      written = true;
      this.logger.info({ jobs: back.length, queues: [...new Set(back.map((r) => r.queue))] }, done);
    } catch (err) {
      this.logger.warn({ err, jobs: back.length }, 'could not hand back buffered jobs; they stay held, and the next beat tries again');
    }
    this.dispatch();
    return written;
  }

  private room(): number {
    if (this.state !== 'started' || this.memory.exceeded()) return 0;
    return this.prefetch.capacity - this.running.size - this.buffer.length;
  }

  /**
   * Slots a job of a limited queue would start in at once: those not running
   * a job nor taken by a buffered job of a limited queue (those wait at the
   * front of the buffer). Buffered jobs of other queues give way to them.
   */
  private freeSlots(): number {
    if (this.completer.pending >= this.options.maxPendingAcks) return 0;
    let taken = this.running.size;
    for (const r of this.buffer) {
      if (!this.fetcher.isLimited(r.queue)) break;
      taken += 1;
    }
    return Math.max(0, Math.min(this.room(), this.concurrency - taken));
  }

  /** Drops a job this process holds: out of the buffer, or its run aborted and its answer void. */
  private drop(id: number, reason: (attempt: number) => Error): RunningEntry | undefined {
    const buffered = this.buffer.findIndex((r) => r.id === id);
    if (buffered >= 0) this.buffer.splice(buffered, 1);
    const running = this.running.get(id);
    if (!running) return undefined;
    running.released = true;
    running.abort.abort(reason(running.attempt));
    return running;
  }

  /**
   * A cancel notice names a job. Any login may send one (NOTIFY needs no
   * privilege), so it is a hint: a job this process holds is dropped only
   * when the database shows that its claim no longer holds. A notice for a
   * job held here costs one query; any other costs nothing.
   */
  private async cancelNoticed(payload: string): Promise<void> {
    if (!/^[1-9][0-9]{0,15}$/.test(payload)) return;
    const id = Number(payload);
    const claim = this.running.get(id) ?? this.buffer.find((r) => r.id === id);
    if (!claim) return;
    const { attempt, lease } = claim;
    let holds: boolean;
    try {
      holds = await jobLeaseHolds(this.pool, { id, attempt, workerId: this.id, lease });
    } catch (err) {
      // The lease check is what makes a notice safe to act on; without it the
      // job runs on, and a real cancel still refuses its answer.
      this.logger.warn({ err, jobId: id }, 'could not check a cancel notice; the job runs on');
      return;
    }
    if (holds) {
      this.logger.debug({ jobId: id, attempt }, 'cancel notice ignored: the job still holds its claim');
      return;
    }
    const current = this.running.get(id) ?? this.buffer.find((r) => r.id === id);
    if (current?.attempt !== attempt || current.lease !== lease) return;
    const running = this.drop(id, () => new CancelledError(id));
    if (running) this.logger.info({ jobId: id, attempt: running.attempt }, 'running job cancelled');
  }

  /** Claimed jobs; the first `startNow`, of limited queues, go ahead of the buffer: their slots were kept for them. */
  private accept(claimed: ClaimedJobRow[], startNow = 0): void {
    if (this.running.size > 0 || this.buffer.length > 0) {
      const buffered = new Set(this.buffer.map((r) => r.id));
      for (const row of claimed) {
        if (buffered.has(row.id) || this.running.has(row.id)) this.supersede(row.id);
      }
    }
    let rows = claimed;
    // A claim sent before the beat that found the pause: its jobs of the
    // paused queue wait in pausedBack, and the next beat, woken now, hands them back.
    if (this.paused.size > 0 && rows.some((r) => this.paused.has(r.queue))) {
      startNow = rows.slice(0, startNow).filter((r) => !this.paused.has(r.queue)).length;
      this.pausedBack.push(...rows.filter((r) => this.paused.has(r.queue)));
      rows = rows.filter((r) => !this.paused.has(r.queue));
      this.heartbeat.wake();
    }
    if (startNow > 0) this.buffer.unshift(...rows.slice(0, startNow));
    this.buffer.push(...(startNow > 0 ? rows.slice(startNow) : rows));
    this.dispatch();
  }

  /**
   * A job claimed again while this worker still holds it: its earlier claim
   * was lost (the server crashed before that claim reached the disk) and the
   * new one took the same attempt number. The earlier run's answers are
   * refused by the lease anyway; stop it and forget it so it neither holds a
   * slot nor shadows the new run.
   */
  private supersede(id: number): void {
    const old = this.drop(id, (attempt) => new LeaseLostError(id, attempt));
    if (!old) return;
    this.running.delete(id);
    this.logger.warn({ jobId: id, attempt: old.attempt }, 'job claimed again: its earlier claim was lost; the earlier run is stopped');
  }

  private dispatch(): void {
    // Free slots kept for jobs the limited queues are owed (worker/fetcher.ts):
    // only those, first in the buffer once claimed, take them.
    const held = this.fetcher.heldSlots();
    while (
      this.running.size < this.concurrency &&
      this.buffer.length > 0 &&
      (this.running.size + held < this.concurrency || this.fetcher.isLimited(this.buffer[0]!.queue)) &&
      this.completer.pending < this.options.maxPendingAcks &&
      this.state === 'started'
    ) {
      this.startJob(this.buffer.shift()!);
    }
    if (held > 0 && this.running.size < this.concurrency) this.fetcher.slotHeld();
    if (this.buffer.length <= this.prefetch.lowWater) this.fetcher.lowOnWork();
  }

  private startJob(row: ClaimedJobRow): void {
    const { id } = row;
    const entry: RunningEntry = {
      id,
      attempt: row.attempt,
      lease: row.lease,
      abort: new JobAbort(),
      done: Promise.resolve(),
      startedAt: performance.now(),
      released: false,
    };
    // Held before the handler starts: a synchronous handler runs to its end inside runJob.
    this.running.set(id, entry);
    entry.done = runJob(row, entry, this.options.registrations.get(row.name), this.runEnv).then(
      (ack) => {
        this.prefetch.observe(performance.now() - entry.startedAt);
        if (this.running.get(id) === entry) this.running.delete(id);
        if (!entry.released) this.completer.push(ack);
        this.dispatch();
      },
      (err: unknown) => {
        // runJob turns every outcome into an acknowledgement; should that
        // itself fail, the slot is still freed and the job is no longer
        // heartbeaten, so its lease lapses and the rescuer takes it.
        if (this.running.get(id) === entry) this.running.delete(id);
        this.logger.error({ err: serializeError(err), jobId: id }, 'could not settle a job; the rescuer takes it once its lease lapses');
        this.dispatch();
      },
    );
  }

  private acknowledged(ack: Ack, result: AckResult): void {
    if (this.listenerCount('job') > 0) {
      this.emit('job', { id: ack.id, attempt: ack.attempt, name: ack.name, queue: ack.queue, result });
    }
    // A flushed batch may have been holding back new jobs.
    this.dispatch();
  }
}

export function createWorker(options: WorkerOptions): Worker {
  return new Worker(options);
}
