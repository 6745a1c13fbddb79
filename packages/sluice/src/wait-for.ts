// waitFor(id): resolves when a job finishes, told by NOTIFY on
// sluice_finished (never by polling the table in a loop). The client's one
// LISTEN session (client-listener.ts) serves every waiter; after a reconnect
// each waiter re-reads its job, since notifications sent meanwhile were lost.
// Behind a transaction pooler with no direct connection there is no LISTEN,
// and only there waiters re-read their jobs on an interval. A notice only triggers a
// read (any login can send one): the answer always comes from the row, and a
// missing row counts as "completed without history" only for a job this
// client saw live.
import type pg from 'pg';
import type { Logger } from 'pino';
import type { ClientListener } from './client-listener.js';
import { CancelledError, JobFailedError, JobNotFoundError, WaitTimeoutError } from './errors.js';
import { jobGet, jobRequestFinishNotice, transactionStatus, type JobRow } from './sql/jobs.js';
import { monotonicMs } from './clock.js';

export const FINISHED_CHANNEL = 'sluice_finished';
/** How often waiters re-read their jobs when LISTEN is not available. */
export const WAIT_POLL_INTERVAL_MS = 250;
/** How many of its latest enqueued ids a client remembers (see FinishWaiter.noteEnqueued). */
const REMEMBERED_IDS_MAX = 10_000;

interface Waiter {
  resolve(value: unknown): void;
  reject(err: unknown): void;
}

export class FinishWaiter {
  private readonly waiters = new Map<number, Set<Waiter>>();
  /** Per waited-for id, once the notice was requested: whether the job was live then. */
  private readonly wasLive = new Map<number, boolean>();
  /** Calls of waitFor not yet settled: the poll runs while there are any. */
  private pending = 0;
  private pollTimer: NodeJS.Timeout | null = null;
  /**
   * Ids this client enqueued lately, a ring: the newest overwrite the oldest.
   * Written at every enqueue, read only by a waitFor that finds no row, so
   * adding costs a store an id and looking up a scan (a Set evicting its
   * oldest took ~0.3 ms of each 1,000-job enqueueMany).
   */
  private readonly enqueued = new Float64Array(REMEMBERED_IDS_MAX);
  /** Beside each: the txid of the caller's transaction it was enqueued in (it counts once that committed), or null when known committed. */
  private readonly enqueuedXid: (string | null)[] = new Array(REMEMBERED_IDS_MAX).fill(null);
  private enqueuedNext = 0;

  constructor(
    private readonly pool: pg.Pool,
    private readonly listener: ClientListener,
    private readonly logger: Logger,
  ) {
    listener.subscribe(FINISHED_CHANNEL, {
      onNotification: (payload) => void this.check(Number(payload)),
      onConnected: () => {
        for (const id of this.waiters.keys()) void this.check(id);
      },
    });
  }

  /**
   * A job in a queue that keeps no history leaves no row once it completes,
   * so one that finished before waitFor asked about it looks like one that
   * never existed. Ids this client enqueued itself did exist: a missing row
   * for one of them is a completion.
   */
  /** Whether this client enqueued the job and its transaction committed. */
  private async enqueuedHere(id: number): Promise<boolean> {
    const at = this.enqueued.indexOf(id);
    if (at < 0) return false;
    const xid = this.enqueuedXid[at];
    return xid === null || (await transactionStatus(this.pool, xid!)) === 'committed';
  }

  /** xid: the txid of the caller's transaction the ids were written in; null when sluice committed them. */
  noteEnqueued(ids: readonly number[], xid: string | null = null): void {
    for (const id of ids) {
      this.enqueued[this.enqueuedNext] = id;
      this.enqueuedXid[this.enqueuedNext] = xid;
      this.enqueuedNext = (this.enqueuedNext + 1) % REMEMBERED_IDS_MAX;
    }
  }

