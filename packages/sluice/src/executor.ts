// What `{ tx }` accepts: anything that can run a parametrised query on the
// caller's connection, so a job is written inside the caller's transaction.
import type { QueryResultRow } from 'pg';
import { ValidationError } from './errors.js';

export interface QueryConfigLike {
  text: string;
  values?: unknown[];
  name?: string;
}

/** The smallest thing sluice needs from a connection. */
export interface Queryable {
  query<R extends QueryResultRow = QueryResultRow>(
    config: QueryConfigLike,
  ): Promise<{ rows: R[]; rowCount: number | null }>;
}

/**
 * A `pg` Pool, Client or PoolClient, or a drizzle node-postgres `db` or
 * transaction.
 */
export type Executor = Queryable | DrizzleExecutor;

/** The shape drizzle's node-postgres db and transaction share. */
export interface DrizzleExecutor {
  execute(...args: never[]): unknown;
  transaction(...args: never[]): unknown;
}

function isQueryable(value: unknown): value is Queryable {
  return typeof value === 'object' && value !== null && typeof (value as Queryable).query === 'function';
}

/**
 * Resolves the caller's executor to a connection whose statements carry no
 * name. sluice cannot tell whether the caller's connection goes through a
 * transaction pooler (PgBouncer in transaction mode), where a statement
 * prepared in one transaction is unknown to the server connection the next
 * one lands on; an unnamed statement works everywhere.
 */
export function toQueryable(tx: Executor): Queryable {
  return unprepared(resolveExecutor(tx));
}

/** Sends every query of `db` without a statement name. */
export function unprepared(db: Queryable): Queryable {
  if (UNPREPARED in db) return db;
  return {
    [UNPREPARED]: true,
    query: (config: QueryConfigLike) => db.query({ text: config.text, values: config.values }),
  } as Queryable;
}

const UNPREPARED = Symbol('sluice.unprepared');

/** Resolves an executor to the pg connection (or pool) it runs on. */
export function resolveExecutor(tx: Executor): Queryable {
  if (typeof tx !== 'object' || tx === null) {
    throw new ValidationError('tx', 'expected a pg Pool, Client or PoolClient, or a drizzle node-postgres db or transaction');
  }
  if (isQueryable(tx)) return tx;
  // drizzle's node-postgres db and transaction both keep their pg client (a
  // Pool for db, the PoolClient holding the transaction for tx) on `session`.
  const session = (tx as { session?: { client?: unknown } }).session;
  if (session && isQueryable(session.client)) return session.client;
  const client = (tx as { $client?: unknown }).$client;
  if (isQueryable(client)) return client;
  throw new ValidationError(
    'tx',
    'expected a pg Pool, Client or PoolClient, or a drizzle node-postgres db or transaction',
  );
}
