// Batched acknowledgements: completions and failures gathered while the
// previous batch is being written go out together in one statement each.
// A write that fails (database unreachable) is retried, never dropped: every
// ack is fenced by id + attempt, so applying it late is safe.
import type { Logger } from 'pino';
import type { Queryable } from '../executor.js';
import type { JobErrorEntry } from '../job-record.js';
import { jobAckOutcomes, jobCompleteMany, jobFailMany } from '../sql/job-leases.js';

const BATCH_MAX = 1_000;
/** The most a run time can be as the SQL integer the acknowledgements take (about 24.8 days). */
const RUN_MS_MAX = 2 ** 31 - 1;

/**
 * A handler that ran longer than an integer of milliseconds holds (no
 * timeout, about 25 days) failed the cast of its whole batch at every retry,
 * and every acknowledgement behind it waited forever.
 */
function storedRunMs(runMs: number): number {
  return Math.min(Math.max(0, Math.round(runMs)), RUN_MS_MAX);
}
const RETRY_DELAY_MS = 500;

interface AckBase {
  id: number;
  attempt: number;
  lease: number;
  name: string;
  queue: string;
  /** How long the handler ran, for the run-time metrics. */
  runMs: number;
}

export interface CompleteAck extends AckBase {
  kind: 'complete';
  /** The handler's return value as JSON text, or null. */
  result: string | null;
}

export interface FailAck extends AckBase {
  kind: 'fail';
  error: JobErrorEntry;
  permanent: boolean;
  retryDelayMs: number | null;
}

export type Ack = CompleteAck | FailAck;

/**
 * What became of an answer: applied ('completed', 'retry', 'dead'), refused
 * because the attempt no longer held the job ('stale'), or, for a completion
 * whose write got no answer and whose retry found the job gone from a queue
 * that keeps no history, 'unknown': its first write may have completed it, or
 * another attempt did after a rescue.
 */
export type AckResult = 'completed' | 'retry' | 'dead' | 'stale' | 'unknown';

export class Completer {
  private queue: Ack[] = [];
  /** The batch being written now: out of the queue, not yet applied. */
  private writing: Ack[] = [];
  private flushing: Promise<void> | null = null;
  private abandoned = false;
  /**
   * Acks whose write failed: a write given up for want of an answer may
   * have committed all the same, so a retry that applies nothing asks what
   * the first one did before calling the answer stale.
   */
  private readonly uncertain = new WeakSet<Ack>();

  constructor(
    private readonly db: Queryable,
    private readonly workerId: string,
    private readonly logger: Logger,
    private readonly onApplied: (ack: Ack, result: AckResult) => void,
  ) {}

  get pending(): number {
    return this.queue.length;
  }

  /**
   * The jobs whose acks are not written yet: the worker still holds them and
   * heartbeats them, or a write retried for longer than the lease (a database
   * that refuses it for a while) would let them be rescued and run again.
   */
  get heldIds(): number[] {
    return [...this.writing, ...this.queue].map((a) => a.id);
  }

  push(ack: Ack): void {
    this.queue.push(ack);
    if (!this.flushing) {
      this.flushing = new Promise<void>((resolve) => setImmediate(resolve)).then(() => this.drain());
    }
  }

  /** Gives up on the acks not yet written (shutdown with the database unreachable). */
  abandon(): void {
    this.abandoned = true;
    this.queue.splice(0);
  }

  /** Resolves once every ack pushed so far is written. */
  async flush(): Promise<void> {
    while (this.flushing || this.queue.length > 0) {
      if (!this.flushing) this.flushing = this.drain();
      await this.flushing;
    }
  }

  private async drain(): Promise<void> {
    try {
      while (this.queue.length > 0) {
        const batch = this.nextBatch();
        this.writing = batch;
        let failed: Ack[];
        try {
          failed = await this.write(batch);
        } finally {
          this.writing = [];
        }
        if (this.abandoned) break;
        if (failed.length > 0) {
          for (const ack of failed) this.uncertain.add(ack);
          this.queue.unshift(...failed);
          await new Promise((r) => setTimeout(r, RETRY_DELAY_MS));
        }
      }
    } finally {
      this.flushing = null;
    }
  }

