// Fires cron schedules. Leaderless: every worker may run it; a schedule row is
// locked with SKIP LOCKED, its jobs enqueued and its next_run_at advanced in
// one transaction, and each fire's job carries the unique key
// cron:<name>:<fire time>, so no fire happens twice. It sleeps until the
// nearest next_run_at rather than ticking coarsely. Each schedule fires in a
// savepoint of its own: one whose job cannot be enqueued (a full queue, an
// oversize payload, a queue row another transaction holds for longer than
// CRON_LOCK_WAIT_MS) records why and backs off, and the others fire on time.
import type { Logger } from 'pino';
import { translateDbError } from '../db-errors.js';
import type { Queryable } from '../executor.js';
import { safeMessage } from '../log-safety.js';
import { NoNextFireError, cronRetryDelayMs, dueFireTimes, firesToEnqueue, nextFireAfter, type MisfirePolicy } from '../schedule.js';
import { cronAdvance, cronClaimDue, cronDisableWithError, cronLimitLockWaits, cronNextDueInMs, cronRecordFailure, type CronRow } from '../sql/cron.js';
import { jobEnqueueMany, type EnqueueManyArgs } from '../sql/jobs.js';
import type { DutyDb } from '../silent-connections.js';
import { withSavepoint } from '../transaction.js';
import { Service } from './service.js';

const CLAIM_BATCH = 50;
/**
 * The wait when schedules are due but another session holds them locked
 * (another scheduler firing them, or a frozen one until the server ends its
 * transaction): looking again at once would spin.
 */
export const CRON_LOCKED_RETRY_MS = 500;

export interface SchedulerOptions {
  maxSleepMs: number;
  misfireGraceMs: number;
}

export function cronUniqueKey(name: string, fireAt: Date): string {
  return `cron:${name}:${fireAt.toISOString()}`;
}

/** The job a schedule enqueues: its definition's queue and retry options, or sluice.job_types' when it has none. */
export function cronJobArgs(row: CronRow, runAt: Date | null, uniqueKey: string): EnqueueManyArgs {
  const o = row.job_options;
  return {
    name: row.job_name,
    payloadsJson: JSON.stringify([row.payload]),
    queue: o?.queue ?? null,
    runAt,
    priority: o?.priority ?? null,
    maxAttempts: o?.maxAttempts ?? null,
    timeoutMs: o?.timeoutMs ?? null,
    backoff: o?.backoff ?? null,
    uniqueKeys: [uniqueKey],
    tags: [`cron:${row.name}`],
  };
}

export class Scheduler extends Service {
  constructor(
    private readonly duty: DutyDb,
    private readonly options: SchedulerOptions,
    logger: Logger,
  ) {
    super('scheduler', logger);
  }

  protected async tick(): Promise<number> {
    const fired = await this.fireDue();
    if (fired >= CLAIM_BATCH) return 0;
    const nextMs = await cronNextDueInMs(this.duty.db);
    if (nextMs === null) return this.options.maxSleepMs;
    // Due, yet none was free to claim: locked by another session.
    if (nextMs <= 0 && fired === 0) return Math.min(CRON_LOCKED_RETRY_MS, this.options.maxSleepMs);
    return Math.min(Math.max(nextMs, 0), this.options.maxSleepMs);
  }

  /** Returns the number of schedules handled. */
  private async fireDue(): Promise<number> {
    return this.duty.transaction(async (client) => {
      await cronLimitLockWaits(client);
      const { rows, now } = await cronClaimDue(client, CLAIM_BATCH);
      for (const row of rows) {
        await withSavepoint(client, () => this.fire(client, row, now), (err) => this.failed(client, row, now, err));
      }
      return rows.length;
    });
  }

  private async fire(client: Queryable, row: CronRow, now: Date): Promise<void> {
    let next: Date;
    let fires: Date[] = [];
    try {
      if (row.next_run_at === null) {
        next = nextFireAfter(row.cron, row.timezone, now);
      } else {
        const cap = row.misfire === 'run_all' ? row.run_all_cap : 1;
        const due = dueFireTimes(row.cron, row.timezone, row.next_run_at, now, cap);
        // A fire time at or before the last one fired has fired: a save that
        // computed next_run_at before this fire and wrote it after (waiting
        // for the row) must not fire it again. The unique key does not stop
        // that once the first job has completed.
        const fired = row.last_run_at?.getTime() ?? -Infinity;
        fires = firesToEnqueue(row.misfire as MisfirePolicy, due.due, now, this.options.misfireGraceMs).filter((t) => t.getTime() > fired);
        next = due.next;
      }
    } catch (err) {
      // The calendar arithmetic failed, not the schedule: a failure to retry.
      if (err instanceof NoNextFireError) throw err;
      this.logger.warn({ schedule: row.name, err }, 'schedule cannot be read; disabling it');
      await cronDisableWithError(client, row.name, (err as Error).message);
      return;
    }
    for (const fireAt of fires) await jobEnqueueMany(client, cronJobArgs(row, fireAt, cronUniqueKey(row.name, fireAt)));
    await cronAdvance(client, row.name, next, fires.at(-1) ?? null);
  }

  /**
   * The fire's writes were rolled back. The failed fire counts as missed:
   * `skip` drops it (next_run_at moves on), run_once and run_all keep
   * next_run_at so the retry catches up by their rules. The retry waits
   * longer after each failure in a row.
   */
  private async failed(client: Queryable, row: CronRow, now: Date, err: unknown): Promise<void> {
    const error = translateDbError(err);
    // Stored where any reader of cron_schedules sees it: no quoted value (see safeMessage).
    const reason = error instanceof Error ? `${error.name}: ${safeMessage(error)}` : String(error);
    const failures = row.fail_count + 1;
    const retryAt = new Date(now.getTime() + cronRetryDelayMs(failures));
    let nextRunAt: Date | null = null;
    try {
      if (row.misfire === 'skip') {
        nextRunAt = row.next_run_at === null ? nextFireAfter(row.cron, row.timezone, now) : dueFireTimes(row.cron, row.timezone, row.next_run_at, now, 1).next;
      }
    } catch {
      // Kept where it was: the retry works it out again.
    }
    this.logger.warn({ schedule: row.name, job: row.job_name, failures, retryAt, err: error }, 'schedule could not enqueue its job; will retry');
    await cronRecordFailure(client, { name: row.name, error: reason, retryAt, nextRunAt });
  }
}