  async waitFor(id: number, timeoutMs: number): Promise<unknown> {
    this.pending++;
    const deadline = monotonicMs() + timeoutMs;
    const listening = this.listener.hold();
    try {
      this.poll();
      // The notice is asked for once the LISTEN session is up, so none is
      // missed; but waited for no longer than the caller's timeout: the
      // session may need a connection of a pool whose every connection the
      // caller's own transactions hold, and it would never come.
      if (!(await settlesWithin(listening, timeoutMs))) throw new WaitTimeoutError(id, timeoutMs);
      return await this.register(id, timeoutMs, Math.max(1, deadline - monotonicMs()));
    } finally {
      this.listener.release();
      if (--this.pending === 0) this.stopPolling();
    }
  }

  /** Waits `leftMs` of the caller's `timeoutMs` (which the error names). */
  private register(id: number, timeoutMs: number, leftMs: number): Promise<unknown> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.remove(id, waiter);
        reject(new WaitTimeoutError(id, timeoutMs));
      }, leftMs);
      const waiter: Waiter = {
        resolve: (v) => (clearTimeout(timer), resolve(v)),
        reject: (e) => (clearTimeout(timer), reject(e)),
      };
      let set = this.waiters.get(id);
      if (!set) this.waiters.set(id, (set = new Set()));
      set.add(waiter);
      // Ask for the notice, then look once: a job that ended before the
      // notice was requested is found finished here.
      jobRequestFinishNotice(this.pool, id)
        .then(async (live) => {
          const existed = live || this.wasLive.get(id) === true || (await this.enqueuedHere(id));
          if (this.waiters.has(id)) this.wasLive.set(id, existed);
          return this.check(id);
        })
        .catch((err) => {
          this.remove(id, waiter);
          waiter.reject(err);
        });
    });
  }

  close(): void {
    this.stopPolling();
  }

  /**
   * While notifications do not arrive (no LISTEN, as under transaction
   * pooling without a direct connection, or a LISTEN session that cannot
   * connect), re-read the jobs on an interval; a reconnect re-reads them too.
   */
  private poll(): void {
    this.pollTimer ??= setInterval(() => {
      if (this.listener.listening) return;
      for (const id of this.waiters.keys()) void this.check(id);
    }, WAIT_POLL_INTERVAL_MS).unref();
  }

  private stopPolling(): void {
    if (this.pollTimer) clearInterval(this.pollTimer);
    this.pollTimer = null;
  }

  private remove(id: number, waiter: Waiter): void {
    const set = this.waiters.get(id);
    set?.delete(waiter);
    if (set?.size === 0) this.forget(id);
  }

  private forget(id: number): void {
    this.waiters.delete(id);
    this.wasLive.delete(id);
  }

  private async check(id: number): Promise<void> {
    const set = this.waiters.get(id);
    if (!set) return;
    let row: JobRow | null;
    try {
      row = await jobGet(this.pool, id);
    } catch (err) {
      this.logger.warn({ err, jobId: id }, 'waitFor could not read the job; will retry on the next notice');
      return;
    }
    // A missing row before the notice was requested decides nothing yet; after
    // it, it is a job that completed in a queue keeping no history (seen live)
    // or one that never existed.
    const live = this.wasLive.get(id);
    if (row === null && live === undefined) return;
    const outcome = row === null && live ? { value: null } : settle(id, row);
    if (!outcome || this.waiters.get(id) !== set) return;
    this.forget(id);
    for (const w of set) {
      if ('value' in outcome) w.resolve(outcome.value);
      else w.reject(outcome.error);
    }
  }
}

function settle(id: number, row: JobRow | null): { value: unknown } | { error: unknown } | null {
  if (!row) return { error: new JobNotFoundError([id]) };
  switch (row.state) {
    case 'completed':
      return { value: row.result };
    case 'cancelled':
      return { error: new CancelledError(id) };
    case 'dead':
    case 'dropped': {
      const last = row.errors.at(-1);
      const cause = last ? Object.assign(new Error(last.message), { name: last.name }) : undefined;
      return { error: new JobFailedError(id, row.state, { cause }) };
    }
    default:
      return null;
  }
}

/** Whether `p` settles within `ms` (a rejection counts as settled: the poll covers a LISTEN that failed). */
async function settlesWithin(p: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const settled = p.then(() => true, () => true);
  const late = new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(false), ms)));
  try {
    return await Promise.race([settled, late]);
  } finally {
    clearTimeout(timer);
  }
}