  /**
   * Up to BATCH_MAX acks, at most one per job: a retried ack of an earlier
   * attempt and the ack of the job's next attempt can both be waiting, and
   * what a write applied is told by job id. The later one waits for the next batch.
   */
  private nextBatch(): Ack[] {
    const batch: Ack[] = [];
    const ids = new Set<number>();
    const rest: Ack[] = [];
    for (const ack of this.queue) {
      if (batch.length < BATCH_MAX && !ids.has(ack.id)) {
        ids.add(ack.id);
        batch.push(ack);
      } else {
        rest.push(ack);
      }
    }
    this.queue = rest;
    return batch;
  }

  /**
   * Writes completions and failures side by side and reports what each
   * applied. Returns the acks of a side whose write failed, to be retried:
   * only those, since the other side's rows are already written.
   */
  private async write(batch: Ack[]): Promise<Ack[]> {
    const completes = batch.filter((a): a is CompleteAck => a.kind === 'complete');
    const fails = batch.filter((a): a is FailAck => a.kind === 'fail');
    const [applied, outcomes] = await Promise.allSettled([
      completes.length
        ? jobCompleteMany(this.db, {
            ids: completes.map((a) => a.id),
            attempts: completes.map((a) => a.attempt),
            results: completes.map((a) => a.result),
            runMs: completes.map((a) => storedRunMs(a.runMs)),
            workerId: this.workerId,
            leases: completes.map((a) => a.lease),
          })
        : Promise.resolve(new Set<number>()),
      fails.length
        ? jobFailMany(this.db, {
            ids: fails.map((a) => a.id),
            attempts: fails.map((a) => a.attempt),
            errors: fails.map((a) => a.error),
            permanent: fails.map((a) => a.permanent),
            retryDelaysMs: fails.map((a) => a.retryDelayMs),
            runMs: fails.map((a) => storedRunMs(a.runMs)),
            workerId: this.workerId,
            leases: fails.map((a) => a.lease),
          })
        : Promise.resolve(new Map<number, 'retry' | 'dead'>()),
    ]);
    const retry: Ack[] = [];
    const results = new Map<Ack, AckResult>();
    if (applied.status === 'fulfilled') {
      for (const ack of completes) results.set(ack, applied.value.has(ack.id) ? 'completed' : 'stale');
    } else {
      this.logger.warn({ err: applied.reason, acks: completes.length }, 'writing completions failed; retrying');
      retry.push(...completes);
    }
    if (outcomes.status === 'fulfilled') {
      for (const ack of fails) results.set(ack, outcomes.value.get(ack.id) ?? 'stale');
    } else {
      this.logger.warn({ err: outcomes.reason, acks: fails.length }, 'writing failures failed; retrying');
      retry.push(...fails);
    }
    await this.settleUncertain(results);
    for (const [ack, result] of results) this.report(ack, result);
    return retry;
  }

  /**
   * A retried ack that applied nothing may have been applied by its first
   * write, whose answer was lost: the database tells (the completed attempt
   * in history, the failure's own error entry on the job). If it cannot be
   * asked now, the answer stays stale: only the report is at stake.
   */
  private async settleUncertain(results: Map<Ack, AckResult>): Promise<void> {
    const asked = [...results].filter(([ack, result]) => result === 'stale' && this.uncertain.has(ack)).map(([ack]) => ack);
    if (asked.length === 0) return;
    try {
      const found = await jobAckOutcomes(
        this.db,
        asked.map((a) => ({ id: a.id, attempt: a.attempt, queue: a.queue, errorAt: a.kind === 'fail' ? a.error.at : null, lease: a.lease })),
      );
      for (const ack of asked) {
        const outcome = found.get(`${ack.id}:${ack.attempt}`);
        if (outcome) results.set(ack, outcome);
      }
    } catch (err) {
      this.logger.warn({ err, acks: asked.length }, 'could not read what retried acknowledgements did');
    }
  }

  private report(ack: Ack, result: AckResult): void {
    if (result === 'stale') {
      this.logger.warn(
        { jobId: ack.id, attempt: ack.attempt },
        'late answer refused: the job is no longer held by this attempt',
      );
    } else if (result === 'unknown') {
      this.logger.warn(
        { jobId: ack.id, attempt: ack.attempt, queue: ack.queue },
        'a completion whose write went unanswered found the job gone: its queue keeps no history, so whether this attempt or a later one completed it cannot be told',
      );
    }
    // A listener's exception is its own: it must not make a written ack look unwritten.
    try {
      this.onApplied(ack, result);
    } catch (err) {
      this.logger.error({ err, jobId: ack.id }, 'a job event listener threw');
    }
  }
}
