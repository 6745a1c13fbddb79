// A connection can go silent without closing: a network partition, or a
// proxy that dropped the flow, leaves the socket open for as long as TCP
// allows. A statement sent on one would wait that long. The worker's
// statements are given up instead after a bound (worker/give-up.ts), and the
// connection they ran on is destroyed.
//
// Whatever silenced one connection most likely silenced the pool's other
// idle ones too: they were opened the same way and have not answered since.
// Left in the pool, each would swallow the retry of the statement just given
// up, one bound after another (an acknowledgement held 10 s per idle
// connection). So once a statement is given up, a connection checked out by
// a guarded statement that has not answered since (for anyone: the pool's
// releases tell) is destroyed unused, and the statement takes another, or a
// new one.
import type pg from 'pg';
import type { Queryable, QueryConfigLike } from './executor.js';

/** What node-postgres rejects a statement with once its query_timeout passes. */
export const QUERY_TIMEOUT_MESSAGE = 'Query read timeout';

export function isGivenUp(err: unknown): boolean {
  return err instanceof Error && err.message === QUERY_TIMEOUT_MESSAGE;
}

/**
 * A statement that failed on the server (it has a SQLSTATE) leaves its
 * connection usable, unless the server ended the session with it (FATAL: a
 * terminated backend, a shutdown); anything else (given up, cut, a protocol
 * error) may not either.
 */
function connectionSuspect(err: unknown): boolean {
  const { code, severity } = (err ?? {}) as { code?: unknown; severity?: unknown };
  return !(typeof code === 'string' && code.length === 5) || severity === 'FATAL' || severity === 'PANIC';
}

/**
 * Monotonic: a wall clock stepped back after a give-up (an NTP step, a
 * resumed VM) would date every new connection before it, and each would be
 * destroyed as it opened.
 */
const now = () => performance.now();

function ignore(): void {}

/**
 * Where a leader's duty runs: `db` for its single statements (through the
 * worker's guard), `pool` for its own transactions, each of whose statements
 * is given up after giveUpMs (see inTransaction).
 */
export interface DutyDb {
  pool: pg.Pool;
  db: Queryable;
  giveUpMs: number;
}

export class SilenceGuard {
  /** When each connection last answered (or opened). */
  private readonly answeredAt = new WeakMap<pg.PoolClient, number>();
  private gaveUpAt = 0;

  private readonly opened = (client: pg.PoolClient) => this.answeredAt.set(client, now());
  // Whoever used the connection (the handlers share the pool): one given back
  // without an error answered, or failed on the server, which answers too.
  private readonly released = (err: Error | undefined, client: pg.PoolClient) => {
    if (!err) this.answeredAt.set(client, now());
  };

  constructor(private readonly pool: pg.Pool) {
    pool.on('connect', this.opened);
    pool.on('release', this.released);
  }

  /** A pool the caller keeps outlives the worker: the guard stops watching it. */
  detach(): void {
    this.pool.off('connect', this.opened);
    this.pool.off('release', this.released);
  }

  /** The pool's statements, each given up after timeoutMs unanswered. */
  limited(timeoutMs: number): Queryable {
    return { query: (config) => this.query(config, timeoutMs) } as Queryable;
  }

  private async query(config: QueryConfigLike, timeoutMs: number) {
    const client = await this.trustedClient();
    // A connection lost while checked out is also emitted as an 'error' event,
    // which would end the process unheard (pool.query listens for the same
    // reason); the statement rejects with it anyway.
    client.on('error', ignore);
    try {
      // node-postgres reads query_timeout per statement; its types leave it out.
      const result = await client.query({ ...config, query_timeout: timeoutMs } as pg.QueryConfig);
      client.off('error', ignore);
      client.release();
      return result;
    } catch (err) {
      if (isGivenUp(err)) this.gaveUpAt = now();
      client.off('error', ignore);
      client.release(connectionSuspect(err) ? (err as Error) : undefined);
      throw err;
    }
  }

  private async trustedClient(): Promise<pg.PoolClient> {
    for (;;) {
      const client = await this.pool.connect();
      if ((this.answeredAt.get(client) ?? 0) >= this.gaveUpAt) return client;
      client.release(true);
    }
  }
}
