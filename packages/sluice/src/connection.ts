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
