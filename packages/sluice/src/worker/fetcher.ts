// The fetch loop: claims a batch when the local buffer runs low, sleeps until
// a notification, a free slot or the poll interval, and stops asking after an
// empty claim until something new is announced.
import type { Logger } from 'pino';
import type { Queryable } from '../executor.js';
import { Service } from '../services/service.js';
import { jobClaim, type ClaimedJobRow } from '../sql/jobs.js';

export interface FetcherOptions {
  queues: string[];
  workerId: string;
  leaseMs: number;
  pollIntervalMs: number;
  /** Refill when the buffer holds this many jobs or fewer. */
  lowWater: number;
  /** Jobs the worker can take now (free slots plus free buffer). */
  room(): number;
  bufferedCount(): number;
  accept(rows: ClaimedJobRow[]): void;
}

export class Fetcher extends Service {
  // Set after a claim came back short: the queues are drained, so a freed
  // slot need not trigger another claim until a notification or the poll.
  private drained = false;

  constructor(
    private readonly db: Queryable,
    private readonly options: FetcherOptions,
    logger: Logger,
  ) {
    super('fetcher', logger);
  }

  /** New jobs were announced on one of our queues. */
  notified(): void {
    this.drained = false;
    this.wake();
  }

  /** The buffer fell to its low-water mark. */
  lowOnWork(): void {
    if (!this.drained) this.wake();
  }

  protected async tick(): Promise<number> {
    const room = this.options.room();
    if (room <= 0 || this.options.bufferedCount() > this.options.lowWater) return this.options.pollIntervalMs;
    const rows = await jobClaim(this.db, {
      queues: this.options.queues,
      limit: room,
      workerId: this.options.workerId,
      leaseMs: this.options.leaseMs,
    });
    this.options.accept(rows);
    this.drained = rows.length < room;
    if (this.drained) return this.options.pollIntervalMs;
    return this.options.bufferedCount() > this.options.lowWater ? this.options.pollIntervalMs : 0;
  }
}
