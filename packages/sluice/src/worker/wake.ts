// Which processes claim when jobs are announced. Every worker listening on a
// queue receives every announcement; if each claimed, one job would cost a
// claim in every process and all but one would find nothing. An enqueue
// announces "queue count first-id" (jobs/enqueue-many.sql). The live workers
// of the queue, ordered by id, take turns by that id: those whose rank falls
// in a window starting at the sum of first-id's digits in base `live` (the
// number of live workers), modulo `live`, claim, as many as the count needs
// at this worker's own room, plus a spare. The rest stay asleep. The digit
// sum moves the window on by one for consecutive ids, and as well for ids
// `live` or `live`² apart: batches of one size, or a job in each of several
// queues per request, all drawing ids from one sequence, woke the same
// workers every time when the window started at first-id modulo `live`.
//
// Nothing is left behind by a window that misses: a busy worker claims as
// its slots free whether woken or not, any claim takes the oldest jobs first
// (so the next claim anywhere takes what a window missed), and the poll
// stays. A window misses when views of the membership disagree (for a beat
// after a worker joins or dies) or when every worker in it is busy; the
// spare covers one such worker. Every other announcement (a plain queue
// name: promotions, rescues, releases, configure) wakes every worker, as
// does any announcement while this worker's view is older than staleAfterMs.

/** Workers woken beyond what the count needs, for one busy or dead worker in the window. */
export const WAKE_SPARE = 1;

export interface Announcement {
  queue: string;
  /** Absent for a plain queue name: every worker claims. */
  count?: number;
  key?: number;
}

export function parseAnnouncement(payload: string): Announcement {
  const [queue, count, key] = payload.split(' ');
  const n = Number(count);
  const k = Number(key);
  if (!Number.isSafeInteger(n) || n < 1 || !Number.isSafeInteger(k)) return { queue: queue! };
  return { queue: queue!, count: n, key: k };
}

export class WakeShare {
  private readonly view = new Map<string, { live: number; rank: number }>();
  private seenAt = 0;

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
    this.seenAt = Date.now();
  }

  /** Whether this worker claims now for the announcement (never for a queue it does not claim from). */
  claims(a: Announcement): boolean {
    if (!this.queues.includes(a.queue)) return false;
    const peers = this.view.get(a.queue);
    if (a.count === undefined || a.key === undefined || !peers || Date.now() - this.seenAt >= this.staleAfterMs) return true;
    const window = Math.ceil(a.count / this.room()) + WAKE_SPARE;
    if (window >= peers.live) return true;
    const offset = (((peers.rank - windowStart(a.key, peers.live)) % peers.live) + peers.live) % peers.live;
    return offset < window;
  }
}

/** The sum of the key's digits in base `live`, modulo `live` (see the top of this file). */
export function windowStart(key: number, live: number): number {
  if (live <= 1) return 0;
  let sum = 0;
  for (let k = Math.abs(key); k > 0; k = Math.floor(k / live)) sum += k % live;
  return sum % live;
}
