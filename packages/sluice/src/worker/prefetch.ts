// How many jobs a worker claims ahead of its free slots.
//
// A prefetch the user gives is kept as given. Left to sluice, it follows the
// pace of the jobs: enough to keep every slot busy for PREFETCH_WINDOW_MS at
// the mean run time seen so far, never fewer than the concurrency (the whole
// prefetch while nothing has run yet) and never more than
// PREFETCH_PER_SLOT_MAX per slot nor PREFETCH_AUTO_MAX in all.
//
// Why: each claim and each acknowledgement is a statement with a fixed cost
// on the database, so a worker of fast jobs that claims only as many as it
// has slots sends a statement or two per job; measured with 50 processes of
// concurrency 2, a prefetch of 20 instead of 2 halved the database CPU per
// job (docs/design-notes.md). Jobs that run longer than the window keep the
// old default, so slow jobs are not hoarded by one process while others
// idle; the per-slot bound caps what one misjudged burst can hold back.

/** How long the buffer should keep the slots busy, at the measured pace. */
export const PREFETCH_WINDOW_MS = 100;
/** The most a slot's share of an adaptive prefetch can be. */
export const PREFETCH_PER_SLOT_MAX = 10;
/** The most an adaptive prefetch can be. */
export const PREFETCH_AUTO_MAX = 1_000;
/** Weight of each new run time in the running mean. */
const MEAN_WEIGHT = 0.05;

export class Prefetch {
  private meanRunMs: number | null = null;

  constructor(
    /** The prefetch option; null: adaptive. */
    private readonly given: number | null,
    private readonly concurrency: number,
  ) {}

  /** A job ran for runMs (from its start to its answer). */
  observe(runMs: number): void {
    if (this.given !== null) return;
    this.meanRunMs = this.meanRunMs === null ? runMs : this.meanRunMs + MEAN_WEIGHT * (runMs - this.meanRunMs);
  }

  /** Jobs to hold beyond the free slots now. */
  get size(): number {
    if (this.given !== null) return this.given;
    const floor = this.concurrency;
    if (this.meanRunMs === null) return floor;
    const ceiling = Math.min(this.concurrency * PREFETCH_PER_SLOT_MAX, PREFETCH_AUTO_MAX);
    const paced = Math.floor((this.concurrency * PREFETCH_WINDOW_MS) / Math.max(this.meanRunMs, 0.001));
    return Math.max(floor, Math.min(ceiling, paced));
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
