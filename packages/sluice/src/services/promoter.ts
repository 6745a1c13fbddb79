// Makes due scheduled jobs (delayed, or waiting for a retry) available, and
// frees dependent jobs whose parents ended while they were being enqueued. It
// sleeps until the nearest run_at rather than ticking coarsely, and a
// notification on sluice_scheduled (any enqueue of a future job, any retry)
// wakes it to look again. The maintenance leader runs it; promotion uses SKIP
// LOCKED, so two promoters during a handover never collide.
import type { Logger } from 'pino';
import type { Queryable } from '../executor.js';
import { jobNextDueInMs, jobPromoteDue, jobReleaseOrphanedWaiting } from '../sql/jobs.js';
import { Service } from './service.js';

/** How soon a due job that another transaction holds locked is tried again. */
const LOCKED_DUE_RETRY_MS = 100;

export interface PromoterOptions {
  batchSize: number;
  /** Longest sleep, so a schedule change made without a notification is seen. */
  maxSleepMs: number;
}

export class Promoter extends Service {
  constructor(
    private readonly db: Queryable,
    private readonly options: PromoterOptions,
    logger: Logger,
  ) {
    super('promoter', logger);
  }

  protected async tick(): Promise<number> {
    // Cheap when nothing waits on a parent (one probe of an empty partial index).
    await jobReleaseOrphanedWaiting(this.db, this.options.batchSize);
    const promoted = await jobPromoteDue(this.db, this.options.batchSize);
    if (promoted >= this.options.batchSize) return 0;
    const nextMs = await jobNextDueInMs(this.db);
    if (nextMs === null) return this.options.maxSleepMs;
    // Due but not promoted: another transaction holds the row (promote_due
    // skips locked rows). Asking again at once would spin until it lets go.
    if (nextMs <= 0 && promoted === 0) return LOCKED_DUE_RETRY_MS;
    return Math.min(Math.max(nextMs, 0), this.options.maxSleepMs);
  }
}
