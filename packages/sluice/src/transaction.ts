// Runs several writes atomically: inside the caller's transaction (in a
// savepoint) when one is given, else in a transaction of sluice's own.
import type pg from 'pg';
import { withClient } from './connection.js';
import { resolveExecutor, unprepared, type Executor, type Queryable } from './executor.js';
import { isGivenUp } from './given-up.js';

function isPool(db: Queryable): db is Queryable & pg.Pool {
  return typeof (db as pg.Pool).connect === 'function' && 'totalCount' in db;
}

/**
 * Whether a write given this `tx` has committed when its call returns: none
 * (sluice's own statement or transaction), or a pool, on which sluice's
 * statement commits by itself. In the caller's transaction it may still roll back.
 */
export function commitsOnReturn(tx: Executor | undefined): boolean {
  return tx === undefined || isPool(resolveExecutor(tx));
}

export async function inTransaction<T>(pool: pg.Pool, tx: Executor | undefined, fn: (db: Queryable) => Promise<T>): Promise<T> {
  const given = tx === undefined ? undefined : resolveExecutor(tx);
  // A client (or a drizzle transaction) is the caller's transaction; a pool
  // (or a drizzle db over one) is not, so sluice opens one on it. Either way
  // a connection of the caller's gets unnamed statements (see toQueryable).
  if (given !== undefined && !isPool(given)) return inCallersTransaction(unprepared(given), fn);
  if (given !== undefined) return withClient(given, (client) => ownTransaction(unprepared(client), fn));
  return withClient(pool, (client) => ownTransaction(client, fn));
}

/** Runs fn in a transaction sluice opens itself, on a connection of its own choosing. */
export type OwnTransactions = <T>(fn: (db: Queryable) => Promise<T>) => Promise<T>;

/** Transactions on the pool's connections, with no bound on their statements. */
export function poolTransactions(pool: pg.Pool): OwnTransactions {
  return (fn) => inTransaction(pool, undefined, fn);
}

/**
 * fn's statements in a transaction on db, a connection out of any transaction.
 * With idleInTransactionMs, the server ends the transaction (and its session)
 * should it sit that long between statements: a client gone silent
 * mid-transaction would otherwise keep its locks until the server's TCP
 * keepalive noticed, two hours by default.
 */
export async function ownTransaction<T>(db: Queryable, fn: (db: Queryable) => Promise<T>, idleInTransactionMs?: number): Promise<T> {
  // One round trip: SET LOCAL holds for this transaction only, through PgBouncer in transaction mode too.
  const begin = idleInTransactionMs === undefined ? 'BEGIN' : `BEGIN; SET LOCAL idle_in_transaction_session_timeout = ${Math.max(1, Math.floor(idleInTransactionMs))}`;
  try {
    // Inside: a SET LOCAL that failed after its BEGIN left the session in an aborted transaction.
    await db.query({ text: begin });
    const result = await fn(db);
    await db.query({ text: 'COMMIT' });
    return result;
  } catch (err) {
    // A connection that went silent would not answer the ROLLBACK either; it is destroyed instead.
    if (!isGivenUp(err)) await db.query({ text: 'ROLLBACK' }).catch(() => {});
    throw err;
  }
}

/** SQLSTATE of SAVEPOINT outside a transaction block. */
const NO_ACTIVE_TRANSACTION = '25P01';

/**
 * fn's writes on the caller's connection, all or none: a refusal after some
 * statements were sent (a full queue, a check that needs the ids written
 * before it) must not leave them in a transaction the caller goes on to
 * commit, and a statement that raised must not leave it aborted. A savepoint
 * undoes them and leaves the transaction usable. A connection that is not in
 * a transaction gets one of its own.
 */
async function inCallersTransaction<T>(db: Queryable, fn: (db: Queryable) => Promise<T>): Promise<T> {
  try {
    await db.query({ text: 'SAVEPOINT sluice_atomic' });
  } catch (err) {
    if ((err as { code?: unknown }).code === NO_ACTIVE_TRANSACTION) return ownTransaction(db, fn);
    throw err;
  }
  let result: T;
  try {
    result = await fn(db);
  } catch (err) {
    // A failed rollback (the connection is gone) must not hide why fn failed.
    await db
      .query({ text: 'ROLLBACK TO SAVEPOINT sluice_atomic' })
      .then(() => db.query({ text: 'RELEASE SAVEPOINT sluice_atomic' }))
      .catch(() => {});
    throw err;
  }
  await db.query({ text: 'RELEASE SAVEPOINT sluice_atomic' });
  return result;
}

/**
 * Runs fn inside a savepoint of the transaction db is in: when fn throws, its
 * writes are undone and the transaction goes on (onError runs after the
 * rollback to the savepoint, and its result is returned).
 */
export async function withSavepoint<T>(db: Queryable, fn: () => Promise<T>, onError: (err: unknown) => Promise<T>): Promise<T> {
  await db.query({ text: 'SAVEPOINT sluice_step' });
  let result: T;
  try {
    result = await fn();
  } catch (err) {
    // A silent connection answers nothing more: the transaction is given up whole.
    if (isGivenUp(err)) throw err;
    await db.query({ text: 'ROLLBACK TO SAVEPOINT sluice_step' });
    await db.query({ text: 'RELEASE SAVEPOINT sluice_step' });
    return onError(err);
  }
  await db.query({ text: 'RELEASE SAVEPOINT sluice_step' });
  return result;
}
