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
//
// Each queue's claim resumes a little behind the last job this worker claimed
// there (sluice.claim's after_* arguments), so a transaction held open
// elsewhere, which keeps every claimed job's index entry alive, does not make
// each claim walk all of them again. It starts from the front again when a
// job may have become available behind that point: on a sluice_rewind
// notification, after the LISTEN connection was down, and every
// CLAIM_REWIND_MS for changes nothing announces.
import type { Logger } from 'pino';
import type { Queryable } from '../executor.js';
import { Service } from '../services/service.js';
import { jobClaim, type ClaimResume, type ClaimedJobRow } from '../sql/job-leases.js';
import { queueClaimSettings } from '../sql/queues.js';
import { WeightedAllocator } from './allocate.js';
import { interleaveByQueue } from './interleave.js';

/** How often queue weights and limits are re-read, so `sluice queues set` takes effect. */
const SETTINGS_REFRESH_MS = 10_000;
/** Longest wait between polls of an idle worker whose LISTEN connection is up. */
export const IDLE_POLL_MAX_MS = 30_000;
/** How far behind its last claimed job (by run_at) a queue's claim resumes: covers enqueues committed out of order. */
export const CLAIM_RESUME_MARGIN_MS = 2_000;
/** Claims start from the front of each queue at least this often, for changes no notification announces. */
export const CLAIM_REWIND_MS = 10_000;

export interface FetcherOptions {
  queues: string[];
  workerId: string;
  leaseMs: number;
  pollIntervalMs: number;
  /** Refill when the buffer holds this many jobs or fewer. */
  lowWater(): number;
  /** Jobs the worker can take now (free slots plus free buffer). */
  room(): number;
  /** Jobs the worker can start now: its free slots, less what its buffer holds. */
  freeSlots(): number;
  bufferedCount(): number;
  accept(rows: ClaimedJobRow[]): void;
}

export class Fetcher extends Service {
  // Set after a claim came back short: the queues are drained, so a freed
  // slot need not trigger another claim until a notification or the poll.
  private drained = false;
  private ticking = false;
  private readonly allocator: WeightedAllocator;
  private settingsReadAt = 0;
  /**
   * Queues with a concurrency, group or rate limit. Their limits count claims,
   * so a job of theirs waiting in this worker's buffer would hold a slot
   * another worker could use, and their buffered jobs would start in a burst
   * past a rate limit: they are claimed only as far as jobs can start now.
   */
  private limited = new Set<string>();
  private idlePollMs: number;
  /** Whether notifications are arriving; set by the worker. */
  listening: () => boolean = () => false;
  /** Per queue, where its next claim resumes; null: from the front. */
  private readonly resume: (ClaimResume | null)[];
  /**
   * Per queue, rewinds so far. A rewind that arrives while a claim is in
   * flight names a job that claim's snapshot may not hold: the claim must
   * not then move the key past it.
   */
  private readonly rewinds: number[];
  private rewoundAt = 0;

  constructor(
    private readonly db: Queryable,
    private readonly options: FetcherOptions,
    logger: Logger,
  ) {
    super('fetcher', logger);
    this.allocator = new WeightedAllocator(options.queues.map(() => 1));
    this.idlePollMs = options.pollIntervalMs;
    this.resume = options.queues.map(() => null);
    this.rewinds = options.queues.map(() => 0);
  }

  /** Jobs may have become available behind where claims resume: the next claim of the queue (all: undefined) starts from the front. */
  rewind(queue?: string): void {
    this.options.queues.forEach((q, i) => {
      if (queue !== undefined && q !== queue) return;
      this.resume[i] = null;
      this.rewinds[i]! += 1;
    });
  }

  /** New jobs were announced on one of our queues. */
  notified(): void {
    this.drained = false;
    this.idlePollMs = this.options.pollIntervalMs;
    this.wake();
  }

  /**
   * The buffer fell to its low-water mark. Not during a tick: a claim's own
   * rows (or none) reach the buffer inside it, and the tick itself decides
   * whether to claim again; a wake then would send a second claim at once.
   */
  lowOnWork(): void {
    if (!this.drained && !this.ticking) this.wake();
  }

  protected async tick(): Promise<number> {
    this.ticking = true;
    try {
      return await this.fetch();
    } finally {
      this.ticking = false;
    }
  }

  private async fetch(): Promise<number> {
    const room = this.options.room();
    if (room <= 0 || this.options.bufferedCount() > this.options.lowWater()) return this.options.pollIntervalMs;
    await this.refreshSettings();
    const { queues } = this.options;
    let free = this.options.freeSlots();
    const startable = (shares: number[]) =>
      shares.map((n, i) => {
        if (!this.limited.has(queues[i]!)) return n;
        const take = Math.max(0, Math.min(n, free));
        free -= take;
        return take;
      });
    let shares = startable(this.allocator.next(room));
    let asked = shares.reduce((a, b) => a + b, 0);
    // Only limited queues, and no slot free: the next finished job wakes the fetcher (lowOnWork).
    if (asked === 0) return this.options.pollIntervalMs;
    let claimed = await this.claim(shares);
    // Queues not shown to be short (including ones whose share rounded to 0)
    // may take what the short ones left.
    const full = queues.map((_, i) => claimed.counts[i]! >= claimed.shares[i]!);
    claimed.counts.forEach((n, i) => {
      if (n < claimed.shares[i]!) this.allocator.idle(i);
    });
    let total = claimed.rows.length;
    const leftover = room - total;
    if (leftover > 0 && queues.length > 1 && full.some(Boolean)) {
      shares = startable(this.allocator.next(leftover, full));
      const more = shares.reduce((a, b) => a + b, 0);
      if (more > 0) {
        asked += more;
        claimed = await this.claim(shares);
        total += claimed.rows.length;
      }
    }
    // Short of what was asked: the queues are drained. A limited queue asked
    // for less than the room is not a drained one.
    this.drained = total < asked;
    if (total === 0) return this.backOff();
    this.idlePollMs = this.options.pollIntervalMs;
    if (this.drained) return this.options.pollIntervalMs;
    return this.options.bufferedCount() > this.options.lowWater() ? this.options.pollIntervalMs : 0;
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
    // Without notifications a rewind could go unannounced.
    if (!this.listening() || Date.now() - this.rewoundAt >= CLAIM_REWIND_MS) {
      this.resume.fill(null);
      this.rewoundAt = Date.now();
    }
    const rewindsBefore = [...this.rewinds];
    const rows = await jobClaim(this.db, {
      queues,
      limits: shares,
      workerId: this.options.workerId,
      leaseMs: this.options.leaseMs,
      resume: this.resume,
    });
    const counts = queues.map(() => 0);
    for (const r of rows) {
      const i = queues.indexOf(r.queue);
      counts[i]! += 1;
      // Rows come in claim order: the last of a queue is the furthest.
      if (this.rewinds[i] === rewindsBefore[i]) {
        this.resume[i] = { priority: r.priority, runAtUs: r.run_at_us - CLAIM_RESUME_MARGIN_MS * 1000, id: 0 };
      }
    }
    this.options.accept(interleaveByQueue(rows));
    return { rows, shares, counts };
  }

  private async refreshSettings(): Promise<void> {
    if (Date.now() - this.settingsReadAt < SETTINGS_REFRESH_MS) return;
    const { weights, limited } = await queueClaimSettings(this.db, this.options.queues);
    this.allocator.setWeights(this.options.queues.map((q) => weights.get(q) ?? 1));
    this.limited = limited;
    this.settingsReadAt = Date.now();
  }
}
