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
import type { Queryable } from './executor.js';
import { WorkerStateError } from './errors.js';
import { isGivenUp } from './given-up.js';
import { ownTransaction, type OwnTransactions } from './transaction.js';

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
 * Where a leader's duty runs, both through the worker's guard: `db` for its
 * single statements, `transaction` for its own transactions.
 */
export interface DutyDb {
  db: Queryable;
  transaction: OwnTransactions;
}

export class SilenceGuard {
  /** When each connection last answered (or opened). */
  private readonly answeredAt = new WeakMap<pg.PoolClient, number>();
  private gaveUpAt = 0;
  private watching = false;

  private readonly opened = (client: pg.PoolClient) => this.answeredAt.set(client, now());
  // Whoever used the connection (the handlers share the pool): one given back
  // without an error answered, or failed on the server, which answers too.
  private readonly released = (err: Error | undefined, client: pg.PoolClient) => {
    if (!err) this.answeredAt.set(client, now());
  };

  /**
   * Watches from its first statement, not from construction: a worker made
   * and never started leaves no listener on a pool its caller keeps.
   * Connections opened before have no time, and go at the first give-up.
   */
  constructor(private readonly pool: pg.Pool) {}

  /** A pool the caller keeps outlives the worker: the guard stops watching it. */
  detach(): void {
    if (!this.watching) return;
    this.watching = false;
    this.pool.off('connect', this.opened);
    this.pool.off('release', this.released);
  }

  /**
   * The pool's statements, each given up after timeoutMs unanswered. Once
   * `cut` aborts, none starts, and one under way has its connection closed:
   * a stopping worker does not wait out a duty's bound.
   */
  limited(timeoutMs: number, cut?: AbortSignal): Queryable {
    return { query: (config) => this.onTrusted(timeoutMs, (db) => db.query(config), cut) } as Queryable;
  }

  /**
   * Transactions on the pool, each statement given up after timeoutMs
   * unanswered: a give-up sends no ROLLBACK (it would not be answered) and
   * destroys the connection. The server's side of that connection still
   * holds the transaction's locks (a history partition's, the due
   * schedules'), so it is told to end the transaction once it sits idle for
   * idleInTransactionMs.
   */
  transactions(timeoutMs: number, idleInTransactionMs: number, cut?: AbortSignal): OwnTransactions {
    return (fn) => this.onTrusted(timeoutMs, (db) => ownTransaction(db, fn, idleInTransactionMs), cut);
  }

  private async onTrusted<T>(timeoutMs: number, fn: (db: Queryable) => Promise<T>, cut?: AbortSignal): Promise<T> {
    if (cut?.aborted) throw new WorkerStateError('worker is shutting down');
    const client = await this.trustedClient();
    // A connection lost while checked out is also emitted as an 'error' event,
    // which would end the process unheard (pool.query listens for the same
    // reason); the statement rejects with it anyway.
    client.on('error', ignore);
    // With a statement under way, node-postgres closes the socket at once and fails the statement.
    const close = () => void client.end().catch(ignore);
    if (cut?.aborted) close();
    cut?.addEventListener('abort', close);
    // node-postgres reads query_timeout per statement; its types leave it out.
    const limited = { query: (config) => client.query({ ...config, query_timeout: timeoutMs } as pg.QueryConfig) } as Queryable;
    try {
      const result = await fn(limited);
      client.off('error', ignore);
      client.release();
      return result;
    } catch (err) {
      if (isGivenUp(err)) this.gaveUpAt = now();
      client.off('error', ignore);
      client.release(connectionSuspect(err) ? (err as Error) : undefined);
      throw err;
    } finally {
      cut?.removeEventListener('abort', close);
    }
  }

  private async trustedClient(): Promise<pg.PoolClient> {
    if (!this.watching) {
      this.watching = true;
      this.pool.on('connect', this.opened);
      this.pool.on('release', this.released);
    }
    for (;;) {
      const client = await this.pool.connect();
      if ((this.answeredAt.get(client) ?? 0) >= this.gaveUpAt) return client;
      client.release(true);
    }
  }
}
