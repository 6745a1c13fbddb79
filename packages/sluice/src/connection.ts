// The pool sluice opens when the caller gives a connection string instead of a pool.
import pg from 'pg';
import type { Logger } from 'pino';
import { POOL_SIZE_DEFAULT } from './config.js';
import { ValidationError } from './errors.js';

export interface ConnectionOptions {
  /** A pool to use; sluice never ends a pool it did not create. */
  pool?: pg.Pool;
  /** Used when no pool is given. Default: the DATABASE_URL environment variable. */
  connectionString?: string;
  /** Connections in the pool sluice creates. Default 4. */
  poolSize?: number;
}

export interface OwnedPool {
  pool: pg.Pool;
  owned: boolean;
}

export function openPool(options: ConnectionOptions, logger: Logger): OwnedPool {
  if (options.pool) return { pool: options.pool, owned: false };
  const connectionString = options.connectionString ?? process.env.DATABASE_URL;
  if (!connectionString) {
    throw new ValidationError('connectionString', 'give a pool or a connectionString, or set DATABASE_URL');
  }
  const pool = new pg.Pool({ connectionString, max: options.poolSize ?? POOL_SIZE_DEFAULT });
  // An idle client that loses its server emits on the pool; without a
  // listener node would crash the process.
  pool.on('error', (err) => logger.warn({ err }, 'idle database connection failed'));
  return { pool, owned: true };
}

/**
 * Runs fn with a client checked out of the pool. While it is checked out, a
 * connection error between two queries (the server restarted, the backend
 * was terminated) is emitted on the client, where no listener would crash
 * the process: one is attached for the duration, and a client that failed is
 * destroyed rather than returned to the pool.
 */
export async function withClient<T>(pool: pg.Pool, fn: (client: pg.PoolClient) => Promise<T>): Promise<T> {
  const client = await pool.connect();
  let broken: Error | undefined;
  const onError = (err: Error) => {
    broken = err;
  };
  client.on('error', onError);
  try {
    return await fn(client);
  } catch (err) {
    broken ??= err instanceof Error && /terminat|connection|ECONNRESET/i.test(err.message) ? err : undefined;
    throw err;
  } finally {
    client.off('error', onError);
    client.release(broken);
  }
}
