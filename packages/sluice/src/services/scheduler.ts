// Fires cron schedules. Leaderless: every worker may run it; a schedule row is
// locked with SKIP LOCKED, its jobs enqueued and its next_run_at advanced in
// one transaction, and each fire's job carries the unique key
// cron:<name>:<fire time>, so no fire happens twice. It sleeps until the
// nearest next_run_at rather than ticking coarsely.
import type pg from 'pg';
import type { Queryable } from '../executor.js';
import { inTransaction } from '../transaction.js';
import type { Logger } from 'pino';
import { firesToEnqueue, fireTimesBetween, nextFireAfter, type MisfirePolicy } from '../schedule.js';
import { cronAdvance, cronClaimDue, cronDisableWithError, cronNextDueInMs, type CronRow } from '../sql/cron.js';
import { jobEnqueueMany } from '../sql/jobs.js';
import { Service } from './service.js';

const CLAIM_BATCH = 50;

export interface SchedulerOptions {
  maxSleepMs: number;
  misfireGraceMs: number;
}

export function cronUniqueKey(name: string, fireAt: Date): string {
  return `cron:${name}:${fireAt.toISOString()}`;
}

export class Scheduler extends Service {
  constructor(
    private readonly pool: pg.Pool,
    private readonly options: SchedulerOptions,
    logger: Logger,
  ) {
    super('scheduler', logger);
  }

  protected async tick(): Promise<number> {
    const fired = await this.fireDue();
    if (fired >= CLAIM_BATCH) return 0;
    const nextMs = await cronNextDueInMs(this.pool);
    if (nextMs === null) return this.options.maxSleepMs;
    return Math.min(Math.max(nextMs, 0), this.options.maxSleepMs);
  }

  /** Returns the number of schedules handled. */
  private async fireDue(): Promise<number> {
    return inTransaction(this.pool, undefined, async (client) => {
      const { rows, now } = await cronClaimDue(client, CLAIM_BATCH);
      for (const row of rows) await this.fire(client, row, now);
      return rows.length;
    });
  }

  private async fire(client: Queryable, row: CronRow, now: Date): Promise<void> {
    let next: Date;
    let fires: Date[] = [];
    try {
      next = nextFireAfter(row.cron, row.timezone, now);
      if (row.next_run_at !== null) {
        const cap = row.misfire === 'run_all' ? row.run_all_cap : 1;
        const due = fireTimesBetween(row.cron, row.timezone, row.next_run_at, now, cap);
        fires = firesToEnqueue(row.misfire as MisfirePolicy, due, now, this.options.misfireGraceMs);
      }
    } catch (err) {
      this.logger.warn({ schedule: row.name, err }, 'schedule cannot be read; disabling it');
      await cronDisableWithError(client, row.name, (err as Error).message);
      return;
    }
    for (const fireAt of fires) {
      await jobEnqueueMany(client, {
        name: row.job_name,
        payloadsJson: JSON.stringify([row.payload]),
        queue: null,
        runAt: fireAt,
        priority: null,
        maxAttempts: null,
        timeoutMs: null,
        backoff: null,
        uniqueKeys: [cronUniqueKey(row.name, fireAt)],
        tags: [`cron:${row.name}`],
      });
    }
    await cronAdvance(client, row.name, next, fires.at(-1) ?? null);
  }
}
