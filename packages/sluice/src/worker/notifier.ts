// One LISTEN connection per process. It reconnects on its own; while it is
// down the poll interval covers, so a lost notification costs latency, never
// a job.
import type pg from 'pg';
import type { Logger } from 'pino';
import { isGivenUp } from '../given-up.js';

export const JOBS_CHANNEL = 'sluice_jobs';
export const SCHEDULED_CHANNEL = 'sluice_scheduled';
export const CANCEL_CHANNEL = 'sluice_cancel';
export const CRON_CHANNEL = 'sluice_cron';
/** Jobs became available behind where claims resume (see sluice.claim): payload the queue. */
export const REWIND_CHANNEL = 'sluice_rewind';
/** Sent by sluice.queue_configure when it pauses a queue (payload: the queue): its workers hand back what they buffered. */
export const PAUSE_CHANNEL = 'sluice_pause';

const RECONNECT_MIN_MS = 100;
const RECONNECT_MAX_MS = 5_000;

export interface NotifierHandlers {
  onNotification(channel: string, payload: string): void;
  /** Called after every (re)connect: notifications sent while down were lost. */
  onConnected(): void;
  /** Called when the connection is lost, before reconnecting: its session state is gone. */
  onDisconnected?(): void;
}

export class Notifier {
  private client: pg.PoolClient | null = null;
  private stopped = false;
  private reconnectDelayMs = RECONNECT_MIN_MS;
  private reconnectTimer: NodeJS.Timeout | null = null;
  private detach: (() => void) | null = null;
  /** A session given up as stuck, not closed yet (see closeGivenUp). */
  private givenUp: { client: pg.PoolClient; timer: NodeJS.Timeout } | null = null;

  constructor(
    private readonly pool: pg.Pool,
    private readonly channels: readonly string[],
    private readonly handlers: NotifierHandlers,
    private readonly logger: Logger,
    /**
     * How long a session given up as stuck is kept open at most, waiting for
     * closeGivenUp; none: it is closed at once.
     */
    private readonly holdGivenUpMs?: number,
  ) {}

  async start(): Promise<void> {
    this.stopped = false;
    await this.connect();
  }

  get connected(): boolean {
    return this.client !== null;
  }

  /**
   * Runs a statement on the LISTEN session itself, for session state that must
   * live on a direct connection (the leader's advisory lock); null while
   * disconnected.
   *
   * A statement with no answer after timeoutMs means the session is stuck (a
   * network partition, or a proxy that dropped the flow, leaves the socket
   * open and silent for as long as TCP allows): the session is given up as
   * lost, and the statement rejects. Without that, a beat waiting on it let
   * this worker's leases lapse while its jobs ran, and a leader kept its
   * duties after the others had taken the lock from the silent session.
   */
  async onSession<R extends pg.QueryResultRow = pg.QueryResultRow>(
    text: string,
    values: unknown[],
    timeoutMs?: number,
    /** A statement run on every beat is prepared once a session under this name, and planned once. */
    name?: string,
  ): Promise<R[] | null> {
    const client = this.client;
    if (!client) return null;
    try {
      // node-postgres reads query_timeout per statement; its types leave it out.
      const config: pg.QueryConfig & { query_timeout?: number } = { text, values, query_timeout: timeoutMs, ...(name ? { name } : {}) };
      const { rows } = await client.query<R>(config);
      return rows;
    } catch (err) {
      if (timeoutMs !== undefined && isGivenUp(err)) {
        this.lost(client, new Error(`the LISTEN session did not answer within ${timeoutMs} ms`, { cause: err }), this.holdGivenUpMs);
      }
      throw err;
    }
  }

  private async connect(): Promise<void> {
    let client: pg.PoolClient | null = null;
    try {
      client = await this.pool.connect();
      const c = client;
      this.detach = () => {
        c.off('notification', onNotification);
        c.off('error', onError);
        c.off('end', onEnd);
      };
      const onNotification = (msg: { channel: string; payload?: string }) => this.handlers.onNotification(msg.channel, msg.payload ?? '');
      const onError = (err: Error) => this.lost(c, err);
      const onEnd = () => this.lost(c, new Error('LISTEN connection ended'));
      c.on('notification', onNotification);
      c.on('error', onError);
      c.on('end', onEnd);
      for (const channel of this.channels) await client.query(`LISTEN ${channel}`);
      if (this.stopped) {
        client.release(true);
        return;
      }
      this.client = client;
      this.reconnectDelayMs = RECONNECT_MIN_MS;
      this.handlers.onConnected();
    } catch (err) {
      if (client) client.release(true);
      this.logger.warn({ err }, 'LISTEN connection failed; polling until it is back');
      this.scheduleReconnect();
    }
  }

  /**
   * A session given up as stuck is kept open until the caller says its
   * process has beaten elsewhere (closeGivenUp), or holdMs at most: a live
   * worker's session closing before a beat through its pool lands looks, to
   * the rescuer, like the death of its process, and a server slow enough to
   * have stuck the session can take that beat past the rescuer's grace.
   */
  private lost(client: pg.PoolClient, err: Error, holdMs?: number): void {
    if (this.client !== client) return;
    this.client = null;
    if (holdMs === undefined) {
      client.release(true);
    } else {
      this.detach?.();
      // Errors of a held session change nothing: it is closed when a beat lands, or its time is up.
      client.on('error', () => {});
      this.givenUp = { client, timer: setTimeout(() => this.closeGivenUp(), holdMs) };
    }
    this.handlers.onDisconnected?.();
    if (this.stopped) return;
    this.logger.warn({ err }, 'LISTEN connection lost; reconnecting');
    // A held session reconnects once closed: a new one meanwhile would take a
    // second connection (of the main pool, when the session comes from it,
    // where the beat that closes the held one needs a place).
    if (!this.givenUp) this.scheduleReconnect();
  }

  private scheduleReconnect(): void {
    if (this.stopped || this.reconnectTimer) return;
    const delay = this.reconnectDelayMs;
    this.reconnectDelayMs = Math.min(this.reconnectDelayMs * 2, RECONNECT_MAX_MS);
    this.reconnectTimer = setTimeout(() => {
      this.reconnectTimer = null;
      void this.connect();
    }, delay);
  }

  /** The server process of the session given up as stuck and held open, if any. */
  get givenUpPid(): number | null {
    const pid = (this.givenUp?.client as { processID?: unknown } | undefined)?.processID;
    return typeof pid === 'number' ? pid : null;
  }

  /** Closes the session given up as stuck, if one is held open: the process has beaten elsewhere since. */
  closeGivenUp(): void {
    const held = this.givenUp;
    if (!held) return;
    this.givenUp = null;
    clearTimeout(held.timer);
    held.client.release(true);
    this.scheduleReconnect();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.closeGivenUp();
    if (this.reconnectTimer) clearTimeout(this.reconnectTimer);
    this.reconnectTimer = null;
    const client = this.client;
    this.client = null;
    if (client) {
      this.detach?.();
      // Closed rather than returned: a pool others share must not get a
      // session still listening, or one that may still hold the leader lock.
      client.release(true);
    }
  }
}
