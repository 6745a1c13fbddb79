// The one LISTEN session of a client, shared by waitFor (sluice_finished) and
// by enqueues waiting for room (sluice_room). Each used to take a session of
// its own out of the client's pool: with a pool of two, a waitFor and a
// blocked enqueue held both connections, and the statements they then needed
// (reading the job, re-checking the depth), like every other call of the
// client, waited for a connection forever. One session leaves poolSize - 1
// connections for statements, and connection.ts refuses a pool of one that
// LISTEN would share. The session listens on every channel a user subscribed,
// whoever holds it: both carry little (only jobs someone waits for, only
// claims on blocking queues). It is held only while someone waits, so a
// script that waited or blocked ends by itself.
import type pg from 'pg';
import type { Logger } from 'pino';
import { Notifier } from './worker/notifier.js';

export interface ChannelHandlers {
  onNotification(payload: string): void;
  /** After every (re)connect: notifications sent while down were lost. */
  onConnected(): void;
}

export class ClientListener {
  private readonly channels = new Map<string, ChannelHandlers>();
  private notifier: Notifier | null = null;
  private starting: Promise<void> | null = null;
  private holders = 0;
  private stopping: Promise<void> = Promise.resolve();
  private closed = false;

  /** `pool` null: no LISTEN (transaction pooling without a direct connection); users poll. */
  constructor(
    private readonly pool: pg.Pool | null,
    private readonly logger: Logger,
  ) {}

  get available(): boolean {
    return this.pool !== null;
  }

  /** Whether notifications arrive now: false while the session is (re)connecting, or without one. */
  get listening(): boolean {
    return this.notifier?.connected ?? false;
  }

  /** Before the first hold: the session's channels are fixed when it opens. */
  subscribe(channel: string, handlers: ChannelHandlers): void {
    this.channels.set(channel, handlers);
  }

  /**
   * Counts the caller as a holder and resolves once the session listens (or
   * its first connect failed: it reconnects, and users poll while `listening`
   * is false). Every call needs its release(), whether this resolves or not.
   */
  hold(): Promise<void> {
    this.holders++;
    if (!this.pool || this.closed) return Promise.resolve();
    if (!this.starting) {
      const notifier = new Notifier(
        this.pool,
        [...this.channels.keys()],
        {
          onNotification: (channel, payload) => this.channels.get(channel)?.onNotification(payload),
          onConnected: () => {
            for (const handlers of this.channels.values()) handlers.onConnected();
          },
        },
        this.logger,
      );
      this.notifier = notifier;
      this.starting = notifier.start();
    }
    return this.starting;
  }

  /** The last holder gone, the connection goes back (not awaited: the caller has its answer). */
  release(): void {
    if (--this.holders > 0) return;
    this.stop();
  }

  async close(): Promise<void> {
    // A hold after close would reconnect forever to an ended pool.
    this.closed = true;
    this.stop();
    await this.stopping;
  }

  private stop(): void {
    const notifier = this.notifier;
    this.notifier = null;
    this.starting = null;
    if (notifier) this.stopping = Promise.all([this.stopping, notifier.stop()]).then(() => undefined);
  }
}
