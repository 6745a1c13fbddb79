// Runs several writes atomically: inside the caller's transaction when one is
// given, else in a transaction of sluice's own.
import type pg from 'pg';
import { withClient } from './connection.js';
import { resolveExecutor, unprepared, type Executor, type Queryable } from './executor.js';

function isPool(db: Queryable): db is Queryable & pg.Pool {
  return typeof (db as pg.Pool).connect === 'function' && 'totalCount' in db;
}

export async function inTransaction<T>(pool: pg.Pool, tx: Executor | undefined, fn: (db: Queryable) => Promise<T>): Promise<T> {
  const given = tx === undefined ? undefined : resolveExecutor(tx);
  // A client (or a drizzle transaction) is the caller's transaction; a pool
  // (or a drizzle db over one) is not, so sluice opens one on it. Either way
  // a connection of the caller's gets unnamed statements (see toQueryable).
  if (given !== undefined && !isPool(given)) return fn(unprepared(given));
  return withClient(given ?? pool, async (client) => {
    await client.query('BEGIN');
    try {
      const result = await fn(given === undefined ? client : unprepared(client));
      await client.query('COMMIT');
      return result;
    } catch (err) {
      await client.query('ROLLBACK').catch(() => {});
      throw err;
    }
  });
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
    await db.query({ text: 'ROLLBACK TO SAVEPOINT sluice_step' });
    await db.query({ text: 'RELEASE SAVEPOINT sluice_step' });
    return onError(err);
  }
  await db.query({ text: 'RELEASE SAVEPOINT sluice_step' });
  return result;
}
