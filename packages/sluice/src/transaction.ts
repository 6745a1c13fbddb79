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
