// Which processes claim when jobs are announced. Every worker listening on a
// queue receives every announcement; if each claimed, one job would cost a
// claim in every process and all but one would find nothing. An enqueue
// announces "queue count first-id" (jobs/enqueue-many.sql). The live workers
// of the queue, ordered by id, take turns by that id: those whose rank falls
// in a window starting at a hash of first-id scaled to the number of live
// workers claim, as many as the count needs at this worker's own room, plus
// a spare. The rest stay asleep. The hash spreads the windows evenly over
// any run of ids, consecutive or a fixed distance apart: batches of one size,
// or a job in each of several queues per request, all drawing ids from one
// sequence, woke the same workers every time when the window started at
// first-id modulo the number of workers.
//
// Nothing is left behind by a window that misses: a busy worker claims as
// its slots free whether woken or not, any claim takes the oldest jobs first
// (so the next claim anywhere takes what a window missed), and the poll
// stays. A window misses when views of the membership disagree (for a beat
// after a worker joins or dies) or when every worker in it is busy; the
// spare covers one such worker. Every other announcement (a plain queue
// name: promotions, rescues, releases, configure) wakes every worker, as
// does any announcement while this worker's view is older than staleAfterMs.

import { monotonicMs } from '../clock.js';

/** Workers woken beyond what the count needs, for one busy or dead worker in the window. */
export const WAKE_SPARE = 1;

export interface Announcement {
  queue: string;
  /** Absent for a plain queue name: every worker claims. */
  count?: number;
  key?: number;
  /** The jobs' run_at in epoch microseconds (absent from older producers). */
  runAtUs?: number;
}

export function parseAnnouncement(payload: string): Announcement {
  const [queue, count, key, runAt] = payload.split(' ');
  const n = Number(count);
  const k = Number(key);
  if (!Number.isSafeInteger(n) || n < 1 || !Number.isSafeInteger(k)) return { queue: queue! };
  const r = Number(runAt);
  return { queue: queue!, count: n, key: k, ...(runAt !== undefined && Number.isSafeInteger(r) ? { runAtUs: r } : {}) };
}

export class WakeShare {
  private readonly view = new Map<string, { live: number; rank: number }>();
  private seenAt = -Infinity;

  constructor(
    private readonly queues: readonly string[],
    /** Jobs one claim of this worker can take now: its concurrency plus prefetch. */
    private readonly room: () => number,
    private readonly staleAfterMs: number,
  ) {}

  /** The [queue, live, rank] rows a beat on the LISTEN session returned. */
  update(peers: [string, number, number][] | null | undefined): void {
    if (peers === undefined) return;
    this.view.clear();
    for (const [queue, live, rank] of peers ?? []) this.view.set(queue, { live, rank });
    this.seenAt = monotonicMs();
  }

  /** Whether this worker claims now for the announcement (never for a queue it does not claim from). */
  claims(a: Announcement): boolean {
    if (!this.queues.includes(a.queue)) return false;
    const peers = this.view.get(a.queue);
    if (a.count === undefined || a.key === undefined || !peers || monotonicMs() - this.seenAt >= this.staleAfterMs) return true;
    const window = Math.ceil(a.count / this.room()) + WAKE_SPARE;
    if (window >= peers.live) return true;
    const offset = (((peers.rank - windowStart(a.key, peers.live)) % peers.live) + peers.live) % peers.live;
    return offset < window;
  }
}

/**
 * Where the window starts: the key's Fibonacci hash (its low 32 bits times
 * 2^32 / the golden ratio, the product's top bits) scaled to `live`.
 */
export function windowStart(key: number, live: number): number {
  return Math.floor(((Math.imul(key | 0, 0x9e3779b1) >>> 0) / 2 ** 32) * live);
}
