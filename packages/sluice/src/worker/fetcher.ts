// The fetch loop: claims a batch when the local buffer runs low, sleeps until
// a notification, a free slot or the poll interval, and stops asking after an
// empty claim until something new is announced. Free room is shared across
// the worker's queues by weight; the share of a queue without work goes to
// the queues that have some.
//
// The poll is the fallback for jobs that become claimable without a
// notification (rows inserted by plain SQL, a rate-limit window reopening, a
// notification lost on a connection that died silently). While the LISTEN
// connection is up, each claim that finds nothing doubles the wait before the
// next poll, up to IDLE_POLL_MAX_MS; a notification or a claim that finds
// work brings it back to pollIntervalMs. Without LISTEN it stays at
// pollIntervalMs.
import type { Logger } from 'pino';
import type { Queryable } from '../executor.js';
import { Service } from '../services/service.js';
import { jobClaim, type ClaimedJobRow } from '../sql/jobs.js';
import { queueWeights } from '../sql/queues.js';
import { WeightedAllocator } from './allocate.js';

/** How often queue weights are re-read, so `sluice queues set --weight` takes effect. */
const WEIGHTS_REFRESH_MS = 10_000;
/** Longest wait between polls of an idle worker whose LISTEN connection is up. */
export const IDLE_POLL_MAX_MS = 30_000;

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
  private readonly allocator: WeightedAllocator;
  private weightsReadAt = 0;
  private idlePollMs: number;
  /** Whether notifications are arriving; set by the worker. */
  listening: () => boolean = () => false;

  constructor(
    private readonly db: Queryable,
    private readonly options: FetcherOptions,
    logger: Logger,
  ) {
    super('fetcher', logger);
    this.allocator = new WeightedAllocator(options.queues.map(() => 1));
    this.idlePollMs = options.pollIntervalMs;
  }

  /** New jobs were announced on one of our queues. */
  notified(): void {
    this.drained = false;
    this.idlePollMs = this.options.pollIntervalMs;
    this.wake();
  }

  /** The buffer fell to its low-water mark. */
  lowOnWork(): void {
    if (!this.drained) this.wake();
  }

  protected async tick(): Promise<number> {
    const room = this.options.room();
    if (room <= 0 || this.options.bufferedCount() > this.options.lowWater) return this.options.pollIntervalMs;
    await this.refreshWeights();
    const { queues } = this.options;
    let claimed = await this.claim(this.allocator.next(room));
    // Queues not shown to be short (including ones whose share rounded to 0)
    // may take what the short ones left.
    const full = queues.map((_, i) => claimed.counts[i]! >= claimed.shares[i]!);
    claimed.counts.forEach((n, i) => {
      if (n < claimed.shares[i]!) this.allocator.idle(i);
    });
    let total = claimed.rows.length;
    const leftover = room - total;
    if (leftover > 0 && queues.length > 1 && full.some(Boolean)) {
      claimed = await this.claim(this.allocator.next(leftover, full));
      total += claimed.rows.length;
    }
    this.drained = total < room;
    if (total === 0) return this.backOff();
    this.idlePollMs = this.options.pollIntervalMs;
    if (this.drained) return this.options.pollIntervalMs;
    return this.options.bufferedCount() > this.options.lowWater ? this.options.pollIntervalMs : 0;
  }

  /** The wait after a claim that found nothing: growing while notifications arrive. */
  private backOff(): number {
    if (!this.listening()) return this.options.pollIntervalMs;
    const waitMs = this.idlePollMs;
    this.idlePollMs = Math.min(this.idlePollMs * 2, Math.max(IDLE_POLL_MAX_MS, this.options.pollIntervalMs));
    return waitMs;
  }

  private async claim(shares: number[]): Promise<{ rows: ClaimedJobRow[]; shares: number[]; counts: number[] }> {
    const { queues } = this.options;
    const rows = await jobClaim(this.db, {
      queues,
      limits: shares,
      workerId: this.options.workerId,
      leaseMs: this.options.leaseMs,
    });
    const counts = queues.map(() => 0);
    for (const r of rows) counts[queues.indexOf(r.queue)]! += 1;
    this.options.accept(rows);
    return { rows, shares, counts };
  }

  private async refreshWeights(): Promise<void> {
    if (this.options.queues.length < 2 || Date.now() - this.weightsReadAt < WEIGHTS_REFRESH_MS) return;
    const weights = await queueWeights(this.db, this.options.queues);
    this.allocator.setWeights(this.options.queues.map((q) => weights.get(q) ?? 1));
    this.weightsReadAt = Date.now();
  }
}
