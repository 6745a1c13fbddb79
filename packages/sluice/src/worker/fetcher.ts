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
// Each queue's claim resumes after the last job this worker claimed there
// (sluice.claim's after_* arguments), so neither the entries of the jobs
// claimed before (kept alive by a transaction held open elsewhere) nor
// those of a burst enqueued at one run_at are walked again by every claim.
// It starts from the front again when a job may have become available
// behind that point: on a sluice_rewind notification, after the LISTEN
// connection was down, and every CLAIM_REWIND_MS for changes nothing
// announces. An enqueue announced behind that point (its transaction began
// before the jobs claimed since: enqueues commit out of order) moves the
// point back to where the announced jobs start.
//
// A queue with a concurrency, group or rate limit counts claims, so its jobs
// are claimed only into slots where they start at once (no prefetch): one
// waiting in this worker's buffer would hold a slot of the limit another
// worker could use, and would start later in a burst past a rate limit. Its
// jobs go ahead of the buffer. A refill comes when every slot is busy, so a
// limited queue's share of it is mostly cut; the cut part is owed to the
// queue, and the worker keeps that many slots free as they come (the
// buffered jobs of other queues wait) for a claim of the owed jobs alone.
// Without this, a limited queue beside a busy one got a slot only once the
// other's backlog was all claimed. A limited queue that comes back short
// is owed nothing until it is announced or a poll interval has passed.
import type { Logger } from 'pino';
import type { Queryable } from '../executor.js';
import { Service } from '../services/service.js';
import { jobClaim, jobReleaseUnknownClaims, type ClaimResume, type ClaimedJobRow } from '../sql/job-leases.js';
import { queueClaimSettings } from '../sql/queues.js';
import { WeightedAllocator } from './allocate.js';
import { interleaveByQueue } from './interleave.js';
import { monotonicMs } from '../clock.js';

/** How often queue weights and limits are re-read, so `sluice queues set` takes effect. */
const SETTINGS_REFRESH_MS = 10_000;
/** Longest wait between polls of an idle worker whose LISTEN connection is up. */
export const IDLE_POLL_MAX_MS = 30_000;
/** Claims start from the front of each queue at least this often, for changes no notification announces. */
export const CLAIM_REWIND_MS = 10_000;

/** Where a job sorts within its priority: run_at in epoch microseconds, then id. */
interface Position {
  runAtUs: number;
  id: number;
}

/** Whether `a` sorts before `b` within one priority. */
function precedes(a: Position, b: Position): boolean {
  return a.runAtUs < b.runAtUs || (a.runAtUs === b.runAtUs && a.id < b.id);
}

export interface FetcherOptions {
  queues: string[];
  workerId: string;
  leaseMs: number;
  pollIntervalMs: number;
  /** Refill when the buffer holds this many jobs or fewer. */
  lowWater(): number;
  /** Jobs the worker can take now (free slots plus free buffer). */
  room(): number;
  /** Slots a limited queue's job would start in now: not running a job, nor waiting for a buffered one of a limited queue. */
  freeSlots(): number;
  bufferedCount(): number;
  /** Claimed jobs; the first `startNow` are of limited queues, and go ahead of the buffer. */
  accept(rows: ClaimedJobRow[], startNow: number): void;
  /** Every job the worker holds: running, buffered, held for a hand-back, answered but not yet written. */
  heldIds(): number[];
}

