// The block overflow policy, producer side: an enqueue to a full queue tries
// again whenever a claim on that queue is announced on sluice_room (a hint:
// the enqueue itself checks the depth under the queue lock), or after a poll
// interval, since cancels and lost notifications announce nothing, until it
// fits or its blockTimeoutMs runs out. One LISTEN connection per client,
// opened the first time a producer has to wait.
import type pg from 'pg';
import type { Logger } from 'pino';
import { QueueFullError } from './errors.js';
import { Notifier } from './worker/notifier.js';

export const ROOM_CHANNEL = 'sluice_room';
/** How often a producer waiting for room tries again when no notification came. */
export const BLOCK_POLL_INTERVAL_MS = 500;

export class RoomWaiter {
  private notifier: Notifier | null = null;
  private starting: Promise<void> | null = null;
  private readonly wakers = new Map<string, Set<() => void>>();

  constructor(
    private readonly listenPool: pg.Pool | null,
    private readonly logger: Logger,
  ) {}

  /**
   * Calls `attempt` until it answers (not null), waiting for room in `queue`
   * between tries; throws QueueFullError once `timeoutMs` has passed.
   */
  async retry<T>(queue: string, timeoutMs: number, attempt: () => Promise<T | null>): Promise<T> {
    const deadline = Date.now() + timeoutMs;
    await this.listen();
    for (;;) {
      // Armed before the try, so a claim announced while it runs still wakes us.
      const wake = this.nextWake(queue);
      try {
        const answer = await attempt();
        if (answer !== null) return answer;
        const left = deadline - Date.now();
        if (left <= 0) throw new QueueFullError(queue, { waitedMs: timeoutMs });
        await Promise.race([wake.promise, new Promise((r) => setTimeout(r, Math.min(BLOCK_POLL_INTERVAL_MS, left)))]);
      } finally {
        wake.cancel();
      }
    }
  }

  async close(): Promise<void> {
    await this.notifier?.stop();
    this.notifier = null;
    this.starting = null;
  }

  private listen(): Promise<void> {
    if (!this.listenPool) return Promise.resolve();
    if (!this.starting) {
      this.notifier = new Notifier(
        this.listenPool,
        [ROOM_CHANNEL],
        {
          onNotification: (_channel, queue) => this.wake(queue),
          // Claims announced while the connection was down were lost.
          onConnected: () => {
            for (const queue of this.wakers.keys()) this.wake(queue);
          },
        },
        this.logger,
      );
      this.starting = this.notifier.start();
    }
    return this.starting;
  }

  private wake(queue: string): void {
    const set = this.wakers.get(queue);
    if (!set) return;
    this.wakers.delete(queue);
    for (const fn of set) fn();
  }

  private nextWake(queue: string): { promise: Promise<void>; cancel: () => void } {
    let fn!: () => void;
    const promise = new Promise<void>((resolve) => (fn = resolve));
    let set = this.wakers.get(queue);
    if (!set) this.wakers.set(queue, (set = new Set()));
    set.add(fn);
    return {
      promise,
      cancel: () => {
        const current = this.wakers.get(queue);
        current?.delete(fn);
        if (current?.size === 0) this.wakers.delete(queue);
      },
    };
  }
}
