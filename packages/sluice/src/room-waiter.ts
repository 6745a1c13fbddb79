// The block overflow policy, producer side: an enqueue to a full queue tries
// again whenever a claim on that queue is announced on sluice_room (a hint:
// the enqueue itself checks the depth under the queue lock), or after a poll
// interval, since cancels and lost notifications announce nothing, until it
// fits or its blockTimeoutMs runs out. The notifications come on the client's
// one LISTEN session (client-listener.ts), held while a producer waits.
import type { ClientListener } from './client-listener.js';
import { QueueFullError } from './errors.js';
import { monotonicMs } from './clock.js';

export const ROOM_CHANNEL = 'sluice_room';
/** How often a producer waiting for room tries again when no notification came. */
export const BLOCK_POLL_INTERVAL_MS = 500;

export class RoomWaiter {
  private readonly wakers = new Map<string, Set<() => void>>();

  constructor(private readonly listener: ClientListener) {
    listener.subscribe(ROOM_CHANNEL, {
      onNotification: (queue) => this.wake(queue),
      // Claims announced while the connection was down were lost.
      onConnected: () => {
        for (const queue of this.wakers.keys()) this.wake(queue);
      },
    });
  }

  /**
   * Calls `attempt` until it answers (not null), waiting for room in `queue`
   * between tries; throws QueueFullError once `timeoutMs` has passed.
   */
  async retry<T>(queue: string, timeoutMs: number, attempt: () => Promise<T | null>): Promise<T> {
    const deadline = monotonicMs() + timeoutMs;
    // Not waited for: the LISTEN session may need a connection of a pool
    // whose every connection a producer waiting in its own transaction
    // holds, and then nobody would reach the deadline. Until it is up the
    // poll tries again every BLOCK_POLL_INTERVAL_MS; once up, it wakes every
    // waiter (onConnected), for claims announced meanwhile were not heard.
    this.listener.hold().catch(() => {});
    try {
      for (;;) {
        // Armed before the try, so a claim announced while it runs still wakes us.
        const wake = this.nextWake(queue);
        try {
          const answer = await attempt();
          if (answer !== null) return answer;
          const left = deadline - monotonicMs();
          if (left <= 0) throw new QueueFullError(queue, { waitedMs: timeoutMs });
          await Promise.race([wake.promise, new Promise((r) => setTimeout(r, Math.min(BLOCK_POLL_INTERVAL_MS, left)))]);
        } finally {
          wake.cancel();
        }
      }
    } finally {
      this.listener.release();
    }
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