export class Fetcher extends Service {
  // Set after a claim came back short: the queues are drained, so a freed
  // slot need not trigger another claim until a notification or the poll.
  private drained = false;
  private ticking = false;
  private readonly allocator: WeightedAllocator;
  private settingsReadAt = -Infinity;
  /**
   * Queues with a concurrency, group or rate limit. Their limits count claims,
   * so a job of theirs waiting in this worker's buffer would hold a slot
   * another worker could use, and their buffered jobs would start in a burst
   * past a rate limit: they are claimed only as far as jobs can start now.
   */
  private limited = new Set<string>();
  /** Per queue, jobs a limited queue is owed (its shares cut for want of a free slot), including those being claimed. */
  private readonly owed: number[];
  /** Per queue, until when a limited queue that came back short is owed nothing (unless announced). */
  private readonly shortUntil: number[];
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
  private rewoundAt = -Infinity;
  /** Per claim in flight, per queue: the earliest jobs announced meanwhile. */
  private readonly heardInFlight = new Set<(Position | null)[]>();
  /**
   * When a claim last failed. Its statement may have committed on the server
   * (the answer lost with its connection, or given up on while the server
   * went on): its jobs run under this worker's id with nothing here to run,
   * extend or give them back, and at their lease's end the rescuer would
   * count a crash, the last attempt of a job that never started. Before each
   * claim for a lease after that, the jobs this worker holds without
   * knowing it are given back.
   */
  private claimFailedAt = -Infinity;

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
    this.owed = options.queues.map(() => 0);
    this.shortUntil = options.queues.map(() => 0);
  }

  /** Whether the queue has a concurrency, group or rate limit: its jobs are claimed only to start at once. */
  isLimited(queue: string): boolean {
    return this.limited.has(queue);
  }

  /** Free slots the worker keeps for the jobs its limited queues are owed: no buffered job of another queue takes them. */
  heldSlots(): number {
    if (this.limited.size === 0 || this.options.room() <= 0) return 0;
    return this.owed.reduce((a, b) => a + b, 0);
  }

  /** A slot is free and held: claim the owed jobs. Not during a tick, which looks again at its end. */
  slotHeld(): void {
    if (!this.ticking) this.wake();
  }

  /** Jobs may have become available behind where claims resume: the next claim of the queue (all: undefined) starts from the front. */
  rewind(queue?: string): void {
    this.options.queues.forEach((q, i) => {
      if (queue !== undefined && q !== queue) return;
      this.resume[i] = null;
      this.rewinds[i]! += 1;
    });
  }

  /**
   * An enqueue announced its jobs: their run_at and first id. Behind where
   * the queue's claims resume, it committed after later jobs were claimed
   * (its run_at is its transaction's start), and nothing else announces it:
   * the next claim resumes just before it. Claims read every higher and lower
   * priority whatever the key, so only the key's own priority needs moving.
   * Jobs this worker or another already claimed move it back too (their
   * announcement came after the claim): the next claim walks their entries
   * once more, as far as the key.
   */
  announced(queue: string, runAtUs: number, firstId: number): void {
    const i = this.options.queues.indexOf(queue);
    if (i < 0) return;
    const at = { runAtUs, id: firstId };
    // A claim in flight may not have seen them, and move the key past them when it answers.
    for (const heard of this.heardInFlight) if (!heard[i] || precedes(at, heard[i])) heard[i] = at;
    this.resumeBefore(i, at);
  }

  /** The queue's next claim resumes no later than just before `at` (a job's run_at and id). */
  private resumeBefore(i: number, at: Position): void {
    const resume = this.resume[i];
    if (resume && precedes(at, resume)) this.resume[i] = { priority: resume.priority, runAtUs: at.runAtUs, id: at.id - 1 };
  }

  /** New jobs (or a slot of a limited queue) were announced on one of our queues (all: undefined). */
  notified(queue?: string): void {
    this.options.queues.forEach((q, i) => {
      if (queue === undefined || q === queue) this.shortUntil[i] = 0;
    });
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
    if (room <= 0) return this.options.pollIntervalMs;
    // A refill at the low-water mark, or only a claim for slots held for limited queues.
    const refill = this.options.bufferedCount() <= this.options.lowWater();
    if (!refill && this.heldSlots() === 0) return this.options.pollIntervalMs;
    await this.refreshSettings();
    const { queues } = this.options;
    const now = monotonicMs();
    let free = this.limited.size > 0 ? this.options.freeSlots() : 0;
    // Limited queues that could not take all they were given (or were left
    // out): not to be given the short queues' leftovers.
    const capped = queues.map(() => false);
    const short = (i: number) => now < this.shortUntil[i]!;
    // Limited queues that did not come back short are given the free slots
    // first: a short one served first, in list order, took them all again at
    // each claim, and a queue owed slots behind it never got one while the
    // worker claimed in a loop (its owed slots held and free).
    const startable = (shares: number[]) => {
      const takes = [...shares];
      const order = queues.map((_, i) => i).filter((i) => this.limited.has(queues[i]!));
      order.sort((a, b) => Number(short(a)) - Number(short(b)));
      for (const i of order) {
        const n = shares[i]!;
        // Owed at most the room, so what a queue banks while it cannot start stays bounded.
        const want = short(i) ? n : this.owed[i]! + Math.min(n, Math.max(0, room - this.owed[i]!));
        const take = Math.min(want, free);
        free -= take;
        if (take < want) capped[i] = true;
        this.owed[i] = short(i) ? take : want;
        takes[i] = take;
      }
      return takes;
    };
    // A limited queue that came back short, with no slot free to try it in, leaves its share to the others.
    const active = queues.map((q, i) => !(this.limited.has(q) && short(i) && free === 0));
    active.forEach((a, i) => {
      if (!a) capped[i] = true;
    });
    let shares = startable(refill ? this.allocator.next(room, active) : queues.map(() => 0));
    const asked = shares.reduce((a, b) => a + b, 0);
    // Only limited queues, and no slot free: the next finished job wakes the fetcher (lowOnWork, slotHeld).
    if (asked === 0) return this.options.pollIntervalMs;
    let claimed = await this.claim(shares);
    // Queues not shown to be short (including ones whose share rounded to 0)
    // may take what the short ones left.
    const full = queues.map((_, i) => claimed.counts[i]! >= claimed.shares[i]! && !capped[i]);
    claimed.counts.forEach((n, i) => {
      if (n < claimed.shares[i]!) this.allocator.idle(i);
    });
    let total = claimed.rows.length;
    const leftover = asked - total;
    if (refill && leftover > 0 && queues.length > 1 && full.some(Boolean)) {
      // The first claim's jobs have started in the slots it counted as free.
      free = this.limited.size > 0 ? this.options.freeSlots() : 0;
      shares = startable(this.allocator.next(leftover, full));
      if (shares.some((n) => n > 0)) {
        claimed = await this.claim(shares);
        total += claimed.rows.length;
      }
    }
    // Short of what the first claim asked (the second only hands on the short
    // queues' part): the queues are drained. A limited queue's share cut to
    // the free slots was not asked, and does not make them drained.
    if (refill) this.drained = total < asked;
    // Slots still held and free: the owed jobs are claimed now.
    if (this.heldSlots() > 0 && this.options.freeSlots() > 0) return 0;
    if (!refill) return this.options.pollIntervalMs;
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
    if (!this.listening() || monotonicMs() - this.rewoundAt >= CLAIM_REWIND_MS) {
      this.resume.fill(null);
      this.rewoundAt = monotonicMs();
    }
    // Claims are sent one at a time: none is in flight now whose jobs would look unknown.
    if (monotonicMs() - this.claimFailedAt < this.options.leaseMs) {
      const released = await jobReleaseUnknownClaims(this.db, { workerId: this.options.workerId, queues, heldIds: this.options.heldIds() });
      if (released > 0) this.logger.warn({ released }, 'gave back jobs a failed claim had taken without this worker learning of them');
    }
    const rewindsBefore = [...this.rewinds];
    const heard: (Position | null)[] = queues.map(() => null);
    this.heardInFlight.add(heard);
    let rows: ClaimedJobRow[];
    try {
      rows = await jobClaim(this.db, {
        queues,
        limits: shares,
        workerId: this.options.workerId,
        leaseMs: this.options.leaseMs,
        resume: this.resume,
      });
    } catch (err) {
      this.claimFailedAt = monotonicMs();
      throw err;
    } finally {
      this.heardInFlight.delete(heard);
    }
    const counts = queues.map(() => 0);
    let startNow = 0;
    for (const r of rows) {
      if (this.limited.has(r.queue)) startNow += 1;
      const i = queues.indexOf(r.queue);
      counts[i]! += 1;
      // Rows come in claim order: the last of a queue is the furthest. A
      // rewind heard meanwhile wins: this claim's snapshot may predate what it announced.
      if (this.rewinds[i] === rewindsBefore[i]) {
        this.resume[i] = { priority: r.priority, runAtUs: r.run_at_us, id: r.id };
      }
    }
    heard.forEach((at, i) => at && this.resumeBefore(i, at));
    if (this.limited.size > 0) this.settleOwed(shares, counts);
    if (startNow === 0) this.options.accept(interleaveByQueue(rows), 0);
    else {
      const first = rows.filter((r) => this.limited.has(r.queue));
      const rest = rows.filter((r) => !this.limited.has(r.queue));
      this.options.accept([...interleaveByQueue(first), ...interleaveByQueue(rest)], startNow);
    }
    return { rows, shares, counts };
  }

  /** Before the worker dispatches what came: a limited queue is owed less what it got, or nothing when it came back short. */
  private settleOwed(shares: number[], counts: number[]): void {
    this.options.queues.forEach((q, i) => {
      if (!this.limited.has(q) || shares[i] === 0) return;
      if (counts[i]! < shares[i]!) {
        this.owed[i] = 0;
        this.shortUntil[i] = monotonicMs() + this.options.pollIntervalMs;
      } else {
        this.owed[i] = Math.max(0, this.owed[i]! - counts[i]!);
        this.shortUntil[i] = 0;
      }
    });
  }

  private async refreshSettings(): Promise<void> {
    if (monotonicMs() - this.settingsReadAt < SETTINGS_REFRESH_MS) return;
    const { weights, limited } = await queueClaimSettings(this.db, this.options.queues);
    this.allocator.setWeights(this.options.queues.map((q) => weights.get(q) ?? 1));
    this.limited = limited;
    this.options.queues.forEach((q, i) => {
      if (!limited.has(q)) this.owed[i] = 0;
    });
    this.settingsReadAt = monotonicMs();
  }
}
