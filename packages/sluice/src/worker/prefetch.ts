// How many jobs a worker claims ahead of its free slots.
//
// A prefetch the user gives is kept as given. Left to sluice, it follows the
// pace of the jobs: enough to keep every slot busy for PREFETCH_WINDOW_MS at
// the mean run time seen so far, never fewer than the concurrency (the whole
// prefetch while nothing has run yet) and never more than
// PREFETCH_PER_SLOT_MAX per slot (PREFETCH_SMALL_WORKER_MAX for a worker of
// few slots) nor PREFETCH_AUTO_MAX in all.
//
// Why: each claim and each acknowledgement is a statement with a fixed cost
// on the database, so a worker of fast jobs that claims only as many as it
// has slots sends a statement or two per job; measured with 50 processes of
// concurrency 2, a prefetch of 20 instead of 2 halved the database CPU per
// job (docs/design-notes.md). Jobs that run longer than the window keep the
// old default, so slow jobs are not hoarded by one process while others
// idle; the per-slot bound caps what one misjudged burst can hold back, and
// buffered jobs beyond what the slots would start within PREFETCH_HOLD_MAX_MS
// at the pace measured since are handed back at the next beat (holdMax).
//
// A worker of few slots (concurrency 2, one of fifty processes) claimed at
// most 20 at a time by the per-slot bound alone, and fifty of them cost the
// database 3.7x a job what one process of 100 slots did (issue 16); up to
// PREFETCH_SMALL_WORKER_MAX it claims in batches that spread a claim's fixed
// cost (docs/design-notes.md, "A worker of few slots claims in larger batches").

/** How long the buffer should keep the slots busy, at the measured pace. */
export const PREFETCH_WINDOW_MS = 100;
/** The most a slot's share of an adaptive prefetch can be. */
export const PREFETCH_PER_SLOT_MAX = 10;
/** The most an adaptive prefetch can be. */
export const PREFETCH_AUTO_MAX = 1_000;
/** The ceiling of an adaptive prefetch whatever the concurrency (the per-slot bound's for a worker of few slots). */
export const PREFETCH_SMALL_WORKER_MAX = 100;
/** Buffered jobs the slots would not start within this, at the pace measured, are handed back at the next beat. */
export const PREFETCH_HOLD_MAX_MS = 1_000;
/** Weight of each new run time in the running mean. */
const MEAN_WEIGHT = 0.05;

export class Prefetch {
  private meanRunMs: number | null = null;
  /** How long every slot has been running its current job, as the last beat found (0: a slot was free). */
  private busyForMs = 0;

  constructor(
    /** The prefetch option; null: adaptive. */
    private readonly given: number | null,
    private readonly concurrency: number,
  ) {}

  /** A job ran for runMs (from its start to its answer). */
  observe(runMs: number): void {
    if (this.given !== null) return;
    this.meanRunMs = this.meanRunMs === null ? runMs : this.meanRunMs + MEAN_WEIGHT * (runMs - this.meanRunMs);
    this.busyForMs = 0;
  }

  /**
   * Every slot has been running its current job for at least busyForMs (0:
   * one is free). No slot frees sooner than that: the jobs run at least that
   * slowly now, whatever the mean of those that finished says (a handler
   * stuck on a lock finishes nothing to observe).
   */
  slotsBusyFor(busyForMs: number): void {
    this.busyForMs = busyForMs;
  }

  /** The run time a job is taken to need now; null while nothing was measured. */
  private get paceMs(): number | null {
    if (this.meanRunMs === null && this.busyForMs === 0) return null;
    return Math.max(this.meanRunMs ?? 0, this.busyForMs, 0.001);
  }

  /** Jobs to hold beyond the free slots now. */
  get size(): number {
    if (this.given !== null) return this.given;
    const floor = this.concurrency;
    const pace = this.paceMs;
    if (pace === null) return floor;
    const ceiling = Math.min(Math.max(this.concurrency * PREFETCH_PER_SLOT_MAX, PREFETCH_SMALL_WORKER_MAX), PREFETCH_AUTO_MAX);
    const paced = Math.floor((this.concurrency * PREFETCH_WINDOW_MS) / pace);
    return Math.max(floor, Math.min(ceiling, paced));
  }

  /**
   * Buffered jobs worth keeping: those the slots start within
   * PREFETCH_HOLD_MAX_MS at the pace now, never fewer than the prefetch
   * itself. A burst claimed while the jobs ran fast, that turned out slow,
   * is handed back beyond it for other workers to run. Unbounded for a
   * prefetch the user gave, and while nothing was measured.
   */
  get holdMax(): number {
    const pace = this.paceMs;
    if (this.given !== null || pace === null) return Infinity;
    return Math.max(this.size, Math.floor((this.concurrency * PREFETCH_HOLD_MAX_MS) / pace));
  }

  /** Jobs the worker holds at most, running and buffered: what one claim can fill. */
  get capacity(): number {
    return this.concurrency + this.size;
  }

  /** The buffer is refilled when it holds this many jobs or fewer. */
  get lowWater(): number {
    return Math.floor(this.size / 2);
  }
}
